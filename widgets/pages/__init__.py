"""One Panel page per topic; each has a settings class, a cached compute step and a layout."""

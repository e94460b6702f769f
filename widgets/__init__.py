"""UI package: HoloViews plots, Panel pages and the served app. Calls the core, never re-implements it."""

"""Parameter-exploration sessions: named searches over one study's Setting fields.

Optuna owns search (grid, random, NSGA-II) and storage (RDB: SQLite under the cache folder by
default, any URL to share); Dask distributed owns execution. ``spec`` says what is searched,
``trial`` runs one setting in a worker, ``driver`` runs and resumes a session, ``store`` reads
sessions back as DataFrames, Pareto fronts and exports.
"""

from workbench.explore.driver import INLINE, run
from workbench.explore.spec import Dimension, SessionSpec, parse_fixed, parse_vary
from workbench.explore.store import (
    create,
    export,
    frame,
    load,
    open_storage,
    pareto,
    pareto_mask,
    progress,
    rows_of,
    session_names,
)

__all__ = ["INLINE", "Dimension", "SessionSpec", "create", "export", "frame", "load",
           "open_storage", "pareto", "pareto_mask", "parse_fixed", "parse_vary", "progress",
           "rows_of", "run", "session_names"]

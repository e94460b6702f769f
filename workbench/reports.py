"""Result tables behind ``workbench report NAME``: a study's rows over its report settings, with
its own notes and the paper claims (``workbench/data/claims.toml``) evaluated on them in
``table.attrs["notes"]``; or, with ``--model SOURCE``, the model-agnostic views of any model
source (``workbench.sources``)."""

from __future__ import annotations

import pandas as pd

from workbench.claims import verdicts
from workbench.errors import WorkbenchError

# the reports that also run on any model source (--model): report name -> source_report view
SOURCE_REPORTS = {"basics": "basics", "energy": "energy", "early-exit": "early_exit",
                  "msat": "msat"}


def report(name: str) -> pd.DataFrame:
    """The result table of study ``name`` (see :data:`workbench.methods.registry.STUDIES`)."""
    from workbench.methods.registry import STUDIES

    if name not in STUDIES:
        raise WorkbenchError(f"unknown report {name!r}; available: {', '.join(STUDIES)}")
    study = STUDIES[name]
    table = study.table()
    table.attrs["notes"] = study.notes(table) + [v.text() for v in verdicts(name, table)]
    return table


def on_source(name: str, model, data=None) -> pd.DataFrame:
    """The model-agnostic view ``name`` (one of :data:`SOURCE_REPORTS`) of a model source, with
    the source and its conversion in ``attrs["notes"]``."""
    from workbench import source_report
    from workbench.sources import load_source

    if name not in SOURCE_REPORTS:
        raise WorkbenchError(f"report {name!r} needs its method-specific models; --model works "
                             f"with {', '.join(SOURCE_REPORTS)}")
    source = load_source(model, data)
    table = getattr(source_report, SOURCE_REPORTS[name])(source)
    table.attrs["notes"] = [f"model {source.name} on {source.data.name}, T = {source.data.T}",
                            *source.notes]
    return table

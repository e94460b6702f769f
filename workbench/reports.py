"""Result tables behind ``workbench report NAME``: a study's rows over its report settings, with
its own notes and the paper claims (``data/claims.toml``) evaluated on them in
``table.attrs["notes"]``."""

from __future__ import annotations

import pandas as pd

from workbench.claims import verdicts
from workbench.errors import WorkbenchError


def report(name: str) -> pd.DataFrame:
    """The result table of study ``name`` (see :data:`workbench.methods.registry.STUDIES`)."""
    from workbench.methods.registry import STUDIES

    if name not in STUDIES:
        raise WorkbenchError(f"unknown report {name!r}; available: {', '.join(STUDIES)}")
    study = STUDIES[name]
    table = study.table()
    table.attrs["notes"] = study.notes(table) + [v.text() for v in verdicts(name, table)]
    return table

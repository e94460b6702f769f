"""Result tables behind ``workbench report NAME``: a study's stored results (``workbench
reproduce NAME``), one row per report row with its mean and 95 % interval over seeds, and the
paper claims (``workbench/data/claims.toml``) evaluated over those seeds in
``table.attrs["notes"]``; with ``--live``, the study run once on the shipped models (seed 0) with
its own notes; or, with ``--model SOURCE``, the model-agnostic views of any model source
(``workbench.sources``)."""

from __future__ import annotations

import pandas as pd

from workbench.claims import verdicts
from workbench.errors import WorkbenchError

# the reports that also run on any model source (--model): report name -> source_report view
SOURCE_REPORTS = {"basics": "basics", "energy": "energy", "early-exit": "early_exit",
                  "msat": "msat"}


def _study(name: str):
    from workbench.methods.registry import STUDIES

    if name not in STUDIES:
        raise WorkbenchError(f"unknown report {name!r}; available: {', '.join(STUDIES)}")
    return STUDIES[name]


def report(name: str) -> pd.DataFrame:
    """The result table of study ``name`` (see :data:`workbench.methods.registry.STUDIES`) run
    once, on the shipped models (seed 0): its verdicts rest on that one seed."""
    study = _study(name)
    table = study.table()
    table.attrs["notes"] = study.notes(table) + [v.text() for v in verdicts(
        name, table, kind=study.seed_kind)]
    return table


def stored(name: str, budget: str = "full") -> pd.DataFrame:
    """The stored results of study ``name`` (:mod:`workbench.reproduce`): one row per report
    row, numbers that vary over seeds as mean with ``_low``/``_high`` (95 % t-interval), and
    the provenance and every claim's verdict over the seeds in ``attrs["notes"]``."""
    from workbench.reproduce import load_results, summary

    _study(name)
    results = load_results(name, budget)
    meta = results.meta
    prov = meta.get("provenance", {})
    seeds = ", ".join(map(str, meta["seeds"]))
    what = ("exact (deterministic, one run)" if results.seed_kind == "exact" else
            f"{len(meta['seeds'])} {results.seed_kind} seeds ({seeds}); numbers that vary: mean "
            "with its 95 % t-interval")
    table = summary(results.table)
    table.attrs["notes"] = [
        f"stored results of `{meta['command']}` ({meta['created']}, commit "
        f"{(prov.get('git_commit') or 'unknown')[:12]}): {what}",
        *[v.text() for v in verdicts(name, results.table, kind=results.seed_kind)]]
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

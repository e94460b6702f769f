"""One trial of an exploration session, as it runs inside a Dask worker (or in process): build
the Setting, seed, ``study.run`` → ``study.rows``, and return every row, the flattened numeric
metrics, the objectives, the wall time and where it ran; or, for a reproduction, the study's
whole report with the trial's seed. Nothing here touches the session store: only the driver
writes it.
"""

from __future__ import annotations

import importlib.metadata
import math
import os
import random
import socket
import subprocess
import time
from dataclasses import asdict, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from workbench.study import Study

PACKAGES = ("snn-latency-workbench", "torch", "norse", "numpy", "optuna", "dask", "distributed")
SEED_FIELD = "seed"  # a Setting field of this name receives the trial's seed


@lru_cache(maxsize=1)
def provenance() -> dict[str, Any]:
    """Package versions, the git commit of the workbench checkout (when it is one), whether its
    code differs from that commit (``git_dirty``; stored results excluded) and host."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10, cwd=root).stdout.strip()
        changed = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", "workbench",
             ":!workbench/data/results"], capture_output=True, text=True, timeout=10,
            cwd=root).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit, changed = "", ""
    return {"versions": versions, "git_commit": commit or None,
            "git_dirty": bool(commit) and bool(changed), "host": socket.gethostname()}


def flatten(table: pd.DataFrame, key: tuple[str, ...], skip: set[str]) -> dict[str, float]:
    """Every numeric cell of ``table`` as ``column[key=value,...]`` (dict cells, e.g. energy per
    device, as ``column.device[...]``); ``skip`` (the setting's fields) and ``key`` are left
    out. Missing cells (None/NaN, e.g. an ANN row without spikes) are not metrics."""
    metrics: dict[str, float] = {}
    for record in table.to_dict("records"):
        label = ",".join(f"{k}={record[k]}" for k in key if k in record)
        suffix = f"[{label}]" if label else ""
        for column, value in record.items():
            if column in key or column in skip:
                continue
            cells = value.items() if isinstance(value, dict) else [(None, value)]
            for sub, cell in cells:
                if isinstance(cell, bool) or not isinstance(cell, int | float | np.number):
                    continue
                if isinstance(cell, float | np.floating) and math.isnan(cell):
                    continue
                name = column if sub is None else f"{column}.{sub}"
                metrics[f"{name}{suffix}"] = float(cell)
    return metrics


def report_table(study: Study, values: dict[str, Any], seed: int) -> pd.DataFrame:
    """The study's report with ``seed`` (when it has a seed knob) and ``values`` set in every
    report setting: one seed's rows of a reproduction."""
    fields = study.setting.__dataclass_fields__
    extra = {**values, **({SEED_FIELD: seed} if SEED_FIELD in fields else {})}
    return study.table([replace(s, **extra) for s in study.report_settings()])


def run_trial(study_name: str, setting_values: dict[str, Any], seed: int,
              threads: int | None = 1, report: bool = False) -> dict[str, Any]:
    """Run one setting with one seed on ``threads`` torch threads (None: as set), or with
    ``report`` the study's whole report (:func:`report_table`). Returns ``setting`` (every
    field; a report: the values set), ``rows`` (JSON records), ``metrics``, ``objectives``
    (a report: ``wall_s``), ``wall_s`` (seconds), ``provenance`` and ``error`` (a reason, or
    None: an exception, or a metric that is not finite)."""
    from workbench.methods.registry import STUDIES
    from workbench.study import make_setting

    start = time.perf_counter()
    if threads is not None:
        torch.set_num_threads(threads)
    study: Study = STUDIES[study_name]
    values = dict(setting_values)
    if SEED_FIELD in study.setting.__dataclass_fields__:
        values[SEED_FIELD] = seed
    out: dict[str, Any] = {"seed": seed, "provenance": provenance() | {"pid": os.getpid()},
                           "error": None, "rows": None, "metrics": {}, "objectives": {}}
    try:
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)
        if report:
            out["setting"] = values
            table = report_table(study, setting_values, seed)
        else:
            setting = make_setting(study.setting, values)
            out["setting"] = asdict(setting)
            table = study.rows(study.run(setting))
        # pandas writes missing values as null; json.dumps would write NaN (not JSON)
        out["rows"] = table.to_json(orient="records")
        if report:  # the rows are the result; Optuna records the time they took
            out["objectives"] = {"wall_s": round(time.perf_counter() - start, 3)}
        else:
            out["metrics"] = flatten(table, study.row_key, set(out["setting"]))
            out["objectives"] = {k: float(v) for k, v in study.measure(table).items()}
        bad = {k: v for k, v in {**out["metrics"], **out["objectives"]}.items()
               if not math.isfinite(v)}
        if bad:
            out["error"] = "metrics not finite: " + ", ".join(f"{k}={v}" for k, v in bad.items())
    except Exception as exc:  # noqa: BLE001 — a trial's failure is data, the session goes on
        out["error"] = f"{type(exc).__name__}: {exc}"
    out["wall_s"] = round(time.perf_counter() - start, 3)
    return out

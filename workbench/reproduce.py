"""``workbench reproduce NAME``: a study's whole report once per seed, run as an exploration
session (Optuna storage, Dask driver: it resumes after a kill and runs on any Dask cluster), then
exported to one results file per study with its provenance. The reading side turns a results
file into rows (mean and 95 % t-interval over seeds) and claim verdicts.

A results file (``workbench/data/results/NAME.json``, committed; ``NAME-tiny.json`` for the tiny
budget) holds ``study``, ``budget``, ``seed_kind``, ``seeds``, ``command``, ``session``,
``provenance`` (git commit, whether the code differed from it, package versions, host),
``created`` (UTC), ``wall_s`` per seed and ``rows``: every seed's report rows with a ``seed``
column.
"""

from __future__ import annotations

import datetime
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from optuna.trial import TrialState

from workbench.claims import SEED_KINDS, t_interval
from workbench.errors import WorkbenchError
from workbench.study import Study, check_budget, knobs

RESULTS_ENV = "WORKBENCH_RESULTS"


def results_dir() -> Path:
    """Where results files are read and written: ``$WORKBENCH_RESULTS``, else the folder
    shipped inside the package."""
    root = os.environ.get(RESULTS_ENV)
    return Path(root) if root else Path(__file__).resolve().parent / "data" / "results"


def default_storage() -> str:
    """The SQLite session store of reproductions, beside (not in) the exploration sessions',
    so that they never show up among the sessions a user explores."""
    from workbench.cache import cache_dir

    folder = cache_dir() / "reproduce"
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'sessions.db'}"


def results_path(name: str, budget: str = "full") -> Path:
    return results_dir() / (f"{name}.json" if check_budget(budget) == "full"
                            else f"{name}-{budget}.json")


def study_of(name: str) -> Study:
    from workbench.explore.spec import reportable

    return reportable(name)


def default_seeds(name: str) -> int:
    """The minimum seed count of the study's seed kind (1 for an exact study)."""
    return SEED_KINDS[study_of(name).seed_kind]


def command(name: str, seeds: int | None = None, budget: str = "full") -> str:
    """The command line that makes study ``name``'s results."""
    n = default_seeds(name) if seeds is None else seeds
    return f"workbench reproduce {name} --seeds {n} --budget {budget}"


def session_spec(name: str, seeds: int | None = None, budget: str = "full"):
    """The reproduction session of study ``name``: its report once per seed 0 … seeds − 1."""
    from workbench.explore.spec import SessionSpec

    study = study_of(name)
    n = default_seeds(name) if seeds is None else seeds
    if not isinstance(n, int) or n < 1:
        raise WorkbenchError(f"--seeds must be a whole number >= 1, got {seeds!r}")
    if study.seed_kind == "exact" and n != 1:
        raise WorkbenchError(f"study {name!r} is deterministic: one run is exact, got --seeds {n} "
                             "(leave --seeds out)")
    fixed = (("budget", check_budget(budget)),) if "budget" in knobs(study.setting) else ()
    return SessionSpec(f"reproduce-{name}-{budget}-{n}seeds", name, vary=(), fixed=fixed,
                       sampler="random", seeds=tuple(range(n)), budget=1, report=True)


def _retry_failed(study) -> int:
    """Queue once more every seed whose trials all failed (a rerun of the command after a fix;
    the failed trials stay in the store as they were)."""
    from workbench.explore import store

    trials = store.guarded(study.get_trials, deepcopy=False)
    alive = {t.user_attrs.get("seed") for t in trials if t.state != TrialState.FAIL}
    failed = {t.user_attrs.get("seed") for t in trials if t.state == TrialState.FAIL} - alive
    for seed in sorted(failed):
        store.guarded(study.enqueue_trial, {}, user_attrs={"seed": seed})
    return len(failed)


def reproduce(name: str, seeds: int | None = None, budget: str = "full",
              workers: int | None = None, scheduler: str | None = None,
              storage: str | None = None, progress: bool = True) -> Path:
    """Run (or resume) the reproduction of study ``name`` and write its results file; returns
    its path. Failed seeds of an earlier run are run again; a seed that fails now is a
    WorkbenchError naming its error (the results file is written only when every seed ran)."""
    from workbench import explore
    from workbench.explore import store

    spec = session_spec(name, seeds, budget)
    storage = storage or default_storage()
    st = store.open_storage(storage)
    if spec.name in store.session_names(st):
        _, study = store.load(spec.name, st)
        _retry_failed(study)
    else:
        study = store.create(spec, st)
    explore.run(spec.name, storage, scheduler, workers, progress=progress)
    trials = store.guarded(study.get_trials, deepcopy=False)
    done = {t.user_attrs["seed"]: t for t in trials if t.state == TrialState.COMPLETE}
    missing = [s for s in spec.seeds if s not in done]
    if missing:
        errors = {t.user_attrs.get("seed"): t.user_attrs.get("error") for t in trials
                  if t.state == TrialState.FAIL and t.user_attrs.get("seed") in missing}
        raise WorkbenchError(f"{name}: seed(s) {missing} failed: {errors}; fix the cause and run "
                             f"`{command(name, len(spec.seeds), budget)}` again (it resumes)")
    return write_results(name, budget, spec, [done[s] for s in spec.seeds])


def write_results(name: str, budget: str, spec, trials: list) -> Path:
    """The results file of a finished reproduction (one complete trial per seed)."""
    rows = []
    for t in trials:
        seed = t.user_attrs["seed"]
        rows += [{"seed": seed, **r} for r in json.loads(t.user_attrs["rows"])]
    prov = trials[0].user_attrs.get("provenance", {})
    results = {
        "study": name, "budget": budget, "seed_kind": study_of(name).seed_kind,
        "seeds": list(spec.seeds), "command": command(name, len(spec.seeds), budget),
        "session": spec.name,
        "provenance": {k: prov.get(k) for k in ("git_commit", "git_dirty", "versions", "host")},
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "wall_s": {str(t.user_attrs["seed"]): t.user_attrs.get("wall_s") for t in trials},
        "rows": rows}
    path = results_path(name, budget)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=1, ensure_ascii=False, allow_nan=False) + "\n")
    tmp.replace(path)  # atomic: a reader sees the old file or the new one
    return path


@dataclass(frozen=True)
class Results:
    """A results file: its fields (``meta``) and every seed's rows (``table``, with ``seed``)."""

    meta: dict[str, Any]
    table: pd.DataFrame

    @property
    def seed_kind(self) -> str:
        return self.meta["seed_kind"]

    @property
    def commit(self) -> str:
        """The commit the results were made at: 7 hex digits, "+ changes" when the code
        differed from it."""
        prov = self.meta.get("provenance", {})
        return ((prov.get("git_commit") or "unknown")[:7]
                + (" + changes" if prov.get("git_dirty") else ""))


def load_results(name: str, budget: str = "full") -> Results:
    """The stored results of study ``name``; when there are none, a WorkbenchError saying how
    to make them."""
    study_of(name)
    path = results_path(name, budget)
    if not path.exists():
        raise WorkbenchError(f"no stored results for {name!r} ({path}); make them with "
                             f"`{command(name, budget=budget)}`, or run the shipped models once "
                             f"with `workbench report {name} --live`")
    try:
        meta = json.loads(path.read_text())
        table = pd.DataFrame(meta.pop("rows"))
    except (OSError, json.JSONDecodeError, KeyError) as exc:
        raise WorkbenchError(f"cannot read results {path}: {exc}") from None
    return Results(meta, table)


def _flat(table: pd.DataFrame) -> pd.DataFrame:
    """Dict cells (energy per device) as one column each, ``column.key``."""
    out = table.copy()
    for column in table.columns:
        if table[column].map(lambda v: isinstance(v, dict)).all():
            expanded = pd.DataFrame(table[column].tolist(), index=table.index)
            out = out.drop(columns=column).join(expanded.add_prefix(f"{column}."))
    return out


def _same(values: list) -> bool:
    return all(json.dumps(v, sort_keys=True, default=str) ==
               json.dumps(values[0], sort_keys=True, default=str) for v in values)


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """Every seed's rows (``seed`` column, the same rows in the same order per seed) as one row
    each: a cell equal in every seed as it is, a number that varies as its mean with
    ``COLUMN_low``/``COLUMN_high`` (95 % t-interval) beside it; other varying cells (per-seed
    settings text, lists) as ``"varies"``."""
    per_seed = [_flat(r.drop(columns="seed")).reset_index(drop=True)
                for _, r in table.groupby("seed", sort=True)]
    lengths = {len(r) for r in per_seed}
    if len(lengths) != 1:
        raise WorkbenchError(f"seeds disagree on the number of rows: {sorted(lengths)}")
    columns = list(dict.fromkeys(c for r in per_seed for c in r.columns))
    out = []
    for i in range(lengths.pop()):
        row: dict[str, Any] = {}
        for c in columns:
            cells = [r.at[i, c] if c in r else None for r in per_seed]
            numbers = pd.to_numeric(pd.Series(cells, dtype=object), errors="coerce")
            if _same(cells):
                row[c] = cells[0]
            elif numbers.notna().all() and np.isfinite(numbers.to_numpy(float)).all():
                interval = t_interval(numbers.to_numpy(float))
                row.update({c: interval.mean, f"{c}_low": interval.low,
                            f"{c}_high": interval.high})
            else:
                row[c] = "varies"
        out.append(row)
    return pd.DataFrame(out)


def shown(row: pd.Series, column: str, digits: int = 4) -> str:
    """A summary cell as text: ``mean ± half-width`` when it varies over seeds."""
    value = row.get(column)
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return ""
    if not isinstance(value, int | float | np.number) or isinstance(value, bool):
        return str(value)
    text = f"{value:.{digits}g}"
    low = row.get(f"{column}_low")
    if low is not None and isinstance(low, float) and np.isfinite(low):
        text += f" ± {(row[f'{column}_high'] - low) / 2:.2g}"
    return text

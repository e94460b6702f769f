"""Where sessions live: Optuna's RDB storage (one embedded SQLite file under the cache folder by
default, any database URL Optuna accepts to share a store). A session is one Optuna study whose
user attributes hold its spec; each trial's user attributes hold its seed, full setting, rows,
metrics, wall time and provenance. Reads turn a session into a DataFrame and its Pareto front.

Every write is one SQL transaction, so a killed process leaves the store either before or after
a write, never half-way; a locked or unreadable store is a WorkbenchError, never repaired here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
from optuna.trial import FrozenTrial, TrialState

from workbench.cache import cache_dir
from workbench.errors import WorkbenchError
from workbench.explore.spec import SessionSpec

SPEC_ATTR = "workbench_session"
DRIVER_ATTR = "workbench_driver"
BUSY_TIMEOUT_S = 5.0  # how long a read or write waits for another writer's lock
optuna.logging.set_verbosity(optuna.logging.WARNING)


def default_storage() -> str:
    """The SQLite file under the cache folder."""
    folder = cache_dir() / "explore"
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'sessions.db'}"


def open_storage(url: str | None = None) -> optuna.storages.BaseStorage:
    """Optuna's RDB storage at ``url`` (the default SQLite file when None); a locked, corrupt
    or unreachable store is a WorkbenchError naming it."""
    import sqlalchemy.exc

    url = url or default_storage()
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        if path.exists() and path.stat().st_size and path.read_bytes()[:16] != b"SQLite format 3\0":
            raise WorkbenchError(f"session store {path} is not an SQLite database (corrupt or "
                                 "another file); it was left untouched: move it away or pass "
                                 "--storage URL")
    # a short busy timeout: a store locked by another writer fails fast and clearly
    kwargs = {"connect_args": {"timeout": BUSY_TIMEOUT_S}} if url.startswith("sqlite") else {}
    try:
        return optuna.storages.RDBStorage(url, engine_kwargs=kwargs)
    except (sqlalchemy.exc.SQLAlchemyError, ValueError, ImportError) as exc:
        raise WorkbenchError(f"cannot open session store {url}: {_reason(exc)}") from None


def _reason(exc: Exception) -> str:
    text = str(getattr(exc, "orig", None) or exc).splitlines()[0]
    if "locked" in text:
        return f"{text} (another process holds it; try again when it finishes)"
    return text


def guarded(fn, *args, **kwargs):
    """Call a storage operation, turning database errors into WorkbenchErrors."""
    import sqlalchemy.exc

    try:
        return fn(*args, **kwargs)
    except sqlalchemy.exc.SQLAlchemyError as exc:
        raise WorkbenchError(f"session store error: {_reason(exc)}") from None


def session_names(storage: optuna.storages.BaseStorage) -> list[str]:
    return [s.study_name for s in guarded(storage.get_all_studies)
            if SPEC_ATTR in s.user_attrs]


def create(spec: SessionSpec, storage: optuna.storages.BaseStorage) -> optuna.Study:
    """A new session; its name must be new. A study left without its spec (a creation killed
    between its two writes) is replaced."""
    for s in guarded(storage.get_all_studies):
        if s.study_name == spec.name:
            if SPEC_ATTR in s.user_attrs:
                raise WorkbenchError(f"session {spec.name!r} exists already; pick another name, "
                                     f"or `workbench explore resume {spec.name}`")
            guarded(storage.delete_study, s._study_id)
    study = guarded(optuna.create_study, study_name=spec.name, storage=storage,
                    directions=[o.direction for o in spec.objectives])
    guarded(study.set_user_attr, SPEC_ATTR, spec.to_json())
    return study


def load(name: str, storage: optuna.storages.BaseStorage) -> tuple[SessionSpec, optuna.Study]:
    """The spec and Optuna study of session ``name``."""
    names = session_names(storage)
    if name not in names:
        raise WorkbenchError(f"no session {name!r}; sessions: {', '.join(names) or 'none yet'}")
    study = guarded(optuna.load_study, study_name=name, storage=storage)
    return SessionSpec.from_json(study.user_attrs[SPEC_ATTR]), study


@dataclass(frozen=True)
class Progress:
    """Trial counts of a session."""

    complete: int
    failed: int
    running: int
    waiting: int
    planned: int

    @property
    def done(self) -> bool:
        return self.complete + self.failed >= self.planned and not self.running + self.waiting


def counted(trial: FrozenTrial) -> bool:
    """Whether a trial uses the budget: all but interrupted ones that were queued again."""
    return not trial.user_attrs.get("retried", False)


def progress(spec: SessionSpec, study: optuna.Study) -> Progress:
    trials = [t for t in guarded(study.get_trials, deepcopy=False) if counted(t)]
    count = {s: sum(t.state == s for t in trials) for s in TrialState}
    return Progress(count[TrialState.COMPLETE], count[TrialState.FAIL], count[TrialState.RUNNING],
                    count[TrialState.WAITING], spec.trials_planned)


def frame(name: str, storage: optuna.storages.BaseStorage | str | None = None,
          failed: bool = False) -> pd.DataFrame:
    """Session ``name`` as one row per finished trial: ``trial``, ``seed``, ``state``, the
    setting's fields (``setting.NAME``), objectives, every flattened metric, ``wall_s``,
    provenance, and ``error`` (failed trials only when ``failed``)."""
    storage = open_storage(storage) if storage is None or isinstance(storage, str) else storage
    spec, study = load(name, storage)
    records = []
    for t in guarded(study.get_trials, deepcopy=False):
        if t.state == TrialState.COMPLETE or (failed and t.state == TrialState.FAIL):
            a = t.user_attrs
            prov = a.get("provenance", {})
            records.append({
                "trial": t.number, "seed": a.get("seed"), "state": t.state.name,
                **{f"setting.{k}": v for k, v in a.get("setting", {}).items()},
                **a.get("objectives", {}), **a.get("metrics", {}),
                "wall_s": a.get("wall_s"), "error": a.get("error"),
                "git_commit": prov.get("git_commit"),
                "versions": json.dumps(prov.get("versions", {}), sort_keys=True)})
    table = pd.DataFrame(records)
    table.attrs.update(session=spec.name, study=spec.study,
                       objectives={o.name: o.direction for o in spec.objectives},
                       varied=[f"setting.{d.name}" for d in spec.vary])
    return table


def rows_of(name: str, trial: int, storage: optuna.storages.BaseStorage | str | None = None
            ) -> pd.DataFrame:
    """The study's own rows of one trial, as the study reported them."""
    storage = open_storage(storage) if storage is None or isinstance(storage, str) else storage
    _, study = load(name, storage)
    t = guarded(study._storage.get_trial, study._storage.get_trial_id_from_study_id_trial_number(
        study._study_id, trial))
    return pd.DataFrame(json.loads(t.user_attrs.get("rows") or "[]"))


def pareto_mask(table: pd.DataFrame, objectives: dict[str, str]) -> np.ndarray:
    """True for the rows no other row dominates (at least as good in every objective, better in
    one); ``objectives`` maps a column to ``maximize`` or ``minimize``."""
    if table.empty:
        return np.zeros(0, bool)
    signs = np.array([-1.0 if d == "maximize" else 1.0 for d in objectives.values()])
    costs = table[list(objectives)].to_numpy(float) * signs  # smaller is better in every column
    if not np.isfinite(costs).all():
        raise WorkbenchError("objectives must be finite to compare trials")
    no_worse = (costs[:, None, :] <= costs[None, :, :]).all(-1)
    better = (costs[:, None, :] < costs[None, :, :]).any(-1)
    dominated = (no_worse & better).any(0)  # [i, j]: i dominates j
    return ~dominated


def pareto(table: pd.DataFrame, objectives: dict[str, str] | None = None) -> pd.DataFrame:
    """The Pareto-optimal rows of a session frame (its own objectives by default)."""
    objectives = objectives or table.attrs.get("objectives", {})
    if table.empty:
        return table
    return table[pareto_mask(table, objectives)]


def export(name: str, path: Path, storage: optuna.storages.BaseStorage | str | None = None) -> Path:
    """Write session ``name`` to ``path`` (``.csv`` or ``.parquet``, failed trials included)."""
    path = Path(path)
    if path.suffix not in (".csv", ".parquet"):
        raise WorkbenchError(f"export writes .csv or .parquet, got {path.name!r}")
    table = frame(name, storage, failed=True)
    table.attrs = {}  # parquet stores attrs as JSON metadata; they are the spec, kept elsewhere
    if path.suffix == ".csv":
        table.to_csv(path, index=False)
    else:
        table.to_parquet(path, index=False)
    return path

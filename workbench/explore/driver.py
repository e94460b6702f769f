"""Running a session: the driver asks Optuna's sampler for settings, runs each (× every seed) as
a Dask task, and tells Optuna the objectives. Dask distributed executes (a ``LocalCluster`` of
single-threaded worker processes by default, or an existing cluster by scheduler address); only
the driver writes the store.

Nothing is lost: a trial left RUNNING by a killed driver is marked FAIL ("interrupted") and
queued again once with the same parameters and seed; a trial whose worker died is re-run by
Dask and, if Dask gives up, recorded as failed and queued again once.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import os
import socket
import time
import warnings
from collections.abc import Iterator
from typing import Any

import optuna
from optuna.trial import TrialState
from tqdm.auto import tqdm

from workbench.errors import WorkbenchError
from workbench.explore import store
from workbench.explore.spec import SessionSpec
from workbench.explore.trial import run_trial

INLINE = "inline"  # run trials one by one in this process (tests, notebooks, debugging)
DRIVER_STALE_S = 60.0  # a driver on another host that has not written for this long is gone
CONNECT_TIMEOUT_S = 10  # seconds to reach a Dask scheduler


def default_workers() -> int:
    """One single-threaded worker per core."""
    return max(1, os.cpu_count() or 1)


@contextlib.contextmanager
def executor(scheduler: str | None = None, workers: int | None = None
             ) -> Iterator[tuple[cf.Executor, int]]:
    """A ``concurrent.futures`` executor on Dask and its worker count: a new LocalCluster of
    ``workers`` single-threaded processes on loopback (no web dashboard), the cluster at
    ``scheduler`` (``tcp://HOST:PORT``), or :data:`INLINE`."""
    if scheduler == INLINE:
        with cf.ThreadPoolExecutor(max_workers=1) as pool:
            yield pool, 1
        return
    from distributed import Client, LocalCluster

    if scheduler:
        try:
            client = Client(scheduler, timeout=CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError, ValueError) as exc:
            raise WorkbenchError(f"cannot reach the Dask scheduler at {scheduler!r} ({exc}); "
                                 "start one with `dask scheduler` or leave --scheduler out for "
                                 "a local cluster") from None
        with client:
            yield client.get_executor(pure=False), max(1, len(client.nthreads()))
        return
    n = workers or default_workers()
    if n < 1:
        raise WorkbenchError(f"workers must be a whole number >= 1, got {workers!r}")
    with warnings.catch_warnings():
        # without a dashboard the scheduler still serves /health on loopback, at 8787 or, when
        # that is taken (another cluster), any free port: its warning says so, harmlessly
        warnings.filterwarnings("ignore", message="Port 8787 is already in use")
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                               host="127.0.0.1", dashboard_address=None)
    with cluster, Client(cluster) as client:
        yield client.get_executor(pure=False), n


def recover(spec: SessionSpec, study: optuna.Study) -> int:
    """Mark trials a dead driver left RUNNING as failed ("interrupted") and queue each once
    again (same params and seed). Returns how many were queued."""
    storage = study._storage
    queued = 0
    for t in store.guarded(study.get_trials, deepcopy=False, states=(TrialState.RUNNING,)):
        params = t.params
        if spec.vary and not params and "grid_id" in t.system_attrs:
            # killed inside ``ask`` after the grid sampler picked its point, before the params
            # were set: the point, now visited by a failed trial, is queued again
            params = spec.make_sampler().point(t.system_attrs["grid_id"])
        if not t.user_attrs.get("retried"):
            if spec.vary and not params:
                # killed before any setting was drawn: nothing ran and no point was taken, so
                # the sampler draws again; not counted, not queued (a grid sampler refuses
                # queued trials without params)
                store.guarded(storage.set_trial_user_attr, t._trial_id, "retried", True)
            elif t.user_attrs.get("retry_of") is None:  # an interrupted retry stays failed
                # the attrs first: a kill between these writes leaves a RUNNING trial marked
                # retried, which the next recovery only fails (no second copy)
                store.guarded(storage.set_trial_user_attr, t._trial_id, "retried", True)
                store.guarded(study.enqueue_trial, params, user_attrs={
                    "seed": t.user_attrs.get("seed", spec.seeds[0]), "retry_of": t.number})
                queued += 1
            store.guarded(storage.set_trial_user_attr, t._trial_id, "error",
                          "interrupted: its driver or worker stopped")
        store.guarded(storage.set_trial_state_values, t._trial_id, TrialState.FAIL)
    return queued


def _claim(study: optuna.Study) -> None:
    """Record this process as the session's driver; refuse if a live driver holds it."""
    holder = study.user_attrs.get(store.DRIVER_ATTR)
    me = {"host": socket.gethostname(), "pid": os.getpid(), "beat": time.time()}
    if holder and holder["pid"] != me["pid"]:
        if holder["host"] == me["host"]:
            try:
                os.kill(holder["pid"], 0)
                alive = True
            except ProcessLookupError:
                alive = False
            except PermissionError:
                alive = True
        else:
            alive = time.time() - holder["beat"] < DRIVER_STALE_S
        if alive:
            raise WorkbenchError(f"session {study.study_name!r} is being run by process "
                                 f"{holder['pid']} on {holder['host']}; wait for it or stop it")
    store.guarded(study.set_user_attr, store.DRIVER_ATTR, me)


def _ask(spec: SessionSpec, study: optuna.Study) -> tuple[optuna.Trial, int]:
    """The next trial and its seed: a queued one (another seed of a setting, or a retry) first,
    else a new setting from the sampler whose other seeds are queued behind it."""
    trial = store.guarded(study.ask, spec.distributions())
    seed = trial.user_attrs.get("seed")
    if seed is None:
        seed = spec.seeds[0]
        store.guarded(trial.set_user_attr, "seed", seed)
        for other in spec.seeds[1:]:
            store.guarded(study.enqueue_trial, trial.params, user_attrs={"seed": other})
    return trial, seed


def _record(study: optuna.Study, trial: optuna.Trial, out: dict[str, Any],
            objective_names: list[str]) -> bool:
    """Write a finished trial; True when it completed."""
    for key in ("setting", "rows", "metrics", "objectives", "wall_s", "provenance", "error"):
        if out.get(key) is not None:
            store.guarded(trial.set_user_attr, key, out[key])
    if out.get("error"):
        store.guarded(study.tell, trial, state=TrialState.FAIL)
        return False
    store.guarded(study.tell, trial, [out["objectives"][k] for k in objective_names])
    return True


def run(name: str, storage: str | None = None, scheduler: str | None = None,
        workers: int | None = None, progress: bool = True, fresh: bool = False) -> store.Progress:
    """Run (or resume) session ``name`` until its budget is spent; returns the final counts.
    ``fresh``: refuse a session that has trials already (``explore run`` vs ``resume``)."""
    st = store.open_storage(storage)
    spec, study = store.load(name, st)
    if fresh and store.guarded(study.get_trials, deepcopy=False):
        raise WorkbenchError(f"session {name!r} has run already; continue it with "
                             f"`workbench explore resume {name}`")
    _claim(study)
    try:
        return _drive(spec, study, scheduler, workers, progress)
    finally:  # the session is free for the next driver, whatever happened here
        with contextlib.suppress(WorkbenchError):
            store.guarded(study.set_user_attr, store.DRIVER_ATTR, None)


def _drive(spec: SessionSpec, study: optuna.Study, scheduler: str | None, workers: int | None,
           progress: bool) -> store.Progress:
    """The loop of :func:`run`: keep every worker busy until the budget is spent."""
    recover(spec, study)
    counts = store.progress(spec, study)
    study.sampler = spec.make_sampler(offset=len(study.get_trials(deepcopy=False)))
    objective_names = [o.name for o in spec.objectives]
    # a worker process runs one trial on one core; inline trials keep this process's threads
    threads = None if scheduler == INLINE else 1
    bar = tqdm(total=counts.planned, initial=counts.complete + counts.failed, disable=not progress,
               desc=f"session {spec.name}", unit="trial")
    try:
        with executor(scheduler, workers) as (pool, slots):
            running: dict[cf.Future, optuna.Trial] = {}
            while True:
                counts = store.progress(spec, study)
                room = counts.complete + counts.failed + len(running) < counts.planned
                while len(running) < slots and (counts.waiting or room):
                    trial, seed = _ask(spec, study)
                    values = {**dict(spec.fixed), **trial.params}
                    running[pool.submit(run_trial, spec.study, values, seed, threads,
                                        spec.report)] = trial
                    counts = store.progress(spec, study)
                    room = counts.complete + counts.failed + len(running) < counts.planned
                if not running:
                    break
                done, _ = cf.wait(running, timeout=5, return_when=cf.FIRST_COMPLETED)
                store.guarded(study.set_user_attr, store.DRIVER_ATTR,
                              {"host": socket.gethostname(), "pid": os.getpid(),
                               "beat": time.time()})
                for future in done:
                    trial = running.pop(future)
                    try:
                        out = future.result()
                    except Exception as exc:  # noqa: BLE001 — e.g. Dask's KilledWorker
                        out = {"error": f"{type(exc).__name__}: {exc}"}
                        if trial.user_attrs.get("retry_of") is None:
                            store.guarded(trial.set_user_attr, "retried", True)
                            store.guarded(study.enqueue_trial, trial.params, user_attrs={
                                "seed": trial.user_attrs["seed"], "retry_of": trial.number})
                    _record(study, trial, out, objective_names)
                    bar.update(1)
    finally:
        bar.close()
    return store.progress(spec, study)

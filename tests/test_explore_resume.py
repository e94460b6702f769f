"""A real sweep on a Dask LocalCluster, killed with SIGKILL (a worker and the driver) and resumed
with ``workbench explore resume``: finished trials kept, interrupted ones re-run once, no
duplicates."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
from optuna.trial import TrialState

from workbench import explore
from workbench.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _states(store: str) -> dict[TrialState, int]:
    _, study = explore.load("killed", explore.open_storage(store))
    trials = study.get_trials(deepcopy=False)
    return {s: sum(t.state == s for t in trials) for s in TrialState}


def test_a_killed_sweep_resumes_without_losses_or_duplicates(tmp_path, capsys):
    store = f"sqlite:///{tmp_path / 'sessions.db'}"
    values = "4,8,12,16,20,24"
    assert main(["explore", "new", "killed", "--study", "energy", "--vary", f"T={values}",
                 "--sampler", "grid", "--storage", store]) == 0
    env = {**os.environ, "WORKBENCH_THREADS": "1", "TQDM_DISABLE": "1"}
    sweep = subprocess.Popen(
        [sys.executable, "-m", "workbench.cli", "explore", "run", "killed", "--storage", store,
         "--workers", "1"], cwd=ROOT, env=env, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 240
        while True:  # one trial finished and the next one running
            states = _states(store)
            if states[TrialState.COMPLETE] >= 1 and states[TrialState.RUNNING] >= 1:
                break
            assert sweep.poll() is None, sweep.stderr.read().decode()
            assert time.monotonic() < deadline, "the sweep never got going"
            time.sleep(0.2)
        workers = psutil.Process(sweep.pid).children(recursive=True)
        assert workers, "a LocalCluster worker process"
        os.kill(workers[-1].pid, signal.SIGKILL)
        os.kill(sweep.pid, signal.SIGKILL)
        sweep.wait(timeout=30)
    finally:  # the worker processes this test started, by their process group
        try:
            os.killpg(sweep.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    before = _states(store)
    assert before[TrialState.RUNNING] >= 1 and before[TrialState.COMPLETE] < 6
    capsys.readouterr()

    assert main(["explore", "resume", "killed", "--storage", store, "--workers", "1",
                 "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "session killed: 6 complete, 0 failed of 6" in out
    assert "Pareto-optimal trials" in out
    _, study = explore.load("killed", explore.open_storage(store))
    trials = study.get_trials()
    interrupted = [t for t in trials if t.state == TrialState.FAIL]
    assert interrupted and all(t.user_attrs["error"].startswith("interrupted")
                               for t in interrupted)
    for t in interrupted:  # each re-run exactly once, with the same setting and seed
        reruns = [r for r in trials if r.user_attrs.get("retry_of") == t.number]
        assert len(reruns) == 1 and reruns[0].params == t.params
        assert reruns[0].user_attrs["seed"] == t.user_attrs["seed"]
    table = explore.frame("killed", store)
    assert sorted(table["setting.T"]) == [4, 8, 12, 16, 20, 24]  # nothing lost, no duplicates
    # energy grows with T: the kept and the re-run trials measured the same thing
    ordered = table.sort_values("setting.T")["loihi_joules"]
    assert ordered.is_monotonic_increasing

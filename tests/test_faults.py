"""Processes killed with SIGKILL: a store write, a retrain and an exploration session. The store
keeps only entries that pass their recorded hash (a half-written one is never loaded, and the
next run rebuilds it); a session's Optuna store stays a valid database and the session resumes
to completion."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import torch
from optuna.trial import TrialState

from workbench import explore
from workbench.cache import config_key, load_or_build, read_entry, shipped_dir, sidecar_path
from workbench.cli import main

ROOT = Path(__file__).resolve().parents[1]
BIG = 25_000_000  # float32 elements: a 100 MB payload takes a while to write and fsync


def start(code: str, cache: Path) -> subprocess.Popen:
    """``code`` in a fresh Python with its own cache folder and one torch thread."""
    env = {**os.environ, "WORKBENCH_CACHE": str(cache), "WORKBENCH_THREADS": "1",
           "TQDM_DISABLE": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(condition, proc: subprocess.Popen, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, f"{what}: the process ended first\n{proc.stderr.read()}"
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(0.01)


def kill(proc: subprocess.Popen) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stdout.close()
    proc.stderr.close()


def entries(cache: Path) -> list[Path]:
    """Every payload file of the store (sidecars and temporary files left out)."""
    return [p for p in cache.rglob("*") if p.is_file() and not p.name.endswith(".meta.json")
            and not p.name.startswith(".")]


def big_build():
    return {"w": torch.full((BIG,), 2.0)}, {}


def test_a_store_write_killed_midway_is_never_loaded_and_is_rebuilt(tmp_path, monkeypatch):
    proc = start(f"""
        import torch
        from workbench.cache import load_or_build
        load_or_build("big", {{"n": {BIG}}}, lambda: ({{"w": torch.full(({BIG},), 2.0)}}, {{}}))
        """, tmp_path)
    models = tmp_path / "models"
    try:
        wait_for(lambda: models.is_dir() and any(models.glob(".*.tmp")), proc,
                 "the payload's temporary file")
    finally:
        kill(proc)
    assert list(models.glob(".*.tmp")), "killed while writing (the temporary file is left)"
    payload = models / f"big-{config_key({'n': BIG})}.pt"
    assert not payload.exists() or read_entry(payload) is None  # nothing half-written is used
    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path))
    built = []

    def build():
        built.append(1)
        return big_build()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value, _ = load_or_build("big", {"n": BIG}, build)
    assert built and bool((value["w"] == 2.0).all()) and read_entry(payload) is not None


def test_a_kill_between_payload_and_sidecar_leaves_an_entry_that_is_rebuilt(tmp_path,
                                                                           monkeypatch):
    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path))
    old = {"w": torch.zeros(3)}
    load_or_build("pair", {"k": 1}, lambda: (old, {}), rebuild=True)
    # a rebuild of the same key that dies after writing the new payload, before its sidecar
    proc = start("""
        import sys, time, torch
        from workbench import cache
        write = cache._write_atomic
        def slow_sidecar(path, data):
            if path.name.endswith(".meta.json"):
                print("payload written", flush=True)
                time.sleep(600)
            write(path, data)
        cache._write_atomic = slow_sidecar
        cache.load_or_build("pair", {"k": 1}, lambda: ({"w": torch.ones(3)}, {}), rebuild=True)
        """, tmp_path)
    try:
        assert proc.stdout.readline().strip() == "payload written", proc.stderr.read()
    finally:
        kill(proc)
    payload = tmp_path / "models" / f"pair-{config_key({'k': 1})}.pt"
    assert sidecar_path(payload).exists() and payload.exists()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert read_entry(payload, remove_invalid=False) is None  # new payload, old sidecar
        value, _ = load_or_build("pair", {"k": 1}, lambda: ({"w": torch.full((3,), 5.0)}, {}))
    assert torch.equal(value["w"], torch.full((3,), 5.0)), "rebuilt, not the mismatched payload"
    assert read_entry(payload) is not None


def test_a_killed_retrain_leaves_every_store_entry_valid(tmp_path, monkeypatch):
    # the cache holds a valid model; `workbench prepare --retrain` of it dies mid-training
    shipped = next((shipped_dir() / "models").glob("digits_ann-*.pt"))
    (tmp_path / "models").mkdir()
    for path in (shipped, sidecar_path(shipped)):
        shutil.copy(path, tmp_path / "models" / path.name)
    before = (tmp_path / "models" / shipped.name).read_bytes()
    proc = start("""
        from workbench.cache import rebuilding
        from workbench.zoo import load_model
        print("training", flush=True)
        with rebuilding():
            load_model("digits_ann", progress=False)
        """, tmp_path)
    try:
        assert proc.stdout.readline().strip() == "training", proc.stderr.read()
        time.sleep(2.0)  # inside the training loop (it takes tens of seconds here)
        assert proc.poll() is None, "the retrain finished before it was killed"
    finally:
        kill(proc)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no entry may fail its hash
        assert all(read_entry(p) is not None for p in entries(tmp_path))
    assert (tmp_path / "models" / shipped.name).read_bytes() == before
    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path))
    from workbench.zoo import load_model

    model, meta = load_model("digits_ann", progress=False)  # the next run goes on from it
    assert meta["sha256"] == read_entry(tmp_path / "models" / shipped.name)[1]["sha256"]


def test_an_inline_session_killed_mid_trial_keeps_a_valid_store_and_resumes(tmp_path, capsys):
    db = tmp_path / "sessions.db"
    store = f"sqlite:///{db}"
    assert main(["explore", "new", "cut", "--study", "energy", "--vary", "T=2,4,6",
                 "--sampler", "grid", "--storage", store]) == 0
    proc = subprocess.Popen(
        [sys.executable, "-m", "workbench.cli", "explore", "run", "cut", "--storage", store,
         "--scheduler", "inline", "--quiet"], cwd=ROOT, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
        env={**os.environ, "WORKBENCH_THREADS": "1", "PYTHONPATH": str(ROOT)})

    def states() -> dict[TrialState, int]:
        _, study = explore.load("cut", explore.open_storage(store))
        trials = study.get_trials(deepcopy=False)
        return {s: sum(t.state == s for t in trials) for s in TrialState}

    try:
        wait_for(lambda: (s := states())[TrialState.COMPLETE] >= 1
                 and s[TrialState.RUNNING] >= 1, proc, "one trial done, the next running",
                 timeout=240)
    finally:
        kill(proc)
    with sqlite3.connect(db) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert states()[TrialState.RUNNING] == 1
    capsys.readouterr()
    assert main(["explore", "resume", "cut", "--storage", store, "--scheduler", "inline",
                 "--quiet"]) == 0
    assert "session cut: 3 complete, 0 failed of 3" in capsys.readouterr().out
    table = explore.frame("cut", store)
    assert sorted(table["setting.T"]) == [2, 4, 6]  # nothing lost, nothing twice

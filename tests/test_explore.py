"""Exploration sessions: specs checked against the knobs, trials run and stored with everything
they report, Pareto fronts, exports, resume after a kill, and clear errors for bad input."""

from __future__ import annotations

import json
import math
import re
import sqlite3
from dataclasses import dataclass

import pandas as pd
import pytest
from optuna.trial import TrialState

from workbench import explore
from workbench.cli import main
from workbench.errors import WorkbenchError
from workbench.explore import driver
from workbench.explore.spec import Dimension, SessionSpec
from workbench.methods import registry
from workbench.study import Objective, Study, check_setting, knob


@dataclass(frozen=True)
class ToySetting:
    rate: float = knob(0.5, "a rate", low=0.0, high=1.0)
    steps: int = knob(4, "timesteps", low=1, high=64, integer=True)
    mode: str = knob("a", "a mode", choices=("a", "b"))

    def __post_init__(self) -> None:
        check_setting(self)


def _toy_rows(setting: ToySetting) -> pd.DataFrame:
    import torch

    noise = float(torch.rand(()))  # seeded by the trial
    return pd.DataFrame([{"T": t, "accuracy": setting.rate * t / setting.steps, "noise": noise,
                          "energy": {"loihi": setting.steps * t, "cpu": 2.0 * t}}
                         for t in (1, 2)])


def _toy_measure(table: pd.DataFrame) -> dict[str, float]:
    acc = float(table["accuracy"].iloc[-1])
    return {"accuracy": math.nan if acc > 1.5 else acc, "latency": float(table["T"].iloc[-1]),
            "energy": float(table["energy"].iloc[-1]["loihi"])}


TOY = Study("toy", "a toy", ToySetting, run=lambda s: s, rows=_toy_rows,
            prepare=lambda progress: [], report_settings=lambda: [ToySetting()], row_key=("T",),
            objectives=(Objective("accuracy", "maximize", ""), Objective("latency", "minimize", ""),
                        Objective("energy", "minimize", "")),
            measure=_toy_measure)


@pytest.fixture
def store(tmp_path, monkeypatch):
    """A fresh SQLite store and the toy study in the registry (inline trials only)."""
    monkeypatch.setitem(registry.STUDIES, "toy", TOY)
    return f"sqlite:///{tmp_path / 'sessions.db'}"


def new(store, name="s", sampler="random", budget=4, seeds=(0,), vary=None, fixed=()):
    vary = vary or (Dimension("rate", 0.0, 1.0), Dimension("steps", choices=(1, 2, 4)))
    spec = SessionSpec(name, "toy", vary, fixed, sampler, seeds, budget)
    explore.create(spec, explore.open_storage(store))
    return spec


@pytest.mark.parametrize("sampler", ["grid", "random", "nsga2"])
def test_a_session_runs_every_setting_once_per_seed(store, sampler):
    spec = new(store, sampler=sampler, budget=3, seeds=(0, 7),
               vary=(Dimension("rate", 0.1, 0.3, steps=2), Dimension("mode", choices=("a", "b"))))
    counts = explore.run("s", store, explore.INLINE, progress=False)
    assert (counts.complete, counts.failed, counts.planned) == (6, 0, 6)
    table = explore.frame("s", store)
    assert len(table) == 6 and sorted(table["seed"]) == [0, 0, 0, 7, 7, 7]
    # each sampled setting ran once with each seed; no setting ran twice with one seed
    pairs = table.groupby(["setting.rate", "setting.mode"])["seed"].apply(sorted)
    assert len(pairs) == 3 and all(s == [0, 7] for s in pairs)
    assert (table["setting.steps"] == 4).all()  # the default of an unvaried field
    if sampler == "grid":
        assert set(table["setting.rate"]) <= {0.1, 0.3}
    # the seed reached torch: two seeds, two different draws for one setting
    assert table.groupby("seed")["noise[T=1]"].first().nunique() == 2
    assert spec.trials_planned == 6


def test_a_trial_keeps_the_setting_rows_metrics_and_provenance(store):
    new(store, budget=2)
    explore.run("s", store, explore.INLINE, progress=False)
    table = explore.frame("s", store)
    row = table.iloc[0]
    assert {"setting.rate", "setting.steps", "setting.mode", "accuracy", "latency", "energy",
            "accuracy[T=1]", "accuracy[T=2]", "energy.loihi[T=2]", "energy.cpu[T=1]", "wall_s",
            "git_commit", "versions"} <= set(table.columns)
    assert json.loads(row["versions"])["optuna"] and json.loads(row["versions"])["torch"]
    assert row["accuracy"] == row["accuracy[T=2]"]
    rows = explore.rows_of("s", int(row["trial"]), store)
    assert list(rows["T"]) == [1, 2] and rows["energy"].iloc[0] == {"loihi": row["setting.steps"],
                                                                     "cpu": 2.0}


def test_a_trial_with_metrics_that_are_not_finite_is_failed_with_its_reason(store):
    # rate × T / steps > 1.5 at rate 1, steps 1: the toy's accuracy objective turns NaN
    new(store, sampler="grid", budget=2, vary=(Dimension("steps", choices=(1, 4)),),
        fixed=(("rate", 1.0),))
    counts = explore.run("s", store, explore.INLINE, progress=False)
    assert (counts.complete, counts.failed) == (1, 1)
    everything = explore.frame("s", store, failed=True)
    failed = everything[everything["state"] == "FAIL"].iloc[0]
    assert failed["setting.steps"] == 1 and failed["error"].startswith("metrics not finite: accuracy=nan")
    ok = explore.frame("s", store)
    assert len(ok) == 1 and ok[["accuracy", "latency", "energy"]].notna().all(axis=None)


def test_the_pareto_front_holds_the_undominated_trials():
    table = pd.DataFrame({"acc": [0.9, 0.8, 0.95, 0.7], "steps": [4, 2, 8, 3]})
    mask = explore.pareto_mask(table, {"acc": "maximize", "steps": "minimize"})
    assert mask.tolist() == [True, True, True, False]  # (0.7, 3) is worse than (0.8, 2)


def one_trial_done(store):
    """A 3-point grid session whose driver finished one trial: (spec, storage, study, trial)."""
    spec = new(store, sampler="grid", budget=3, vary=(Dimension("steps", choices=(1, 2, 4)),))
    storage = explore.open_storage(store)
    _, study = explore.load("s", storage)
    study.sampler = spec.make_sampler()
    first, seed = driver._ask(spec, study)
    driver._record(study, first, driver.run_trial("toy", first.params, seed), ["accuracy",
                                                                               "latency", "energy"])
    return spec, storage, study, first


def test_resume_reruns_an_interrupted_trial_once_and_keeps_finished_ones(store):
    spec, _, study, first = one_trial_done(store)
    killed, _ = driver._ask(spec, study)  # the driver died during the next trial
    counts = explore.run("s", store, explore.INLINE, progress=False)
    assert (counts.complete, counts.failed, counts.planned) == (3, 0, 3)
    trials = study.get_trials()
    assert trials[killed.number].state == TrialState.FAIL
    assert trials[killed.number].user_attrs["error"].startswith("interrupted")
    retry = [t for t in trials if t.user_attrs.get("retry_of") == killed.number]
    assert len(retry) == 1 and retry[0].params == killed.params
    assert retry[0].state == TrialState.COMPLETE
    done = explore.frame("s", store)
    assert sorted(done["setting.steps"]) == [1, 2, 4]  # no duplicates, nothing lost
    assert first.number in set(done["trial"])


@pytest.mark.parametrize("picked", [False, True], ids=["before the grid point", "after it"])
def test_resume_survives_a_driver_killed_inside_ask(store, picked):
    """A kill between creating a trial and setting its params leaves a RUNNING trial without
    params (with or without its grid point): resume neither queues empty params (the grid
    sampler refuses them) nor loses or repeats a point."""
    _, storage, study, first = one_trial_done(store)
    killed = storage.create_new_trial(study._study_id)  # RUNNING, no params yet
    if picked:  # as the grid sampler's before_trial leaves it: a point not yet run
        done_first = storage.get_trial(first._trial_id).system_attrs
        point = next(i for i in range(3) if i != done_first["grid_id"])
        storage.set_trial_system_attr(killed, "search_space", done_first["search_space"])
        storage.set_trial_system_attr(killed, "grid_id", point)
    counts = explore.run("s", store, explore.INLINE, progress=False)
    assert (counts.complete, counts.planned) == (3, 3)
    assert storage.get_trial(killed).state == TrialState.FAIL
    done = explore.frame("s", store)
    assert sorted(done["setting.steps"]) == [1, 2, 4]  # no duplicates, nothing lost


def test_export_writes_csv_and_parquet(store, tmp_path):
    new(store, budget=2)
    explore.run("s", store, explore.INLINE, progress=False)
    for suffix, read in ((".csv", pd.read_csv), (".parquet", pd.read_parquet)):
        path = explore.export("s", tmp_path / f"s{suffix}", store)
        back = read(path)
        assert len(back) == 2 and {"accuracy", "setting.rate", "seed"} <= set(back.columns)


@pytest.mark.parametrize("args, message", [
    (["--vary", "speed"], r"unknown field 'speed' of ToySetting; accepted: rate, steps, mode"),
    (["--vary", "rate=0.5:2"], r"ToySetting.rate must be a number in \[0, 1\], got 2.0"),
    (["--vary", "steps=0,4"], r"ToySetting.steps must be a whole number in \[1, 64\], got 0.0"),
    (["--vary", "mode=a,c"], r"ToySetting.mode must be one of 'a', 'b', got 'c'"),
    (["--vary", "rate", "--set", "mode=z"], r"ToySetting.mode must be one of 'a', 'b', got 'z'"),
    (["--vary", "rate", "--sampler", "tpe"], r"sampler must be one of grid, random, nsga2"),
    (["--vary", "rate", "--budget", "0"], r"budget must be a whole number of settings >= 1"),
    (["--vary", "rate", "--study", "iir"], r"study 'iir' has no objectives to explore yet"),
])
def test_bad_session_input_is_a_clear_error(store, capsys, args, message):
    if "--study" not in args:
        args = [*args, "--study", "toy"]
    assert main(["explore", "new", "s", "--storage", store, *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("workbench: error: ")
    assert re.search(message, err), err
    assert main(["explore", "list", "--storage", store]) == 0
    assert "no sessions yet" in capsys.readouterr().out  # nothing half-created


def test_a_name_that_exists_is_refused_and_the_session_kept(store, capsys):
    new(store, budget=2)
    explore.run("s", store, explore.INLINE, progress=False)
    with pytest.raises(WorkbenchError, match="session 's' exists already"):
        new(store, budget=9)
    spec, _ = explore.load("s", explore.open_storage(store))
    assert spec.budget == 2 and len(explore.frame("s", store)) == 2
    with pytest.raises(WorkbenchError, match="has run already; continue it with"):
        explore.run("s", store, explore.INLINE, progress=False, fresh=True)


def test_a_corrupt_store_is_a_clear_error_and_left_untouched(tmp_path):
    path = tmp_path / "sessions.db"
    path.write_bytes(b"not a database" * 100)
    with pytest.raises(WorkbenchError, match="is not an SQLite database"):
        explore.open_storage(f"sqlite:///{path}")
    assert path.read_bytes() == b"not a database" * 100


def test_a_locked_store_is_a_clear_error(store, monkeypatch):
    new(store, budget=2)
    monkeypatch.setattr(explore.store, "BUSY_TIMEOUT_S", 0.2)
    holder = sqlite3.connect(store.removeprefix("sqlite:///"))
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(WorkbenchError, match="locked"):
            explore.run("s", store, explore.INLINE, progress=False)
    finally:
        holder.rollback()
        holder.close()
    assert explore.run("s", store, explore.INLINE, progress=False).complete == 2


def test_an_unreachable_scheduler_is_a_clear_error_and_loses_nothing(store, monkeypatch):
    from widgets.browser import free_port

    new(store, budget=2)
    monkeypatch.setattr(driver, "CONNECT_TIMEOUT_S", 1)
    address = f"tcp://127.0.0.1:{free_port()}"
    with pytest.raises(WorkbenchError, match=f"cannot reach the Dask scheduler at '{address}'"):
        explore.run("s", store, address, progress=False)
    assert explore.run("s", store, explore.INLINE, progress=False).complete == 2

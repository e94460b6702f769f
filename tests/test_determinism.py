"""Determinism on the CPU: the same seed gives bit-identical trajectories and identical report
rows, for ``simulate`` and for every study of the registry (each run twice from scratch: the
per-process caches of models, bases and searches cleared in between).

On a GPU the trajectories may differ from the CPU's in the last float bits (other summation
orders, cuDNN's algorithms); the stated tolerance is in tests/test_cuda.py: readouts within
1e-3 of their range, spike totals within 0.1 %.
"""

from __future__ import annotations

import copy
import dataclasses
import random
from dataclasses import fields, is_dataclass

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from workbench import zoo
from workbench.datasets import saccade
from workbench.datasets.digits import Split, load_digits_split
from workbench.methods import (
    basics_study,
    early_exit_study,
    hybrid_study,
    iir_deep_study,
    iir_study,
    msat_study,
    rcs_study,
)
from workbench.methods.basics_study import BasicsSetting, EnergySetting
from workbench.methods.early_exit_study import EarlyExitSetting
from workbench.methods.hybrid_study import HybridSetting
from workbench.methods.iir_deep_study import IIRDeepSetting
from workbench.methods.iir_study import IIRSetting
from workbench.methods.msat_study import MSATSetting
from workbench.methods.rcs_study import RCSSetting
from workbench.methods.registry import STUDIES
from workbench.network import SpikingNetwork, TimeSharedDropout, simulate
from workbench.neurons import SpikingCell
from workbench.trajectory import Trajectory

# the setting of each study that draws random numbers where the study does (dropout masks of
# the event base's calibration, MSAT's spike-confidence gates)
TINY = {
    "basics": BasicsSetting(balance="percentile", initial="half"),
    "energy": EnergySetting(T=4, memory=True),
    "early-exit": EarlyExitSetting(base="events"),
    "rcs": RCSSetting(alpha=0.05),
    "msat": MSATSetting(spike_confidence=True, gate_seeds=2),
    "iir": IIRSetting(),
    "iir-deep": IIRDeepSetting(budget="tiny"),  # nothing shipped: trains on the tiny splits
    "hybrid": HybridSetting(),
}
# what each process keeps between runs: cleared, so that the second run recomputes everything
CACHES = (early_exit_study.base_run, rcs_study.alpha_run, msat_study.prepared,
          msat_study.confidences, iir_study.study, iir_deep_study.study, hybrid_study.sequences,
          hybrid_study._test_sequences, hybrid_study._study_run)
SAMPLES = 40  # per split: a tiny budget (the studies' models are the shipped ones)


def cut_saccade_events(monkeypatch, samples: int) -> None:
    """Make the saccade digits keep only their first ``samples`` per split (training too)."""
    every = saccade.digits_saccade_events

    def few(*args, **kwargs):
        events = copy.copy(every(*args, **kwargs))
        object.__setattr__(events, "splits", {k: v[:samples] for k, v in events.splits.items()})
        return events

    monkeypatch.setattr(saccade, "digits_saccade_events", few)


@pytest.fixture
def tiny_data(monkeypatch):
    """Every study on the first SAMPLES samples of each split (the first clip's camera views
    for the pose study, and its hybrid predictor only): the same code paths in seconds."""
    splits = load_digits_split()
    small = {k: Split(v.x[:SAMPLES], v.y[:SAMPLES], v.index[:SAMPLES]) for k, v in splits.items()}
    for module in (basics_study, msat_study, early_exit_study, zoo):
        monkeypatch.setattr(module, "load_digits_split", lambda seed=0: small)
    cut_saccade_events(monkeypatch, SAMPLES)
    full = hybrid_study.sequences

    def first_clip(*args, **kwargs):
        seqs = full(*args, **kwargs)
        views = len(seqs.projection)
        return dataclasses.replace(seqs, frames=seqs.frames[:views],
                                   joints2d=seqs.joints2d[:views], joints3d=seqs.joints3d[:views],
                                   clip=seqs.clip[:views], view=seqs.view[:views])

    monkeypatch.setattr(hybrid_study, "sequences", first_clip)
    monkeypatch.setitem(hybrid_study.PREPARED, hybrid_study.BASE_RATE, ("hybrid",))


def seeded(seed: int) -> None:
    """What an exploration trial seeds (workbench.explore.trial.run_trial)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def same(a, b, where: str = "result") -> None:
    """``a`` and ``b`` equal bit for bit: tensors, DataFrames, dataclasses and containers."""
    if isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b), where
    elif isinstance(a, pd.DataFrame):
        pd.testing.assert_frame_equal(a, b, check_exact=True)
    elif isinstance(a, nn.Module):
        same(a.state_dict(), b.state_dict(), where)
    elif is_dataclass(a):
        for f in fields(a):
            same(getattr(a, f.name), getattr(b, f.name), f"{where}.{f.name}")
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            same(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            same(x, y, f"{where}[{i}]")
    else:
        assert a == b or (a != a and b != b), f"{where}: {a!r} != {b!r}"  # (NaN == NaN here)


def test_every_study_has_a_tiny_setting_here():
    assert set(TINY) == set(STUDIES)


@pytest.mark.parametrize("name", list(TINY))
def test_a_study_gives_the_same_rows_and_trajectories_for_the_same_seed(name, tiny_data):
    study = STUDIES[name]
    runs = []
    for _ in range(2):
        for cached in CACHES:
            cached.cache_clear()
        seeded(7)
        result = study.run(TINY[name])
        runs.append((result, study.rows(result)))
    (first, rows), (second, rows_again) = runs
    assert len(rows) > 0
    same(rows, rows_again, "rows")
    same(first, second, name)  # every trajectory, curve and network inside the result


def event_net() -> SpikingNetwork:
    torch.manual_seed(0)
    return SpikingNetwork([
        ("conv", nn.Conv2d(2, 4, 3, padding=1)), ("spike1", SpikingCell(0.8, leak=0.9)),
        ("drop", TimeSharedDropout(0.3)), ("pool", nn.AvgPool2d(2)), ("flatten", nn.Flatten()),
        ("fc", nn.Linear(16, 5)), ("spike2", SpikingCell(1.0, reset="zero")),
        ("out", nn.Linear(5, 3))], (2, 4, 4))


@pytest.mark.parametrize("mode", ["events", "static", "dropout", "stop-rule"])
def test_simulate_gives_bit_identical_trajectories_for_the_same_seed(mode):
    net = event_net().eval()
    torch.manual_seed(1)
    x = (torch.rand(12, 6, 2, 4, 4) < 0.3).float() if mode != "static" else torch.rand(6, 2, 4, 4)
    kwargs = {"T": 12 if mode == "static" else None, "record": ["spike1", "spike2"]}
    if mode == "dropout":
        net.train()  # a new time-shared mask per run: drawn from the seeded generator
    if mode == "stop-rule":
        kwargs["stop"] = lambda t, readout: readout.max(1).values > 2.0

    def run() -> Trajectory:
        seeded(3)
        return simulate(net, x, **kwargs)

    first, second = run(), run()
    same(first, second, "trajectory")
    if mode == "dropout":  # another seed draws other masks: the seed is what repeats them
        seeded(4)
        assert not torch.equal(simulate(net, x, **kwargs).readout, first.readout)

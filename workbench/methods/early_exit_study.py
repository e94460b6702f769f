"""The early-exit study: base SNNs simulated once, policies calibrated on non-test data, and one
result row per base and policy (accuracy, latency, spikes, energy per device).

Bases:
- ``digits_qcfs``: the QCFS (L = 4) digits CNN converted to IF neurons starting at θ/2 (a
  low-latency conversion, Dynamic Confidence's setting), T_max = 32; policies are calibrated on
  the 1,400 training + validation digits.
- ``events`` / ``events_rcs``: the conv LIF SNN trained directly on saccade-digit events, without
  and with AOI's RCS regulariser, T = 10 bins; calibrated on the training split with dropout on
  (AOI's recipe).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import pandas as pd
import torch
from torch import Tensor

from workbench.convert import convert
from workbench.datasets.digits import load_digits_split
from workbench.device import default_device
from workbench.energy import energy_report
from workbench.errors import WorkbenchError
from workbench.methods.early_exit import (
    DynamicConfidence,
    FixedT,
    Oracle,
    TopKCutoff,
    outcome,
)
from workbench.network import SpikingNetwork, simulate
from workbench.trajectory import Trajectory
from workbench.zoo import load_model

BASES = {
    "digits_qcfs": "QCFS (L=4) digits CNN converted to IF neurons, v₀ = θ/2, T_max = 32",
    "events": "LIF conv SNN trained directly on saccade-digit events (TET), T = 10",
    "events_rcs": "the same event SNN trained with the RCS regulariser (α = 0.05), T = 10",
}
AOI_EPSILON = 0.01
CALIBRATION_SEED = 0


@dataclass
class BaseRun:
    """A base SNN with its calibration and test trajectories (counts only, no rasters)."""

    name: str
    net: SpikingNetwork
    calibration: Trajectory
    calibration_labels: Tensor
    test: Trajectory
    test_labels: Tensor
    test_inputs: Tensor  # static [B, ...] or events [T, B, ...]: re-simulate one sample
    validation: Trajectory | None = None
    validation_labels: Tensor | None = None

    @property
    def T(self) -> int:
        return self.test.T

    def sample_inputs(self, index: int) -> Tensor:
        x = self.test_inputs
        return x[index:index + 1] if x.dim() == len(self.net.input_shape) + 1 else (
            x[:, index:index + 1])


@lru_cache(maxsize=4)
def base_run(name: str) -> BaseRun:
    """Simulate base ``name`` on its calibration and test data (cached per process)."""
    device = default_device()
    if name == "digits_qcfs":
        data = load_digits_split()
        ann, _ = load_model("digits_qcfs_ann", progress=False)
        net = convert(ann, data["train"].x.to(device), initial="half").eval()
        cal_x = torch.cat([data["train"].x, data["val"].x]).to(device)
        cal_y = torch.cat([data["train"].y, data["val"].y])
        T = 32
        return BaseRun(name, net, simulate(net, cal_x, T), cal_y,
                       simulate(net, data["test"].x.to(device), T), data["test"].y,
                       data["test"].x.to(device),
                       simulate(net, data["val"].x.to(device), T), data["val"].y)
    if name in ("events", "events_rcs"):
        from workbench.datasets.saccade import digits_saccade_events

        events = digits_saccade_events()
        net, _ = load_model("event_snn" if name == "events" else "event_snn_rcs", progress=False)
        T = 10
        x_train, y_train = events.frames("train", T)
        x_test, y_test = events.frames("test", T)
        net.train()  # AOI calibrates with dropout on: honest, less over-confident gaps
        with torch.random.fork_rng(devices=[]):  # seeded masks: calibration is reproducible
            torch.manual_seed(CALIBRATION_SEED)
            calibration = simulate(net, x_train.to(device), T)
        net.eval()
        return BaseRun(name, net, calibration, y_train, simulate(net, x_test.to(device), T),
                       y_test, x_test.to(device))
    raise WorkbenchError(f"unknown base SNN {name!r}; available: {', '.join(BASES)}")


def calibrated_policies(run: BaseRun) -> dict[str, object]:
    """Every policy of the study, calibrated on the base's calibration data."""
    policies = {
        f"fixed T={run.T}": FixedT(run.T),
        "Dynamic Confidence": DynamicConfidence().calibrate(run.calibration,
                                                            run.calibration_labels),
        f"AOI Top-K cutoff (ε={AOI_EPSILON})": TopKCutoff(AOI_EPSILON).calibrate(
            run.calibration, run.calibration_labels),
    }
    if run.validation is not None:  # the pitfall: c* from a small, easy validation split
        policies["Dynamic Confidence (c* from 200 val digits)"] = DynamicConfidence().calibrate(
            run.validation, run.validation_labels)
    policies["oracle: first correct"] = Oracle(run.test_labels)
    policies["oracle: optimal cutoff"] = Oracle(run.test_labels, stably=True)
    return policies


def energy_per_device(run: BaseRun, stop_steps: Tensor) -> dict[str, float]:
    """SNN joules per inference on every device when samples stop at ``stop_steps``."""
    summary = energy_report(run.test.stopped_at(stop_steps), run.net).summary()
    snn = summary[summary.model == "snn"]
    return dict(zip(snn.device, snn.joules_per_inference, strict=True))


def study_rows(run: BaseRun) -> list[dict]:
    """One row per policy on one base."""
    rows = []
    for name, policy in calibrated_policies(run).items():
        stops = policy.stop_times(run.test)
        o = outcome(run.test, run.test_labels, stops)
        settings = ""
        if isinstance(policy, DynamicConfidence):
            settings = f"c*={policy.threshold:.3f}, K={policy.scale:g}"
        elif isinstance(policy, TopKCutoff):
            settings = f"ε={policy.epsilon}"
        rows.append({"base": run.name, "policy": name, "settings": settings,
                     "accuracy": round(o.accuracy, 4), "mean_steps": round(o.mean_steps, 2),
                     "p90_steps": round(o.p90_steps, 2), "spikes_per_sample": round(o.spikes_per_sample, 1),
                     "energy": energy_per_device(run, stops)})
    return rows


def early_exit_table(bases: tuple[str, ...] = tuple(BASES)) -> pd.DataFrame:
    """The result table of every policy on every base SNN."""
    return pd.DataFrame([row for base in bases for row in study_rows(base_run(base))])

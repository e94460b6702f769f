"""The early-exit study: base SNNs simulated once, policies calibrated on non-test data, and one
result row per base and policy (accuracy, latency, spikes, energy per device).

Bases:
- ``digits_qcfs``: the QCFS (L = 4) digits CNN converted to IF neurons starting at θ/2 (a
  low-latency conversion, Dynamic Confidence's setting), T_max = 32; policies are calibrated on
  the 1,400 training + validation digits with the CNN's dropout (p = 0.1, before its readout)
  kept on, one mask per sample per run.
- ``events`` / ``events_rcs``: the conv LIF SNN trained directly on saccade-digit events, without
  and with AOI's RCS regulariser, T = 10 bins; calibrated on the training split with its dropout
  (p = 0.3) on.

Calibrating with dropout on is AOI's recipe (Wu et al., arXiv 2301.09522): on the training data
a trained network's gaps are over-confident, and its cutoff then exits too early on test data.
Every base calibrates this way, so the policies of the three bases compare like with like. Test
data (and the 200 validation digits behind the "c* from 200 val digits" row, Dynamic
Confidence's own recipe: a held-out split in deployment mode) are simulated with dropout off.

The ``seed`` knob is the training seed of the base models (seed 0: the shipped ones) and the
seed of the dropout masks drawn while calibrating.
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
    StopPolicy,
    TopKCutoff,
    outcome,
)
from workbench.network import SpikingNetwork, simulate
from workbench.study import BUDGETS, SEED_LIMIT, Objective, Study, knob, setting
from workbench.trajectory import Trajectory
from workbench.zoo import load_model

BASES = {
    "digits_qcfs": "QCFS (L=4) digits CNN converted to IF neurons, v₀ = θ/2, T_max = 32",
    "events": "LIF conv SNN trained directly on saccade-digit events (TET), T = 10",
    "events_rcs": "the same event SNN trained with the RCS regulariser (α = 0.05), T = 10",
}
AOI_EPSILON = 0.01


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


def calibration_trajectory(net: SpikingNetwork, inputs: Tensor, T: int, seed: int) -> Trajectory:
    """``net`` on calibration ``inputs`` with its dropout on (AOI's calibration), the masks drawn
    from ``seed`` (the same trajectory every time); ``net`` is left in eval mode."""
    net.train()
    try:
        with torch.random.fork_rng(devices=[]):  # seeded masks, the caller's stream untouched
            torch.manual_seed(seed)
            return simulate(net, inputs, T)
    finally:
        net.eval()


def event_base(name: str, net: SpikingNetwork, seed: int, T: int = 10) -> BaseRun:
    """An event SNN on the saccade digits: calibration on the training split with dropout on
    (masks from ``seed``), test with dropout off."""
    from workbench.datasets.saccade import digits_saccade_events

    device = default_device()
    events = digits_saccade_events()
    x_train, y_train = events.frames("train", T)
    x_test, y_test = events.frames("test", T)
    calibration = calibration_trajectory(net, x_train.to(device), T, seed)
    return BaseRun(name, net, calibration, y_train, simulate(net, x_test.to(device), T),
                   y_test, x_test.to(device))


@lru_cache(maxsize=4)
def base_run(name: str, seed: int = 0, budget: str = "full") -> BaseRun:
    """Simulate base ``name`` (its model trained with ``seed`` on ``budget``) on its calibration
    and test data (cached per process)."""
    device = default_device()
    if name == "digits_qcfs":
        data = load_digits_split()
        ann, _ = load_model("digits_qcfs_ann", progress=False, seed=seed, budget=budget)
        net = convert(ann, data["train"].x.to(device), initial="half")
        cal_x = torch.cat([data["train"].x, data["val"].x]).to(device)
        cal_y = torch.cat([data["train"].y, data["val"].y])
        T = 32
        return BaseRun(name, net, calibration_trajectory(net, cal_x, T, seed), cal_y,
                       simulate(net, data["test"].x.to(device), T), data["test"].y,
                       data["test"].x.to(device),
                       simulate(net, data["val"].x.to(device), T), data["val"].y)
    if name in ("events", "events_rcs"):
        net, _ = load_model("event_snn" if name == "events" else "event_snn_rcs", progress=False,
                            seed=seed, budget=budget)
        return event_base(name, net, seed)
    raise WorkbenchError(f"unknown base SNN {name!r}; available: {', '.join(BASES)}")


def calibrated_policies(run: BaseRun, epsilon: float = AOI_EPSILON, tolerance: float = 0.0
                        ) -> dict[str, StopPolicy]:
    """Every policy of the study, calibrated on the base's calibration data (AOI with ``ε``,
    Dynamic Confidence giving up at most ``tolerance`` of the calibration accuracy)."""
    confidence = DynamicConfidence(tolerance=tolerance)
    policies = {
        f"fixed T={run.T}": FixedT(run.T),
        "Dynamic Confidence": confidence.calibrate(run.calibration, run.calibration_labels),
        f"AOI Top-K cutoff (ε={epsilon:g})": TopKCutoff(epsilon).calibrate(
            run.calibration, run.calibration_labels),
    }
    if run.validation is not None:  # the pitfall: c* from a small, easy validation split
        policies["Dynamic Confidence (c* from 200 val digits)"] = confidence.calibrate(
            run.validation, run.validation_labels)
    policies["oracle: first correct"] = Oracle(run.test_labels)
    policies["oracle: optimal cutoff"] = Oracle(run.test_labels, stably=True)
    return policies


def energy_per_device(run: BaseRun, stop_steps: Tensor) -> dict[str, float]:
    """SNN joules per inference on every device when samples stop at ``stop_steps``."""
    return energy_report(run.test.stopped_at(stop_steps), run.net).joules_per_device()


@setting
class EarlyExitSetting:
    """The early-exit study's knobs: the base SNN and the two calibration targets."""

    base: str = knob("digits_qcfs", "base SNN (its own data and T)", choices=tuple(BASES))
    aoi_epsilon: float = knob(AOI_EPSILON, "AOI: share of calibration exits allowed to be "
                              "unstable (ε)", low=0.0, high=0.5)
    dc_tolerance: float = knob(0.0, "Dynamic Confidence: calibration accuracy it may give up",
                               low=0.0, high=0.1)
    seed: int = knob(0, "training seed of the base model and of its calibration's dropout masks "
                     "(0: the shipped model)", low=0, high=SEED_LIMIT, integer=True)
    budget: str = knob("full", "training budget of a base model that is not shipped",
                       choices=tuple(BUDGETS))


@dataclass(frozen=True)
class EarlyExitResult:
    """The base's runs and every policy calibrated on its calibration data."""

    setting: EarlyExitSetting
    run: BaseRun
    policies: dict[str, StopPolicy]


def run(setting: EarlyExitSetting) -> EarlyExitResult:
    base = base_run(setting.base, setting.seed, setting.budget)
    return EarlyExitResult(setting, base, calibrated_policies(base, setting.aoi_epsilon,
                                                              setting.dc_tolerance))


def policy_rows(base: BaseRun, policies: dict[str, StopPolicy]) -> pd.DataFrame:
    """One row per policy on the base's test run: accuracy, mean and p90 stop step, spikes and
    energy per device (any base: the zoo's or a user's model source)."""
    table = []
    for name, policy in policies.items():
        stops = policy.stop_times(base.test)
        o = outcome(base.test, base.test_labels, stops)
        settings = ""
        if isinstance(policy, DynamicConfidence):
            settings = f"c*={policy.threshold:.3f}, K={policy.scale:g}"
        elif isinstance(policy, TopKCutoff):
            settings = f"ε={policy.epsilon}"
        table.append({"base": base.name, "policy": name, "settings": settings,
                      "accuracy": round(o.accuracy, 4), "mean_steps": round(o.mean_steps, 2),
                      "p90_steps": round(o.p90_steps, 2),
                      "spikes_per_sample": round(o.spikes_per_sample, 1),
                      "energy": energy_per_device(base, stops)})
    return pd.DataFrame(table)


def prepare(progress: bool = True) -> list[str]:
    """Train (or load) the base models (zoo models: `workbench prepare` lists them already)."""
    for name in ("digits_qcfs_ann", "event_snn", "event_snn_rcs"):
        load_model(name, progress)
    return []


def objectives(table: pd.DataFrame) -> dict[str, float]:
    """Dynamic Confidence's test accuracy, mean exit step and Loihi joules per inference."""
    dc = table[table["policy"] == "Dynamic Confidence"].iloc[0]
    return {"accuracy": float(dc["accuracy"]), "mean_steps": float(dc["mean_steps"]),
            "loihi_joules": float(dc["energy"]["loihi"])}


STUDY = Study(name="early-exit", title="Stopping early: Dynamic Confidence and AOI's cutoff",
              setting=EarlyExitSetting, run=run,
              rows=lambda result: policy_rows(result.run, result.policies), prepare=prepare,
              report_settings=lambda: [EarlyExitSetting(base) for base in BASES],
              row_key=("base", "policy"),
              objectives=(Objective("accuracy", "maximize", "Dynamic Confidence test accuracy"),
                          Objective("mean_steps", "minimize", "Dynamic Confidence mean exit step"),
                          Objective("loihi_joules", "minimize",
                                    "Dynamic Confidence SNN J per inference on Loihi")),
              measure=objectives, seed_kind="training")

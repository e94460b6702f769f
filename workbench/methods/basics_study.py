"""The 'Spiking basics' studies: why a converted SNN needs time, and where its energy goes.

``basics``: accuracy of the converted digits SNN after every timestep for each threshold
balancing and initial potential, beside its ANN. ``energy``: energy per inference of that SNN
and of its ANN on every device profile (arithmetic only unless memory traffic is asked for).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from torch import Tensor

from workbench.convert import BALANCING
from workbench.datasets.digits import load_digits_split
from workbench.device import default_device
from workbench.energy import EnergyReport, energy_report
from workbench.network import simulate
from workbench.neurons import INITIAL_POTENTIALS
from workbench.study import (
    Objective,
    Study,
        curve_objectives,
    curve_study_objectives,
    knob,
    setting,
)
from workbench.train import evaluate
from workbench.trajectory import Trajectory
from workbench.zoo import basics_snn, load_model

BASICS_T = (1, 2, 4, 8, 16, 32, 64)
OBJECTIVE_T = 16  # the T at which exploration sessions compare accuracy and spikes
ENERGY_COLUMNS = ["device", "model", "charged_on", "T", "joules_per_inference", "mac_joules",
                  "synop_joules", "neuron_joules", "synaptic_ops", "macs", "neuron_updates",
                  "snn_to_ann"]


@setting
class BasicsSetting:
    """How the digits CNN is converted."""

    balance: str = knob("max", "threshold balancing: max or a percentile of the activations",
                        choices=BALANCING)
    initial: str = knob("zero", "initial membrane v₀: 0 or θ/2", choices=INITIAL_POTENTIALS)


@dataclass(frozen=True)
class BasicsResult:
    """The test trajectory (counts only) over max(BASICS_T) steps and the ANN's accuracy."""

    setting: BasicsSetting
    trajectory: Trajectory
    labels: Tensor
    ann_accuracy: float


def run(setting: BasicsSetting) -> BasicsResult:
    test = load_digits_split()["test"]
    snn, ann = basics_snn(setting.balance, setting.initial)
    trajectory = simulate(snn, test.x.to(default_device()), max(BASICS_T))
    return BasicsResult(setting, trajectory, test.y, evaluate(ann, test.x, test.y))


def rows(result: BasicsResult) -> pd.DataFrame:
    curve = result.trajectory.accuracy_curve(result.labels)
    spikes = result.trajectory.cumulative_spikes().mean(1)
    s = result.setting
    return pd.DataFrame([{"balance": s.balance, "initial": s.initial, "T": t,
                          "accuracy": round(float(curve[t - 1]), 4),
                          "ann_accuracy": round(result.ann_accuracy, 4),
                          "spikes_per_sample": round(float(spikes[t - 1]), 1)}
                         for t in BASICS_T])


def _prepare(progress: bool) -> list[str]:
    load_model("digits_ann", progress)  # a zoo model: `workbench prepare` lists it already
    return []


BASICS = Study(name="basics", title="Why an SNN needs time: accuracy after every timestep",
               setting=BasicsSetting, run=run, rows=rows, prepare=_prepare,
               report_settings=lambda: [BasicsSetting(b, i) for b in BALANCING
                                        for i in INITIAL_POTENTIALS],
               row_key=("T",), objectives=curve_study_objectives(OBJECTIVE_T),
               measure=lambda table: curve_objectives(table, OBJECTIVE_T))


@setting
class EnergySetting:
    """Energy of the 'Spiking basics' SNN (max balancing, v₀ = 0) at T timesteps."""

    T: int = knob(32, "timesteps simulated", low=1, high=256, integer=True)
    memory: bool = knob(False, "add the memory-traffic estimate", choices=(False, True))


@dataclass(frozen=True)
class EnergyResult:
    setting: EnergySetting
    report: EnergyReport


def run_energy(setting: EnergySetting) -> EnergyResult:
    snn, _ = basics_snn("max", "zero")
    x = load_digits_split()["test"].x.to(default_device())
    return EnergyResult(setting, energy_report(simulate(snn, x, setting.T), snn,
                                               include_memory=setting.memory))


def energy_objectives(table: pd.DataFrame) -> dict[str, float]:
    """The SNN's joules per inference on Loihi and its synaptic ops (both per inference)."""
    snn = table[(table["model"] == "snn") & (table["device"] == "loihi")].iloc[0]
    return {"loihi_joules": float(snn["joules_per_inference"]),
            "synaptic_ops": float(snn["synaptic_ops"])}


ENERGY = Study(name="energy", title="Where the energy goes: SNN vs ANN on every device",
               setting=EnergySetting, run=run_energy,
               rows=lambda result: result.report.summary()[ENERGY_COLUMNS], prepare=_prepare,
               report_settings=lambda: [EnergySetting()], row_key=("device", "model"),
               objectives=(Objective("loihi_joules", "minimize", "SNN J per inference on Loihi"),
                           Objective("synaptic_ops", "minimize", "SNN synaptic ops per inference")),
               measure=energy_objectives)

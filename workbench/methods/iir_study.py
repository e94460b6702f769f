"""The IIR study: the T = 5 → 1 chain and its equal-budget baselines on the digits and on a
harder, noisy version of them, with accuracy, per-layer firing rates, training time and energy.

The ``seed`` knob is the training seed of the ANN, the chain and its baselines (seed 0: the
shipped ones).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

import pandas as pd
import torch
from torch import Tensor

from workbench.energy import energy_report
from workbench.errors import WorkbenchError
from workbench.methods.iir import SETTINGS, IIRConfig, cached_chain
from workbench.network import simulate
from workbench.study import BUDGETS, SEED_LIMIT, Study, check_budget, knob, setting
from workbench.trajectory import SILENT_RATE, silent_layers
from workbench.zoo import load_model, task_data

DATASETS = {"digits": ("deep_digits_ann", "digits"),
            "noisy_digits": ("deep_noisy_digits_ann", "noisy_digits")}
LABELS = {"T5": "IIR T=5", "T4": "IIR T=4", "T3": "IIR T=3", "T2": "IIR T=2", "T1": "IIR T=1",
          "ann_init_T1": "ANN init, trained at T=1", "random_init_T1": "random init, trained at T=1",
          "converted_T1": "converted, T=1, untrained"}


def chain_config(seed: int = 0, budget: str = "full") -> IIRConfig:
    """The chain's training config with ``seed`` on ``budget`` (tiny: one epoch per stage)."""
    epochs = BUDGETS[check_budget(budget)]
    config = IIRConfig(seed=seed)
    return config if epochs is None else replace(config, first_epochs=epochs, stage_epochs=epochs)


@lru_cache(maxsize=2)
def study(dataset: str, progress: bool = False, seed: int = 0, budget: str = "full"):
    """(ANN, data splits, {setting: (net, metrics)}) of one dataset, trained with ``seed`` on
    ``budget`` (trained once, cached)."""
    if dataset not in DATASETS:
        raise WorkbenchError(f"unknown IIR dataset {dataset!r}; available: {', '.join(DATASETS)}")
    model, task = DATASETS[dataset]
    ann, meta = load_model(model, progress=progress, seed=seed, budget=budget)
    data, _ = task_data(task)
    return ann.cpu().eval(), data, cached_chain(ann.cpu(), meta, data, chain_config(seed, budget),
                                                progress)


def evaluate_setting(dataset: str, setting: str, seed: int = 0, budget: str = "full"):
    """Test trajectory (counts) of one setting at its T, and the network."""
    _, data, results = study(dataset, seed=seed, budget=budget)
    net, metrics = results[setting]
    return simulate(net, data["test"][0], metrics["T"]), net, metrics


@setting
class IIRSetting:
    """The IIR study's knobs: which data the chain and its baselines were trained on, and how."""

    dataset: str = knob("digits", "training data: 8×8 digits, or the same with pixel noise",
                        choices=tuple(DATASETS))
    seed: int = knob(0, "training seed of the ANN, the chain and its baselines (0: shipped)",
                     low=0, high=SEED_LIMIT, integer=True)
    budget: str = knob("full", "training budget of models that are not shipped",
                       choices=tuple(BUDGETS))


@dataclass(frozen=True)
class IIRResult:
    """Every chain stage and baseline on the test split, and the same-layer ANN."""

    setting: IIRSetting
    runs: dict  # stage -> (trajectory, net, metrics)
    labels: Tensor
    ann_accuracy: float


def run(setting: IIRSetting) -> IIRResult:
    s = setting
    ann, data, _ = study(s.dataset, seed=s.seed, budget=s.budget)
    runs = {stage: evaluate_setting(s.dataset, stage, s.seed, s.budget) for stage in SETTINGS}
    with torch.no_grad():
        ann_accuracy = float((ann(data["test"][0]).argmax(-1) == data["test"][1]).float().mean())
    return IIRResult(setting, runs, data["test"][1], ann_accuracy)


def rows(result: IIRResult) -> pd.DataFrame:
    """One row per stage and baseline at its own T, plus the ANN (energy of the same layers)."""
    dataset, table, reports = result.setting.dataset, [], {}
    for stage, (trajectory, net, metrics) in result.runs.items():
        reports[stage] = energy_report(trajectory, net)  # SNN and ANN rows of the same layers
        rates = {k: round(v, 4) for k, v in trajectory.mean_firing_rates().items()}
        table.append({"dataset": dataset, "setting": "iir" if stage.startswith("T") else stage,
                      "label": LABELS[stage], "T": metrics["T"],
                      "accuracy": round(float(trajectory.accuracy_curve(result.labels)[-1]), 4),
                      "firing_rates": rates, "train_seconds": metrics["train_seconds"],
                      "energy": reports[stage].joules_per_device()})
    table.append({"dataset": dataset, "setting": "ann", "label": "ANN (same layers)", "T": 1,
                  "accuracy": round(result.ann_accuracy, 4), "firing_rates": {},
                  "train_seconds": None, "energy": reports["T1"].joules_per_device("ann")})
    return pd.DataFrame(table)


def prepare(progress: bool = True) -> list[str]:
    """Train (or load) the chain and its baselines of every dataset."""
    lines = []
    for dataset in DATASETS:
        _, _, chain = study(dataset, progress=progress)
        lines.append(f"IIR chain ({dataset}): T=1 test accuracy "
                     f"{chain['T1'][1]['test_accuracy']:.3f}")
    return lines


def notes(table: pd.DataFrame) -> list[str]:
    """Silent layers of every baseline (the paper's explanation of their failure)."""
    lines = []
    for dataset, group in table.groupby("dataset", sort=False):
        baselines = group[group.setting.isin(["ann_init_T1", "random_init_T1", "converted_T1"])]
        silent = {row.label: len(silent_layers(row.firing_rates))
                  for row in baselines.itertuples()}
        lines.append(f"dataset {dataset}: silent layers (rate < {SILENT_RATE:.0%}) per "
                     f"baseline: {silent}")
    return lines


STUDY = Study(name="iir", title="IIR-SNN: the T = 5 → 1 chain against equal-budget baselines",
              setting=IIRSetting, run=run, rows=rows, prepare=prepare,
              report_settings=lambda: [IIRSetting(d) for d in DATASETS], notes=notes,
              seed_kind="training")

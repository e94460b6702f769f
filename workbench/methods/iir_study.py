"""The IIR study: the T = 5 → 1 chain and its equal-budget baselines on the digits and on a
harder, noisy version of them, with accuracy, per-layer firing rates, training time and energy.
"""

from __future__ import annotations

from functools import lru_cache

import pandas as pd
import torch

from workbench.energy import energy_report
from workbench.errors import WorkbenchError
from workbench.methods.iir import SETTINGS, IIRConfig, cached_chain
from workbench.network import SpikingNetwork, simulate
from workbench.zoo import load_model, task_data

DATASETS = {"digits": ("deep_digits_ann", "digits"),
            "noisy_digits": ("deep_noisy_digits_ann", "noisy_digits")}
LABELS = {"T5": "IIR T=5", "T4": "IIR T=4", "T3": "IIR T=3", "T2": "IIR T=2", "T1": "IIR T=1",
          "ann_init_T1": "ANN init, trained at T=1", "random_init_T1": "random init, trained at T=1",
          "converted_T1": "converted, T=1, untrained"}


@lru_cache(maxsize=2)
def study(dataset: str, progress: bool = False):
    """(ANN, data splits, {setting: (net, metrics)}) of one dataset (trained once, cached)."""
    if dataset not in DATASETS:
        raise WorkbenchError(f"unknown IIR dataset {dataset!r}; available: {', '.join(DATASETS)}")
    model, task = DATASETS[dataset]
    ann, meta = load_model(model, progress=progress)
    data, _ = task_data(task)
    return ann.cpu().eval(), data, cached_chain(ann.cpu(), meta, data, IIRConfig(), progress)


def evaluate_setting(dataset: str, setting: str):
    """Test trajectory (counts) of one setting at its T, and the network."""
    _, data, results = study(dataset)
    net, metrics = results[setting]
    return simulate(net, data["test"][0], metrics["T"]), net, metrics


def energy_by_device(trajectory, net: SpikingNetwork, model: str = "snn") -> dict[str, float]:
    summary = energy_report(trajectory, net).summary()
    rows = summary[summary.model == model]
    return dict(zip(rows.device, rows.joules_per_inference, strict=True))


def study_rows(dataset: str) -> list[dict]:
    _, data, results = study(dataset)
    rows = []
    for setting in SETTINGS:
        trajectory, net, metrics = evaluate_setting(dataset, setting)
        rates = {k: round(float(v.mean()), 4) for k, v in trajectory.firing_rates().items()}
        rows.append({"dataset": dataset, "setting": "iir" if setting.startswith("T") else setting,
                     "label": LABELS[setting], "T": metrics["T"],
                     "accuracy": round(float(trajectory.accuracy_curve(data["test"][1])[-1]), 4),
                     "firing_rates": rates, "train_seconds": metrics["train_seconds"],
                     "energy": energy_by_device(trajectory, net)})
    trajectory, net, _ = evaluate_setting(dataset, "T1")
    ann, _, _ = study(dataset)
    with torch.no_grad():
        ann_accuracy = float((ann(data["test"][0]).argmax(-1) == data["test"][1]).float().mean())
    rows.append({"dataset": dataset, "setting": "ann", "label": "ANN (same layers)", "T": 1,
                 "accuracy": round(ann_accuracy, 4), "firing_rates": {}, "train_seconds": None,
                 "energy": energy_by_device(trajectory, net, "ann")})
    return rows


def iir_table(datasets: tuple[str, ...] = tuple(DATASETS)) -> pd.DataFrame:
    return pd.DataFrame([row for d in datasets for row in study_rows(d)])

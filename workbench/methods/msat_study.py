"""The MSAT study: constant vs adaptive thresholds on the converted digits and saccade-event SNNs.

Constants are searched on the validation split (mean accuracy over T ∈ {2, 4, 8, 16}) and stored
beside the model in the cache; spike confidences are measured on the training split.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from functools import lru_cache

import pandas as pd
import torch
from torch import Tensor, nn

from workbench.cache import cache_dir, config_key, read_entry, write_entry
from workbench.convert import convert
from workbench.device import default_device
from workbench.errors import WorkbenchError
from workbench.methods.msat import (
    MSATConstants,
    search_constants,
    spike_confidences,
    with_policy,
)
from workbench.network import SpikingNetwork, simulate
from workbench.zoo import load_model

DATASETS = {"digits": "digits CNN (ReLU), converted, 8×8 static input every step",
            "saccade_events": "event-rate CNN, converted, one 1/64 event bin per step"}
T_VALUES = (1, 2, 4, 8, 16, 32, 64)
T_C = 16
SEARCH_TRIALS = 60
ADAPTIVE = ("DTT", "DET", "MSAT")


@dataclass
class MSATSetting:
    """A converted SNN with its data, searched constants and spike confidences."""

    dataset: str
    ann: nn.Module
    snn: SpikingNetwork  # max-balanced constant-threshold baseline
    snn_percentile: SpikingNetwork
    splits: dict[str, tuple[Tensor, Tensor]]  # SNN inputs (static or [T, B, ...]) and labels
    ann_inputs: dict[str, Tensor]
    constants: dict[str, MSATConstants]
    confidences: dict[str, float]

    def network(self, mode: str, confidence: bool = False,
                constants: MSATConstants | None = None) -> SpikingNetwork:
        """The SNN in threshold ``mode`` (constant uses max balancing)."""
        if mode == "constant (percentile)":
            return self.snn_percentile
        base = "constant" if mode.startswith("constant") else mode
        return with_policy(self.snn, base, constants or self.constants.get(base),
                           self.confidences if confidence else None, t_c=T_C)


def _data(dataset: str):
    device = default_device()
    if dataset == "digits":
        from workbench.datasets.digits import load_digits_split

        data = load_digits_split()
        splits = {k: (v.x.to(device), v.y) for k, v in data.items()}
        return "digits_ann", splits, {k: v[0] for k, v in splits.items()}
    if dataset == "saccade_events":
        from workbench.datasets.saccade import digits_saccade_events

        events = digits_saccade_events()
        splits, rates = {}, {}
        for name in ("train", "val", "test"):
            x, y = events.frames(name, max(T_VALUES))
            splits[name] = (x.to(device), y)
            rates[name] = x.mean(0).to(device)
        return "event_ann", splits, rates
    raise WorkbenchError(f"unknown MSAT dataset {dataset!r}; available: {', '.join(DATASETS)}")


def _searched(dataset: str, snn: SpikingNetwork, splits, model_meta: dict) -> dict:
    """Searched constants per adaptive mode, cached beside the model they belong to."""
    key = config_key({"dataset": dataset, "model": model_meta.get("config"),
                      "trials": SEARCH_TRIALS, "T": [2, 4, 8, 16]})
    path = cache_dir() / "models" / f"msat-{dataset}-{key}.json"
    entry = read_entry(path)
    if entry is not None:
        return json.loads(entry[0])
    x_val, y_val = splits["val"]
    found = {}
    for mode in ADAPTIVE:
        constants, val_score = search_constants(snn, mode, x_val, y_val, SEARCH_TRIALS)
        found[mode] = {"constants": asdict(constants), "val_score": val_score}
    write_entry(path, json.dumps(found).encode(),
                {"what": "MSAT constants searched on the validation split",
                 "dataset": dataset, "command": "workbench report msat"})
    return found


@lru_cache(maxsize=2)
def setting(dataset: str) -> MSATSetting:
    name, splits, rates = _data(dataset)
    ann, meta = load_model(name, progress=False)
    ann = ann.to(default_device()).eval()
    snn = convert(ann, rates["train"], "max")
    snn_percentile = convert(ann, rates["train"], "percentile")
    searched = _searched(dataset, snn, splits, meta)
    constants = {m: MSATConstants(**v["constants"]) for m, v in searched.items()}
    confidences = spike_confidences(snn, ann, splits["train"][0], T_C, x_ann=rates["train"])
    return MSATSetting(dataset, ann, snn, snn_percentile, splits, rates, constants, confidences)


MODES_SHOWN = ("constant (max)", "constant (percentile)", "DTT", "DET", "MSAT",
               "MSAT + spike confidence")


def run_mode(s: MSATSetting, net: SpikingNetwork, T: int = max(T_VALUES)):
    """Simulate the test split once: the trajectory (counts only) and, per step, the SIN share
    of all spikes (spikes of neurons the paired ANN leaves inactive), [T]."""
    from workbench.methods.msat import inactive_masks

    x, _ = s.splits["test"]
    inactive = inactive_masks(net, s.ann, s.ann_inputs["test"])
    sin, total = torch.zeros(T), torch.zeros(T)

    def observe(t, name, spikes, state):
        sin[t] += float((spikes * inactive[name]).sum())
        total[t] += float(spikes.sum())

    trajectory = simulate(net, x, T, observe=observe)
    return trajectory, sin / total.clamp(min=1), sin, total


def study_rows(dataset: str) -> list[dict]:
    s = setting(dataset)
    y = s.splits["test"][1]
    rows = []
    for mode in MODES_SHOWN:
        net = s.network(mode.removesuffix(" + spike confidence"),
                        confidence=mode.endswith("spike confidence"))
        trajectory, _, sin, total = run_mode(s, net)
        curve = trajectory.accuracy_curve(y)
        spikes = torch.cumsum(sum(trajectory.spike_counts.values()), 0).mean(1)
        early = float(sin[:T_C].sum() / total[:T_C].sum().clamp(min=1))
        rows += [{"dataset": dataset, "mode": mode, "T": t,
                  "accuracy": round(float(curve[t - 1]), 4),
                  "spikes_per_sample": round(float(spikes[t - 1]), 1),
                  "sin_fraction_early": round(early, 4)} for t in T_VALUES]
    return rows


def msat_table(datasets: tuple[str, ...] = tuple(DATASETS)) -> pd.DataFrame:
    return pd.DataFrame([row for d in datasets for row in study_rows(d)])

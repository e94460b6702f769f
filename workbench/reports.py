"""Result tables behind ``workbench report <name>`` (pandas DataFrames; JSON with ``--json``)."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from workbench.datasets.digits import load_digits_split
from workbench.device import default_device
from workbench.network import simulate
from workbench.train import evaluate
from workbench.zoo import basics_snn

BASICS_T = (1, 2, 4, 8, 16, 32, 64)


def basics() -> pd.DataFrame:
    """Accuracy of the converted digits SNN at T ∈ {1..64} for each balancing and initial
    potential, beside its ANN: the accuracy-latency trade-off of plain conversion."""
    test = load_digits_split()["test"]
    x = test.x.to(default_device())
    rows = []
    for balance in ("max", "percentile"):
        for initial in ("zero", "half"):
            snn, ann = basics_snn(balance, initial)
            ann_accuracy = round(evaluate(ann, test.x, test.y), 4)
            trajectory = simulate(snn, x, max(BASICS_T))
            curve = trajectory.accuracy_curve(test.y)
            rows += [{"balance": balance, "initial": initial, "T": t,
                      "accuracy": round(float(curve[t - 1]), 4),
                      "ann_accuracy": ann_accuracy,
                      "spikes_per_sample": round(float(
                          sum(c[:t].sum(0) for c in trajectory.spike_counts.values()).mean()), 1)}
                     for t in BASICS_T]
    return pd.DataFrame(rows)


ENERGY_COLUMNS = ["device", "model", "charged_on", "T", "joules_per_inference", "mac_joules",
                  "synop_joules", "neuron_joules", "synaptic_ops", "macs", "neuron_updates",
                  "snn_to_ann"]


def energy(T: int = 32) -> pd.DataFrame:
    """Energy per inference of the 'Spiking basics' SNN (max balancing, v₀ = 0, T steps, mean over
    the test digits) and of its ANN, on every device profile. Arithmetic only."""
    from workbench.energy import energy_report

    snn, _ = basics_snn("max", "zero")
    x = load_digits_split()["test"].x.to(default_device())
    return energy_report(simulate(snn, x, T), snn).summary()[ENERGY_COLUMNS]


REPORTS: dict[str, Callable[[], pd.DataFrame]] = {"basics": basics, "energy": energy}

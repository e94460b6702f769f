"""The model-agnostic views of any model source, as tables: accuracy at every T, energy on every
device, the stopping policies with their calibration, and MSAT's adaptive thresholds when the
source has an ANN (``workbench report basics|energy|early-exit|msat --model SOURCE``). One test
run and one calibration run per source, replayed.

Column names follow NeuroBench where they mean the same thing (Yik et al., "The neurobench
framework for benchmarking neuromorphic computing algorithms and systems", Nat. Commun. 16,
1545, 2025): ``Effective_ACs`` — accumulates caused by spikes or events, Σ input × fan-out (equal
to sinabs' ``SNNAnalyzer`` synops, tests/test_synops_crosscheck.py); ``Effective_MACs`` — MACs on
non-zero analog inputs (the direct-encoded layer); ``activation_sparsity`` — the share of
neuron-steps without a spike.
"""

from __future__ import annotations

import pandas as pd
import torch
from torch import Tensor

from workbench.energy import energy_report
from workbench.errors import WorkbenchError
from workbench.methods.early_exit_study import BaseRun, calibrated_policies, policy_rows
from workbench.methods.msat import MODES, Candidate, search, spike_confidences
from workbench.network import simulate
from workbench.sources import ModelSource
from workbench.stream import simulate_batches
from workbench.train import evaluate
from workbench.trajectory import Trajectory

REPORT_T = (1, 2, 4, 8, 16, 32, 64)
ENERGY_COLUMNS = ["device", "model", "charged_on", "T", "joules_per_inference", "mac_joules",
                  "synop_joules", "neuron_joules", "synaptic_ops", "macs", "neuron_updates",
                  "snn_to_ann", "Effective_ACs", "Effective_MACs"]


def _runs(source: ModelSource) -> dict[str, tuple[Trajectory, Tensor]]:
    """Calibration and test runs of the source (simulated once, kept on the source)."""
    if "test" not in source.runs:
        for split in ("calibration", "test"):
            source.runs[split] = simulate_batches(source.snn, getattr(source.data, split),
                                                  source.data.T)
    return source.runs


def _timesteps(source: ModelSource) -> list[int]:
    T = source.data.T
    return sorted({t for t in REPORT_T if t <= T} | {T})


def activation_sparsity(trajectory: Trajectory) -> float:
    """Share of (neuron, simulated step) pairs without a spike, over every cell."""
    spikes = sum(c.sum() for c in trajectory.spike_counts.values())
    neuron_steps = sum(trajectory.neurons.values()) * trajectory.active.sum()
    return float(1 - spikes / neuron_steps)


def accuracy_curve(source: ModelSource) -> Tensor:
    """Test accuracy after every timestep t = 1..T, [T] (one test run)."""
    test, labels = _runs(source)["test"]
    return test.accuracy_curve(labels)


def ann_accuracy(source: ModelSource) -> float | None:
    """Test accuracy of the source's ANN (None without one); measured once, kept on the source."""
    if source.ann is None:
        return None
    if "ann_accuracy" not in source.runs:
        correct = sum(evaluate(source.ann, x, y) * len(y) for x, y in source.data.test)
        source.runs["ann_accuracy"] = round(correct / len(_runs(source)["test"][1]), 4)
    return source.runs["ann_accuracy"]


def sample_inputs(source: ModelSource, index: int) -> tuple[Tensor, int]:
    """Test sample ``index`` as a batch of one (static [1, ...] or events [T, 1, ...]) and its
    label; the test batches are read up to the one holding it."""
    n = len(_runs(source)["test"][1])
    if not 0 <= index < n:
        raise WorkbenchError(f"sample {index} is out of range: the test split of "
                             f"{source.data.name!r} has samples 0..{n - 1}")
    for x, y in source.data.test:
        if index < len(y):
            x = x[index:index + 1] if source.data.static else x[:, index:index + 1]
            return x, int(y[index])
        index -= len(y)
    raise WorkbenchError(f"the test split of {source.data.name!r} changed while it was read")


@torch.no_grad()
def recorded_sample(source: ModelSource, index: int) -> tuple[Trajectory, int]:
    """Test sample ``index`` re-simulated for the source's T with every cell recorded (spikes
    and membranes: the test run keeps counts only), and its label."""
    x, label = sample_inputs(source, index)
    device = next(source.snn.parameters()).device
    return simulate(source.snn, x.to(device), source.data.T,
                    record=list(source.snn.cells())), label


def base_run(source: ModelSource) -> BaseRun:
    """The source's calibration and test runs as the early-exit study's base (kept on the
    source)."""
    if "base" not in source.runs:
        runs = _runs(source)
        (calibration, calibration_labels), (test, labels) = runs["calibration"], runs["test"]
        x, _ = next(iter(source.data.test))
        source.runs["base"] = BaseRun(source.name, source.snn, calibration, calibration_labels,
                                      test, labels, x)
    return source.runs["base"]


def basics(source: ModelSource) -> pd.DataFrame:
    """Accuracy, spikes and activation sparsity at every T (one test run), beside the ANN."""
    test, _ = _runs(source)["test"]
    curve = accuracy_curve(source)
    ann = ann_accuracy(source)
    rows = []
    for t in _timesteps(source):
        upto = test.until(t)
        rows.append({"model": source.name, "data": source.data.name, "T": t,
                     "accuracy": round(float(curve[t - 1]), 4), "ann_accuracy": ann,
                     "spikes_per_sample": round(float(upto.spikes_per_sample().mean()), 1),
                     "activation_sparsity": round(activation_sparsity(upto), 4)})
    return pd.DataFrame(rows)


@torch.no_grad()
def effective_macs(source: ModelSource, T: int) -> float:
    """Mean MACs per inference on non-zero analog inputs: Σ non-zero inputs × fan-out, every
    step (direct encoding repeats the input); 0 when the network is fed events."""
    if not source.data.static:
        return 0.0
    fanout, _ = source.snn.stage_profile(0, tuple(source.data.input_shape))
    fanout = fanout.flatten().cpu()
    total, n = 0.0, 0
    for x, _ in source.data.test:
        total += float(((x != 0).flatten(1).float() @ fanout).sum()) * T
        n += len(x)
    return total / n


def energy(source: ModelSource, T: int | None = None) -> pd.DataFrame:
    """Energy per inference of the source's SNN at T steps and of the same layers as an ANN, on
    every device profile (arithmetic only), with NeuroBench's effective op counts."""
    test, _ = _runs(source)["test"]
    T = T or source.data.T
    run = test.until(T)
    table = energy_report(run, source.snn).summary()
    table["Effective_ACs"] = float(sum(v.sum(0).mean() for v in run.synaptic_ops.values()))
    table["Effective_MACs"] = effective_macs(source, T)
    return table[ENERGY_COLUMNS]


def early_exit(source: ModelSource) -> pd.DataFrame:
    """Every stopping policy on the source's SNN: calibrated on the calibration split, measured
    on the test split (accuracy, mean and p90 steps, spikes, energy per device)."""
    base = base_run(source)
    return policy_rows(base, calibrated_policies(base))


def msat(source: ModelSource, trials: int = 30) -> pd.DataFrame:
    """Constant vs adaptive thresholds on the SNN converted from the source's ANN: every mode
    (the constant θ too) searched with the same budget and the spike confidences measured on the
    calibration split; accuracy and spikes measured on the test split."""
    if source.ann is None:
        raise WorkbenchError(f"MSAT adapts a converted SNN's thresholds and compares it with its "
                             f"ANN; model source {source.name!r} has no ANN")
    device = next(source.snn.parameters()).device
    x_cal = source.data.calibration_inputs().to(device)
    y_cal = torch.cat([y for _, y in source.data.calibration])
    networks = {"constant (θ = 1)": Candidate("constant").network(source.snn)}
    for mode in MODES:
        best, _ = search(source.snn, mode, x_cal, y_cal, trials, progress=False)
        networks[f"{mode} (searched)"] = best.network(source.snn)
        if mode == "MSAT":
            confidences = spike_confidences(networks["MSAT (searched)"], source.ann, x_cal)
            networks["MSAT + spike confidence"] = best.network(source.snn, confidences)
    x_test = torch.cat([x for x, _ in source.data.test]).to(device)
    y_test = torch.cat([y for _, y in source.data.test])
    rows = []
    for mode, net in networks.items():
        run = simulate(net, x_test, source.data.T)
        curve = run.accuracy_curve(y_test)
        spikes = run.cumulative_spikes().mean(1)
        rows += [{"model": source.name, "mode": mode, "T": t,
                  "accuracy": round(float(curve[t - 1]), 4),
                  "spikes_per_sample": round(float(spikes[t - 1]), 1)}
                 for t in _timesteps(source)]
    return pd.DataFrame(rows)

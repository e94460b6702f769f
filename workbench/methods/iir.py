"""IIR-SNN: iterative initialisation and retraining, from T = 5 down to T = 1.

Chowdhury, Rathi & Roy, "One timestep is all you need: training spiking neural networks with
ultra low latency", arXiv 2110.05929 (ECCV 2022: "Towards ultra low latency spiking neural
networks for vision and sequential tasks using temporal pruning"). Per layer::

    u_t = λ·u_{t−1} + W·o_t^{(l−1)} (+ b),   o_t = Θ(u_t/θ − 1),   u_t ← u_t − θ·o_t

with θ and λ trainable per layer (λ clamped to ≤ 1, θ > 0), the triangle surrogate
γ·max(0, 1 − |u/θ − 1|) with γ = 0.3, one dropout mask per sample across time, average pooling,
and a non-spiking readout that sums W·o_t over the steps. The SNN starts from a trained ANN's
weights with thresholds set layer by layer from the 90th percentile of each layer's input
current *in the partially converted spiking network*, is trained at T = 5, and each stage
T = 4, 3, 2, 1 starts from the previous stage and is trained again.
"""

from __future__ import annotations

import copy
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import Tensor, nn

from workbench.cache import load_or_build
from workbench.errors import WorkbenchError
from workbench.network import SpikingNetwork, TimeSharedDropout, output, simulate
from workbench.neurons import SpikingCell
from workbench.train import evaluate, fit

GAMMA = 0.3
CHAIN = (5, 4, 3, 2, 1)


def iir_cell(threshold: float = 1.0) -> SpikingCell:
    """IIR's neuron: soft reset, triangle surrogate γ = 0.3, trainable θ and λ (λ starts at 1)."""
    return SpikingCell(threshold, 1.0, reset="subtract", surrogate="triangle", alpha=GAMMA,
                       trainable_threshold=True, trainable_leak=True)


def spiking_from_ann(ann: nn.Sequential, input_shape: tuple[int, ...],
                     thresholds: list[float] | None = None) -> SpikingNetwork:
    """The ANN's layers as a spiking network: each ReLU becomes an IIR cell, each Dropout a
    time-shared dropout; weights are copied (not normalised: θ carries the scale)."""
    layers, n = [], 0
    for name, module in ann.named_children():
        if isinstance(module, nn.ReLU):
            theta = 1.0 if thresholds is None else thresholds[n]
            n += 1
            layers.append((f"spike{n}", iir_cell(theta)))
        elif isinstance(module, nn.Dropout):
            layers.append((name, TimeSharedDropout(module.p)))
        elif isinstance(module, nn.Conv2d | nn.Linear | nn.AvgPool2d | nn.Flatten):
            layers.append((name, copy.deepcopy(module)))
        else:
            raise WorkbenchError(f"IIR cannot map layer {name!r} ({type(module).__name__}); use "
                                 "Conv2d, Linear, AvgPool2d, Flatten, ReLU, Dropout (fold BN first)")
    return SpikingNetwork(layers, input_shape)


@torch.no_grad()
def init_thresholds(net: SpikingNetwork, x: Tensor, T: int = 5, percentile: float = 90.0
                    ) -> list[float]:
    """Set θ layer by layer: θ_l = max over steps of the ``percentile`` of layer l's input
    current, measured in the spiking network whose earlier layers already spike with their θ.
    Returns the thresholds (also written into ``net``)."""
    was_training = net.training
    net.eval()
    thresholds = []
    for cell in net.cells().values():
        currents: list[Tensor] = []
        handle = cell.register_forward_pre_hook(
            lambda module, args, store=currents: store.append(args[0]))
        try:
            simulate(net, x, T)
        finally:
            handle.remove()
        theta = max(float(np.percentile(c.flatten().cpu().numpy(), percentile)) for c in currents)
        theta = max(theta, 1e-3)  # a silent layer keeps a usable threshold
        cell.threshold.fill_(theta)
        thresholds.append(theta)
    net.train(was_training)
    return thresholds


@dataclass(frozen=True)
class IIRConfig:
    """Epochs per stage (the chain's first stage, then each later one), learning rate, seed."""

    first_epochs: int = 15
    stage_epochs: int = 8
    lr: float = 1e-3
    percentile: float = 90.0
    calibration_samples: int = 512
    seed: int = 0

    @property
    def total_epochs(self) -> int:
        return self.first_epochs + self.stage_epochs * (len(CHAIN) - 1)


class Cancelled(Exception):
    """Training was cancelled by the caller (nothing was written)."""


def _train_stage(net: SpikingNetwork, T: int, epochs: int, data, config: IIRConfig,
                 progress: bool, on_epoch: Callable[[str], bool] | None, label: str) -> dict:
    start = time.perf_counter()

    def forward(model, x):
        return output(model, x, T)

    history = fit(net, data["train"], val=data["val"], forward=forward, epochs=epochs,
                  lr=config.lr, seed=config.seed, progress=progress, desc=label,
                  on_epoch=(lambda epoch, h: on_epoch(label)) if on_epoch else None)
    if history.get("cancelled"):
        raise Cancelled(label)
    net.eval()
    return {"T": T, "epochs": epochs, "train_seconds": round(time.perf_counter() - start, 1),
            "val_accuracy": max(history["val_accuracy"]),
            "test_accuracy": evaluate(net, *data["test"], forward=forward)}


def build_chain(ann: nn.Sequential, data: dict, config: IIRConfig = IIRConfig(),
                progress: bool = True, on_epoch: Callable[[str], bool] | None = None
                ) -> dict[str, tuple[SpikingNetwork, dict]]:
    """Train the chain T = 5 → 1 and the baselines; returns ``{setting: (net, metrics)}`` with
    settings "T5" … "T1", "ann_init_T1", "random_init_T1" and "converted_T1".

    ``data``: ``{"train", "val", "test": (x, y)}``; ``on_epoch(label)`` may return False to
    cancel (raises :class:`Cancelled`)."""
    shape = tuple(data["train"][0].shape[1:])
    torch.manual_seed(config.seed)
    x_cal = data["train"][0][:config.calibration_samples]
    initial = spiking_from_ann(ann, shape)
    init_thresholds(initial, x_cal, CHAIN[0], config.percentile)
    results = {}
    converted = copy.deepcopy(initial).eval()
    results["converted_T1"] = (converted, {
        "T": 1, "epochs": 0, "train_seconds": 0.0,
        "test_accuracy": evaluate(converted, *data["test"], forward=lambda m, x: output(m, x, 1))})
    net = copy.deepcopy(initial)
    for i, T in enumerate(CHAIN):
        epochs = config.first_epochs if i == 0 else config.stage_epochs
        metrics = _train_stage(net, T, epochs, data, config, progress, on_epoch, f"IIR T={T}")
        results[f"T{T}"] = (copy.deepcopy(net), metrics)
    direct = copy.deepcopy(initial)
    results["ann_init_T1"] = (direct, _train_stage(direct, 1, config.total_epochs, data, config,
                                                   progress, on_epoch, "ANN-init, T=1"))
    torch.manual_seed(config.seed)
    random_net = spiking_from_ann(type(ann)(OrderedDict(
        (n, _reset(copy.deepcopy(m))) for n, m in ann.named_children())), shape)
    results["random_init_T1"] = (random_net, _train_stage(
        random_net, 1, config.total_epochs, data, config, progress, on_epoch, "random init, T=1"))
    return results


def _reset(module: nn.Module) -> nn.Module:
    if hasattr(module, "reset_parameters"):
        module.reset_parameters()
    return module


SETTINGS = ("T5", "T4", "T3", "T2", "T1", "ann_init_T1", "random_init_T1", "converted_T1")


def cached_chain(ann: nn.Sequential, ann_meta: dict, data: dict, config: IIRConfig = IIRConfig(),
                 progress: bool = True, on_epoch: Callable[[str], bool] | None = None,
                 retrain: bool = False) -> dict[str, tuple[SpikingNetwork, dict]]:
    """The chain and baselines from the artifact store (one entry: every stage's checkpoint and
    metrics), trained if missing or when ``retrain``; a cancelled or failed retraining writes
    nothing, so the stored checkpoints stay intact."""

    def build() -> tuple[dict, dict]:
        results = build_chain(ann, data, config, progress, on_epoch)
        return ({s: net.state_dict() for s, (net, _) in results.items()},
                {s: metrics for s, (_, metrics) in results.items()})

    setting = {"iir": asdict(config), "ann": ann_meta.get("config")}
    states, record = load_or_build("iir-chain", setting, build, seed=config.seed, rebuild=retrain)
    shape = tuple(data["train"][0].shape[1:])
    chain = {}
    for name in SETTINGS:
        net = spiking_from_ann(ann, shape)
        net.load_state_dict(states[name])
        chain[name] = (net.eval(), record["metrics"][name])
    return chain

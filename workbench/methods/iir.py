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
T = 4, 3, 2, 1 starts from the previous stage and is trained again. The baselines start from
the same converted network (or from random weights) and are trained directly at T = 1 with the
chain's epochs or, as a second budget, its training sample·timesteps (:class:`Baselines`).
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

    @property
    def total_timestep_epochs(self) -> int:
        """Σ epochs·T over the chain's stages: its training sample·timesteps per training
        sample, so also the epochs at T = 1 that cost the same count."""
        return self.first_epochs * CHAIN[0] + self.stage_epochs * sum(CHAIN[1:])


# the direct-T=1 baselines' budgets: as many epochs as the chain, or as many training
# sample·timesteps (deterministic, unlike wall time on a shared machine); setting-name suffix
BUDGETS = {"epochs": "", "compute": "_compute"}


@dataclass(frozen=True)
class Baselines:
    """The direct-T=1 baselines' budgets (keys of :data:`BUDGETS`) and the early firing-rate
    log: per-layer rates on the validation split before training and after each of the first
    ``rate_epochs`` epochs of every stage and baseline (0: none)."""

    budgets: tuple[str, ...] = ("epochs",)
    rate_epochs: int = 0

    def __post_init__(self) -> None:
        unknown = [b for b in self.budgets if b not in BUDGETS]
        if unknown or not self.budgets:
            raise WorkbenchError(f"baseline budgets must be some of {', '.join(BUDGETS)}, got "
                                 f"{self.budgets!r}")
        if self.rate_epochs < 0:
            raise WorkbenchError(f"rate_epochs must be >= 0, got {self.rate_epochs}")

    def epochs(self, budget: str, config: IIRConfig) -> int:
        """Epochs at T = 1 that give a baseline the chain's ``budget``."""
        return config.total_epochs if budget == "epochs" else config.total_timestep_epochs


def settings(baselines: Baselines = Baselines()) -> tuple[str, ...]:
    """Names of the chain's stages and baselines (the order of a study's table)."""
    direct = [f"{init}_T1{BUDGETS[b]}" for init in ("ann_init", "random_init")
              for b in baselines.budgets]
    return (*(f"T{T}" for T in CHAIN), *direct, "converted_T1")


class Cancelled(Exception):
    """Training was cancelled by the caller (nothing was written)."""


@torch.no_grad()
def layer_rates(net: SpikingNetwork, x: Tensor, T: int) -> dict[str, float]:
    """Mean firing rate of every cell (spikes per neuron per step) on ``x`` at ``T``, dropout
    off."""
    was_training = net.training
    net.eval()
    rates = simulate(net, x, T).mean_firing_rates()
    net.train(was_training)
    return {cell: round(rate, 4) for cell, rate in rates.items()}


def _train_stage(net: SpikingNetwork, T: int, epochs: int, data, config: IIRConfig,
                 progress: bool, on_epoch: Callable[[str], bool] | None, label: str,
                 rate_epochs: int = 0) -> dict:
    start = time.perf_counter()
    x_val = data["val"][0]
    early_rates = [layer_rates(net, x_val, T)] if rate_epochs else []

    def forward(model, x):
        return output(model, x, T)

    def epoch_done(epoch: int, history: dict) -> bool | None:
        if epoch <= rate_epochs:
            early_rates.append(layer_rates(net, x_val, T))
        return on_epoch(label) if on_epoch else None

    history = fit(net, data["train"], val=data["val"], forward=forward, epochs=epochs,
                  lr=config.lr, seed=config.seed, progress=progress, desc=label,
                  on_epoch=epoch_done)
    if history.get("cancelled"):
        raise Cancelled(label)
    net.eval()
    metrics = {"T": T, "epochs": epochs, "train_seconds": round(time.perf_counter() - start, 1),
               "sample_steps": epochs * len(data["train"][0]) * T,
               "val_accuracy": max(history["val_accuracy"]),
               "val_curve": [round(a, 4) for a in history["val_accuracy"]],
               "test_accuracy": evaluate(net, *data["test"], forward=forward)}
    if rate_epochs:
        metrics["early_rates"] = early_rates
    return metrics


def build_chain(ann: nn.Sequential, data: dict, config: IIRConfig = IIRConfig(),
                progress: bool = True, on_epoch: Callable[[str], bool] | None = None,
                baselines: Baselines = Baselines()) -> dict[str, tuple[SpikingNetwork, dict]]:
    """Train the chain T = 5 → 1 and the baselines; returns ``{setting: (net, metrics)}`` with
    the settings of :func:`settings`: "T5" … "T1", "ann_init_T1", "random_init_T1" (and their
    "_compute" twins for the compute-matched budget) and "converted_T1".

    ``data``: ``{"train", "val", "test": (x, y)}``; ``on_epoch(label)`` may return False to
    cancel (raises :class:`Cancelled`)."""
    shape = tuple(data["train"][0].shape[1:])
    torch.manual_seed(config.seed)
    x_cal = data["train"][0][:config.calibration_samples]
    initial = spiking_from_ann(ann, shape)
    init_thresholds(initial, x_cal, CHAIN[0], config.percentile)
    rate_epochs = baselines.rate_epochs
    results = {}
    converted = copy.deepcopy(initial).eval()
    results["converted_T1"] = (converted, {
        "T": 1, "epochs": 0, "train_seconds": 0.0, "sample_steps": 0,
        "test_accuracy": evaluate(converted, *data["test"], forward=lambda m, x: output(m, x, 1)),
        **({"early_rates": [layer_rates(converted, data["val"][0], 1)]} if rate_epochs else {})})
    net = copy.deepcopy(initial)
    for i, T in enumerate(CHAIN):
        epochs = config.first_epochs if i == 0 else config.stage_epochs
        metrics = _train_stage(net, T, epochs, data, config, progress, on_epoch, f"IIR T={T}",
                               rate_epochs)
        results[f"T{T}"] = (copy.deepcopy(net), metrics)
    for budget in baselines.budgets:
        direct = copy.deepcopy(initial)
        results[f"ann_init_T1{BUDGETS[budget]}"] = (direct, _train_stage(
            direct, 1, baselines.epochs(budget, config), data, config, progress, on_epoch,
            f"ANN-init, T=1, equal {budget}", rate_epochs))
    for budget in baselines.budgets:
        torch.manual_seed(config.seed)  # the same random weights for every budget
        random_net = spiking_from_ann(type(ann)(OrderedDict(
            (n, _reset(copy.deepcopy(m))) for n, m in ann.named_children())), shape)
        results[f"random_init_T1{BUDGETS[budget]}"] = (random_net, _train_stage(
            random_net, 1, baselines.epochs(budget, config), data, config, progress, on_epoch,
            f"random init, T=1, equal {budget}", rate_epochs))
    return results


def _reset(module: nn.Module) -> nn.Module:
    if hasattr(module, "reset_parameters"):
        module.reset_parameters()
    return module


SETTINGS = settings()


def cached_chain(ann: nn.Sequential, ann_meta: dict, data: dict, config: IIRConfig = IIRConfig(),
                 progress: bool = True, on_epoch: Callable[[str], bool] | None = None,
                 retrain: bool = False, baselines: Baselines = Baselines()
                 ) -> dict[str, tuple[SpikingNetwork, dict]]:
    """The chain and baselines from the artifact store (one entry: every stage's checkpoint and
    metrics), trained if missing or when ``retrain``; a cancelled or failed retraining writes
    nothing, so the stored checkpoints stay intact."""

    def build() -> tuple[dict, dict]:
        results = build_chain(ann, data, config, progress, on_epoch, baselines)
        return ({s: net.state_dict() for s, (net, _) in results.items()},
                {s: metrics for s, (_, metrics) in results.items()})

    setting = {"iir": asdict(config), "ann": ann_meta.get("config")}
    if baselines != Baselines():  # the default keeps the keys of the chains trained before it
        setting["baselines"] = asdict(baselines)
    states, record = load_or_build("iir-chain", setting, build, seed=config.seed, rebuild=retrain)
    shape = tuple(data["train"][0].shape[1:])
    chain = {}
    for name in settings(baselines):
        net = spiking_from_ann(ann, shape)
        net.load_state_dict(states[name])
        chain[name] = (net.eval(), record["metrics"][name])
    return chain

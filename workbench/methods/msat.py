"""MSAT: multi-stage adaptive thresholds for converted SNNs, and spike confidence.

He, Li, Zhao, Kong & Zeng, "MSAT: biologically inspired multi-stage adaptive threshold for
conversion of spiking neural networks", Neural Computing and Applications 2024 (arXiv
2303.13080); the form follows the authors' BrainCog code. Per neuron, with m_{t−1} the last
post-reset potential, m̄_t the running mean of post-reset potentials before t and x_t the input::

    θ_mp = τ_mp·[α·(m_{t−1} − m̄_t) + V_T + k_a·ln(1 + exp((m_{t−1} − m̄_t)/k_i))]   (DTT)
    θ_rd = τ_rd·exp(−x_t / C)                                                    (DET)
    θ_t  = θ_max·sigmoid(θ_mp + θ_rd),   θ_0 = θ_max,   V_T = −θ_max

so the threshold rises when the potential sits above its history and falls when the input
depolarises the neuron fast. Either term can be switched off; both off is the constant θ.

Spike confidence: early spikes of neurons whose ANN activation is zero ("Spikes of Inactivated
Neurons", SIN) cannot be taken back. A layer's confidence c_l = 1 − SIN share of its spikes in
the first ``t_c`` steps (measured on training data); during those steps each spike is kept with
probability c_l (a seeded Bernoulli gate), deterministic afterwards.

The paper's six constants (α, k_a, k_i, C, τ_mp, τ_rd) are not published with the code; they
are searched here on the validation split (:func:`search_constants`) — they are our values,
not the paper's.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

from workbench.convert import ann_activations
from workbench.errors import WorkbenchError, check_timesteps
from workbench.network import SpikingNetwork, simulate
from workbench.neurons import SpikingCell

MIN_FRACTION = 0.05  # θ_t >= 5 % of θ_max·θ: never near 0 (floor(v/θ) would explode)
MODES = ("constant", "DTT", "DET", "MSAT")


@dataclass(frozen=True)
class MSATConstants:
    """The six constants of the adaptive threshold (dimensionless in normalised units)."""

    alpha: float = 1.0
    k_a: float = 1.0
    k_i: float = 1.0
    C: float = 1.0
    tau_mp: float = 1.0
    tau_rd: float = 1.0

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise WorkbenchError(f"MSAT constant {name} must be a finite number > 0, "
                                     f"got {value!r}")


class MSATState(NamedTuple):
    """Per-neuron running sum of post-reset potentials, steps seen, the gate's generator."""

    potential_sum: Tensor
    steps: int
    generator: torch.Generator | None


@dataclass
class MultiStageThreshold:
    """Threshold policy for :class:`~workbench.neurons.SpikingCell` (a ``ThresholdPolicy``).

    Args:
        constants: the six MSAT constants.
        use_dtt, use_det: switch the membrane-potential and depolarisation-rate terms.
        theta_max: θ_max, relative to the cell's base θ.
        confidence: spike confidence c_l in (0, 1] of this layer; 1 disables the gate.
        t_c: the gate acts during the first t_c steps only.
        seed: seed of the gate's Bernoulli draws (every run starts from it).
    """

    constants: MSATConstants = MSATConstants()
    use_dtt: bool = True
    use_det: bool = True
    theta_max: float = 1.0
    confidence: float = 1.0
    t_c: int = 16
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.confidence <= 1:
            raise WorkbenchError(f"spike confidence must lie in (0, 1], got {self.confidence}")
        if not self.theta_max > 0:
            raise WorkbenchError(f"theta_max must be > 0, got {self.theta_max}")
        self.t_c = check_timesteps(self.t_c, "t_c")

    @property
    def gated(self) -> bool:
        return self.confidence < 1

    def initial_state(self, v: Tensor) -> MSATState:
        generator = None
        if self.gated:
            generator = torch.Generator(device=v.device).manual_seed(self.seed)
        return MSATState(torch.zeros_like(v), 0, generator)

    def threshold(self, base: Tensor, v_prev: Tensor, x: Tensor, state: MSATState
                  ) -> Tensor | None:
        theta = self.adaptive(base, v_prev, x, state)
        if self.gated:  # a gated layer reports θ every step, so its recording stays one tensor
            theta = base.expand_as(x) if theta is None else theta
            if state.steps < self.t_c:
                keep = torch.rand(x.shape, generator=state.generator,
                                  device=x.device) < self.confidence
                theta = theta.masked_fill(~keep, math.inf)
        return theta

    def adaptive(self, base: Tensor, v_prev: Tensor, x: Tensor, state: MSATState
                 ) -> Tensor | None:
        """θ_t of the DTT/DET terms (None when both are off: the constant θ)."""
        if not (self.use_dtt or self.use_det):
            return None
        theta_max = self.theta_max * base
        if state.steps == 0:
            return theta_max.expand_as(x)
        c = self.constants
        drive = torch.zeros_like(x)
        if self.use_dtt:
            deviation = v_prev - state.potential_sum / state.steps
            drive = drive + c.tau_mp * (c.alpha * deviation - self.theta_max
                                        + c.k_a * nn.functional.softplus(deviation / c.k_i))
        if self.use_det:
            drive = drive + c.tau_rd * torch.exp(torch.clamp(-x / c.C, max=30.0))
        return theta_max * torch.sigmoid(drive).clamp(min=MIN_FRACTION)

    def update(self, state: MSATState, v_post: Tensor, spikes: Tensor) -> MSATState:
        return MSATState(state.potential_sum + v_post, state.steps + 1, state.generator)


def with_policy(net: SpikingNetwork, mode: str, constants: MSATConstants | None = None,
                confidences: dict[str, float] | None = None, t_c: int = 16, seed: int = 0,
                max_spikes: int = 1) -> SpikingNetwork:
    """A copy of a converted ``net`` whose cells use the threshold ``mode`` (constant, DTT, DET,
    MSAT), optionally with per-layer spike confidences and multi-spike (floor) cells."""
    if mode not in MODES:
        raise WorkbenchError(f"unknown threshold mode {mode!r}; accepted: {', '.join(MODES)}")
    constants = constants or MSATConstants()
    adapted = copy.deepcopy(net)
    for i, (name, cell) in enumerate(adapted.cells().items()):
        if not isinstance(cell, SpikingCell):
            raise WorkbenchError(f"MSAT needs IF cells; {name!r} is {type(cell).__name__}")
        cell.policy = MultiStageThreshold(
            constants, use_dtt=mode in ("DTT", "MSAT"), use_det=mode in ("DET", "MSAT"),
            confidence=(confidences or {}).get(name, 1.0), t_c=t_c, seed=seed + i)
        cell.max_spikes = max_spikes
    return adapted


@torch.no_grad()
def inactive_masks(net: SpikingNetwork, ann: nn.Sequential, x: Tensor) -> dict[str, Tensor]:
    """Per cell, [B, *neurons] bool: the paired ANN leaves this neuron at zero for this input."""
    cells = list(net.cells())
    activations = ann_activations(ann, x)
    if len(activations) != len(cells):
        raise WorkbenchError(f"the ANN has {len(activations)} activation layers but the SNN has "
                             f"{len(cells)} cells: not its paired ANN")
    return {name: a <= 0 for name, a in zip(cells, activations, strict=True)}


@torch.no_grad()
def sin_fraction(net: SpikingNetwork, ann: nn.Sequential, x: Tensor, T: int,
                 x_ann: Tensor | None = None) -> dict[str, Tensor]:
    """Per cell, [T]: the share of the spikes at each step emitted by neurons the paired ANN
    leaves inactive (the SIN error), for SNN input ``x`` (and ANN input ``x_ann``, default
    ``x``; event SNNs pair with an ANN on event rates). Computed on the fly (no rasters)."""
    inactive = inactive_masks(net, ann, x if x_ann is None else x_ann)
    sin = {name: torch.zeros(T) for name in inactive}
    total = {name: torch.zeros(T) for name in inactive}

    def observe(t, name, spikes, state):
        sin[name][t] = float((spikes * inactive[name]).sum())
        total[name][t] = float(spikes.sum())

    simulate(net, x, T, observe=observe)
    return {name: sin[name] / total[name].clamp(min=1) for name in sin}


def spike_confidences(net: SpikingNetwork, ann: nn.Sequential, x_train: Tensor,
                      t_c: int = 16, x_ann: Tensor | None = None) -> dict[str, float]:
    """c_l = 1 − (SIN spikes / all spikes) over the first t_c steps, per layer, on training
    data ``x_train`` (ANN input ``x_ann``, default ``x_train``)."""
    inactive = inactive_masks(net, ann, x_train if x_ann is None else x_ann)
    sin = dict.fromkeys(inactive, 0.0)
    total = dict.fromkeys(inactive, 0.0)

    def observe(t, name, spikes, state):
        sin[name] += float((spikes * inactive[name]).sum())
        total[name] += float(spikes.sum())

    simulate(net, x_train, t_c, observe=observe)
    return {name: max(1.0 - sin[name] / total[name], 0.05) if total[name] else 1.0
            for name in sin}


SEARCH_T = (2, 4, 8, 16)


def score(net: SpikingNetwork, x: Tensor, y: Tensor, steps: tuple[int, ...] = SEARCH_T) -> float:
    """Mean accuracy over the given T (one simulation)."""
    curve = simulate(net, x, max(steps)).accuracy_curve(y)
    return float(np.mean([float(curve[t - 1]) for t in steps]))


def search_constants(net: SpikingNetwork, mode: str, x_val: Tensor, y_val: Tensor,
                     trials: int = 60, seed: int = 0, progress: bool = True
                     ) -> tuple[MSATConstants, float]:
    """Random search of the six constants, log-uniform in [0.1, 3], on validation data only,
    scoring the mean accuracy over T ∈ {2, 4, 8, 16}. Returns (best constants, best score);
    the default constants are trial 0."""
    from tqdm.auto import tqdm

    rng = np.random.default_rng(seed)
    best, best_score = MSATConstants(), -1.0
    candidates = [MSATConstants()] + [
        MSATConstants(*np.exp(rng.uniform(np.log(0.1), np.log(3.0), 6)).tolist())
        for _ in range(trials - 1)]
    for constants in tqdm(candidates, desc=f"searching {mode} constants", disable=not progress,
                          leave=False):
        s = score(with_policy(net, mode, constants), x_val, y_val)
        if s > best_score:
            best, best_score = constants, s
    return best, best_score

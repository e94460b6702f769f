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
the first ``t_c`` steps (measured on training data). During those steps a neuron that crosses
θ_t fires and resets as usual, and its spike is then kept with probability c_l (a seeded
Bernoulli gate): a dropped spike's charge is discarded. Deterministic after ``t_c``.

Converted MSAT neurons send the charge ``s_t·θ_t`` on (the authors' neuron returns
``spike * threshold``), so the soft reset removes exactly what reaches the next layer.

The published constants (:data:`PUBLISHED`) come from the authors' repository
(``CIFAR10/result_conversion_resnet20/parameters_group2/hyperparameters.txt``: α = 0.3,
k_a = 1, k_i = 1, C = 5, τ_mp = 0.2, τ_rd = 0.1); :func:`search` refines them on a validation
split with the same budget and objective as the constant-threshold baseline.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

from workbench.convert import ann_activations, scale_thresholds
from workbench.errors import WorkbenchError, check_choice, check_timesteps
from workbench.network import SpikingNetwork, simulate
from workbench.neurons import INITIAL_POTENTIALS, SpikingCell

MIN_FRACTION = 0.05  # θ_t >= 5 % of θ_max·θ: never near 0 (floor(v/θ) would explode)
MODES = ("constant", "DTT", "DET", "MSAT")


@dataclass(frozen=True)
class MSATConstants:
    """The six constants of the adaptive threshold (dimensionless in normalised units); the
    defaults are the published ones (:data:`PUBLISHED`)."""

    alpha: float = 0.3
    k_a: float = 1.0
    k_i: float = 1.0
    C: float = 5.0
    tau_mp: float = 0.2
    tau_rd: float = 0.1

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise WorkbenchError(f"MSAT constant {name} must be a finite number > 0, "
                                     f"got {value!r}")


PUBLISHED = MSATConstants()  # the authors' ResNet20/CIFAR-10 file (module docstring)


class MSATState(NamedTuple):
    """Per-neuron running sum of post-reset potentials, steps seen, the gate's generator."""

    potential_sum: Tensor
    steps: int
    generator: torch.Generator | None


@dataclass(frozen=True)
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

    constants: MSATConstants = PUBLISHED
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
        object.__setattr__(self, "t_c", check_timesteps(self.t_c, "t_c"))

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
        """θ_t of the DTT/DET terms (None when both are off: the constant θ)."""
        if not (self.use_dtt or self.use_det):
            return None
        theta_max = self.theta_max * base
        if state.steps == 0:
            return theta_max.expand_as(x)
        # This runs for every neuron at every step: each line is one pass over the neurons,
        # in place on fresh temporaries, with the constant factors folded into the passes
        # (k_a·softplus(d/k_i) = (k_a/k_i)·softplus(d, β = 1/k_i); τ_mp and τ_rd scale the sum).
        c, drive = self.constants, None
        if self.use_dtt:
            deviation = torch.sub(v_prev, state.potential_sum, alpha=1.0 / state.steps)
            drive = nn.functional.softplus(deviation, beta=1.0 / c.k_i)
            drive.mul_(c.k_a / c.k_i).add_(deviation, alpha=c.alpha).sub_(self.theta_max)
            if self.use_det:
                drive.mul_(c.tau_mp / c.tau_rd)  # the sum's common factor τ_rd comes last
        if self.use_det:
            det = x.mul(-1.0 / c.C).clamp_(max=30.0).exp_()
            drive = det if drive is None else drive.add_(det)
        scale = c.tau_rd if self.use_det else c.tau_mp
        return drive.mul_(scale).sigmoid_().clamp_(min=MIN_FRACTION).mul_(theta_max)

    def emit(self, spikes: Tensor, state: MSATState) -> Tensor:
        """The spike-confidence gate: during the first t_c steps each emitted spike is kept with
        probability c_l (the neuron has already fired and reset; a dropped spike's charge is
        lost)."""
        if not self.gated or state.steps >= self.t_c:
            return spikes
        keep = torch.rand(spikes.shape, generator=state.generator, device=spikes.device)
        return spikes * (keep < self.confidence)

    def update(self, state: MSATState, v_post: Tensor, spikes: Tensor) -> MSATState:
        return MSATState(state.potential_sum + v_post, state.steps + 1, state.generator)


def with_policy(net: SpikingNetwork, mode: str, constants: MSATConstants = PUBLISHED,
                confidences: dict[str, float] | None = None, t_c: int = 16, seed: int = 0,
                max_spikes: int = 1, threshold_scale: float = 1.0,
                initial: str | None = None) -> SpikingNetwork:
    """A copy of a converted ``net`` whose cells use the threshold ``mode`` (constant, DTT, DET,
    MSAT) and send the charge s·θ_t on, optionally with per-layer spike confidences (gate seed
    ``seed + layer index``), multi-spike (floor) cells, every base θ scaled by
    ``threshold_scale`` and the initial membrane ``initial`` ("zero" or "half")."""
    check_choice(mode, MODES, "threshold mode")
    adapted = scale_thresholds(net, threshold_scale)
    for i, (name, cell) in enumerate(adapted.cells().items()):
        if not isinstance(cell, SpikingCell):
            raise WorkbenchError(f"MSAT needs IF cells; {name!r} is {type(cell).__name__}")
        cell.policy = MultiStageThreshold(
            constants, use_dtt=mode in ("DTT", "MSAT"), use_det=mode in ("DET", "MSAT"),
            confidence=(confidences or {}).get(name, 1.0), t_c=t_c, seed=seed + i)
        cell.max_spikes = max_spikes
        cell.output = "charge"
        if initial is not None:
            cell.initial = check_choice(initial, INITIAL_POTENTIALS, "initial potential")
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


class SINObserver:
    """A ``simulate`` observer counting, per cell and step, all emitted spikes and the spikes of
    neurons the paired ANN leaves inactive (the SIN error). ``sin[cell]``, ``total[cell]``: [T]."""

    def __init__(self, inactive: dict[str, Tensor], T: int) -> None:
        # flat 0/1 masks: a step's SIN count is one dot product, no [B, N] temporary (spike
        # counts are whole numbers: exact in any summation order below 2^24 per step in float32)
        self._masks = {name: m.flatten() for name, m in inactive.items()}
        self.sin = {name: torch.zeros(T) for name in inactive}
        self.total = {name: torch.zeros(T) for name in inactive}

    def __call__(self, t: int, name: str, spikes: Tensor, state: object) -> None:
        flat = spikes.detach().reshape(-1)
        mask = self._masks[name]
        if mask.dtype != flat.dtype:  # once, in the spikes' dtype
            mask = self._masks[name] = mask.to(flat.dtype)
        self.sin[name][t] = float(torch.dot(flat, mask))
        self.total[name][t] = float(flat.sum())

    def fraction(self) -> dict[str, Tensor]:
        """Per cell, [T]: the SIN share of the spikes at each step."""
        return {name: self.sin[name] / self.total[name].clamp(min=1) for name in self.sin}

    def overall(self, steps: int | None = None) -> tuple[Tensor, Tensor]:
        """SIN spikes and all spikes of every cell together per step, [T] each (the first
        ``steps`` only when given)."""
        sin = sum(self.sin.values())[:steps]
        total = sum(self.total.values())[:steps]
        return sin, total


@torch.no_grad()
def sin_fraction(net: SpikingNetwork, ann: nn.Sequential, x: Tensor, T: int,
                 x_ann: Tensor | None = None) -> dict[str, Tensor]:
    """Per cell, [T]: the share of the spikes at each step emitted by neurons the paired ANN
    leaves inactive (the SIN error), for SNN input ``x`` (and ANN input ``x_ann``, default
    ``x``: an event SNN pairs with an ANN on event rates). Computed on the fly (no rasters)."""
    observer = SINObserver(inactive_masks(net, ann, x if x_ann is None else x_ann), T)
    simulate(net, x, T, observe=observer)
    return observer.fraction()


def spike_confidences(net: SpikingNetwork, ann: nn.Sequential, x_train: Tensor,
                      t_c: int = 16) -> dict[str, float]:
    """c_l = 1 − (SIN spikes / all spikes) over the first t_c steps, per layer, measured on
    training data ``x_train`` with ``net`` ungated (floored at 0.05; 1 for a silent layer)."""
    observer = SINObserver(inactive_masks(net, ann, x_train), t_c)
    simulate(net, x_train, t_c, observe=observer)
    return {name: max(1.0 - float(observer.sin[name].sum() / observer.total[name].sum()), 0.05)
            if observer.total[name].sum() else 1.0 for name in observer.sin}


SEARCH_T = (2, 4, 8, 16, 64)
SCALE_RANGE = (0.25, 2.0)  # constant baseline: θ scale, log-uniform
CONSTANT_RANGE = (0.1, 3.0)  # adaptive modes: each of the six constants, log-uniform


def score(net: SpikingNetwork, x: Tensor, y: Tensor, steps: tuple[int, ...] = SEARCH_T) -> float:
    """Mean accuracy over the given T (one simulation)."""
    curve = simulate(net, x, max(steps)).accuracy_curve(y)
    return float(np.mean([float(curve[t - 1]) for t in steps]))


@dataclass(frozen=True)
class Candidate:
    """One point of a threshold search: the mode's constants, θ scale and initial membrane."""

    mode: str
    constants: MSATConstants = PUBLISHED
    threshold_scale: float = 1.0
    initial: str = "zero"

    def network(self, net: SpikingNetwork, confidences: dict[str, float] | None = None,
                seed: int = 0) -> SpikingNetwork:
        return with_policy(net, self.mode, self.constants, confidences, seed=seed,
                           threshold_scale=self.threshold_scale, initial=self.initial)


def candidates(mode: str, trials: int, seed: int = 0) -> list[Candidate]:
    """``trials`` random search points for ``mode``. The constant baseline varies the θ scale
    (log-uniform in :data:`SCALE_RANGE`) and v₀ ∈ {0, θ/2}, starting from θ = 1, v₀ = 0; the
    adaptive modes vary the six constants (log-uniform in :data:`CONSTANT_RANGE`), starting
    from the published ones."""
    check_choice(mode, MODES, "threshold mode")
    if int(trials) != trials or trials < 1:
        raise WorkbenchError(f"trials must be a whole number >= 1, got {trials!r}")
    rng = np.random.default_rng(seed)
    if mode == "constant":
        low, high = np.log(SCALE_RANGE)
        return [Candidate(mode)] + [
            Candidate(mode, threshold_scale=float(np.exp(rng.uniform(low, high))),
                      initial=str(rng.choice(INITIAL_POTENTIALS)))
            for _ in range(trials - 1)]
    low, high = np.log(CONSTANT_RANGE)
    return [Candidate(mode)] + [
        Candidate(mode, MSATConstants(*np.exp(rng.uniform(low, high, 6)).tolist()))
        for _ in range(trials - 1)]


def search(net: SpikingNetwork, mode: str, x_val: Tensor, y_val: Tensor, trials: int = 60,
           seed: int = 0, progress: bool = True) -> tuple[Candidate, float]:
    """Random search on validation data only, scoring the mean accuracy over T ∈
    :data:`SEARCH_T`: the same objective, split and budget for every mode. Returns (best
    candidate, its score); ties keep the earlier candidate (the published or default one)."""
    from tqdm.auto import tqdm

    best, best_score = None, -1.0
    for candidate in tqdm(candidates(mode, trials, seed), desc=f"searching {mode} thresholds",
                          disable=not progress, leave=False):
        s = score(candidate.network(net), x_val, y_val)
        if s > best_score:
            best, best_score = candidate, s
    return best, best_score

"""Stopping early: per-sample confidence policies on the accumulated readout O_t.

One interface for every policy (:class:`StopPolicy`): ``calibrate(trajectory, labels)`` (on
training or validation data only) returns a *new*, calibrated policy, and
``stop_times(trajectory)`` → steps simulated per sample [B], in 1..T. Policies are frozen
dataclasses, so one calibrated object can be shared by many dashboard sessions and serve as a
cache key. They replay offline on a recorded trajectory, or run live:
``simulate(..., stop=policy.rule())`` stops samples as they exit (the same decisions,
test-checked).

- :class:`FixedT` — every sample runs T steps.
- :class:`DynamicConfidence` — Li, Jones & Furber, "Unleashing the potential of spiking neural
  networks with Dynamic Confidence", ICCV 2023: confidence c_t = max softmax(O_t / K); stop at
  the first t with c_t > c*; c* from a Pareto sweep on held-out data to meet a target accuracy.
- :class:`TopKCutoff` — Wu et al., "Optimising event-driven spiking neural network with
  regularisation and cutoff" (AOI-SNN), arXiv 2301.09522: gap G_t = top1(O_t) − top2(O_t);
  stop at the first t with G_t > β_t, β_t calibrated per step on training data (dropout on) for a
  confidence rate 1 − ε.
- Oracles (they read the labels; upper bounds, never deployable): :func:`first_correct`
  (Dynamic Confidence's "potential") and :func:`optimal_cutoff` (AOI's optimal cutoff
  timestep: correct from then on).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Protocol, runtime_checkable

import pandas as pd
import torch
from torch import Tensor

from workbench.errors import WorkbenchError, check_timesteps
from workbench.network import StopRule
from workbench.trajectory import Trajectory


@runtime_checkable
class StopPolicy(Protocol):
    """A per-sample stopping policy (frozen: ``calibrate`` returns a new instance)."""

    name: str

    def calibrate(self, trajectory: Trajectory, labels: Tensor) -> StopPolicy:
        """A calibrated copy, from training or validation data (never test)."""

    def stop_times(self, trajectory: Trajectory) -> Tensor:
        """Steps simulated per sample, [B] in 1..T."""


def first_true(mask: Tensor) -> Tensor:
    """First step (1-based) where ``mask`` [T, B] is True per sample; T where it never is."""
    hit = mask.clone()
    hit[-1] = True  # forced exit at T
    return hit.float().argmax(0) + 1  # argmax returns the first maximal index


def correct_at(trajectory: Trajectory, labels: Tensor) -> Tensor:
    """[T, B] bool: the prediction after step t is right."""
    labels = torch.as_tensor(labels, device=trajectory.readout.device)
    return trajectory.predictions() == labels


def first_correct(trajectory: Trajectory, labels: Tensor) -> Tensor:
    """Oracle ("potential"): stop at the first step whose prediction is right (T if never)."""
    return first_true(correct_at(trajectory, labels))


def stably_correct(correct: Tensor) -> Tensor:
    """[T, B]: correct at t and at every later step (a backward cumulative product)."""
    return correct.flip(0).to(torch.int64).cumprod(0).flip(0).bool()


def optimal_cutoff(trajectory: Trajectory, labels: Tensor) -> Tensor:
    """Oracle (optimal cutoff timestep): the first step from which the prediction stays right
    (T if it is wrong at T)."""
    return first_true(stably_correct(correct_at(trajectory, labels)))


@dataclass(frozen=True)
class Outcome:
    """What a policy's stop times give on one trajectory."""

    accuracy: float
    mean_steps: float
    p90_steps: float
    spikes_per_sample: float


def outcome(trajectory: Trajectory, labels: Tensor, stop_steps: Tensor) -> Outcome:
    """Accuracy at each sample's stop step, mean and 90th-percentile stop step, and spikes spent
    per sample up to the stops."""
    labels = torch.as_tensor(labels, device=trajectory.readout.device)
    stop_steps = torch.as_tensor(stop_steps, device=trajectory.readout.device)
    index = torch.arange(trajectory.B, device=stop_steps.device)
    prediction = trajectory.predictions()[stop_steps - 1, index]
    stopped = trajectory.stopped_at(stop_steps)
    steps = stop_steps.float()
    return Outcome(float((prediction == labels).float().mean()), float(steps.mean()),
                   float(torch.quantile(steps, 0.9)), float(stopped.spikes_per_sample().mean()))


def fixed_t_curve(trajectory: Trajectory, labels: Tensor) -> pd.DataFrame:
    """Accuracy and spikes per sample of every fixed T (the baseline curve)."""
    accuracy = trajectory.accuracy_curve(labels)
    spikes = trajectory.cumulative_spikes().mean(1)
    return pd.DataFrame({"mean_steps": range(1, trajectory.T + 1),
                         "accuracy": accuracy.cpu().numpy(), "spikes_per_sample": spikes.cpu()})


@dataclass(frozen=True)
class FixedT:
    """Every sample runs ``T`` steps."""

    T: int
    name: str = "fixed T"

    def __post_init__(self) -> None:
        object.__setattr__(self, "T", check_timesteps(self.T))

    def calibrate(self, trajectory: Trajectory, labels: Tensor) -> FixedT:
        return self

    def stop_times(self, trajectory: Trajectory) -> Tensor:
        if self.T > trajectory.T:
            raise WorkbenchError(f"FixedT({self.T}) needs a trajectory of >= {self.T} steps, "
                                 f"got {trajectory.T}")
        return torch.full((trajectory.B,), self.T, device=trajectory.readout.device)

    def rule(self) -> StopRule:
        return lambda t, readout: torch.full((readout.shape[0],), t >= self.T,
                                             device=readout.device)


def _check_unit(value: float | None, name: str, low_open: bool = True) -> float | None:
    if value is None:
        return None
    ok = (0 < value < 1) if low_open else (0 <= value < 1)
    if not isinstance(value, int | float) or not ok:
        interval = "(0, 1)" if low_open else "[0, 1)"
        raise WorkbenchError(f"{name} must lie in {interval}, got {value!r}")
    return float(value)


CONFIDENCE_GRID = tuple(round(c, 6) for c in torch.linspace(0.3, 0.999, 141).tolist())


@dataclass(frozen=True)
class DynamicConfidence:
    """Stop when max softmax(O_t / K) exceeds c*.

    Args:
        threshold: c* in (0, 1); chosen by :meth:`calibrate` when None.
        scale: K, the fixed divisor of the accumulated readout (not divided by t: confidence
            rises with t by construction, so every sample eventually exits). Its right value
            depends on the logit scale; when None, :meth:`calibrate` picks it from ``scales``.
        tolerance: calibration picks the lowest-latency (K, c*) whose accuracy on the
            calibration data reaches (accuracy at T) − ``tolerance``.
        grid: the candidate c* of the calibration sweep.
    """

    threshold: float | None = None
    scale: float | None = None
    tolerance: float = 0.0
    scales: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
    name: str = "Dynamic Confidence"
    grid: tuple[float, ...] = CONFIDENCE_GRID

    def __post_init__(self) -> None:
        object.__setattr__(self, "threshold", _check_unit(self.threshold, "confidence threshold c*"))
        if self.scale is not None and not self.scale > 0:
            raise WorkbenchError(f"confidence scale K must be > 0, got {self.scale}")

    def confidence(self, readout: Tensor) -> Tensor:
        """c_t = max softmax(O_t / K), [T, B] (or [B] for one step)."""
        if self.scale is None:
            raise WorkbenchError("Dynamic Confidence has no scale K: calibrate it or give one")
        return torch.softmax(readout / self.scale, dim=-1).amax(-1)

    def stop_times_for(self, trajectory: Trajectory, threshold: float) -> Tensor:
        return first_true(self.confidence(trajectory.readout) > threshold)

    def stop_times(self, trajectory: Trajectory) -> Tensor:
        if self.threshold is None:
            raise WorkbenchError("Dynamic Confidence has no threshold c*: calibrate it or give one")
        return self.stop_times_for(trajectory, self.threshold)

    def sweep(self, trajectory: Trajectory, labels: Tensor) -> pd.DataFrame:
        """Accuracy and mean latency for every c* of the grid, with the Pareto-optimal rows
        marked (no other c* is both faster and at least as accurate)."""
        rows = []
        for c in self.grid:
            o = outcome(trajectory, labels, self.stop_times_for(trajectory, c))
            rows.append({"threshold": c, "accuracy": o.accuracy, "mean_steps": o.mean_steps})
        table = pd.DataFrame(rows)
        by_latency = table.sort_values(["mean_steps", "accuracy"], ascending=[True, False])
        best_faster = by_latency["accuracy"].cummax().shift(fill_value=-1.0)
        table["pareto"] = by_latency["accuracy"] > best_faster  # aligned on the index
        return table

    def calibrate(self, trajectory: Trajectory, labels: Tensor) -> DynamicConfidence:
        """A copy with c* (and K when unset): the fastest grid point reaching the target
        accuracy on the calibration data (training or validation split, never test)."""
        target = float(trajectory.accuracy_curve(labels)[-1]) - self.tolerance
        scales = self.scales if self.scale is None else (self.scale,)
        table = pd.concat([replace(self, scale=scale).sweep(trajectory, labels).assign(scale=scale)
                           for scale in scales], ignore_index=True)
        good = table[table.accuracy >= target - 1e-9]
        row = (good if len(good) else table.nlargest(1, "accuracy")).sort_values(
            ["mean_steps", "threshold"]).iloc[0]
        return replace(self, threshold=float(row["threshold"]), scale=float(row["scale"]))

    def rule(self) -> StopRule:
        threshold = self.threshold
        if threshold is None:
            raise WorkbenchError("Dynamic Confidence has no threshold c*: calibrate it or give one")
        return lambda t, readout: self.confidence(readout) > threshold


@dataclass(frozen=True)
class TopKCutoff:
    """Stop at the first t where top1(O_t) − top2(O_t) > β_t.

    Args:
        epsilon: ε in [0, 1): calibration keeps, at every step, the smallest β whose exits are
            stably correct for a share >= 1 − ε of the calibration samples above it.
        betas: per-step thresholds β_1..β_T; set by :meth:`calibrate`.
        bins: grid size M of candidate β = m·max(G)/M.
    """

    epsilon: float = 0.05
    betas: tuple[float, ...] | None = None
    bins: int = 100
    name: str = "AOI Top-K cutoff"

    def __post_init__(self) -> None:
        _check_unit(self.epsilon, "epsilon", low_open=False)

    @staticmethod
    def gap(readout: Tensor) -> Tensor:
        top = readout.topk(2, dim=-1).values
        return top[..., 0] - top[..., 1]

    def calibrate(self, trajectory: Trajectory, labels: Tensor) -> TopKCutoff:
        """A copy with β_t from training data (run it with dropout on: AOI's calibration)."""
        gap = self.gap(trajectory.readout)  # [T, B]
        ok = stably_correct(correct_at(trajectory, labels))  # [T, B]
        grid = torch.arange(1, self.bins + 1, device=gap.device) * gap.max() / self.bins  # [M]
        above = gap[:, :, None] > grid  # [T, B, M]
        above[:, :, -1] = True  # the largest candidate always passes
        passed = above.sum(1).clamp(min=1)
        rate = (above & ok[:, :, None]).sum(1) / passed  # [T, M]
        meets = rate >= 1 - self.epsilon
        meets[:, -1] = True
        betas = grid[meets.float().argmax(1)]  # smallest candidate meeting the rate
        return replace(self, betas=tuple(betas.tolist()))

    def stop_times(self, trajectory: Trajectory) -> Tensor:
        betas = self.beta_tensor(trajectory.T, trajectory.readout.device)
        return first_true(self.gap(trajectory.readout) > betas[:, None])

    def beta_tensor(self, T: int | None = None, device: torch.device | None = None) -> Tensor:
        """β_1..β_T as a tensor [T] (all calibrated steps when T is None)."""
        if self.betas is None:
            raise WorkbenchError("Top-K cutoff has no thresholds β_t: calibrate it first")
        T = len(self.betas) if T is None else T
        if len(self.betas) < T:
            raise WorkbenchError(f"β_t calibrated for {len(self.betas)} steps, trajectory has {T}")
        return torch.tensor(self.betas[:T], device=device)

    def rule(self) -> StopRule:
        betas = self.beta_tensor()
        return lambda t, readout: self.gap(readout) > betas.to(readout.device)[t - 1]


@dataclass(frozen=True)
class Oracle:
    """An oracle as a policy: it reads the labels (upper bound only; no live rule)."""

    labels: tuple[int, ...]
    stably: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", tuple(torch.as_tensor(self.labels).tolist()))

    @property
    def name(self) -> str:
        return "oracle: optimal cutoff" if self.stably else "oracle: first correct"

    def calibrate(self, trajectory: Trajectory, labels: Tensor) -> Oracle:
        return self

    def stop_times(self, trajectory: Trajectory) -> Tensor:
        labels = torch.tensor(self.labels, device=trajectory.readout.device)
        return (optimal_cutoff if self.stably else first_correct)(trajectory, labels)


def policy_curve(trajectory: Trajectory, labels: Tensor, stop_times_fn, values) -> pd.DataFrame:
    """Accuracy vs mean latency of a policy swept over ``values`` (``stop_times_fn(v)``)."""
    rows = []
    for v in values:
        o = outcome(trajectory, labels, stop_times_fn(v))
        rows.append({"value": v, "accuracy": o.accuracy, "mean_steps": o.mean_steps,
                     "spikes_per_sample": o.spikes_per_sample})
    return pd.DataFrame(rows)


def oracle_curve(trajectory: Trajectory, labels: Tensor, stably: bool = False) -> pd.DataFrame:
    """The oracle's accuracy at each latency budget: samples stop at their oracle step, capped
    at T' = 1..T (a sample whose oracle step exceeds T' stops at T')."""
    oracle = (optimal_cutoff if stably else first_correct)(trajectory, labels)
    return policy_curve(trajectory, labels, lambda cap: oracle.clamp(max=cap),
                        range(1, trajectory.T + 1))

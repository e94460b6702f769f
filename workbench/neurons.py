"""Discrete-time spiking cells built on Norse primitives.

The cell used by conversion, IIR, MSAT and the confidence methods (one step, membrane ``v`` in
the units of the input current ``x``, threshold ``θ`` > 0, leak ``λ`` in [0, 1])::

    v_t = λ·v_{t-1} + x_t
    z_t = Θ(v_t/θ_t − 1)                     Norse ``threshold`` (surrogate gradient); v > θ spikes
    v_t ← v_t − θ_t·z_t                      soft reset  (Norse ``reset_subtract``)
    v_t ← (1 − z_t)·v_t                      hard reset  (Norse ``reset_value`` to 0)

``λ = 1`` gives the IF neuron. ``θ_t`` comes from a *threshold policy*: the constant policy
returns the cell's θ; an adaptive one (MSAT) computes θ_t per neuron from its own state without
a new cell, and may drop emitted spikes after the reset (MSAT's spike-confidence gate: the charge
is discarded, never blocked with θ = ∞, which would make the soft reset 0·∞ = NaN). With
``max_spikes > 1`` the cell emits ``clip(floor(v/θ), 0, max_spikes)`` spikes per step
(multi-spike mode, forward only). What reaches the next layer's synapses is the spike count
``z_t`` (``output="spike"``) or the charge ``z_t·θ_t`` (``output="charge"``, the converted
neuron of MSAT, whose soft reset removes exactly what it sends on); operation counts always
count events, never charge.

The hybrid method's ``v ← v + (x − v)/τ`` form is Norse's ``LIFBoxCell`` step with subtractive
reset, in :class:`LIFBoxLayer` behind the same ``(x, state) -> (z, state)`` interface.

Surrogates are Norse's threshold methods plus ``"atan"``, which Norse lacks: the arctan
surrogate of SpikingJelly's ``ATan`` that the hybrid paper trains with, forward Θ(x), backward
``(α/2) / (1 + (π/2·α·x)²)`` — at α = 2 it still passes 9 % of its peak gradient at |x| = 1
(SuperSpike at α = 100 passes 0.01 % there).
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol

import torch
from norse.torch.functional.heaviside import heaviside
from norse.torch.functional.lif_box import LIFBoxFeedForwardState
from norse.torch.functional.reset import reset_subtract, reset_value
from norse.torch.functional.threshold import threshold as norse_threshold
from torch import Tensor, nn

from workbench.errors import WorkbenchError, check_choice

RESETS = ("subtract", "zero")
SURROGATES = ("heaviside", "triangle", "super", "tanh", "circ", "heavi_erfc", "atan")
INITIAL_POTENTIALS = ("zero", "half")
OUTPUTS = ("spike", "charge")
THRESHOLD_FLOOR = 1e-4  # θ never goes below this (trainable θ, adaptive policies)


def _shown(theta: Tensor) -> str:
    """A threshold for a module's repr: its value, or its shape when it is per neuron."""
    return f"{theta.item():.4g}" if theta.numel() == 1 else f"per-neuron{tuple(theta.shape)}"


class _ArcTanSpike(torch.autograd.Function):
    """Θ(x) forward; ``(α/2) / (1 + (π/2·α·x)²)`` backward (SpikingJelly's ``ATan``)."""

    @staticmethod
    def forward(ctx, x: Tensor, alpha: float) -> Tensor:
        ctx.save_for_backward(x)
        ctx.alpha = alpha
        return heaviside(x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:
        (x,) = ctx.saved_tensors
        return grad * (ctx.alpha / 2) / (1 + (torch.pi / 2 * ctx.alpha * x) ** 2), None


def spike_fn(x: Tensor, surrogate: str, alpha: float) -> Tensor:
    """Θ(x) (a spike where x > 0) with the gradient of ``surrogate`` (see the module docstring)."""
    if surrogate == "atan":
        return _ArcTanSpike.apply(x, alpha)
    return norse_threshold(x, surrogate, alpha)


class CellState(NamedTuple):
    """State of a :class:`SpikingCell`: membrane ``v`` [B, *neurons], the threshold used at the
    last step (None for a constant policy) and the policy's own state."""

    v: Tensor
    threshold: Tensor | None = None
    policy: Any = None


class ThresholdPolicy(Protocol):
    """How θ_t is chosen each step. Implementations keep their state explicit."""

    def initial_state(self, v: Tensor) -> Any:
        """Policy state for a batch whose membrane is ``v``."""

    def threshold(self, base: Tensor, v_prev: Tensor, x: Tensor, state: Any) -> Tensor | None:
        """θ_t before integration, given the cell's base θ, ``v_{t-1}`` and input ``x_t``.
        Return None for "use ``base`` unchanged" (no per-neuron tensor is materialised)."""

    def emit(self, spikes: Tensor, state: Any) -> Tensor:
        """The spikes that leave the neuron, after firing and reset (a gate may drop some)."""

    def update(self, state: Any, v_post: Tensor, spikes: Tensor) -> Any:
        """Policy state after the step, from the post-reset membrane and the emitted spikes."""


class ConstantThreshold:
    """θ_t = θ: the ordinary IF/LIF neuron."""

    def initial_state(self, v: Tensor) -> None:
        return None

    def threshold(self, base: Tensor, v_prev: Tensor, x: Tensor, state: Any) -> None:
        return None

    def emit(self, spikes: Tensor, state: Any) -> Tensor:
        return spikes

    def update(self, state: Any, v_post: Tensor, spikes: Tensor) -> None:
        return None


def _as_tensor(value: float | Tensor, name: str, low: float, high: float | None) -> Tensor:
    t = torch.as_tensor(value, dtype=torch.float32).clone()
    if not torch.isfinite(t).all() or (t <= low).any() or (high is not None and (t > high).any()):
        bound = f"> {low}" + (f" and <= {high}" if high is not None else "")
        shown = t.item() if t.numel() == 1 else f"a tensor with min {t.min().item():.4g}"
        raise WorkbenchError(f"{name} must be {bound}, got {shown}")
    return t


class SpikingCell(nn.Module):
    """IF/LIF cell ``v ← λv + x`` with Norse surrogate spikes, soft or hard reset.

    Args:
        threshold: θ > 0, a float (per layer) or a tensor shaped like one sample's neurons.
        leak: λ in (0, 1]; 1 is the IF neuron.
        reset: ``"subtract"`` (soft, v − θ) or ``"zero"`` (hard).
        surrogate, alpha: Norse threshold method and its parameter (``triangle`` with α=γ is
            ``γ·max(0, 1 − |v/θ − 1|)``).
        trainable_threshold, trainable_leak: make θ / λ ``nn.Parameter``s (λ clamped to [0, 1]
            and θ to >= 1e-4 by :meth:`constrain_` and in the forward pass).
        initial: initial membrane, ``"zero"`` or ``"half"`` (θ/2); an injected state overrides.
        policy: a :class:`ThresholdPolicy`; constant θ when None.
        max_spikes: 1 for binary spikes; > 1 emits ``clip(floor(v/θ), 0, max_spikes)``.
        output: what the next layer receives, ``"spike"`` (z_t) or ``"charge"`` (z_t·θ_t).
    """

    def __init__(
        self,
        threshold: float | Tensor = 1.0,
        leak: float | Tensor = 1.0,
        reset: str = "subtract",
        surrogate: str = "triangle",
        alpha: float = 0.3,
        trainable_threshold: bool = False,
        trainable_leak: bool = False,
        initial: str = "zero",
        policy: ThresholdPolicy | None = None,
        max_spikes: int = 1,
        output: str = "spike",
    ) -> None:
        super().__init__()
        theta = _as_tensor(threshold, "threshold", 0.0, None)
        lam = _as_tensor(leak, "leak", 0.0, 1.0)
        self.reset = check_choice(reset, RESETS, "reset")
        self.surrogate = check_choice(surrogate, SURROGATES, "surrogate")
        self.initial = check_choice(initial, INITIAL_POTENTIALS, "initial potential")
        self.output = check_choice(output, OUTPUTS, "cell output")
        if int(max_spikes) != max_spikes or max_spikes < 1:
            raise WorkbenchError(f"max_spikes must be a whole number >= 1, got {max_spikes!r}")
        self.alpha = float(alpha)
        self.max_spikes = int(max_spikes)
        self.policy: ThresholdPolicy = policy or ConstantThreshold()
        if trainable_threshold:
            self.threshold = nn.Parameter(theta)
        else:
            self.register_buffer("threshold", theta)
        if trainable_leak:
            self.leak = nn.Parameter(lam)
        else:
            self.register_buffer("leak", lam)
        self._integrate_only = not trainable_leak and bool((lam == 1).all())  # IF: skip λ·v

    def extra_repr(self) -> str:
        return (f"threshold={_shown(self.threshold)}, leak={self.leak.mean().item():.3g}, "
                f"reset={self.reset}, "
                f"surrogate={self.surrogate}, initial={self.initial}, output={self.output}")

    @torch.no_grad()
    def constrain_(self) -> None:
        """Project trainable θ and λ back into their ranges (call after an optimiser step)."""
        self.threshold.clamp_(min=THRESHOLD_FLOOR)
        self.leak.clamp_(0.0, 1.0)

    def base_threshold(self) -> Tensor:
        return self.threshold.clamp(min=THRESHOLD_FLOOR)

    def initial_state(self, x: Tensor) -> CellState:
        """Initial state for input current ``x`` [B, *neurons]: v = 0 or θ/2."""
        v = torch.zeros_like(x)
        if self.initial == "half":
            v = v + self.base_threshold().detach() / 2
        return CellState(v=v, threshold=None, policy=self.policy.initial_state(v))

    def forward(self, x: Tensor, state: CellState | None = None) -> tuple[Tensor, CellState]:
        """One timestep. ``x``: input current [B, *neurons]. Returns spikes (same shape) and state."""
        if state is None:
            state = self.initial_state(x)
        base = self.base_threshold()
        theta_t = self.policy.threshold(base, state.v, x, state.policy)
        theta = base if theta_t is None else theta_t.clamp(min=THRESHOLD_FLOOR)
        v = state.v + x if self._integrate_only else self.leak.clamp(0.0, 1.0) * state.v + x
        if self.max_spikes > 1:
            z = torch.clamp(torch.floor(v / theta), 0, self.max_spikes)
            v = v - z * theta if self.reset == "subtract" else v * (z == 0)
        elif torch.is_grad_enabled():
            z = spike_fn(v / theta - 1.0, self.surrogate, self.alpha)
            v = (reset_subtract(z, v, v, theta) if self.reset == "subtract"
                 else reset_value(z, v, torch.zeros_like(v), theta))
        else:
            # Inference: the surrogate plays no part, so the same Heaviside (v/θ − 1 > 0) and
            # reset run in place on the fresh ``v`` as in :meth:`step_`: the comparison writes
            # float spikes, the reset is one pass (v − z·θ, or v − z·v: exactly 0 or v).
            z = torch.gt(v, theta, out=torch.empty_like(v))
            v.addcmul_(z, theta if self.reset == "subtract" else v, value=-1.0)
        z = self.policy.emit(z, state.policy)
        policy_state = self.policy.update(state.policy, v, z)
        return z, CellState(v=v, threshold=theta_t, policy=policy_state)

    def steps_in_place(self) -> bool:
        """Whether :meth:`step_` applies: a constant θ and binary spikes (its only branch)."""
        return isinstance(self.policy, ConstantThreshold) and self.max_spikes == 1

    def step_(self, x: Tensor, state: CellState, out: Tensor | None = None
              ) -> tuple[Tensor, CellState]:
        """One inference step (no autograd) that updates ``state.v`` [B, *neurons] in place:
        the values of :meth:`forward` without its temporaries. For :meth:`steps_in_place`
        cells and a membrane the caller owns (``simulate`` without an observer). The spikes
        go to ``out`` [B, *neurons] when given (one step's slot of a block of steps)."""
        theta = self.base_threshold()
        v = state.v if self._integrate_only else state.v.mul_(self.leak.clamp(0.0, 1.0))
        v.add_(x)  # λ·v first, then + x: the same two roundings as forward's ``λ·v + x``
        # the comparison writes the float spikes directly: one pass instead of two
        z = torch.gt(v, theta, out=torch.empty_like(v) if out is None else out)
        # subtract: v − z·θ; to zero: v − z·v, which is exactly 0 where z = 1 and v where
        # z = 0 for a finite v (a non-finite one is an error either way): one pass, where a
        # bool mask, its float copy and a masked fill took three
        v.addcmul_(z, theta if self.reset == "subtract" else v, value=-1.0)
        return z, CellState(v=v)

    def transmit(self, spikes: Tensor, state: CellState) -> Tensor:
        """What the next layer's synapses receive for this step's ``spikes``: the spikes, or
        their charge z_t·θ_t with the θ_t they fired at."""
        if self.output == "spike":
            return spikes
        theta = self.base_threshold() if state.threshold is None else state.threshold
        return spikes * theta


class LIFBoxLayer(nn.Module):
    """Norse's ``LIFBoxCell`` step with subtractive reset: ``h = v + (x − v)/τ``, spike when
    h > θ, ``v ← h − θ·z``.

    ``tau`` is in timesteps (Norse's ``dt·τ_mem⁻¹ = 1/τ``); the state is Norse's
    ``LIFBoxFeedForwardState(v)``, so an ANN-predicted membrane can be injected as is. The step
    is Norse's ``lif_box_feed_forward_step`` (v_leak = 0) written out so that its spike can take
    any of :data:`SURROGATES`, the arctan one included.
    """

    def __init__(self, tau: float = 3.0, threshold: float = 1.0, surrogate: str = "super",
                 alpha: float = 100.0) -> None:
        super().__init__()
        tau_t = _as_tensor(tau, "tau", 0.0, None)
        if tau_t.item() < 1.0:
            raise WorkbenchError(f"tau must be >= 1 timestep, got {tau_t.item()}")
        self.tau = float(tau_t)
        # Norse's dt·τ_mem⁻¹ as a float32 factor (not a division), so the step rounds as Norse's
        self.register_buffer("_tau_mem_inv", torch.tensor(1.0 / self.tau), persistent=False)
        self.register_buffer("_threshold", _as_tensor(threshold, "threshold", 0.0, None),
                             persistent=False)
        self.surrogate = check_choice(surrogate, SURROGATES, "surrogate")
        self.alpha = float(alpha)

    @property
    def threshold(self) -> Tensor:
        return self._threshold

    def extra_repr(self) -> str:
        return (f"tau={self.tau:g}, threshold={_shown(self._threshold)}, "
                f"surrogate={self.surrogate}, alpha={self.alpha:g}")

    def initial_state(self, x: Tensor) -> LIFBoxFeedForwardState:
        return LIFBoxFeedForwardState(v=torch.zeros_like(x))

    def forward(self, x: Tensor, state: LIFBoxFeedForwardState | None = None
                ) -> tuple[Tensor, LIFBoxFeedForwardState]:
        v = self.initial_state(x).v if state is None else state.v
        h = v + self._tau_mem_inv * (x - v)
        z = spike_fn(h - self._threshold, self.surrogate, self.alpha)
        return z, LIFBoxFeedForwardState(v=reset_subtract(z, h, h, self._threshold))

    def transmit(self, spikes: Tensor, state: LIFBoxFeedForwardState) -> Tensor:
        """Unit spikes reach the next layer."""
        return spikes


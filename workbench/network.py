"""Spiking networks of ordinary torch layers and cells, and ``simulate`` → :class:`Trajectory`.

A network is a sequence of named layers. It splits into *stages*: the stateless layers
(Conv2d, Linear, AvgPool2d, Flatten, ...) that feed one cell, and a final non-spiking
*readout* stage whose output is accumulated over time (``O_t = λ_out·O_{t-1} + y_t``).

Operation counts are exact and cheap: a stage fed by binary spikes (or event counts) is charged
Σ input × fan-out, where the fan-out of every input element (which depends on padding, stride
and pooling) comes from a connection map computed once per stage; a stage fed by analog values
is charged its dense MACs. Samples that stop early are dropped from the batch, so their counts
and readout freeze and no compute is spent on them (after the block of timesteps, below, that
they stop in).

``simulate`` evaluates a stage over a block of timesteps at once where nothing must see every
step (time-blocked, as SpikingJelly's multi-step mode): one layer call on the block's k·B rows,
then the cell stepping through the k steps. A precomputed stop inside a block masks the
sample's later steps and drops it after the block.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from workbench.errors import MAX_TIMESTEPS, WorkbenchError, check_timesteps
from workbench.neurons import LIFBoxLayer, SpikingCell
from workbench.trajectory import Trajectory

CELL_TYPES = (SpikingCell, LIFBoxLayer)
StopRule = Callable[[int, Tensor], Tensor]
Observer = Callable[[int, str, Tensor, object], None]


class TimeSharedDropout(nn.Module):
    """Dropout whose mask is drawn once per sample per run and reused at every timestep
    (IIR, AOI calibration). Active in training mode; ``simulate`` starts each run with a new
    mask."""

    def __init__(self, p: float = 0.2) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise WorkbenchError(f"dropout probability must lie in [0, 1), got {p}")
        self.p = p
        self._mask: Tensor | None = None

    def new_run(self) -> None:
        self._mask = None

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        if self._mask is None or self._mask.shape != x.shape:
            self._mask = (torch.rand_like(x) >= self.p).to(x.dtype) / (1.0 - self.p)
        return x * self._mask


class NetworkState(NamedTuple):
    """State of a :class:`SpikingNetwork` between calls of ``forward``: one state per cell
    (None before the first step) and the accumulated readout ``O_t`` [B, K]."""

    cells: tuple
    readout: Tensor | None


@dataclass
class Stage:
    """Stateless layers ``ops`` followed by ``cell`` (None for the readout stage)."""

    name: str
    ops: nn.Sequential
    cell: SpikingCell | LIFBoxLayer | None


class SpikingNetwork(nn.Module):
    """A feed-forward SNN.

    Args:
        layers: ``(name, module)`` pairs in order; cells (:class:`SpikingCell`,
            :class:`LIFBoxLayer`) end a stage, the layers after the last cell form the readout.
        input_shape: shape of one sample's input per step, e.g. ``(1, 8, 8)`` or ``(2, 16, 16)``.
        readout_leak: λ_out of the accumulating readout (1 = plain sum of outputs).
    """

    def __init__(self, layers: Sequence[tuple[str, nn.Module]], input_shape: Sequence[int],
                 readout_leak: float = 1.0) -> None:
        super().__init__()
        self.layers = nn.Sequential(OrderedDict(layers))
        self.input_shape = tuple(int(s) for s in input_shape)
        if not 0.0 < readout_leak <= 1.0:
            raise WorkbenchError(f"readout_leak must be in (0, 1], got {readout_leak}")
        self.readout_leak = float(readout_leak)
        stages, ops = [], []
        for name, module in self.layers.named_children():
            if isinstance(module, CELL_TYPES):
                if not ops:
                    raise WorkbenchError(f"cell {name!r} must follow a synaptic layer")
                stages.append(Stage(name, nn.Sequential(OrderedDict(ops)), module))
                ops = []
            else:
                ops.append((name, module))
        if not ops or not any(isinstance(m, nn.Linear | nn.Conv2d) for _, m in ops):
            raise WorkbenchError("a spiking network must end with a non-spiking readout layer "
                                 "(Linear or Conv2d after the last cell)")
        stages.append(Stage("readout", nn.Sequential(OrderedDict(ops)), None))
        # a plain list: the modules are registered once, through self.layers
        self._stages: list[Stage] = stages
        self._profiles: dict[tuple, tuple[Tensor, int]] = {}

    @property
    def stages(self) -> list[Stage]:
        return self._stages

    def cells(self) -> dict[str, SpikingCell | LIFBoxLayer]:
        return {s.name: s.cell for s in self._stages if s.cell is not None}

    def constrain_(self) -> None:
        """Keep trainable θ/λ of every cell in range (the training loop calls this)."""
        for cell in self.cells().values():
            if hasattr(cell, "constrain_"):
                cell.constrain_()

    def forward(self, x: Tensor, state: NetworkState | None = None
                ) -> tuple[Tensor, NetworkState]:
        """One timestep or a sequence, as Norse modules do.

        ``x`` [B, *input_shape] is one step: returns the accumulated readout ``O_t`` [B, K] and
        the state. ``x`` [T, B, *input_shape] is a sequence: returns ``O_1..O_T`` [T, B, K].
        The same dynamics as :func:`simulate` (which adds op counting, recording and stopping).
        """
        if not isinstance(x, Tensor):
            raise WorkbenchError(f"input must be a torch.Tensor, got {type(x).__name__}")
        if tuple(x.shape[1:]) == self.input_shape:
            return self._step(x, state)
        if tuple(x.shape[2:]) == self.input_shape:
            readouts = []
            for x_t in x:
                readout, state = self._step(x_t, state)
                readouts.append(readout)
            return torch.stack(readouts), state
        dims = ", ".join(map(str, self.input_shape))
        raise WorkbenchError(f"input of shape {tuple(x.shape)} does not fit this network: "
                             f"expected one step [B, {dims}] or a sequence [T, B, {dims}]")

    def _step(self, x: Tensor, state: NetworkState | None) -> tuple[Tensor, NetworkState]:
        cells = state.cells if state is not None else (None,) * (len(self._stages) - 1)
        h, new_cells = x, []
        for stage, cell_state in zip(self._stages, (*cells, None), strict=True):
            h = stage.ops(h)
            if stage.cell is None:
                break
            h, cell_state = stage.cell(h, cell_state)
            new_cells.append(cell_state)
        previous = state.readout if state is not None else None
        readout = h if previous is None else self.readout_leak * previous + h
        return readout, NetworkState(tuple(new_cells), readout)

    def stage_profile(self, index: int, in_shape: tuple[int, ...]) -> tuple[Tensor, int]:
        """(fan-out of every input element [*in_shape], dense MACs) of stage ``index``."""
        param = next(self.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
        key = (index, in_shape, device)  # the network may move between devices
        if key not in self._profiles:
            ops = self._stages[index].ops
            self._profiles[key] = (connection_counts(ops, in_shape, device),
                                   dense_macs(ops, in_shape, device))
        return self._profiles[key]


def _indicator(module: nn.Module, h: Tensor) -> Tensor:
    """Apply ``module`` with every weight replaced by 1 (connection structure only)."""
    if isinstance(module, nn.Conv2d):
        ones = torch.ones_like(module.weight)
        return F.conv2d(h, ones, None, module.stride, module.padding, module.dilation,
                        module.groups)
    if isinstance(module, nn.Linear):
        return F.linear(h, torch.ones_like(module.weight))
    if isinstance(module, nn.AvgPool2d):
        k = module.kernel_size if isinstance(module.kernel_size, tuple) else (module.kernel_size,) * 2
        return module(h) * (k[0] * k[1])  # sum-pooling: each input reaches the pooled cell once
    if isinstance(module, nn.Dropout | TimeSharedDropout | nn.Identity | nn.BatchNorm2d):
        return h  # element-wise: one connection per input
    if isinstance(module, nn.Flatten | nn.Upsample):
        return module(h)
    raise WorkbenchError(f"cannot count synaptic operations through {type(module).__name__}; "
                         "supported: Conv2d, Linear, AvgPool2d, Flatten, Dropout, BatchNorm2d, Upsample")


def connection_counts(ops: nn.Sequential, in_shape: tuple[int, ...],
                      device: torch.device | None = None) -> Tensor:
    """Fan-out of every input element through ``ops``: how many synapses (weight uses) one
    input spike drives, padding, stride and pooling included. Shape ``in_shape``."""
    x = torch.ones((1, *in_shape), device=device, requires_grad=True)
    with torch.enable_grad():
        h = x
        for module in ops:
            h = _indicator(module, h)
        h.sum().backward()
    return x.grad[0].detach()


def layer_macs(module: nn.Module, output: Tensor) -> int:
    """MACs that a Conv2d or Linear ``module`` spent producing ``output`` (output elements ×
    fan-in); 0 for any other layer. The one MAC formula of the workbench, ANN and SNN alike."""
    if isinstance(module, nn.Conv2d):
        kh, kw = module.kernel_size
        return output.numel() * (module.in_channels // module.groups) * kh * kw
    if isinstance(module, nn.Linear):
        return output.numel() * module.in_features
    return 0


def dense_macs(ops: nn.Sequential, in_shape: tuple[int, ...],
               device: torch.device | None = None) -> int:
    """MACs of one dense pass through the Conv2d/Linear layers of ``ops`` for one sample."""
    total = 0
    h = torch.zeros((1, *in_shape), device=device)
    with torch.no_grad():
        for module in ops:
            if not isinstance(module, nn.Dropout | TimeSharedDropout | nn.BatchNorm2d):
                h = module(h)  # (BN keeps the shape; running it here would move its statistics)
            total += layer_macs(module, h)
    return total


def _hooked(module: nn.Module) -> bool:
    """Whether a forward (pre-)hook watches ``module`` or one of its children: the shortcuts
    below skip module calls, so a watched module always takes the plain path."""
    from torch.nn.modules import module as torch_module

    return bool(torch_module._global_forward_hooks or torch_module._global_forward_pre_hooks
                or any(m._forward_hooks or m._forward_pre_hooks for m in module.modules()))


def _repeatable(ops: nn.Sequential) -> bool:
    """Whether ``ops`` gives the same output for the same input at every step (no dropout or
    batch-norm statistics in training mode) and nothing watches its calls."""
    return not _hooked(ops) and not any(
        m.training for m in ops.modules()
        if isinstance(m, nn.Dropout | nn.BatchNorm1d | nn.BatchNorm2d))


SPARSE_DENSITY = 0.1
"""Below this share of nonzero inputs, a Linear layer fed spikes on the CPU sums the weight
columns of the active inputs only (each sample's spikes as a bag of rows of the transposed
weight: ``embedding_bag``, parallel over samples) instead of a dense GEMM. Break-even on this
2-core machine: ≈ 20 % of inputs spiking, on one thread or two."""

SPARSE_MIN_OUT = 256
"""A Linear with fewer outputs stays dense: its GEMM costs less than finding the spikes (a
512 → 10 readout took 1.6–3× longer as bags, even with 0.1 % of inputs spiking)."""


def _passes_on(module: nn.Module) -> bool:
    """Whether ``module`` only flattens [B, ...] to [B, N] or returns its input (an identity,
    a dropout in eval mode): a network with or without it takes the same path."""
    if isinstance(module, nn.Flatten):
        return (module.start_dim, module.end_dim) == (1, -1)
    return isinstance(module, nn.Identity) or (
        isinstance(module, nn.Dropout | TimeSharedDropout) and not module.training)


def _ops_on_spikes(ops: nn.Sequential, spikes: Tensor, counts: Tensor) -> Tensor:
    """``ops(spikes)`` for whole-number spike counts ``spikes`` (``counts``: their sums per
    step and sample, which give the density):

    - a leading 2×2 average pool on [B, C, H, W] adds its four inputs as strided slices,
      several times faster than ``avg_pool2d`` on NCHW tensors and, for whole numbers, exact in
      any order (the same bits);
    - a leading Linear (on [B, N], or after a Flatten and eval-mode dropouts) fed spikes
      sparser than :data:`SPARSE_DENSITY`, with at least :data:`SPARSE_MIN_OUT` outputs
      (CPU, no autograd), adds only the weight columns of
      the spiking inputs: the same terms as the dense product in another order (exact for
      dyadic weights; otherwise within float rounding).
    """
    first = ops[0]
    if torch.is_grad_enabled() or _hooked(ops):
        return ops(spikes)  # (with autograd, the dense kernels' one backward beats these)
    # what comes before the Linear may only flatten or pass its input on
    lead = 0
    while lead < len(ops) - 1 and _passes_on(ops[lead]):
        lead += 1
    linear = ops[lead]
    if (isinstance(linear, nn.Linear) and (spikes.dim() == 2 or any(
            isinstance(m, nn.Flatten) for m in ops[:lead]))
            and spikes.device.type == "cpu" and linear.out_features >= SPARSE_MIN_OUT
            and float(counts.sum()) < SPARSE_DENSITY * spikes.numel()):
        # the weight as [in, out] rows, contiguous: a bag reads one row per active input (from
        # the transposed view it is many times slower); the copy costs ~1 % of the product
        columns = linear.weight.detach().t().contiguous()
        flat = spikes.flatten(1)
        rows, inputs = flat.nonzero().unbind(1)  # row-major: each sample's inputs in a run
        starts = torch.searchsorted(rows, torch.arange(flat.shape[0], device=flat.device))
        weights = flat[rows, inputs]  # counts above 1 (multi-spike cells) weight their rows
        weights = None if bool((weights == 1).all()) else weights
        out = nn.functional.embedding_bag(inputs, columns, starts, mode="sum",
                                          per_sample_weights=weights)
        if linear.bias is not None:
            out.add_(linear.bias)
        return ops[lead + 1:](out)
    if not (isinstance(first, nn.AvgPool2d) and spikes.dim() == 4
            and first.kernel_size in (2, (2, 2)) and first.stride in (2, (2, 2))
            and first.padding in (0, (0, 0)) and first.divisor_override is None
            and spikes.shape[2] % 2 == 0 and spikes.shape[3] % 2 == 0):
        return ops(spikes)
    # one new tensor, the other sums in place: the same order ((a + b) + c) + d, the same bits
    # (1.1–2.7× faster than three temporaries, paired on this machine)
    pooled = torch.add(spikes[:, :, 0::2, 0::2], spikes[:, :, 1::2, 0::2])
    pooled.add_(spikes[:, :, 0::2, 1::2]).add_(spikes[:, :, 1::2, 1::2]).mul_(0.25)
    return ops[1:](pooled)


def _index_state(state, keep: Tensor):
    """Keep the batch rows ``keep`` of every tensor in a (nested) state tuple."""
    if isinstance(state, Tensor):
        return state[keep] if state.dim() > 0 else state
    if isinstance(state, tuple):
        items = [_index_state(s, keep) for s in state]
        return type(state)(*items) if hasattr(state, "_fields") else tuple(items)
    return state


def state_from_membrane(cell: SpikingCell | LIFBoxLayer, v: Tensor):
    """A cell state with membrane ``v`` (for injecting an initial potential)."""
    zero = cell.initial_state(torch.zeros_like(v))
    fields = {"v": v}
    if isinstance(cell, SpikingCell):
        fields["policy"] = cell.policy.initial_state(v)
    return zero._replace(**fields)


def _check_inputs(net: SpikingNetwork, inputs: Tensor, T: int | None) -> tuple[Tensor, int, bool]:
    if not isinstance(inputs, Tensor):
        raise WorkbenchError(f"inputs must be a torch.Tensor, got {type(inputs).__name__}")
    if inputs.is_complex():
        raise WorkbenchError(f"inputs must hold real numbers, got dtype {inputs.dtype}")
    shape = net.input_shape
    if tuple(inputs.shape[1:]) == shape:
        if T is None:
            raise WorkbenchError("static (direct-encoded) inputs need T, the number of timesteps")
        static = True
        T = check_timesteps(T, maximum=MAX_TIMESTEPS)
    elif tuple(inputs.shape[2:]) == shape:
        static = False
        T = check_timesteps(inputs.shape[0] if T is None else T, maximum=MAX_TIMESTEPS)
        if T > inputs.shape[0]:
            raise WorkbenchError(f"T={T} exceeds the {inputs.shape[0]} time bins of the inputs")
    else:
        raise WorkbenchError(
            f"inputs of shape {tuple(inputs.shape)} do not fit this network: expected static "
            f"[B, {', '.join(map(str, shape))}] or binned events [T, B, {', '.join(map(str, shape))}]")
    if inputs.shape[0] == 0 or (not static and inputs.shape[1] == 0):
        raise WorkbenchError("inputs hold no samples")
    # the network's own dtype (float32): layers refuse any other, and float64 values beyond
    # its range become infinite here, where the check below names them
    dtype = next(net.parameters()).dtype
    if inputs.dtype != dtype:
        inputs = inputs.to(dtype)
    if not torch.isfinite(inputs).all():
        raise WorkbenchError(f"inputs contain NaN or infinite values (as {dtype})")
    return inputs, T, static


def _normalise_record(net: SpikingNetwork, record) -> dict[str, Tensor | None]:
    if record is None:
        return {}
    if isinstance(record, str):
        record = [record]
    if not isinstance(record, Mapping):
        record = {name: None for name in record}
    cells = net.cells()
    for name in record:
        if name not in cells:
            raise WorkbenchError(f"cannot record unknown layer {name!r}; cells: {', '.join(cells)}")
    return {k: (None if v is None else torch.as_tensor(v, dtype=torch.long))
            for k, v in record.items()}


def simulate(
    net: SpikingNetwork,
    inputs: Tensor,
    T: int | None = None,
    record: Sequence[str] | Mapping[str, Sequence[int] | None] | None = None,
    init_state: Mapping[str, Tensor] | None = None,
    stop: Tensor | StopRule | None = None,
    grad: bool = False,
    observe: Observer | None = None,
) -> Trajectory:
    """Run ``net`` for T timesteps and return the :class:`Trajectory`.

    Args:
        inputs: static analog inputs [B, *input_shape] (direct encoding: the same tensor every
            step; T required) or binned events [T_in, B, *input_shape] (T defaults to T_in).
        record: cell names (all neurons) or ``{cell: flat neuron indices}`` whose spikes,
            membrane potentials and thresholds are kept per step.
        init_state: ``{cell: membrane [B, *neurons]}`` injected initial potentials, and
            optionally ``"readout": [B, K]`` as the readout's initial value.
        stop: per-sample stop steps [B] (ints in 1..T), or a rule ``(t, readout) -> bool [B']``
            called after each step t (1-based) on the readout of the still-active samples.
        grad: keep the autograd graph of the readout (surrogate-gradient training).
        observe: called as ``observe(t, cell, spikes, state)`` after every cell step with the
            live tensors (autograd graph intact): losses on spikes or membranes read them here.
            One cell's calls come in step order; across cells they come stage by stage within
            a block of timesteps (a deeper cell's step t may be seen before a shallower cell's
            step t + 1), which nothing that observes can change.
    """
    inputs, T, static = _check_inputs(net, inputs, T)
    record = _normalise_record(net, record)
    device = next(net.parameters()).device
    inputs = inputs.to(device)
    B = inputs.shape[0] if static else inputs.shape[1]
    stop_steps = None
    if isinstance(stop, Tensor):
        stop_steps = stop.to(device=device, dtype=torch.long)
        if stop_steps.shape != (B,) or (stop_steps < 1).any() or (stop_steps > T).any():
            raise WorkbenchError(f"stop steps must be a tensor of shape ({B},) with values in "
                                 f"1..{T}")
    elif stop is not None and not callable(stop):
        raise WorkbenchError("stop must be None, a tensor of stop steps, or a callable rule")
    dropouts = [m for m in net.modules() if isinstance(m, TimeSharedDropout)]
    if stop is not None and any(m.training and m.p > 0 for m in dropouts):
        raise WorkbenchError("stopping samples early needs dropout off (net.eval())")
    for m in dropouts:
        m.new_run()
    init_state = dict(init_state or {})
    unknown = set(init_state) - set(net.cells()) - {"readout"}
    if unknown:
        raise WorkbenchError(f"init_state names unknown layers {sorted(unknown)}; "
                             f"cells: {', '.join(net.cells())}")

    with torch.set_grad_enabled(grad):
        try:
            return _run(net, inputs, T, static, B, device, record, init_state, stop,
                        stop_steps, observe)
        except NonFiniteMembrane as exc:
            found = str(exc)
    # The failure path: run again, checking every step, to name the step where it began.
    with torch.no_grad():
        for m in dropouts:
            m.new_run()
        try:
            _run(net, inputs, T, static, B, device, record, init_state, stop, stop_steps,
                 None, check_steps=True)
        except NonFiniteMembrane as pinpointed:
            raise NonFiniteError(str(pinpointed)) from None
    raise NonFiniteError(found)


BLOCK_BYTES = {"cpu": 16 * 2**20, "cuda": 256 * 2**20}
"""Budget of time-blocked evaluation per device type: a block takes as many timesteps as keep
the widest stage's activations [k, B, ...] within this many bytes (a run's peak memory is a few
times this: a stage's input, output and spikes live at once). A CPU gains little past a few MB
(its GEMMs are efficient from a few hundred rows); a GPU saves a kernel launch per layer and
step for every step it adds."""


def _blockable(net: SpikingNetwork, stop, observe: Observer | None, check_steps: bool) -> bool:
    """Whether the run may evaluate several timesteps per layer call: nothing reads the readout
    between steps (no stop rule or step-wise check; an observer only reads a cell's spikes and
    state, which a block produces step by step as well, but not beside precomputed stop steps:
    inside a block a stopped sample runs on to the block's end, and an observer would see
    those steps), and every stage treats
    the k·B rows of a block as it treats the B rows of each step (no dropout or batch-norm
    statistics in training mode, no time-shared mask to draw, no hooks that would see k·B
    rows)."""
    return (not callable(stop) and not check_steps and (observe is None or stop is None)
            and all(_repeatable(stage.ops) for stage in net.stages)
            and not any(m.training and m.p > 0 for m in net.modules()
                        if isinstance(m, TimeSharedDropout)))


def _block_steps(widths: Sequence[Tensor | torch.Size], rows: int, itemsize: int,
                 device: torch.device) -> int:
    """Timesteps per block that keep the widest of the stage inputs and cells (``widths``:
    tensors or shapes of one sample's elements) within the budget for ``rows`` samples."""
    widest = max(w.numel() for w in widths)
    budget = BLOCK_BYTES.get(device.type, BLOCK_BYTES["cpu"])
    return max(1, budget // (rows * itemsize * widest))


def _run(net, inputs, T, static, B, device, record, init_state, stop, stop_steps,
         observe, check_steps=False) -> Trajectory:
    """The simulation loop, over blocks of timesteps: each stage runs its layers once on a
    block's inputs [k·B, ...], then its cell steps through the k timesteps (state carried
    across blocks). A block is one step when something must see every step (see
    :func:`_blockable`): a stop rule drops samples after each step. Precomputed stop steps
    mask a block's steps after a sample's stop and drop the sample after the block.

    Membranes are checked for finiteness once, on the final (or dropped) states: a NaN
    membrane never fires and never resets, so it persists to the end of the run.
    ``check_steps`` checks every cell after every step instead, naming the step."""
    stages = net.stages
    active = torch.arange(B, device=device)
    states: list = [None] * len(stages)
    readout = init_state.get("readout")
    last_readout = None
    readouts, actives = [], []  # per step [B, K]; per block [k, B]
    counts = {s.name: [] for s in stages if s.cell is not None}  # per block [k, B]
    synops = {s.name: [] for i, s in enumerate(stages) if i > 0 or not static}
    rec = {k: ([], [], []) for k in record}  # per step
    recorded_neurons, shapes, macs, analog, fanouts = {}, {}, {}, (), {}  # (shapes: per cell)
    uniform: dict[int, float | None] = {}  # a stage whose every input drives as many synapses
    blocked = _blockable(net, stop, observe, check_steps)

    # Without autograd or an observer nobody else holds a membrane, so the constant-θ cells
    # update theirs in place (SpikingCell.step_); others take the general forward.
    in_place = not torch.is_grad_enabled() and observe is None
    fused = [in_place and isinstance(stage.cell, SpikingCell) and stage.cell.steps_in_place()
             and not _hooked(stage.cell) for stage in stages[:-1]]
    # Direct encoding feeds the same tensor every step: its first stage runs once per run.
    first = stages[0].ops(inputs) if static and _repeatable(stages[0].ops) else None

    def full(values: Tensor, live: Tensor | None = None) -> Tensor:
        """Values [k, B', ...] of the active samples → [k, B, ...], zero for the samples that
        have stopped (left the batch, or ``live`` [k, B'] False: stopped inside the block)."""
        if live is not None:
            values = torch.where(live.view(*live.shape, *(1,) * (values.dim() - 2)), values, 0)
        if values.shape[1] == B:
            return values
        out = values.new_zeros((values.shape[0], B, *values.shape[2:]))
        out[:, active] = values
        return out

    t = 0  # steps done
    while t < T:
        # The first step runs alone: it measures the stages that size the later blocks.
        k = 1 if t == 0 or not blocked else min(T - t, _block_steps(
            [*fanouts.values(), *shapes.values()], active.numel(), inputs.element_size(), device))
        live, stopping = None, ()  # [k, B'] masks; the steps after which samples stop
        if stop_steps is not None:
            left, now = stop_steps[active], torch.arange(t, t + k, device=device)[:, None]
            live = left > now
            ends = (left == now + 1) & (now + 1 < T)  # (no sample is dropped after step T)
            stopping = set(ends.any(1).nonzero().flatten().tolist())
            live = None if live.all() else live
        whole = active.numel() == B
        if static:
            h = (inputs if whole else inputs[active]).unsqueeze(0)
        else:
            h = inputs[t:t + k] if whole else inputs[t:t + k, active]
        events = None if static else h  # the stage's input as event counts (None: analog)
        event_counts = None  # per step and sample [k, B'], when the previous cell counted them
        for i, stage in enumerate(stages):
            if i not in fanouts:
                fanout, macs[stage.name] = net.stage_profile(i, tuple(h.shape[2:]))
                fanouts[i] = fanout.flatten()
                same = bool((fanouts[i] == fanouts[i][0]).all())
                uniform[i] = float(fanouts[i][0]) if same else None
                if events is None:
                    analog = (*analog, stage.name)
            if events is not None:  # Σ input spikes (or events) × their fan-out
                if uniform[i] is not None and event_counts is not None:  # (e.g. a Linear)
                    ops = event_counts * uniform[i]  # exact: whole counts times one fan-out
                else:
                    ops = events.detach().flatten(2) @ fanouts[i]  # one mat-vec
                synops[stage.name].append(full(ops, live))
            if i == 0 and first is not None:
                h = (first if whole else first[active]).expand(k, -1, *first.shape[1:])
            else:
                rows = h.flatten(0, 1)
                rows = (_ops_on_spikes(stage.ops, rows, event_counts) if i > 0 and h is events
                        else stage.ops(rows))
                h = rows.unflatten(0, h.shape[:2])
            if stage.cell is None:
                break
            state = states[i]
            if state is None:
                v0 = init_state.get(stage.name)
                state = (stage.cell.initial_state(h[0]) if v0 is None  # (a copy: ours to update)
                         else state_from_membrane(stage.cell, v0.to(device, copy=True)))
            zs, sent = [], []
            # an in-place cell writes its spikes straight into the block: no stacking copy
            block = h.new_empty(h.shape) if fused[i] and k > 1 else None
            for j in range(k):
                z, state = (stage.cell(h[j], state) if not fused[i] else
                            stage.cell.step_(h[j], state, None if block is None else block[j]))
                if check_steps:
                    _check_membrane(stage.name, state, t + j + 1)
                if j in stopping:  # as the step-by-step loop checks a sample it drops
                    _check_membrane(stage.name, _index_state(state, ends[j]), None)
                if observe is not None:
                    observe(t + j, stage.name, z, state)
                if stage.name in rec:
                    _record_step(rec[stage.name], z, state, record[stage.name],
                                 recorded_neurons, stage.name, full,
                                 None if live is None else live[j:j + 1])
                zs.append(z)
                # the synapses receive spikes or their charge z·θ; the counts see events
                sent.append(stage.cell.transmit(z, state))
            states[i] = state
            z = block if block is not None else (
                zs[0].unsqueeze(0) if k == 1 else torch.stack(zs))
            shapes[stage.name] = z.shape[2:]
            event_counts = z.detach().flatten(2).sum(2)
            counts[stage.name].append(full(event_counts, live))
            h = z if all(s is z_j for s, z_j in zip(sent, zs, strict=True)) else (
                sent[0].unsqueeze(0) if k == 1 else torch.stack(sent))
            events = z
        for j in range(k):
            step = h[j]
            if readout is None:
                new = step
            else:  # (λ_out = 1: the product would be the same bits, one op per step less)
                new = readout + step if net.readout_leak == 1.0 else net.readout_leak * readout + step
            readout = new if live is None else torch.where(live[j, :, None], new, readout)
            last_readout = full(readout[None])[0] if last_readout is None else (
                last_readout.index_put((active,), readout) if not whole else readout)
            readouts.append(last_readout)
        actives.append(full(torch.ones((k, active.numel()), dtype=torch.bool, device=device)
                            if live is None else live))
        t += k
        if stop is None or (stop_steps is None and t == T):
            continue
        if stop_steps is not None:  # (those stopped inside the block run on to its end)
            done = stop_steps[active] <= min(t, T - 1)
        else:
            done = torch.as_tensor(stop(t, readout), device=device, dtype=torch.bool)
            if done.shape != active.shape:
                raise WorkbenchError(f"stop rule returned shape {tuple(done.shape)}, "
                                     f"expected ({active.numel()},)")
        if done.any():
            keep = ~done
            if stop_steps is None:  # (precomputed stops were checked at their step above)
                _check_states(stages, [_index_state(s, done) for s in states])
            active, readout = active[keep], readout[keep]
            states = [_index_state(s, keep) for s in states]
            if active.numel() == 0:
                _pad_after_all_stopped(T - t, readouts, actives, counts, synops, rec)
                break

    _check_states(stages, states)
    readouts = torch.stack(readouts)
    finite = torch.isfinite(readouts).flatten(1).all(1)
    if not finite.all():
        step = int((~finite).nonzero()[0]) + 1
        raise NonFiniteError(f"the readout became non-finite (NaN or inf) at step {step} of {T}; "
                             "check the network's weights and thresholds")
    cells = net.cells()
    thresholds = {}
    for name, (_, _, th) in rec.items():
        if th and th[0] is not None:
            thresholds[name] = torch.stack(th)
        else:
            theta = cells[name].threshold.detach()  # (per neuron, or broadcast, e.g. per channel)
            thresholds[name] = theta.flatten() if theta.numel() == 1 else (
                theta.expand(shapes[name]).flatten()[recorded_neurons[name]])
    return Trajectory(
        readout=readouts,
        active=torch.cat(actives),
        spike_counts={k: torch.cat(v) for k, v in counts.items()},
        synaptic_ops={k: torch.cat(v) for k, v in synops.items()},
        analog_stages=analog,
        dense_macs=macs,
        neurons={name: shape.numel() for name, shape in shapes.items()},
        spikes={k: torch.stack(v[0]) for k, v in rec.items()},
        membrane={k: torch.stack(v[1]) for k, v in rec.items()},
        thresholds=thresholds,
        recorded_neurons=recorded_neurons,
    )


def _record_step(store, z, state, index, recorded_neurons, name, full, live) -> None:
    """Keep one step's spikes, membranes and thresholds of the recorded neurons, as full-batch
    tensors [B, N] (``full`` with the step's ``live`` mask [1, B'] scatters them)."""
    spikes, membrane, thresholds = store
    flat_z = z.detach().flatten(1)
    if name not in recorded_neurons:
        recorded_neurons[name] = (torch.arange(flat_z.shape[1]) if index is None else index)
    idx = recorded_neurons[name].to(z.device)

    def scatter(values: Tensor) -> Tensor:
        return full(values[None], live)[0]

    spikes.append(scatter(flat_z[:, idx].to(torch.uint8)))
    membrane.append(scatter(state.v.detach().flatten(1)[:, idx]))
    theta = getattr(state, "threshold", None)
    if theta is None:
        thresholds.append(None)
    else:
        thresholds.append(scatter(theta.detach().expand_as(state.v).flatten(1)[:, idx]))


class NonFiniteError(WorkbenchError):
    """A simulation produced a NaN or infinite membrane or readout."""


class NonFiniteMembrane(Exception):
    """Internal: raised inside the loop, turned into :class:`NonFiniteError` by ``simulate``."""


def _check_membrane(name: str, state, step: int | None) -> None:
    v = state.v
    if not bool(torch.isfinite(v).all()):
        kind = "NaN" if bool(torch.isnan(v).any()) else "infinite"
        share = float((~torch.isfinite(v)).float().mean())
        when = f"at step {step}" if step is not None else "during the run"
        raise NonFiniteMembrane(
            f"layer {name!r}: {share:.0%} of its membranes became {kind} {when}; a threshold "
            "policy or the weights produced a non-finite value")


def _check_states(stages, states) -> None:
    """Check the (final or dropped) state of every cell; NaN persists, so this sees any NaN
    formed during the run."""
    for stage, state in zip(stages, states, strict=False):
        if stage.cell is not None and state is not None and state.v.numel():
            _check_membrane(stage.name, state, None)


def _pad_after_all_stopped(steps, readouts, actives, counts, synops, rec) -> None:
    """Every sample has stopped with ``steps`` steps left: they repeat the frozen readout."""
    readouts.extend([readouts[-1]] * steps)
    actives.append(actives[-1].new_zeros((steps, actives[-1].shape[1])))
    for series in (*counts.values(), *synops.values()):
        series.append(series[-1].new_zeros((steps, series[-1].shape[1])))
    for store in rec.values():
        for series in store:  # (membranes were not simulated: zero, as in full())
            series.extend([None if series[-1] is None else torch.zeros_like(series[-1])] * steps)


def output(net: SpikingNetwork, inputs: Tensor, T: int | None = None) -> Tensor:
    """Final accumulated readout [B, K] with gradients (for surrogate-gradient training)."""
    return simulate(net, inputs, T, grad=True).readout[-1]

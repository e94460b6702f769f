"""Spiking networks of ordinary torch layers and cells, and ``simulate`` → :class:`Trajectory`.

A network is a sequence of named layers. It splits into *stages*: the stateless layers
(Conv2d, Linear, AvgPool2d, Flatten, ...) that feed one cell, and a final non-spiking
*readout* stage whose output is accumulated over time (``O_t = λ_out·O_{t-1} + y_t``).

Operation counts are exact and cheap: a stage fed by binary spikes (or event counts) is charged
Σ input × fan-out, where the fan-out of every input element (which depends on padding, stride
and pooling) comes from a connection map computed once per stage; a stage fed by analog values
is charged its dense MACs. Samples that stop early are dropped from the batch, so their counts
and readout freeze and no compute is spent on them.
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
        key = (index, in_shape)
        if key not in self._profiles:
            ops = self._stages[index].ops
            param = next(self.parameters(), None)
            device = param.device if param is not None else torch.device("cpu")
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


def _ops_on_spikes(ops: nn.Sequential, spikes: Tensor) -> Tensor:
    """``ops(spikes)`` for whole-number spike counts [B, C, H, W]: a leading 2×2 average pool
    adds its four inputs as strided slices, several times faster than ``avg_pool2d`` on
    NCHW tensors and, for whole numbers, exact in any order (the same bits)."""
    pool = ops[0]
    # (with autograd on, avg_pool2d's one backward kernel beats four slice backwards)
    if torch.is_grad_enabled() or _hooked(pool) or not (
            isinstance(pool, nn.AvgPool2d) and spikes.dim() == 4 and pool.kernel_size in (2, (2, 2))
            and pool.stride in (2, (2, 2)) and pool.padding in (0, (0, 0))
            and pool.divisor_override is None and spikes.shape[2] % 2 == 0
            and spikes.shape[3] % 2 == 0):
        return ops(spikes)
    pooled = (spikes[:, :, 0::2, 0::2] + spikes[:, :, 1::2, 0::2]
              + spikes[:, :, 0::2, 1::2] + spikes[:, :, 1::2, 1::2]).mul_(0.25)
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


def _run(net, inputs, T, static, B, device, record, init_state, stop, stop_steps,
         observe, check_steps=False) -> Trajectory:
    """The simulation loop. Membranes are checked for finiteness once, on the final (or
    dropped) states: a NaN membrane never fires and never resets, so it persists to the end of
    the run. ``check_steps`` checks every cell after every step instead, naming the step."""
    stages = net.stages
    active = torch.arange(B, device=device)
    states: list = [None] * len(stages)
    readout = init_state.get("readout")
    last_readout = None
    readouts, actives, active_row = [], [], None
    counts = {s.name: [] for s in stages if s.cell is not None}
    synops = {s.name: [] for i, s in enumerate(stages) if i > 0 or not static}
    rec = {k: ([], [], []) for k in record}
    recorded_neurons, neurons, macs, analog, fanouts = {}, {}, {}, (), {}

    # Without autograd or an observer nobody else holds a membrane, so the constant-θ cells
    # update theirs in place (SpikingCell.step_); others take the general forward.
    in_place = not torch.is_grad_enabled() and observe is None
    steps = [stage.cell.step_ if in_place and isinstance(stage.cell, SpikingCell)
             and stage.cell.steps_in_place() and not _hooked(stage.cell) else stage.cell
             for stage in stages[:-1]]
    # Direct encoding feeds the same tensor every step: its first stage runs once per run.
    first = stages[0].ops(inputs) if static and _repeatable(stages[0].ops) else None

    def full(values: Tensor, fill: float = 0.0) -> Tensor:
        """Scatter values of the active samples into a full-batch tensor."""
        if values.shape[0] == B:
            return values
        out = torch.full((B, *values.shape[1:]), fill, dtype=values.dtype, device=device)
        return out.index_put((active,), values)

    for t in range(T):
        h = inputs if static else inputs[t]
        if h.shape[0] != active.numel():
            h = h[active]
        events = None if static else h  # the stage's input as event counts (None: analog)
        for i, stage in enumerate(stages):
            if t == 0 and i not in fanouts:
                fanout, macs[stage.name] = net.stage_profile(i, tuple(h.shape[1:]))
                fanouts[i] = fanout.flatten()
                if events is None:
                    analog = (*analog, stage.name)
            if events is not None:  # Σ input spikes (or events) × their fan-out: one mat-vec
                synops[stage.name].append(full(events.detach().flatten(1) @ fanouts[i]))
            if i == 0 and first is not None:
                h = first if active.numel() == B else first[active]
            elif i > 0 and h is events:
                h = _ops_on_spikes(stage.ops, h)
            else:
                h = stage.ops(h)
            if stage.cell is None:
                break
            if states[i] is None:
                v0 = init_state.get(stage.name)
                states[i] = (stage.cell.initial_state(h) if v0 is None  # (a copy: ours to update)
                             else state_from_membrane(stage.cell, v0.to(device, copy=True)))
            z, states[i] = steps[i](h, states[i])
            if check_steps:
                _check_membrane(stage.name, states[i], t + 1)
            if observe is not None:
                observe(t, stage.name, z, states[i])
            if t == 0:
                neurons[stage.name] = z[0].numel()
            counts[stage.name].append(full(z.detach().flatten(1).sum(1)))
            if stage.name in rec:
                _record_step(rec[stage.name], z, states[i], stage.cell, record[stage.name],
                             recorded_neurons, stage.name, full)
            # the synapses receive spikes or their charge z·θ; the counts above saw events
            h, events = stage.cell.transmit(z, states[i]), z
        if readout is None:
            readout = h
        else:  # (λ_out = 1: the product would be the same bits, one op per step less)
            readout = readout + h if net.readout_leak == 1.0 else net.readout_leak * readout + h
        last_readout = full(readout) if last_readout is None else (
            last_readout.index_put((active,), readout) if readout.shape[0] != B else readout)
        readouts.append(last_readout)
        if active_row is None:  # the same row until a sample stops
            active_row = full(torch.ones_like(active, dtype=torch.bool), False)
        actives.append(active_row)
        if t + 1 < T and (stop is not None):
            if stop_steps is not None:
                done = stop_steps[active] <= t + 1
            else:
                done = torch.as_tensor(stop(t + 1, readout), device=device, dtype=torch.bool)
                if done.shape != active.shape:
                    raise WorkbenchError(f"stop rule returned shape {tuple(done.shape)}, "
                                         f"expected ({active.numel()},)")
            if done.any():
                keep = ~done
                _check_states(stages, [_index_state(s, done) for s in states])
                active, active_row = active[keep], None
                readout = readout[keep]
                states = [_index_state(s, keep) for s in states]
                if active.numel() == 0:
                    _pad_after_all_stopped(t, T, readouts, actives, counts, synops, rec)
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
            theta = cells[name].threshold.detach().flatten()
            thresholds[name] = theta if theta.numel() == 1 else theta[recorded_neurons[name]]
    return Trajectory(
        readout=readouts,
        active=torch.stack(actives),
        spike_counts={k: torch.stack(v) for k, v in counts.items()},
        synaptic_ops={k: torch.stack(v) for k, v in synops.items()},
        analog_stages=analog,
        dense_macs=macs,
        neurons=neurons,
        spikes={k: torch.stack(v[0]) for k, v in rec.items()},
        membrane={k: torch.stack(v[1]) for k, v in rec.items()},
        thresholds=thresholds,
        recorded_neurons=recorded_neurons,
    )


def _record_step(store, z, state, cell, index, recorded_neurons, name, full) -> None:
    spikes, membrane, thresholds = store
    flat_z = z.detach().flatten(1)
    if name not in recorded_neurons:
        recorded_neurons[name] = (torch.arange(flat_z.shape[1]) if index is None else index)
    idx = recorded_neurons[name].to(z.device)
    spikes.append(full(flat_z[:, idx].to(torch.uint8)))
    membrane.append(full(state.v.detach().flatten(1)[:, idx]))
    theta = getattr(state, "threshold", None)
    if theta is None:
        thresholds.append(None)
    else:
        thresholds.append(full(theta.detach().expand_as(state.v).flatten(1)[:, idx]))


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


def _pad_after_all_stopped(t, T, readouts, actives, counts, synops, rec) -> None:
    """Every sample stopped after step t+1: the remaining steps repeat the frozen readout."""
    for _ in range(t + 1, T):
        readouts.append(readouts[-1])
        actives.append(torch.zeros_like(actives[-1]))
        for series in (*counts.values(), *synops.values()):
            series.append(torch.zeros_like(series[-1]))
        for spikes, membrane, thresholds in rec.values():
            spikes.append(torch.zeros_like(spikes[-1]))
            membrane.append(torch.zeros_like(membrane[-1]))  # not simulated, as in full()
            thresholds.append(None if thresholds[-1] is None else torch.zeros_like(thresholds[-1]))


def output(net: SpikingNetwork, inputs: Tensor, T: int | None = None) -> Tensor:
    """Final accumulated readout [B, K] with gradients (for surrogate-gradient training)."""
    return simulate(net, inputs, T, grad=True).readout[-1]

"""NIR both ways: :func:`to_nir` writes a :class:`SpikingNetwork` as a NIR graph, :func:`from_nir`
reads one (written by Norse, sinabs, snnTorch, ... or by us) into a :class:`SpikingNetwork`.

NIR (Pedersen et al., "Neuromorphic intermediate representation", Nat. Commun. 15, 8122, 2024)
states neurons in continuous time; our cells step in discrete time. Both directions use the
forward-Euler step of length ``dt`` (default 1: time counted in timesteps, the convention Norse
and sinabs use for IF nodes with ``r = 1``):

    LIF  τ·dv/dt = v_leak − v + r·I   →   v ← (1 − dt/τ)·v + (dt·r/τ)·x     (v_leak = 0)
    IF   dv/dt = r·I                  →   v ← v + dt·r·x

so our ``v ← λ·v + x`` is ``τ = dt/(1 − λ)``, ``r = 1/(1 − λ)`` (LIF) or ``r = 1/dt`` (IF). On import
the input gain (dt·r/τ or dt·r) is folded into the weights of the synaptic layer before the cell.

**Reset caveat.** A NIR node resets to a value (``v_reset``); our converted cells *subtract* θ.
Exporting a subtract-reset cell writes ``v_reset = 0`` and ``metadata["reset"] = "subtract"``:
our importer restores subtraction, other frameworks read it as a hard reset to 0, which changes
the spike trains of any neuron whose membrane overshoots θ. Exported graphs carry the readout's
accumulation as a trailing ``LI`` node when it leaks (λ_out < 1); the plain sum (λ_out = 1) is
the usual rate decoding and is left to the reader. CubaLIF (a synaptic current state) has no
counterpart among our cells and is rejected with a clear error rather than approximated.
"""

from __future__ import annotations

from pathlib import Path

import nir
import numpy as np
import torch
from torch import nn

from workbench.errors import WorkbenchError, check_positive
from workbench.network import SpikingNetwork, TimeSharedDropout
from workbench.neurons import ConstantThreshold, LIFBoxLayer, SpikingCell

SUPPORTED = ("Input, Output, Affine, Linear, Conv2d, Flatten, SumPool2d, AvgPool2d, IF, LIF, "
             "and a trailing LI or I (the readout's accumulation)")
_SKIPPED = (nn.Dropout, TimeSharedDropout, nn.Identity)  # identities at inference


def _array(value) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype=np.float32)


def _text(value) -> str:
    """Metadata read back from an HDF5 file holds bytes where we wrote str."""
    return value.decode() if isinstance(value, bytes) else str(value)


# --------------------------------------------------------------------------- export


def _cell_node(cell: SpikingCell | LIFBoxLayer, shape: tuple[int, ...], dt: float) -> nir.NIRNode:
    theta = np.broadcast_to(_array(cell.threshold), shape).copy()
    if isinstance(cell, LIFBoxLayer):  # v ← v + (x − v)/τ: Norse's LIFBox, τ in timesteps
        tau = np.full(shape, cell.tau * dt, dtype=np.float32)
        return nir.LIF(tau=tau, r=np.ones(shape, np.float32), v_leak=np.zeros(shape, np.float32),
                       v_threshold=theta, metadata={"reset": "subtract"})
    if not isinstance(cell.policy, ConstantThreshold) or cell.max_spikes != 1:
        raise WorkbenchError("NIR has no node for an adaptive threshold policy or multi-spike "
                             f"cells; cannot export {cell.extra_repr()}")
    leak = np.broadcast_to(_array(cell.leak.clamp(0.0, 1.0)), shape).copy()
    if (leak <= 0).any():
        raise WorkbenchError("a cell with leak λ = 0 has no NIR time constant; leak must be > 0")
    meta = {"reset": cell.reset, "initial": cell.initial}
    zero = np.zeros(shape, np.float32)
    if (leak == 1).all():
        return nir.IF(r=np.full(shape, 1.0 / dt, np.float32), v_threshold=theta, v_reset=zero,
                      metadata=meta)
    if (leak == 1).any():
        raise WorkbenchError("a cell mixing λ = 1 and λ < 1 neurons has no single NIR node")
    return nir.LIF(tau=dt / (1 - leak), r=1 / (1 - leak), v_leak=zero, v_threshold=theta,
                   v_reset=zero, metadata=meta)


def _layer_node(module: nn.Module, shape: tuple[int, ...]) -> nir.NIRNode:
    if isinstance(module, nn.Linear):
        bias = module.bias
        if bias is None:
            return nir.Linear(weight=_array(module.weight))
        return nir.Affine(weight=_array(module.weight), bias=_array(bias))
    if isinstance(module, nn.Conv2d):
        if module.padding_mode != "zeros":
            raise WorkbenchError(f"NIR Conv2d pads with zeros; got padding_mode "
                                 f"{module.padding_mode!r}")
        bias = (module.bias if module.bias is not None
                else torch.zeros(module.out_channels))
        return nir.Conv2d(input_shape=shape[1:], weight=_array(module.weight),
                          stride=module.stride, padding=module.padding, dilation=module.dilation,
                          groups=module.groups, bias=_array(bias))
    if isinstance(module, nn.AvgPool2d):
        pair = nn.modules.utils._pair
        stride = module.stride if module.stride is not None else module.kernel_size
        return nir.AvgPool2d(kernel_size=np.array(pair(module.kernel_size)),
                             stride=np.array(pair(stride)), padding=np.array(pair(module.padding)))
    if isinstance(module, nn.Flatten):
        if module.start_dim != 1 or module.end_dim != -1:
            raise WorkbenchError("only a Flatten of the whole sample (start_dim=1, end_dim=-1) "
                                 f"is exported; got start_dim={module.start_dim}, "
                                 f"end_dim={module.end_dim}")
        return nir.Flatten(input_type={"input": np.array(shape)}, start_dim=0, end_dim=-1)
    raise WorkbenchError(f"cannot export {type(module).__name__} to NIR; supported layers: "
                         "Linear, Conv2d, AvgPool2d, Flatten (Dropout is skipped)")


@torch.no_grad()
def to_nir(net: SpikingNetwork, dt: float = 1.0) -> nir.NIRGraph:
    """``net`` as a sequential NIR graph (``dt``: the length of one timestep in the graph's time
    unit). See the module docstring for the neuron mapping and the reset caveat."""
    dt = check_positive(dt, "dt")
    device = next(net.parameters()).device
    h = torch.zeros((1, *net.input_shape), device=device)
    nodes: dict[str, nir.NIRNode] = {"input": nir.Input(input_type=np.array(net.input_shape))}
    for name, module in net.layers.named_children():
        shape = tuple(h.shape[1:])
        if isinstance(module, _SKIPPED):
            continue
        if isinstance(module, SpikingCell | LIFBoxLayer):
            nodes[name] = _cell_node(module, shape, dt)
        else:
            nodes[name] = _layer_node(module, shape)
            h = module(h)
    out_shape = np.array(h.shape[1:])
    if net.readout_leak < 1.0:
        lam = np.full(tuple(out_shape), net.readout_leak, np.float32)
        nodes["readout_accumulator"] = nir.LI(tau=dt / (1 - lam), r=1 / (1 - lam),
                                              v_leak=np.zeros_like(lam))
    nodes["output"] = nir.Output(output_type=out_shape)
    names = list(nodes)
    return nir.NIRGraph(nodes=nodes, edges=list(zip(names[:-1], names[1:], strict=True)),
                        metadata={"exported_by": "snn-latency-workbench", "dt": dt,
                                  "readout_leak": net.readout_leak})


# --------------------------------------------------------------------------- import


def _chain(graph: nir.NIRGraph) -> list[tuple[str, nir.NIRNode]]:
    """The graph's nodes in order from its one Input to its one Output (a chain, or an error)."""
    inputs = [k for k, n in graph.nodes.items() if isinstance(n, nir.Input)]
    if len(inputs) != 1:
        raise WorkbenchError(f"a NIR graph for the workbench needs exactly one Input node; "
                             f"found {len(inputs)}")
    successors: dict[str, list[str]] = {}
    for a, b in graph.edges:
        successors.setdefault(a, []).append(b)
    order, name = [], inputs[0]
    while True:
        node = graph.nodes[name]
        if isinstance(node, nir.NIRGraph):
            raise WorkbenchError(f"node {name!r} is a sub-graph (recurrent or nested); only "
                                 "feed-forward chains import")
        order.append((name, node))
        if isinstance(node, nir.Output):
            return order
        nxt = successors.get(name, [])
        if len(nxt) != 1:
            raise WorkbenchError(f"node {name!r} has {len(nxt)} successors; only feed-forward "
                                 "chains (one successor per node) import")
        name = nxt[0]
        if len(order) > len(graph.nodes):
            raise WorkbenchError("the NIR graph has a cycle; only feed-forward chains import")


def _uniform(values: np.ndarray, what: str, node: str) -> float:
    flat = values.reshape(-1)
    if flat.size == 0 or not np.allclose(flat, flat[0]):
        raise WorkbenchError(f"node {node!r}: {what} must be the same for every neuron here")
    return float(flat[0])


def _fold_gain(ops: list[tuple[str, nn.Module]], gain: np.ndarray, node: str) -> None:
    """Multiply the output of the last synaptic layer of ``ops`` by ``gain`` (per neuron of the
    cell it feeds) by scaling its weights and bias. Pooling and Flatten after it are linear, so
    a uniform gain passes through them."""
    if np.allclose(gain, 1.0):
        return
    weighted = [m for _, m in ops if isinstance(m, nn.Linear | nn.Conv2d)]
    if not weighted:
        raise WorkbenchError(f"node {node!r}: an input gain needs a synaptic layer before it")
    layer = weighted[-1]
    if layer is not ops[-1][1] or np.allclose(gain, gain.reshape(-1)[0]):
        factor = torch.tensor(_uniform(gain, "the input gain dt·r/τ", node))
    elif isinstance(layer, nn.Linear):
        factor = torch.from_numpy(gain.reshape(-1))
    else:  # Conv2d: one factor per output channel
        per_channel = gain.reshape(gain.shape[0], -1)
        if not np.allclose(per_channel, per_channel[:, :1]):
            raise WorkbenchError(f"node {node!r}: a conv layer's input gain must be the same "
                                 "within each channel")
        factor = torch.from_numpy(per_channel[:, 0].copy())
    with torch.no_grad():
        layer.weight.mul_(factor.reshape(-1, *([1] * (layer.weight.dim() - 1))))
        if layer.bias is not None:
            layer.bias.mul_(factor)


def _cell(name: str, node: nir.NIRNode, dt: float) -> tuple[SpikingCell, np.ndarray]:
    """Our cell for a NIR IF/LIF node and the input gain to fold into the layer before it."""
    meta = node.metadata or {}
    for field in ("r", "tau", "v_threshold", "v_reset", "v_leak"):
        value = getattr(node, field, None)
        if value is not None and not np.isfinite(_array(value)).all():
            raise WorkbenchError(f"node {name!r} has a NaN or infinite {field}")
    v_reset = _array(node.v_reset) if node.v_reset is not None else np.zeros(1, np.float32)
    if not np.allclose(v_reset, 0.0):
        raise WorkbenchError(f"node {name!r} resets to v_reset = {float(v_reset.mean()):.4g}; our "
                             "cells reset to 0 or subtract θ (v_reset must be 0)")
    r = _array(node.r)
    if isinstance(node, nir.IF):
        leak, gain = np.ones_like(r), dt * r
    else:
        if not np.allclose(_array(node.v_leak), 0.0):
            raise WorkbenchError(f"node {name!r} has v_leak ≠ 0; only v_leak = 0 imports")
        tau = _array(node.tau)
        if (tau < dt).any():
            raise WorkbenchError(f"node {name!r} has τ = {float(tau.min()):.4g} < dt = {dt}: the "
                                 "Euler step would overshoot (give the graph's dt)")
        leak, gain = 1.0 - dt / tau, dt * r / tau
    theta = _array(node.v_threshold)
    if (theta <= 0).any():
        raise WorkbenchError(f"node {name!r} has a threshold <= 0; thresholds must be > 0")
    reset = _text(meta.get("reset", "zero"))
    initial = _text(meta.get("initial", "zero"))
    scalar = theta.size > 0 and np.allclose(theta, theta.reshape(-1)[0])
    threshold = float(theta.reshape(-1)[0]) if scalar else torch.from_numpy(theta)
    lam = float(leak.reshape(-1)[0]) if np.allclose(leak, leak.reshape(-1)[0]) else (
        torch.from_numpy(leak))
    try:
        return SpikingCell(threshold, lam, reset=reset, initial=initial), gain
    except WorkbenchError as exc:  # e.g. τ = dt: λ = 0, a neuron without memory
        raise WorkbenchError(f"node {name!r}: {exc}") from None


def _layer(name: str, node: nir.NIRNode) -> nn.Module:
    if isinstance(node, nir.Affine | nir.Linear):
        weight = torch.from_numpy(_array(node.weight))
        layer = nn.Linear(weight.shape[1], weight.shape[0], bias=isinstance(node, nir.Affine))
        with torch.no_grad():
            layer.weight.copy_(weight)
            if layer.bias is not None:
                layer.bias.copy_(torch.from_numpy(_array(node.bias)))
        return layer
    if isinstance(node, nir.Conv2d):
        weight = torch.from_numpy(_array(node.weight))
        padding = node.padding if isinstance(node.padding, str) else tuple(
            int(p) for p in np.broadcast_to(node.padding, 2))
        layer = nn.Conv2d(weight.shape[1] * node.groups, weight.shape[0], tuple(weight.shape[2:]),
                          stride=tuple(int(s) for s in np.broadcast_to(node.stride, 2)),
                          padding=padding, groups=node.groups,
                          dilation=tuple(int(d) for d in np.broadcast_to(node.dilation, 2)))
        with torch.no_grad():
            layer.weight.copy_(weight)
            layer.bias.copy_(torch.from_numpy(_array(node.bias)))
        return layer
    if isinstance(node, nir.SumPool2d | nir.AvgPool2d):
        if not np.allclose(_array(node.padding), 0):
            raise WorkbenchError(f"node {name!r}: pooling with padding does not import")
        return nn.AvgPool2d(tuple(int(k) for k in np.broadcast_to(node.kernel_size, 2)),
                            tuple(int(s) for s in np.broadcast_to(node.stride, 2)))
    if isinstance(node, nir.Flatten):
        if node.start_dim not in (0, 1) or node.end_dim != -1:
            raise WorkbenchError(f"node {name!r}: only a Flatten of the whole sample imports; got "
                                 f"start_dim={node.start_dim}, end_dim={node.end_dim}")
        return nn.Flatten()  # NIR shapes omit the batch; torch's start_dim=1 skips it
    raise WorkbenchError(f"node {name!r} is a {type(node).__name__}, which does not import; "
                         f"supported: {SUPPORTED}")


def _input_shape(graph_input: nir.Input, first: nir.NIRNode | None,
                 given: tuple[int, ...] | None) -> tuple[int, ...]:
    if given is not None:
        return tuple(int(s) for s in given)
    shape = tuple(int(s) for s in np.asarray(graph_input.input_type["input"]).reshape(-1))
    # some exporters (Norse through nirtorch) keep the batch of their sample input: drop it
    if shape and shape[0] == 1 and (
            (isinstance(first, nir.Affine | nir.Linear) and len(shape) == 2)
            or (isinstance(first, nir.Conv2d) and len(shape) == 4)):
        shape = shape[1:]
    if not shape:
        raise WorkbenchError("the NIR Input node has no shape; pass input_shape=")
    return shape


@torch.no_grad()
def _dry_run(layers: list[tuple[str, nn.Module]], shape: tuple[int, ...]) -> torch.Tensor:
    """One zero sample through ``layers``: a node whose shapes do not chain (a foreign exporter,
    a hand-edited file) is named here rather than failing inside torch at the first run.
    Returns the last layer's output [1, ...]."""
    h = torch.zeros((1, *shape))
    for name, module in layers:
        given = tuple(h.shape[1:])
        try:
            out = module(h)[0] if isinstance(module, SpikingCell) else module(h)
        except RuntimeError as exc:
            reason = str(exc).splitlines()[0]
            raise WorkbenchError(f"node {name!r} does not fit the shape {given} it receives "
                                 f"({reason})") from None
        if isinstance(module, SpikingCell) and out.shape != h.shape:
            raise WorkbenchError(f"node {name!r} has parameters for {tuple(out.shape[1:])} "
                                 f"neurons but receives {given}")
        h = out
    return h


def from_nir(graph: nir.NIRGraph | str | Path, dt: float | None = None,
             input_shape: tuple[int, ...] | None = None) -> SpikingNetwork:
    """A :class:`SpikingNetwork` from a NIR graph (or a ``.nir`` file).

    Args:
        dt: the graph's timestep (default: the ``dt`` the graph's metadata names, else 1).
        input_shape: one sample's input shape, when the graph's Input node lacks it.

    A graph ending in a spiking layer gets an identity ``Linear`` readout, so the readout
    counts output spikes (rate decoding); a trailing ``LI``/``I`` node becomes the readout's
    leak. Unsupported nodes are named before anything is built.
    """
    if isinstance(graph, str | Path):
        path = Path(graph).expanduser()
        if not path.is_file():
            raise WorkbenchError(f"NIR file {path} does not exist")
        try:
            graph = nir.read(path)
        except Exception as exc:  # h5py/nir raise many types for a foreign or broken file
            raise WorkbenchError(f"cannot read NIR file {path}: {exc}") from None
    if not isinstance(graph, nir.NIRGraph):
        raise WorkbenchError(f"from_nir takes a nir.NIRGraph or a path, got {type(graph).__name__}")
    dt = check_positive(dt if dt is not None else graph.metadata.get("dt", 1.0), "dt")
    chain = _chain(graph)
    body = [(n, node) for n, node in chain[1:] if not isinstance(node, nir.Output)]
    readout_leak, readout_gain = 1.0, None
    if body and isinstance(body[-1][1], nir.LI | nir.I):
        name, node = body.pop()
        if isinstance(node, nir.LI):
            tau = _uniform(_array(node.tau), "τ", name)
            readout_leak, readout_gain = 1.0 - dt / tau, dt * _array(node.r) / tau
        else:
            readout_gain = dt * _array(node.r)
    for name, node in body:  # name every unsupported node before building anything
        if node is None:
            raise WorkbenchError(f"node {name!r} is empty: its exporter had no NIR node for the "
                                 "layer (Norse 1.1.0 writes nn.Flatten so; flatten the data "
                                 "instead)")
        if isinstance(node, nir.CubaLIF):
            raise WorkbenchError(f"node {name!r} is a CubaLIF (synaptic current state), which our "
                                 "cells do not model; supported: " + SUPPORTED)
        if not isinstance(node, nir.IF | nir.LIF | nir.Affine | nir.Linear | nir.Conv2d
                          | nir.SumPool2d | nir.AvgPool2d | nir.Flatten):
            _layer(name, node)  # raises, naming the node
    shape = _input_shape(chain[0][1], body[0][1] if body else None, input_shape)
    layers, stage_ops, pending = [], [], 1.0
    for name, node in body:
        if isinstance(node, nir.IF | nir.LIF):
            cell, gain = _cell(name, node, dt)
            _fold_gain(stage_ops, gain * pending, name)
            layers.append((name, cell))
            stage_ops, pending = [], 1.0
            continue
        module = _layer(name, node)
        if isinstance(node, nir.SumPool2d):  # Σ over the window = k²·average
            k = module.kernel_size
            pending *= float(k[0] * k[1])
        if isinstance(module, nn.Linear | nn.Conv2d) and pending != 1.0:
            with torch.no_grad():  # its input is the sum-pool's: k² × our average-pool's
                module.weight.mul_(pending)
            pending = 1.0
        layers.append((name, module))
        stage_ops.append((name, module))
    if pending != 1.0:
        raise WorkbenchError("a SumPool2d at the end of the graph has no synaptic layer to absorb "
                             "its window size")
    h = _dry_run(layers, shape)
    if not any(isinstance(m, nn.Linear | nn.Conv2d) for _, m in stage_ops):
        identity = nn.Linear(h[0].numel(), h[0].numel(), bias=False)
        with torch.no_grad():
            identity.weight.copy_(torch.eye(h[0].numel()))
        if h.dim() > 2:
            layers.append(("readout_flatten", nn.Flatten()))
        layers.append(("readout", identity))
        stage_ops = [("readout", identity)]
    if readout_gain is not None:
        _fold_gain(stage_ops, readout_gain, "readout")
    return SpikingNetwork(layers, shape, readout_leak=readout_leak)

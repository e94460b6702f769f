"""The same spiking network in snnTorch, SpikingJelly and Norse, for ``simulate.py``.

Each builder takes a workbench :class:`SpikingNetwork` (its torch layers are shared; every
:class:`SpikingCell` becomes the peer's closest neuron with the same θ, leak and reset) and an
input, and returns a no-argument run of T steps that sums the readout, or None when the peer is
not installed. The peers are never imported by the workbench or its tests.

Neurons: snnTorch ``Leaky`` (β = λ), SpikingJelly ``IFNode``/``LIFNode`` in multi-step mode
(its fast mode: stateless layers run on [T·B, ...] at once), Norse ``IAFCell`` (λ = 1) or
``LIFBoxCell`` (Norse has no IF neuron with subtractive reset; the work per step is alike).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable

import torch
from torch import Tensor, nn

from workbench.network import SpikingNetwork, TimeSharedDropout
from workbench.neurons import SpikingCell

Run = Callable[[], Tensor]


def _installed(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def _layers(net: SpikingNetwork) -> list[nn.Module]:
    """The network's modules in order, without dropout (off at inference)."""
    return [m for m in net.layers.children() if not isinstance(m, TimeSharedDropout)]


def _steps(net: SpikingNetwork, x: Tensor, T: int) -> Callable[[int], Tensor]:
    """``t -> input at step t`` (direct encoding repeats a static input)."""
    static = tuple(x.shape[1:]) == net.input_shape
    return (lambda t: x) if static else (lambda t: x[t])


def _cell_params(cell: SpikingCell) -> tuple[float, float, str]:
    return float(cell.threshold.mean()), float(cell.leak.mean()), cell.reset


def snntorch_run(net: SpikingNetwork, x: Tensor, T: int) -> Run | None:
    if not _installed("snntorch"):
        return None
    import snntorch
    from snntorch import utils

    def neuron(cell: SpikingCell) -> nn.Module:
        theta, leak, reset = _cell_params(cell)
        return snntorch.Leaky(beta=leak, threshold=theta, init_hidden=True,
                              reset_mechanism="subtract" if reset == "subtract" else "zero")

    model = nn.Sequential(*[neuron(m) if isinstance(m, SpikingCell) else m
                            for m in _layers(net)]).to(x.device)
    step = _steps(net, x, T)

    def run() -> Tensor:
        utils.reset(model)
        return sum(model(step(t)) for t in range(T))

    return run


def spikingjelly_run(net: SpikingNetwork, x: Tensor, T: int) -> Run | None:
    if not _installed("spikingjelly"):
        return None
    from spikingjelly.activation_based import functional, layer, neuron

    def node(cell: SpikingCell) -> nn.Module:
        theta, leak, reset = _cell_params(cell)
        v_reset = None if reset == "subtract" else 0.0
        if leak == 1.0:
            return neuron.IFNode(v_threshold=theta, v_reset=v_reset, step_mode="m")
        # decay_input=False: v ← (1 − 1/τ)·v + x, i.e. λ = 1 − 1/τ
        return neuron.LIFNode(tau=1.0 / (1.0 - leak), decay_input=False, v_threshold=theta,
                              v_reset=v_reset, step_mode="m")

    model = nn.Sequential(*[node(m) if isinstance(m, SpikingCell) else layer.SeqToANNContainer(m)
                            for m in _layers(net)]).to(x.device)
    static = tuple(x.shape[1:]) == net.input_shape
    sequence = x.unsqueeze(0).expand(T, *x.shape) if static else x[:T]

    def run() -> Tensor:
        functional.reset_net(model)
        return model(sequence).sum(0)

    return run


def norse_run(net: SpikingNetwork, x: Tensor, T: int) -> Run | None:
    if not _installed("norse"):
        return None
    from norse.torch import IAFCell, IAFParameters, LIFBoxCell, LIFBoxParameters, SequentialState

    def cell_of(cell: SpikingCell) -> nn.Module:
        theta, leak, _ = _cell_params(cell)
        if leak == 1.0:
            return IAFCell(IAFParameters(v_th=torch.tensor(theta)), dt=1.0)
        return LIFBoxCell(LIFBoxParameters(tau_mem_inv=torch.tensor(1.0 - leak),
                                           v_th=torch.tensor(theta)), dt=1.0)

    model = SequentialState(*[cell_of(m) if isinstance(m, SpikingCell) else m
                              for m in _layers(net)]).to(x.device)
    step = _steps(net, x, T)

    def run() -> Tensor:
        state, total = None, 0
        for t in range(T):
            y, state = model(step(t), state)
            total = total + y
        return total

    return run


BUILDERS: dict[str, Callable[[SpikingNetwork, Tensor, int], Run | None]] = {
    "snnTorch": snntorch_run, "SpikingJelly": spikingjelly_run, "Norse": norse_run}

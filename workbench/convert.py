"""ANN → SNN conversion: BN folding, per-layer threshold balancing, QCFS activations.

Rate-coded conversion with soft-reset IF neurons (θ = 1 after weight normalisation): the
activation scale λ_l of every layer (max, or a percentile, of its ReLU output on calibration
data; or the learned clip λ of a QCFS activation) is folded into the weights,
``W_l ← W_l·λ_{l−1}/λ_l``, ``b_l ← b_l/λ_l``, so spikes stay binary and the readout's
average over time approximates the ANN's logits. A Dropout becomes a time-shared dropout (one
mask per sample per run): an identity in the eval mode the SNN is returned in, switched on only
where a method asks for it (AOI calibrates its cutoff with dropout on).

QCFS: Bu et al., "Optimal ANN-SNN conversion for high-accuracy and ultra-low-latency spiking
neural networks", ICLR 2022: ``h(x) = λ/L·clip(⌊x·L/λ + 1/2⌋, 0, L)``; converted with initial
potential θ/2 it makes low-latency SNNs.
"""

from __future__ import annotations

import copy
from collections import OrderedDict

import numpy as np
import torch
from torch import Tensor, nn

from workbench.errors import WorkbenchError, check_choice
from workbench.network import SpikingNetwork, TimeSharedDropout
from workbench.neurons import SpikingCell

BALANCING = ("max", "percentile")
SYNAPTIC = (nn.Conv2d, nn.Linear)
PASS_THROUGH = (nn.AvgPool2d, nn.Flatten)


class QCFS(nn.Module):
    """Quantisation-clip-floor-shift activation with a trainable clip λ (``scale``).

    ``levels`` L quantisation steps; the floor uses a straight-through gradient.
    """

    def __init__(self, levels: int = 4, scale: float = 4.0) -> None:
        super().__init__()
        if int(levels) != levels or levels < 1:
            raise WorkbenchError(f"QCFS levels must be a whole number >= 1, got {levels!r}")
        self.levels = int(levels)
        self.scale = nn.Parameter(torch.tensor(float(scale)))

    def forward(self, x: Tensor) -> Tensor:
        scale = self.scale.abs() + 1e-6
        y = x * self.levels / scale + 0.5
        y = y + (torch.floor(y) - y).detach()  # straight-through floor
        return torch.clamp(y, 0, self.levels) * scale / self.levels

    def extra_repr(self) -> str:
        return f"levels={self.levels}, scale={self.scale.item():.4g}"


ACTIVATIONS = (nn.ReLU, QCFS)


def fold_batchnorm(ann: nn.Sequential) -> nn.Sequential:
    """A copy of ``ann`` with every BatchNorm folded into the Conv2d/Linear before it."""
    layers, pending = [], None
    for name, module in ann.named_children():
        module = copy.deepcopy(module)
        if isinstance(module, nn.BatchNorm1d | nn.BatchNorm2d):
            if pending is None:
                raise WorkbenchError(f"BatchNorm {name!r} must follow a Conv2d or Linear layer")
            _fold_into(pending, module)
            continue
        if isinstance(module, SYNAPTIC):
            pending = module
        elif not isinstance(module, nn.Dropout):
            pending = None
        layers.append((name, module))
    return nn.Sequential(OrderedDict(layers))


@torch.no_grad()
def _fold_into(layer: nn.Conv2d | nn.Linear, bn: nn.BatchNorm1d | nn.BatchNorm2d) -> None:
    gain = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    shape = (-1,) + (1,) * (layer.weight.dim() - 1)
    bias = layer.bias if layer.bias is not None else torch.zeros_like(bn.running_mean)
    layer.weight.mul_(gain.reshape(shape))
    new_bias = (bias - bn.running_mean) * gain + bn.bias
    if layer.bias is None:
        layer.bias = nn.Parameter(new_bias)
    else:
        layer.bias.copy_(new_bias)


@torch.no_grad()
def ann_activations(ann: nn.Sequential, x: Tensor) -> list[Tensor]:
    """Output of every ReLU/QCFS of ``ann`` (eval mode) on ``x``, in order: the activations
    that the converted SNN's cells spike1, spike2, ... stand for."""
    was_training = ann.training
    ann.eval()
    outputs, h = [], x
    for module in ann.children():
        h = module(h)
        if isinstance(module, ACTIVATIONS):
            outputs.append(h)
    ann.train(was_training)
    return outputs


@torch.no_grad()
def layer_scales(ann: nn.Sequential, x_calib: Tensor, balance: str = "max",
                 percentile: float = 99.9) -> list[float]:
    """Activation scale λ_l of every ReLU/QCFS in order: the max or ``percentile`` of its
    output on ``x_calib``, or a QCFS layer's learned clip λ."""
    check_choice(balance, BALANCING, "threshold balancing")
    if not 0.0 < percentile <= 100.0:
        raise WorkbenchError(f"percentile must be in (0, 100], got {percentile}")
    activations = [m for m in ann.children() if isinstance(m, ACTIVATIONS)]
    scales = []
    for module, h in zip(activations, ann_activations(ann, x_calib), strict=True):
        if isinstance(module, QCFS):
            scales.append(float(module.scale.abs()) + 1e-6)
        else:
            values = h.flatten().cpu().numpy()
            s = float(values.max() if balance == "max" else np.percentile(values, percentile))
            scales.append(max(s, 1e-6))  # an always-silent layer keeps a usable scale
    return scales


SUPPORTED = "Conv2d, Linear, AvgPool2d, Flatten, BatchNorm, Dropout, Identity, ReLU or QCFS"
NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)


def _leaves(module: nn.Sequential, prefix: str = "") -> list[tuple[str, nn.Module]]:
    """The layers of a (nested) ``nn.Sequential`` in order, named by their path."""
    out = []
    for name, child in module.named_children():
        path = f"{prefix}{name}"
        out += _leaves(child, f"{path}.") if isinstance(child, nn.Sequential) else [(path, child)]
    return out


def check_ann(ann: nn.Module) -> nn.Sequential:
    """``ann`` as a flat ``nn.Sequential`` if conversion supports it; otherwise a
    :class:`WorkbenchError` naming the first unsupported module, before anything runs.

    A custom module's ``forward`` may do anything between its sub-modules (reshapes, skips), so
    only ``nn.Sequential`` chains (nested ones are flattened) are accepted."""
    if not isinstance(ann, nn.Sequential):
        raise WorkbenchError(f"conversion takes an nn.Sequential of {SUPPORTED}; got "
                             f"{type(ann).__name__} (a custom module's forward cannot be read "
                             "layer by layer: rebuild it as an nn.Sequential)")
    layers = [(n, m) for n, m in _leaves(ann) if not isinstance(m, nn.Identity)]
    seen_synaptic = activation_pending = False
    for name, module in layers:
        if not isinstance(module, SYNAPTIC + PASS_THROUGH + ACTIVATIONS + NORMS + (nn.Dropout,)):
            raise WorkbenchError(f"cannot convert layer {name!r} ({type(module).__name__}); "
                                 f"use {SUPPORTED}")
        if isinstance(module, ACTIVATIONS):
            if not activation_pending:
                raise WorkbenchError(f"activation {name!r} must follow a Conv2d or Linear layer "
                                     "(two activations in a row, or one before any weights)")
            activation_pending = False
        elif isinstance(module, SYNAPTIC):
            seen_synaptic = activation_pending = True
    if not seen_synaptic or not any(isinstance(m, ACTIVATIONS) for _, m in layers):
        raise WorkbenchError("the ANN needs at least one Conv2d/Linear layer with a ReLU/QCFS "
                             "after it")
    if not activation_pending:
        raise WorkbenchError("the ANN must end with a Conv2d or Linear readout after its last "
                             "activation (its logits)")
    return nn.Sequential(OrderedDict((n.replace(".", "_"), m) for n, m in layers))


def convert(ann: nn.Sequential, x_calib: Tensor, balance: str = "max", percentile: float = 99.9,
            initial: str = "zero", leak: float = 1.0) -> SpikingNetwork:
    """Convert a ReLU/QCFS ``ann`` (any ``nn.Sequential`` of Conv2d, BatchNorm, AvgPool2d, Flatten,
    Linear, Dropout; see :func:`check_ann`) into a :class:`SpikingNetwork` of soft-reset IF cells
    with θ = 1 and normalised weights.

    Args:
        x_calib: calibration inputs [B, *input_shape] (training data, never test).
        balance: ``"max"`` or ``"percentile"`` threshold balancing.
        initial: the cells' initial membrane, ``"zero"`` or ``"half"`` (θ/2, for QCFS).

    Returns the SNN in eval mode; each Dropout(p) is a :class:`TimeSharedDropout` (p) there.
    """
    ann = check_ann(ann)
    if not isinstance(x_calib, Tensor) or x_calib.dim() < 2 or len(x_calib) == 0:
        raise WorkbenchError("calibration inputs must be a tensor [B, *input_shape] with B >= 1")
    modes = {m: m.training for m in ann.modules()}
    try:
        with torch.no_grad():
            ann.eval()(x_calib[:1])
    except RuntimeError as exc:
        raise WorkbenchError(f"calibration inputs of shape {tuple(x_calib.shape)} do not fit the "
                             f"ANN: {exc}") from None
    finally:
        for module, training in modes.items():
            module.training = training
    folded = fold_batchnorm(ann)
    scales = iter(layer_scales(folded, x_calib, balance, percentile))
    layers, prev_scale, last_synaptic, n_cells = [], 1.0, None, 0
    with torch.no_grad():
        for name, module in folded.named_children():
            if isinstance(module, SYNAPTIC):
                module.weight.mul_(prev_scale)
                last_synaptic = module
                layers.append((name, module))
            elif isinstance(module, ACTIVATIONS):
                scale = next(scales)
                last_synaptic.weight.div_(scale)
                if last_synaptic.bias is not None:
                    last_synaptic.bias.div_(scale)
                n_cells += 1
                layers.append((f"spike{n_cells}", SpikingCell(1.0, leak, "subtract",
                                                               initial=initial)))
                prev_scale = scale
            elif isinstance(module, PASS_THROUGH):
                layers.append((name, module))
            elif isinstance(module, nn.Dropout) and module.p > 0:
                # it scales by 1/(1 − p), as the ANN's did in training: the weights fit as they are
                layers.append((name, TimeSharedDropout(module.p)))
    # the new cells' thresholds and leaks are made on the CPU: move them beside the layers
    net = SpikingNetwork(layers, input_shape=tuple(x_calib.shape[1:])).to(x_calib.device)
    return net.eval()


def scale_thresholds(net: SpikingNetwork, factor: float) -> SpikingNetwork:
    """A copy of ``net`` with every cell's θ multiplied by ``factor`` (> 0)."""
    if not factor > 0:
        raise WorkbenchError(f"threshold scale must be > 0, got {factor}")
    scaled = copy.deepcopy(net)
    with torch.no_grad():
        for cell in scaled.cells().values():
            cell.threshold.mul_(factor)
    return scaled

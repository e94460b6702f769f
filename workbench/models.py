"""Architectures of the default models (plain ANNs; SNNs come from conversion or training)."""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from workbench.convert import QCFS


def digits_cnn(activation: str = "relu", levels: int = 4, dropout: float = 0.1,
               in_channels: int = 1, size: int = 8, num_classes: int = 10) -> nn.Sequential:
    """Small CNN for 8×8 digits (or ``size``×``size`` event frames): four conv/fc layers with
    ReLU or QCFS(levels), average pooling, and a linear readout."""
    def act() -> nn.Module:
        return nn.ReLU() if activation == "relu" else QCFS(levels)

    flat = 64 * (size // 4) ** 2
    return nn.Sequential(OrderedDict([
        ("conv1", nn.Conv2d(in_channels, 16, 3, padding=1)), ("bn1", nn.BatchNorm2d(16)),
        ("act1", act()),
        ("conv2", nn.Conv2d(16, 32, 3, padding=1)), ("bn2", nn.BatchNorm2d(32)), ("act2", act()),
        ("pool1", nn.AvgPool2d(2)),
        ("conv3", nn.Conv2d(32, 64, 3, padding=1)), ("bn3", nn.BatchNorm2d(64)), ("act3", act()),
        ("pool2", nn.AvgPool2d(2)),
        ("flatten", nn.Flatten()),
        ("fc1", nn.Linear(flat, 128)), ("act4", act()), ("drop", nn.Dropout(dropout)),
        ("fc2", nn.Linear(128, num_classes)),
    ]))


def event_snn(T_leak: float = 0.5, dropout: float = 0.3, channels: tuple[int, int] = (16, 32),
              size: int = 16, num_classes: int = 10):
    """Directly trained conv SNN for 2-polarity event frames (AOI-SNN's setting): LIF cells
    ``v ← 0.5·v + x``, hard reset, triangle surrogate (γ = 1), average pooling, time-shared
    dropout before the readout."""
    from workbench.network import SpikingNetwork, TimeSharedDropout
    from workbench.neurons import SpikingCell

    def lif() -> SpikingCell:
        return SpikingCell(1.0, T_leak, reset="zero", surrogate="triangle", alpha=1.0)

    c1, c2 = channels
    return SpikingNetwork([
        ("conv1", nn.Conv2d(2, c1, 3, padding=1)), ("spike1", lif()), ("pool1", nn.AvgPool2d(2)),
        ("conv2", nn.Conv2d(c1, c2, 3, padding=1)), ("spike2", lif()), ("pool2", nn.AvgPool2d(2)),
        ("flatten", nn.Flatten()), ("drop", TimeSharedDropout(dropout)),
        ("fc", nn.Linear(c2 * (size // 4) ** 2, num_classes)),
    ], (2, size, size))


def deep_digits_cnn(dropout: float = 0.2) -> nn.Sequential:
    """A deeper ReLU CNN for the digits, without BatchNorm (IIR's setting): six hidden layers
    (conv 32, conv 32, avg-pool, conv 64, conv 64, avg-pool, fc 128) and a linear readout, deep
    enough for spikes to vanish layer by layer at T = 1."""
    return nn.Sequential(OrderedDict([
        ("conv1", nn.Conv2d(1, 32, 3, padding=1)), ("act1", nn.ReLU()),
        ("conv2", nn.Conv2d(32, 32, 3, padding=1)), ("act2", nn.ReLU()),
        ("pool1", nn.AvgPool2d(2)),
        ("conv3", nn.Conv2d(32, 64, 3, padding=1)), ("act3", nn.ReLU()),
        ("conv4", nn.Conv2d(64, 64, 3, padding=1)), ("act4", nn.ReLU()),
        ("pool2", nn.AvgPool2d(2)), ("flatten", nn.Flatten()),
        ("fc1", nn.Linear(64 * 2 * 2, 128)), ("act5", nn.ReLU()), ("drop", nn.Dropout(dropout)),
        ("fc2", nn.Linear(128, 10)),
    ]))


def vgg_cnn(width: int = 32, blocks: int = 3, convs_per_block: int = 2, in_channels: int = 3,
            size: int = 32, hidden: int = 256, dropout: float = 0.0, num_classes: int = 10
            ) -> nn.Sequential:
    """VGG-style ReLU CNN without BatchNorm on ``size``×``size``×``in_channels`` inputs:
    ``blocks`` blocks of ``convs_per_block`` 3×3 convolutions (``width``, 2·``width``,
    4·``width``, … channels), each block closed by 2×2 average pooling, then a hidden linear
    layer of ``hidden`` ReLU units (with dropout when ``dropout`` > 0) and a linear readout.
    ``blocks·convs_per_block + 1`` hidden ReLU layers."""
    layers: list[tuple[str, nn.Module]] = []
    channels, k = in_channels, 0
    for block in range(1, blocks + 1):
        out = width * 2 ** (block - 1)
        for _ in range(convs_per_block):
            k += 1
            layers += [(f"conv{k}", nn.Conv2d(channels, out, 3, padding=1)), (f"act{k}", nn.ReLU())]
            channels = out
        layers.append((f"pool{block}", nn.AvgPool2d(2)))
    layers += [("flatten", nn.Flatten()),
               ("fc1", nn.Linear(channels * (size // 2 ** blocks) ** 2, hidden)),
               ("act_fc", nn.ReLU())]
    if dropout > 0:
        layers.append(("drop", nn.Dropout(dropout)))
    layers.append(("fc2", nn.Linear(hidden, num_classes)))
    return nn.Sequential(OrderedDict(layers))

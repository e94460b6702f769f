"""Our exact synaptic-op counts against sinabs' ``SNNAnalyzer`` on the same network and input
(sinabs is in the test extra, so this runs in CI)."""

import warnings

import pytest
import torch
from torch import nn

from workbench.network import SpikingNetwork, simulate
from workbench.neurons import SpikingCell

sinabs = pytest.importorskip("sinabs")


def test_synaptic_ops_equal_sinabs_snn_analyzer():
    import sinabs.layers as sl

    torch.manual_seed(0)
    B, T = 3, 6
    net = SpikingNetwork([
        ("conv1", nn.Conv2d(2, 4, 3, padding=1)), ("spike1", SpikingCell(1.0)),
        ("conv2", nn.Conv2d(4, 5, 3, stride=2, padding=1)), ("spike2", SpikingCell(1.0)),
        ("flatten", nn.Flatten()), ("fc", nn.Linear(5 * 4 * 4, 3)),
    ], (2, 8, 8))
    with torch.no_grad():
        for p in net.parameters():
            p.abs_().mul_(1.5)
    events = (torch.rand(T, B, 2, 8, 8) < 0.3).float()
    trajectory = simulate(net, events)

    def iaf():  # soft reset, one spike per step: our SpikingCell (sinabs fires at v >= θ)
        return sl.IAFSqueeze(batch_size=B, num_timesteps=T, spike_fn=sinabs.activation.SingleSpike)

    twin = nn.Sequential(net.layers.conv1, iaf(), net.layers.conv2, iaf(), nn.Flatten(),
                         net.layers.fc)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # "use sinabs.hooks": same counts
        analyzer = sinabs.SNNAnalyzer(twin)
    with torch.no_grad():
        twin(events.transpose(0, 1).reshape(B * T, 2, 8, 8))  # sinabs: [B·T, ...] batch-major
    theirs = {name: float(stats["synops"])
              for name, stats in analyzer.get_layer_statistics()["parameter"].items()}
    ours = {stage: float(ops.sum(0).mean()) for stage, ops in trajectory.synaptic_ops.items()}
    assert trajectory.spike_counts["spike2"].sum() > 0, "the comparison needs spikes"
    # sinabs names a layer by its position; ours, a stage by the cell it feeds
    assert ours["spike1"] == pytest.approx(theirs["0"], rel=1e-6)  # conv1, fed by events
    assert ours["spike2"] == pytest.approx(theirs["2"], rel=1e-6)  # conv2: stride + padding
    assert ours["readout"] == pytest.approx(theirs["5"], rel=1e-6)

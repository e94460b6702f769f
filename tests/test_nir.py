"""NIR both ways: our networks survive a round trip, graphs from other frameworks simulate with
hand-checkable spikes, and what does not map is rejected by name."""

import nir
import numpy as np
import pytest
import torch
from torch import nn

from workbench.errors import WorkbenchError
from workbench.network import SpikingNetwork, simulate
from workbench.neurons import LIFBoxLayer, SpikingCell
from workbench.nir import from_nir, to_nir


def mixed_net(readout_leak=1.0):
    """Conv → IF (soft reset) → avg-pool → conv → LIF (hard reset) → flatten → LIFBox → fc."""
    torch.manual_seed(0)
    net = SpikingNetwork([
        ("conv1", nn.Conv2d(2, 4, 3, padding=1)), ("spike1", SpikingCell(0.6, initial="half")),
        ("pool", nn.AvgPool2d(2)),
        ("conv2", nn.Conv2d(4, 6, 3, stride=2, padding=1)),
        ("spike2", SpikingCell(torch.linspace(0.3, 0.9, 6 * 2 * 2).reshape(6, 2, 2), 0.7,
                               reset="zero")),
        ("flatten", nn.Flatten()), ("fc1", nn.Linear(24, 12)), ("spike3", LIFBoxLayer(3.0, 0.4)),
        ("fc2", nn.Linear(12, 5)),
    ], (2, 8, 8), readout_leak=readout_leak)
    with torch.no_grad():
        for p in net.parameters():
            p.abs_()
    return net


def test_forward_one_step_and_sequence_match_simulate():
    net = mixed_net(readout_leak=0.9)
    x = torch.rand(7, 3, 2, 8, 8)
    trajectory = simulate(net, x)
    sequence, _ = net(x)
    assert torch.allclose(sequence, trajectory.readout, atol=1e-6)
    state, steps = None, []
    for x_t in x:
        readout, state = net(x_t, state)
        steps.append(readout)
    assert torch.allclose(torch.stack(steps), trajectory.readout, atol=1e-6)
    with pytest.raises(WorkbenchError, match=r"expected one step \[B, 2, 8, 8\]"):
        net(torch.rand(3, 8, 8))


@pytest.mark.parametrize("readout_leak", [1.0, 0.8])
def test_round_trip_through_a_file_keeps_the_trajectory(tmp_path, readout_leak):
    net = mixed_net(readout_leak)
    path = tmp_path / "net.nir"
    nir.write(path, to_nir(net))
    back = from_nir(path)
    assert back.readout_leak == pytest.approx(readout_leak)
    assert [type(c).__name__ for c in back.cells().values()] == ["SpikingCell"] * 3
    assert back.cells()["spike1"].reset == "subtract" and back.cells()["spike1"].initial == "half"
    x = (torch.rand(10, 4, 2, 8, 8) < 0.3).float()
    record = ["spike1", "spike2", "spike3"]
    a, b = simulate(net, x, record=record), simulate(back, x, record=record)
    for name in record:
        assert a.spike_counts[name].sum() > 0, "the comparison needs spikes"
        assert torch.equal(a.spikes[name], b.spikes[name]), name
    assert torch.allclose(a.readout, b.readout, atol=1e-5)
    for name in a.synaptic_ops:
        assert torch.allclose(a.synaptic_ops[name], b.synaptic_ops[name]), name


def test_export_states_the_reset_caveat_in_the_graph():
    graph = to_nir(mixed_net())
    assert graph.nodes["spike1"].metadata["reset"] == "subtract"
    assert np.all(graph.nodes["spike1"].v_reset == 0)  # what any other reader will do
    lif = graph.nodes["spike2"]
    assert isinstance(lif, nir.LIF)
    assert np.allclose(lif.tau, 1 / 0.3) and np.allclose(lif.r, 1 / 0.3)  # λ = 0.7, dt = 1


def test_graph_exported_by_norse_imports_with_hand_checked_spikes():
    import norse.torch as norse

    model = nn.Sequential(nn.Linear(2, 2), norse.IAFCell())  # v ← v + x, hard reset, θ = 1
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[0.4, 0.0], [0.0, 0.3]]))
        model[0].bias.zero_()
    net = from_nir(norse.to_nir(model, torch.zeros(1, 2)))
    assert net.input_shape == (2,)
    x = torch.ones(1, 2)
    trajectory = simulate(net, x, 8, record=["1"])
    spikes = trajectory.spikes["1"][:, 0].T.tolist()
    # 0.4, 0.8, 1.2 → spike, reset to 0 ...; 0.3, 0.6, 0.9, 1.2 → spike ...
    assert spikes == [[0, 0, 1, 0, 0, 1, 0, 0], [0, 0, 0, 1, 0, 0, 0, 1]]
    state, norse_spikes = None, []
    for _ in range(8):  # Norse's own simulation of the same module agrees
        z, state = model[1](model[0](x), state)
        norse_spikes.append(z[0].tolist())
    assert np.array(norse_spikes).T.tolist() == spikes
    assert trajectory.readout[-1, 0].tolist() == [2.0, 2.0]  # identity readout counts spikes
    flattening = norse.SequentialState(nn.Flatten(), nn.Linear(4, 2), norse.IAFCell())
    with pytest.raises(WorkbenchError, match="node '0' is empty.*Norse 1.1.0 writes nn.Flatten"):
        from_nir(norse.to_nir(flattening, torch.zeros(1, 2, 2)))


def test_graph_exported_by_sinabs_imports_with_nir_semantics_and_shows_the_reset_caveat():
    sinabs = pytest.importorskip("sinabs")  # in the test extra: runs in CI
    import sinabs.layers as sl

    model = nn.Sequential(nn.Linear(2, 2), sl.IAFSqueeze(batch_size=1,
                                                         spike_fn=sinabs.activation.SingleSpike))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[0.4, 0.0], [0.0, 0.3]]))
        model[0].bias.zero_()
    graph = sinabs.to_nir(model, torch.zeros(1, 2))
    assert isinstance(graph.nodes["1"], nir.IF) and np.all(graph.nodes["1"].v_reset == 0)
    net = from_nir(graph)
    spikes = simulate(net, torch.ones(1, 2), 8, record=["1"]).spikes["1"][:, 0].T.tolist()
    # the graph says: reset to 0 → 0.4, 0.8, 1.2 spike, 0.4, 0.8, 1.2 spike ...
    assert spikes == [[0, 0, 1, 0, 0, 1, 0, 0], [0, 0, 0, 1, 0, 0, 0, 1]]
    # sinabs itself subtracts θ (and fires at v >= θ): 1.2 → 0.2, 0.6, 1.0 spike → the caveat
    own = model(torch.ones(8, 2)).T.tolist()
    assert own == [[0, 0, 1, 0, 1, 0, 0, 1], [0, 0, 0, 1, 0, 0, 1, 0]]
    assert [row[:4] for row in own] == [row[:4] for row in spikes], "equal until the first reset"


def graph_of(*nodes):
    return nir.NIRGraph.from_list(*nodes, type_check=False)


def test_lif_with_per_neuron_time_constants_folds_its_input_gain_into_the_weights():
    """τ·dv/dt = −v + r·I with dt = 1: v ← (1 − 1/τ)·v + x/τ, per neuron."""
    graph = graph_of(
        nir.Input(np.array([2])),
        nir.Affine(weight=np.eye(2, dtype=np.float32), bias=np.zeros(2, np.float32)),
        nir.LIF(tau=np.array([2.0, 4.0], np.float32), r=np.ones(2, np.float32),
                v_leak=np.zeros(2, np.float32), v_threshold=np.ones(2, np.float32)))
    net = from_nir(graph)
    assert torch.allclose(net.layers.affine.weight, torch.diag(torch.tensor([0.5, 0.25])))
    spikes = simulate(net, torch.full((1, 2), 3.0), 6, record=["lif"]).spikes["lif"][:, 0].T
    # τ = 2: 1.5 → spike every step; τ = 4: 0.75, 1.3125 → spike, reset to 0, again
    assert spikes.tolist() == [[1] * 6, [0, 1, 0, 1, 0, 1]]


def test_sum_pooling_imports_as_average_pooling_with_the_window_in_the_weights():
    one = np.ones((1, 1, 1, 1), np.float32)
    pool = dict(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0]))
    graph = graph_of(
        nir.Input(np.array([1, 4, 4])),
        nir.Conv2d(input_shape=(4, 4), weight=one, stride=1, padding=0, dilation=1, groups=1,
                   bias=np.zeros(1, np.float32)),
        nir.IF(r=np.ones((1, 4, 4), np.float32), v_threshold=np.full((1, 4, 4), 0.5, np.float32)),
        nir.SumPool2d(**pool), nir.Flatten(input_type={"input": np.array([1, 2, 2])}, start_dim=0),
        nir.Affine(weight=np.ones((1, 4), np.float32), bias=np.zeros(1, np.float32)))
    net = from_nir(graph)
    assert isinstance(net.layers.sumpool2d, nn.AvgPool2d)
    # every pixel spikes every step; 4 windows of 4 spikes summed by the affine: 16 per step
    assert simulate(net, torch.ones(1, 1, 4, 4), 3).readout[:, 0, 0].tolist() == [16, 32, 48]


def test_unsupported_nodes_are_named():
    affine = nir.Affine(weight=np.eye(2, dtype=np.float32), bias=np.zeros(2, np.float32))
    ones = np.ones(2, np.float32)
    cuba = nir.CubaLIF(tau_syn=ones * 5, tau_mem=ones * 10, r=ones, v_leak=ones * 0,
                       v_threshold=ones)
    with pytest.raises(WorkbenchError, match="'cubalif' is a CubaLIF"):
        from_nir(graph_of(nir.Input(np.array([2])), affine, cuba))
    with pytest.raises(WorkbenchError, match="'threshold' is a Threshold, which does not import"):
        from_nir(graph_of(nir.Input(np.array([2])), affine, nir.Threshold(ones)))
    with pytest.raises(WorkbenchError, match="resets to v_reset = 0.5"):
        from_nir(graph_of(nir.Input(np.array([2])), affine,
                          nir.IF(r=ones, v_threshold=ones, v_reset=ones * 0.5)))
    with pytest.raises(WorkbenchError, match="does not exist"):
        from_nir("/nonexistent/graph.nir")
    with pytest.raises(WorkbenchError, match="adaptive threshold"):
        to_nir(SpikingNetwork([("fc", nn.Linear(2, 2)), ("s", SpikingCell(max_spikes=3)),
                               ("out", nn.Linear(2, 2))], (2,)))

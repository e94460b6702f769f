"""Simulation, trajectories, op counts, stopping and bad input."""

import pytest
import torch
from torch import nn

from workbench.errors import WorkbenchError
from workbench.network import NonFiniteError, SpikingNetwork, connection_counts, dense_macs, simulate
from workbench.neurons import SpikingCell


def small_net(in_shape=(1, 6, 6), seed=0):
    torch.manual_seed(seed)
    layers = [
        ("conv1", nn.Conv2d(in_shape[0], 4, 3, padding=1, stride=1)),
        ("spike1", SpikingCell(0.5)),
        ("conv2", nn.Conv2d(4, 6, 3, padding=1, stride=2)),
        ("spike2", SpikingCell(0.5)),
        ("pool", nn.AvgPool2d(3)),
        ("flatten", nn.Flatten()),
        ("fc", nn.Linear(6, 5)),
    ]
    net = SpikingNetwork(layers, in_shape)
    with torch.no_grad():
        for p in net.parameters():
            p.abs_()  # positive weights: plenty of spikes
    return net


def test_accuracy_at_every_t_equals_separate_runs():
    net = small_net()
    x = torch.rand(8, 1, 6, 6)
    labels = torch.randint(0, 5, (8,))
    full = simulate(net, x, 32)
    curve = full.accuracy_curve(labels)
    for t in (1, 3, 7, 16, 32):
        short = simulate(net, x, t)
        assert torch.equal(short.readout[-1], full.readout[t - 1])
        assert curve[t - 1].item() == pytest.approx(short.accuracy_curve(labels)[-1].item())


def test_recorded_spikes_sum_to_counts():
    net = small_net()
    trajectory = simulate(net, torch.rand(5, 1, 6, 6), 12, record=["spike1", "spike2"])
    for name in ("spike1", "spike2"):
        assert trajectory.spikes[name].shape == (12, 5, trajectory.neurons[name])
        assert torch.equal(trajectory.spikes[name].sum(-1).float(), trajectory.spike_counts[name])
    assert trajectory.spike_counts["spike1"].sum() > 0


def test_stopping_freezes_readout_and_counts():
    net = small_net()
    x = torch.rand(6, 1, 6, 6)
    stops = torch.tensor([1, 3, 5, 10, 10, 2])
    stopped = simulate(net, x, 10, stop=stops, record=["spike1"])
    free = simulate(net, x, 10)
    for b, s in enumerate(stops.tolist()):
        # identical to the free run up to the stop, frozen afterwards
        assert torch.allclose(stopped.readout[:s, b], free.readout[:s, b])
        assert torch.equal(stopped.readout[s - 1:, b], stopped.readout[s - 1, b].expand(10 - s + 1, -1))
        for counts in (*stopped.spike_counts.values(), *stopped.synaptic_ops.values()):
            assert counts[s:, b].sum() == 0
        assert stopped.spikes["spike1"][s:, b].sum() == 0
    assert stopped.stop_steps.tolist() == stops.tolist()


def test_stop_rule_callable_matches_precomputed_stops():
    net = small_net()
    x = torch.rand(6, 1, 6, 6)
    free = simulate(net, x, 10)
    margin = free.readout.max(-1).values  # a rule: stop once the max readout exceeds 2.0

    def rule(t, readout):
        return readout.max(-1).values > 2.0

    live = simulate(net, x, 10, stop=rule)
    expected = torch.full((6,), 10)
    for b in range(6):
        hits = (margin[:, b] > 2.0).nonzero()
        if len(hits):
            expected[b] = hits[0].item() + 1
    assert live.stop_steps.tolist() == expected.tolist()


def test_synaptic_ops_equal_brute_force():
    net = small_net()
    trajectory = simulate(net, torch.rand(3, 1, 6, 6), 6, record=["spike1", "spike2"])
    # brute force: for every spike, count the output positions/units that its weights reach
    conv2 = net.layers.conv2
    for b in range(3):
        for t in range(6):
            spikes = trajectory.spikes["spike1"][t, b].reshape(4, 6, 6)
            total = 0
            for c, i, j in spikes.nonzero().tolist():
                x = torch.zeros(1, 4, 6, 6)
                x[0, c, i, j] = 1.0
                ones = torch.ones_like(conv2.weight)
                reach = torch.nn.functional.conv2d(x, ones, None, conv2.stride, conv2.padding)
                total += int((reach != 0).sum())
            assert trajectory.synaptic_ops["spike2"][t, b].item() == total


def test_connection_counts_linear_and_macs():
    ops = nn.Sequential(nn.Flatten(), nn.Linear(12, 7))
    assert torch.equal(connection_counts(ops, (3, 2, 2)), torch.full((3, 2, 2), 7.0))
    assert dense_macs(ops, (3, 2, 2)) == 12 * 7
    conv = nn.Sequential(nn.Conv2d(2, 5, 3, padding=1, stride=2))
    assert dense_macs(conv, (2, 8, 8)) == 5 * 4 * 4 * 2 * 3 * 3


def test_event_input_counts_synaptic_ops_from_events():
    net = small_net()
    events = torch.zeros(4, 2, 1, 6, 6)
    events[0, 0, 0, 2, 2] = 1  # one event: fan-out = 4 channels × 9 positions = 36
    trajectory = simulate(net, events)
    assert trajectory.T == 4
    assert trajectory.synaptic_ops["spike1"][0].tolist() == [36.0, 0.0]
    assert trajectory.analog_stages == ()


def test_injected_initial_state():
    net = small_net()
    x = torch.zeros(2, 1, 6, 6)
    v0 = torch.full((2, 4, 6, 6), 10.0)
    trajectory = simulate(net, x, 1, init_state={"spike1": v0})
    assert trajectory.spike_counts["spike1"][0].tolist() == [144.0, 144.0]


@pytest.mark.parametrize("call, message", [
    (lambda n: simulate(n, torch.rand(2, 1, 6, 6), 0), "T must be a whole number"),
    (lambda n: simulate(n, torch.rand(2, 1, 6, 6)), "static .* inputs need T"),
    (lambda n: simulate(n, torch.rand(2, 3, 6, 6), 4), r"do not fit this network"),
    (lambda n: simulate(n, torch.rand(3, 2, 1, 6, 6), 5), "exceeds the 3 time bins"),
    (lambda n: simulate(n, torch.full((2, 1, 6, 6), float("nan")), 2), "NaN"),
    (lambda n: simulate(n, torch.rand(2, 1, 6, 6), 2, record=["nope"]), "unknown layer 'nope'"),
    (lambda n: simulate(n, torch.rand(2, 1, 6, 6), 3, stop=torch.tensor([0, 2])), "1..3"),
])
def test_bad_simulation_input(call, message):
    with pytest.raises(WorkbenchError, match=message):
        call(small_net())


def test_network_must_end_with_readout():
    with pytest.raises(WorkbenchError, match="readout"):
        SpikingNetwork([("fc", nn.Linear(4, 3)), ("spike", SpikingCell())], (4,))


class _NaNAtStep:
    """A broken threshold policy: θ becomes NaN at one step (what a bad policy can do)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def initial_state(self, v):
        return 0

    def threshold(self, base, v_prev, x, state):
        return torch.full_like(x, float("nan")) if state + 1 == self.step else None

    def emit(self, spikes, state):
        return spikes

    def update(self, state, v_post, spikes):
        return state + 1


def test_simulate_names_the_layer_and_step_where_a_membrane_turns_nan():
    net = SpikingNetwork([("fc1", nn.Linear(4, 6)), ("spike1", SpikingCell(1.0)),
                          ("fc2", nn.Linear(6, 5)), ("spike2", SpikingCell(1.0, policy=_NaNAtStep(3))),
                          ("out", nn.Linear(5, 2))], (4,))
    with pytest.raises(NonFiniteError, match=r"layer 'spike2': 100% of its membranes became NaN at "
                                             r"step 3"):
        simulate(net, torch.rand(3, 4), 10)
    with pytest.raises(NonFiniteError, match="spike2.*step 3"):  # the same with early stopping
        simulate(net, torch.rand(3, 4), 10, stop=torch.tensor([2, 5, 10]))
    simulate(net, torch.rand(3, 4), 2)  # before the bad step nothing is wrong


def test_simulate_rejects_a_non_finite_readout():
    net = SpikingNetwork([("fc1", nn.Linear(4, 6)), ("spike1", SpikingCell(1.0)),
                          ("out", nn.Linear(6, 2))], (4,))
    with torch.no_grad():
        net.layers.out.bias[0] = float("inf")
    with pytest.raises(WorkbenchError, match="readout became non-finite .* at step 1 of 5"):
        simulate(net, torch.rand(3, 4), 5)


def test_hooks_on_cells_and_layers_see_every_step():
    """simulate's shortcuts (in-place cells, the first static stage once per run, slice
    pooling) step aside for a module a forward hook watches."""
    net = small_net()
    calls = {"conv1": 0, "spike1": 0, "pool": 0}
    for name in calls:
        getattr(net.layers, name).register_forward_pre_hook(
            lambda module, args, name=name: calls.__setitem__(name, calls[name] + 1))
    simulate(net, torch.rand(3, 1, 6, 6), 7)
    profile_calls = calls["conv1"] - 7  # (the op-count profile runs a stage once)
    assert calls["spike1"] == 7 and calls["pool"] >= 7 and profile_calls >= 0

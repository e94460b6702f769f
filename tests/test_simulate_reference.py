"""``simulate`` against a straightforward reference loop: the same trajectory, bit for bit.

The simulator takes shortcuts (in-place membranes, a first stage run once for static inputs,
several timesteps per layer call); the reference steps every layer and cell through its public
``forward`` at every timestep and counts synaptic operations from the connection map, so any
shortcut that changes a value fails here.

A layer call on the k·B rows of a block may round differently from one on the B rows of a step:
MKL's GEMM takes other kernels for few rows (under ~16 rows with one thread, up to a few hundred
with two), torch runs a batch-1 convolution without oneDNN, and cuBLAS/cuDNN choose by shape.
The step-by-step loop already rounded by batch size in the same way. So the bit-for-bit tests
use dyadic weights, inputs and thresholds (multiples of 1/8 with few significant bits), whose
sums are exact in any order and any row count: they check the bookkeeping. With ordinary
weights the stated tolerance: readouts within 1e-5 of their range, spike totals within 0.1 %
(a membrane within rounding of θ may fire in one evaluation only).
"""

import pytest
import torch
from torch import nn

from workbench import network
from workbench.network import (
    NonFiniteError,
    SpikingNetwork,
    TimeSharedDropout,
    connection_counts,
    simulate,
)
from workbench.neurons import SpikingCell

# conv_net's widest layer holds 8·8·8 neurons: 2 KiB per sample per step
BLOCKS = {"step by step": 1, "blocks of a few steps": 3 * 6 * 2048, "whole run": None}


@pytest.fixture(params=BLOCKS.values(), ids=BLOCKS.keys())
def block_bytes(request, monkeypatch):
    """Run under each block budget (None: the default)."""
    if request.param is not None:
        monkeypatch.setitem(network.BLOCK_BYTES, "cpu", request.param)
    return request.param


def reference(net: SpikingNetwork, inputs, T: int, stop=None, record=(), init_state=None):
    """(readout [T, B, K], spike counts, synaptic ops, spikes, membranes) by the book: every
    sample that has not stopped steps through every stage; stopped samples keep zeros and
    their last readout."""
    static = inputs.shape[1:] == net.input_shape
    B = inputs.shape[0] if static else inputs.shape[1]
    stop = torch.full((B,), T) if stop is None else stop
    init_state = init_state or {}
    states, readout = {}, None
    readouts, counts, synops, spikes, membranes = [], {}, {}, {}, {}
    for t in range(T):
        active = (stop > t).nonzero().flatten()
        x = (inputs if static else inputs[t])[active]
        h = events = x  # the synapses receive h; the counts see events (spikes, not charge)
        for i, stage in enumerate(net.stages):
            if i > 0 or not static:
                fanout = connection_counts(stage.ops, tuple(h.shape[1:])).flatten()
                synops.setdefault(stage.name, torch.zeros(T, B))[t, active] = \
                    events.flatten(1) @ fanout
            h = stage.ops(h)
            if stage.cell is None:
                break
            if stage.name not in states:
                state = stage.cell.initial_state(h)
                if stage.name in init_state:
                    state = state._replace(v=init_state[stage.name].clone())
                states[stage.name] = state
            state = states[stage.name]
            state = state._replace(v=state.v[active]) if state.v.shape[0] != h.shape[0] else state
            z, state = stage.cell(h, state)
            full_v = torch.zeros(B, *state.v.shape[1:])
            full_v[active] = state.v
            states[stage.name] = state._replace(v=full_v)
            counts.setdefault(stage.name, torch.zeros(T, B))[t, active] = z.flatten(1).sum(1)
            if stage.name in record:
                spikes.setdefault(stage.name, torch.zeros(T, B, z[0].numel(), dtype=torch.uint8))[
                    t, active] = z.flatten(1).to(torch.uint8)
                membranes.setdefault(stage.name, torch.zeros(T, B, z[0].numel()))[t, active] = \
                    state.v.flatten(1)
            h, events = stage.cell.transmit(z, state), z
        step = torch.zeros(B, h.shape[1]) if readout is None else readout.clone()
        step[active] = h if readout is None else net.readout_leak * readout[active] + h
        readout = step
        readouts.append(readout)
    return torch.stack(readouts), counts, synops, spikes, membranes


def conv_net(cell, in_channels=1, readout_leak=1.0, dropout=False, flatten=nn.Flatten):
    """A two-cell CNN with dyadic weights (multiples of 1/8), first-layer weights positive."""
    torch.manual_seed(0)
    layers = [("conv1", nn.Conv2d(in_channels, 8, 3, padding=1)), ("spike1", cell()),
              ("pool", nn.AvgPool2d(2)),
              ("conv2", nn.Conv2d(8, 8, 3, padding=1, stride=2)), ("spike2", cell()),
              ("flatten", flatten())]
    layers += [("drop", TimeSharedDropout(0.3))] if dropout else []
    layers += [("fc", nn.Linear(8 * 2 * 2, 5))]
    net = SpikingNetwork(layers, (in_channels, 8, 8), readout_leak=readout_leak).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randint(-6, 9, p.shape) / 8)
        net.layers.conv1.weight.abs_()
    return net


def dyadic_inputs(*shape):
    return torch.randint(0, 9, shape) / 8


CELLS = {
    "IF soft reset": lambda: SpikingCell(0.7),
    "LIF hard reset": lambda: SpikingCell(0.8, leak=0.5, reset="zero"),
    "per-neuron θ, half start": lambda: SpikingCell(torch.randint(4, 13, (8, 1, 1)) / 8,
                                                    initial="half"),
    "charge output": lambda: SpikingCell(0.625, leak=0.9, output="charge"),
    "multi-spike": lambda: SpikingCell(0.5, max_spikes=3),
}


def assert_matches(trajectory, expected, record=()):
    readout, counts, synops, spikes, membranes = expected
    assert torch.equal(trajectory.readout, readout)
    for name, series in counts.items():
        assert torch.equal(trajectory.spike_counts[name], series), name
    assert trajectory.synaptic_ops.keys() == synops.keys()
    for name, series in synops.items():
        assert torch.equal(trajectory.synaptic_ops[name], series), name
    for name in record:
        assert torch.equal(trajectory.spikes[name], spikes[name]), name
        assert torch.equal(trajectory.membrane[name], membranes[name]), name


@pytest.mark.parametrize("cell", CELLS.values(), ids=CELLS.keys())
def test_static_inputs_match_the_reference(cell, block_bytes):
    net = conv_net(cell, readout_leak=0.9)
    x = dyadic_inputs(6, 1, 8, 8)
    record = ("spike1", "spike2")
    with torch.no_grad():
        expected = reference(net, x, 12, record=record)
    assert_matches(simulate(net, x, 12, record=list(record)), expected, record)


@pytest.mark.parametrize("cell", CELLS.values(), ids=CELLS.keys())
def test_event_inputs_and_early_stops_match_the_reference(cell, block_bytes):
    net = conv_net(cell, in_channels=2, dropout=True)
    events = (torch.rand(10, 5, 2, 8, 8) > 0.7).float()
    stops = torch.tensor([10, 3, 1, 7, 4])  # one sample runs alone for the last three steps
    with torch.no_grad():
        expected = reference(net, events, 10, stop=stops, record=("spike2",))
    assert_matches(simulate(net, events, stop=stops, record=["spike2"]), expected, ("spike2",))


def test_stopped_static_run_and_injected_state_match_the_reference(block_bytes):
    net = conv_net(CELLS["IF soft reset"])
    x = dyadic_inputs(5, 1, 8, 8)
    v0 = {"spike1": dyadic_inputs(5, 8, 8, 8)}
    stops = torch.tensor([2, 9, 4, 9, 1])
    kept = v0["spike1"].clone()
    with torch.no_grad():
        expected = reference(net, x, 9, stop=stops, init_state=v0, record=("spike1",))
    trajectory = simulate(net, x, 9, stop=stops, init_state=v0, record=["spike1"])
    assert_matches(trajectory, expected, ("spike1",))
    assert torch.equal(v0["spike1"], kept), "simulate must not write into an injected membrane"


def test_observed_and_differentiable_runs_give_the_same_trajectory():
    net = conv_net(CELLS["LIF hard reset"])
    x = torch.rand(4, 1, 8, 8)
    plain = simulate(net, x, 8)
    seen = []
    observed = simulate(net, x, 8, observe=lambda t, name, z, state: seen.append(state.v))
    trained = simulate(net, x, 8, grad=True)
    assert torch.equal(observed.readout, plain.readout)
    assert torch.equal(trained.readout.detach(), plain.readout)
    assert len({id(v) for v in seen}) == len(seen), "an observer sees a fresh membrane every step"
    trained.readout[-1].sum().backward()
    assert net.layers.conv1.weight.grad is not None


def dyadic_mlp(cell):
    torch.manual_seed(1)
    net = SpikingNetwork([("fc1", nn.Linear(16, 64)), ("spike1", cell()),
                          ("fc2", nn.Linear(64, 32)), ("spike2", cell()),
                          ("fc3", nn.Linear(32, 5))], (16,)).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randint(-6, 9, p.shape) / 8)
    return net


@pytest.mark.parametrize("cell", [c for n, c in CELLS.items() if n != "per-neuron θ, half start"],
                         ids=[n for n in CELLS if n != "per-neuron θ, half start"])
@pytest.mark.parametrize("shape", ["mlp", "conv then fully connected"])
def test_sparse_spike_products_match_the_reference(cell, shape, monkeypatch):
    """A Linear fed spikes sums only the active inputs' weight columns (forced here for every
    density): bit for bit with dyadic weights, its Flatten before it included. (Charge is no
    spike count: a charge-output cell's next layer stays dense.)"""
    monkeypatch.setattr(network, "SPARSE_DENSITY", 1e9)
    monkeypatch.setattr(network, "SPARSE_MIN_OUT", 0)
    net, x = ((dyadic_mlp(cell), dyadic_inputs(6, 16)) if shape == "mlp"
              else (conv_net(cell), dyadic_inputs(6, 1, 8, 8)))
    calls = []
    monkeypatch.setattr(nn.functional, "embedding_bag",
                        lambda *a, bag=nn.functional.embedding_bag, **k: calls.append(1)
                        or bag(*a, **k))
    with torch.no_grad():
        expected = reference(net, x, 10, record=("spike2",))
    assert_matches(simulate(net, x, 10, record=["spike2"]), expected, ("spike2",))
    assert bool(calls) == (cell().output == "spike"), "the sparse product ran for spikes"


def test_ordinary_weights_agree_with_the_reference_within_tolerance():
    """Wide layers, where the GEMM of a few rows takes other kernels than that of a block."""
    torch.manual_seed(0)
    net = SpikingNetwork([
        ("fc1", nn.Linear(64, 1024)), ("spike1", SpikingCell(0.5)),
        ("fc2", nn.Linear(1024, 1024)), ("spike2", SpikingCell(0.5, leak=0.9)),
        ("fc3", nn.Linear(1024, 10)),
    ], (64,)).eval()
    x = torch.rand(3, 64)
    with torch.no_grad():
        readout, counts, *_ = reference(net, x, 16)
    trajectory = simulate(net, x, 16)
    span = readout.abs().max().clamp(min=1.0)
    assert (trajectory.readout - readout).abs().max() <= 1e-5 * span
    for name, series in counts.items():
        total = series.sum()
        assert total > 0, name
        assert (trajectory.spike_counts[name].sum() - total).abs() <= 1e-3 * total, name


class RowCounter(nn.Flatten):
    """A Flatten that notes how many rows each call receives."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[int] = []

    def forward(self, x):
        self.rows.append(x.shape[0])
        return super().forward(x)


@pytest.mark.parametrize("budget", [None, 3 * 6 * 2048, 1])
def test_blocks_keep_within_the_budget(budget, monkeypatch):
    if budget is not None:
        monkeypatch.setitem(network.BLOCK_BYTES, "cpu", budget)
    net = conv_net(CELLS["IF soft reset"], flatten=RowCounter)
    x = dyadic_inputs(6, 1, 8, 8)
    simulate(net, x, 12)  # (the first run also maps each stage's connections, one row each)
    rows = net.layers.flatten.rows
    rows.clear()
    simulate(net, x, 12)
    assert sum(rows) == 12 * 6
    assert rows[0] == 6, "the first step runs alone: it measures the stages"
    most = 6 * max(1, (budget or network.BLOCK_BYTES["cpu"]) // (6 * 2048))
    assert max(rows) == min(most, 11 * 6)


@pytest.mark.parametrize("case", ["stop rule", "dropout on"])
def test_step_by_step_where_a_block_would_change_the_run(case):
    net = conv_net(CELLS["IF soft reset"], flatten=RowCounter, dropout=case == "dropout on")
    kwargs = {"stop rule": {"stop": lambda t, readout: readout.max(-1).values > 1e9}}.get(case, {})
    if case == "dropout on":
        net.train()
    x = dyadic_inputs(6, 1, 8, 8)
    simulate(net, x, 12, **kwargs)
    net.layers.flatten.rows.clear()
    simulate(net, x, 12, **kwargs)
    assert net.layers.flatten.rows == [6] * 12


def test_an_observer_sees_in_blocks_what_it_sees_step_by_step(monkeypatch):
    """An observer does not force single steps: per cell, its calls come in step order with the
    spikes and membranes of the step-by-step loop (dyadic weights: bit for bit)."""
    net = conv_net(CELLS["IF soft reset"], flatten=RowCounter)
    x = dyadic_inputs(6, 1, 8, 8)

    def observed() -> tuple[dict, list[int]]:
        seen: dict[str, list] = {}

        def observe(t, name, z, state):
            seen.setdefault(name, []).append((t, z.clone(), state.v.clone()))

        net.layers.flatten.rows.clear()
        trajectory = simulate(net, x, 12, observe=observe)
        return seen, list(net.layers.flatten.rows), trajectory

    blocked, rows, run = observed()
    assert max(rows) > 6, "an observed run still evaluates blocks of timesteps"
    monkeypatch.setitem(network.BLOCK_BYTES, "cpu", 1)
    stepped, rows, reference = observed()
    assert rows == [6] * 12
    assert blocked.keys() == stepped.keys()
    for name in blocked:
        assert [t for t, _, _ in blocked[name]] == list(range(12))
        for (_, z, v), (_, z_ref, v_ref) in zip(blocked[name], stepped[name], strict=True):
            assert torch.equal(z, z_ref) and torch.equal(v, v_ref)
    assert torch.equal(run.readout, reference.readout)


def test_an_observer_beside_stop_steps_sees_only_the_samples_still_running():
    net = conv_net(CELLS["IF soft reset"])
    stops = torch.tensor([12, 3, 1, 7, 4, 12])
    seen = []
    simulate(net, dyadic_inputs(6, 1, 8, 8), 12, stop=stops,
             observe=lambda t, name, z, state: seen.append((t, z.shape[0])))
    assert seen == [(t, int((stops > t).sum())) for t in range(12) for _ in ("spike1", "spike2")]


@pytest.mark.parametrize("stop_step, fails", [(2, False), (3, True)])
def test_a_membrane_overflowing_after_its_sample_stopped_is_no_error(stop_step, fails):
    """Inside a block a stopped sample runs on to the block's end; what it computes after its
    stop (here an infinite membrane from step 3) must not count."""
    net = SpikingNetwork([("fc1", nn.Linear(1, 1)), ("spike1", SpikingCell(1.0)),
                          ("fc2", nn.Linear(1, 2))], (1,)).eval()
    with torch.no_grad():
        net.layers.fc1.weight.fill_(1.0)
        net.layers.fc1.bias.zero_()
    x = torch.tensor([[1.5e38], [0.5]])  # v: 1.5e38, 3e38, then inf
    stops = torch.tensor([stop_step, 4])
    if fails:
        with pytest.raises(NonFiniteError, match="'spike1'.*step 3"):
            simulate(net, x, 4, stop=stops)
    else:
        assert simulate(net, x, 4, stop=stops).stop_steps.tolist() == [2, 4]


@pytest.mark.parametrize(("outputs", "threads", "sparse"),
                         [(256, 1, True), (256, 2, True), (10, 1, False)])
def test_the_sparse_product_runs_where_it_pays(outputs, threads, sparse, monkeypatch):
    """6 % of the inputs spiking (some twice, as multi-spike cells send): sparse for a wide
    Linear on one thread or two, dense for a narrow readout; the same values either way."""
    torch.manual_seed(0)
    ops = nn.Sequential(nn.Linear(512, outputs)).eval()
    spikes = (torch.rand(64, 512) < 0.06).float() * torch.randint(1, 3, (64, 512))
    calls = []
    monkeypatch.setattr(nn.functional, "embedding_bag",
                        lambda *a, bag=nn.functional.embedding_bag, **k: calls.append(1)
                        or bag(*a, **k))
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.no_grad():
            out = network._ops_on_spikes(ops, spikes, spikes.sum(1, keepdim=True))
            expected = ops(spikes)
    finally:
        torch.set_num_threads(before)
    assert bool(calls) == sparse
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-5)


def test_a_silent_input_through_the_sparse_product_gives_the_bias():
    """No spike in any sample (every bag empty), or in some samples only: the dense values."""
    torch.manual_seed(0)
    ops = nn.Sequential(nn.Linear(512, 256)).eval()
    spikes = torch.zeros(8, 512)
    for _ in range(2):
        with torch.no_grad():
            out = network._ops_on_spikes(ops, spikes, spikes.sum(1, keepdim=True))
            torch.testing.assert_close(out, ops(spikes), rtol=0, atol=1e-6)
        spikes[3, 7] = 1.0  # then one sample spikes once

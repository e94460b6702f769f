"""MSAT's adaptive threshold policy, spike confidence and SIN measurement."""

import math

import pytest
import torch
from torch import nn

from workbench.errors import WorkbenchError
from workbench.methods.msat import (
    PUBLISHED,
    SCALE_RANGE,
    Candidate,
    MSATConstants,
    MSATState,
    MultiStageThreshold,
    candidates,
    search,
    sin_fraction,
    with_policy,
)
from workbench.network import SpikingNetwork, simulate
from workbench.neurons import SpikingCell

BASE = torch.tensor(1.0)


def state_with_mean(mean: float, n: int = 4) -> MSATState:
    return MSATState(torch.full((1, 3), mean * n), n, None)


def test_threshold_rises_with_potential_above_its_running_mean():
    policy = MultiStageThreshold(use_det=False)
    state = state_with_mean(0.2)
    v_prev = torch.tensor([[0.0, 0.2, 0.6]])  # below, at, above the running mean
    theta = policy.threshold(BASE, v_prev, torch.zeros(1, 3), state)
    assert theta[0, 0] < theta[0, 1] < theta[0, 2]


def test_threshold_falls_with_strong_input():
    policy = MultiStageThreshold(use_dtt=False)
    x = torch.tensor([[-0.5, 0.1, 2.0]])  # weak to strong depolarisation
    theta = policy.threshold(BASE, torch.zeros(1, 3), x, state_with_mean(0.0))
    assert theta[0, 0] > theta[0, 1] > theta[0, 2]


@pytest.mark.parametrize("use_dtt, use_det", [(True, True), (True, False), (False, True)])
@pytest.mark.parametrize("constants", [PUBLISHED, MSATConstants(0.7, 2.0, 0.3, 1.5, 3.0, 0.05)])
def test_threshold_is_the_papers_equation(constants, use_dtt, use_det):
    """θ_t = θ_max·sigmoid(τ_mp·[α·d + V_T + k_a·ln(1 + exp(d/k_i))] + τ_rd·exp(−x/C)),
    d = m_{t−1} − m̄_t, V_T = −θ_max, floored at 5 % of θ_max (float64 by the book)."""
    c, theta_max, base = constants, 1.3, torch.tensor(0.8)
    policy = MultiStageThreshold(c, use_dtt, use_det, theta_max=theta_max)
    gen = torch.Generator().manual_seed(0)
    v_prev, x = torch.randn(500, generator=gen) * 3, torch.randn(500, generator=gen) * 4
    state = MSATState(torch.randn(500, generator=gen) * 5, 7, None)
    d = v_prev.double() - state.potential_sum.double() / 7
    drive = torch.zeros_like(d)
    if use_dtt:
        drive += c.tau_mp * (c.alpha * d - theta_max + c.k_a * torch.log1p(torch.exp(d / c.k_i)))
    if use_det:
        drive += c.tau_rd * torch.exp((-x.double() / c.C).clamp(max=30.0))
    expected = theta_max * 0.8 * torch.sigmoid(drive).clamp(min=0.05)
    theta = policy.threshold(base, v_prev, x, state)
    assert torch.allclose(theta.double(), expected, rtol=1e-5, atol=1e-6)


def test_first_step_uses_theta_max():
    policy = MultiStageThreshold(theta_max=1.0)
    theta = policy.threshold(BASE, torch.zeros(2, 3), torch.rand(2, 3), policy.initial_state(
        torch.zeros(2, 3)))
    assert torch.all(theta == 1.0)


@pytest.mark.parametrize("constants", [MSATConstants(), MSATConstants(3, 0.1, 0.1, 0.1, 3, 3),
                                       MSATConstants(0.1, 3, 3, 3, 0.1, 0.1)])
def test_threshold_never_reaches_zero(constants):
    policy = MultiStageThreshold(constants)
    v_prev = torch.linspace(-50, 50, 101).view(1, -1)
    x = torch.linspace(100, -100, 101).view(1, -1)
    theta = policy.threshold(BASE, v_prev, x, MSATState(torch.zeros(1, 101), 3, None))
    assert theta.min() >= 0.05 - 1e-7 and torch.isfinite(theta).all()


def small_converted(seed=0):
    torch.manual_seed(seed)
    net = SpikingNetwork([("fc1", nn.Linear(10, 16)), ("spike1", SpikingCell(1.0)),
                          ("fc2", nn.Linear(16, 12)), ("spike2", SpikingCell(1.0)),
                          ("fc3", nn.Linear(12, 3))], (10,))
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(2.0)
    return net


def test_both_terms_off_equals_the_constant_threshold_cell_exactly():
    net = small_converted()
    x = torch.rand(16, 10)
    plain = simulate(net, x, 20, record=["spike1", "spike2"])
    off = simulate(with_policy(net, "constant"), x, 20, record=["spike1", "spike2"])
    assert torch.equal(plain.readout, off.readout)
    for name in ("spike1", "spike2"):
        assert torch.equal(plain.spikes[name], off.spikes[name])
        assert torch.equal(plain.membrane[name], off.membrane[name])


def test_adaptive_modes_change_the_dynamics_and_soft_reset_uses_theta_t():
    net = small_converted()
    x = torch.rand(8, 10)
    run = simulate(with_policy(net, "MSAT"), x, 6, record=["spike1"])
    theta = run.thresholds["spike1"]  # [T, B, N], moving
    assert theta.dim() == 3 and not torch.all(theta == theta[0])
    plain = simulate(net, x, 6, record=["spike1"])
    assert not torch.equal(run.spikes["spike1"], plain.spikes["spike1"])
    # soft reset by the same θ_t that fired: v_t = v_{t-1} + I_t − z_t·θ_t
    current = net.layers.fc1(x)
    v = run.membrane["spike1"]
    for t in range(1, 6):
        expected = v[t - 1] + current - run.spikes["spike1"][t].float() * theta[t]
        assert torch.allclose(v[t], expected, atol=1e-5)


def test_spike_gate_is_seeded_and_off_after_t_c():
    net = small_converted()
    x = torch.rand(32, 10)
    gated = with_policy(net, "constant", confidences={"spike1": 0.5, "spike2": 0.5}, t_c=3,
                        seed=7)
    a = simulate(gated, x, 8, record=["spike1"])
    b = simulate(gated, x, 8, record=["spike1"])
    assert torch.equal(a.spikes["spike1"], b.spikes["spike1"])  # deterministic under the seed
    ungated = simulate(with_policy(net, "constant"), x, 8, record=["spike1"])
    # the gate only drops: every emitted spike is one the ungated neuron fires too, at step 1
    assert torch.all(a.spikes["spike1"][0] <= ungated.spikes["spike1"][0])
    assert a.spikes["spike1"][:3].sum() < ungated.spikes["spike1"][:3].sum()
    # a dropped spike still resets: the membranes match the ungated run at step 1
    assert torch.equal(a.membrane["spike1"][0], ungated.membrane["spike1"][0])
    other = simulate(with_policy(net, "constant", confidences={"spike1": 0.5}, t_c=3, seed=8),
                     x, 8, record=["spike1"])
    assert not torch.equal(a.spikes["spike1"][:3], other.spikes["spike1"][:3])


@pytest.mark.parametrize("use_dtt, use_det", [(False, False), (True, True)])
def test_gated_cell_keeps_finite_membranes_and_fires_after_t_c(use_dtt, use_det):
    """The defect this guards: blocking a spike with θ = ∞ made the soft reset 0·∞ = NaN."""
    policy = MultiStageThreshold(use_dtt=use_dtt, use_det=use_det, confidence=0.5, t_c=4)
    cell = SpikingCell(1.0, policy=policy)
    x = torch.full((64, 100), 0.3)
    state, spikes = None, []
    for _ in range(64):
        z, state = cell(x, state)
        assert torch.isfinite(state.v).all()
        spikes.append(z)
    spikes = torch.stack(spikes)
    assert spikes[4:].sum(0).min() > 0  # every neuron fires again after the gate closes
    assert torch.isfinite(state.policy.potential_sum).all()


def test_msat_layer_sends_the_charge_it_removed_and_counts_events():
    net = with_policy(small_converted(), "MSAT")
    x = torch.rand(8, 10)
    received, charge = [], []
    net.layers.fc2.register_forward_pre_hook(  # (batch 1: the op-count profile's own pass)
        lambda module, args: received.append(args[0]) if len(args[0]) == len(x) else None)

    def observe(t, name, spikes, state):
        if name == "spike1":
            charge.append(spikes * state.threshold)

    run = simulate(net, x, 12, observe=observe)
    assert torch.allclose(torch.stack(received), torch.stack(charge))
    assert not torch.equal(torch.stack(received), (torch.stack(charge) > 0).float())
    # synaptic ops count spikes × fan-out (12 targets each), never their charge
    assert torch.equal(run.synaptic_ops["spike2"], run.spike_counts["spike1"] * 12)


def test_multi_spike_floor_mode_sends_s_times_theta():
    net = with_policy(small_converted(), "MSAT", max_spikes=3)
    x = torch.rand(8, 10) * 4
    received, charge, counts, bursts = [], [], [], []
    net.layers.fc2.register_forward_pre_hook(  # (batch 1: the op-count profile's own pass)
        lambda module, args: received.append(args[0]) if len(args[0]) == len(x) else None)

    def observe(t, name, spikes, state):
        if name == "spike1":
            charge.append(spikes * state.threshold)
            counts.append(spikes.sum(1))
            bursts.append(spikes.max())

    run = simulate(net, x, 6, observe=observe)
    assert max(bursts) > 1  # some neuron emits several spikes in one step
    assert torch.allclose(torch.stack(received), torch.stack(charge))
    assert torch.equal(run.spike_counts["spike1"], torch.stack(counts))


def test_threshold_scale_and_initial_potential():
    net = small_converted()
    scaled = with_policy(net, "constant", threshold_scale=0.5, initial="half")
    for cell in scaled.cells().values():
        assert float(cell.threshold) == 0.5 and cell.initial == "half"
    assert float(next(iter(net.cells().values())).threshold) == 1.0  # the original is untouched
    with pytest.raises(WorkbenchError, match="threshold scale must be > 0"):
        with_policy(net, "constant", threshold_scale=0.0)


def test_search_candidates_start_from_the_published_setting_and_keep_ties():
    constant = candidates("constant", 8, seed=1)
    assert constant[0] == Candidate("constant")
    assert all(SCALE_RANGE[0] <= c.threshold_scale <= SCALE_RANGE[1] for c in constant)
    assert {c.initial for c in constant[1:]} <= {"zero", "half"}
    adaptive = candidates("MSAT", 8, seed=1)
    assert adaptive[0].constants == PUBLISHED == MSATConstants(0.3, 1, 1, 5, 0.2, 0.1)
    assert len(set(adaptive)) == 8
    net = small_converted()
    x, y = torch.rand(20, 10), torch.zeros(20, dtype=torch.long)
    best, score = search(net, "DTT", x, y, trials=4, progress=False)
    assert 0.0 <= score <= 1.0 and best in candidates("DTT", 4)


def test_sin_fraction_on_a_hand_built_pair():
    """An event burst gives neuron 0 a +2 kick at step 1 and it fires, although on the rate
    input the ANN leaves it at −0.1: one spike, and it is a spike of an inactivated neuron."""
    fc = nn.Linear(1, 2, bias=False)
    with torch.no_grad():
        fc.weight.copy_(torch.tensor([[-0.1], [2.0]]))
    net = SpikingNetwork([("fc", fc), ("spike1", SpikingCell(1.0)),
                          ("out", nn.Linear(2, 1))], (1,))
    ann = nn.Sequential(fc, nn.ReLU(), nn.Linear(2, 1))
    events = torch.zeros(2, 1, 1)
    events[0, 0, 0] = -20.0  # step 1: neuron 0 gets +2 (fires), neuron 1 gets −40
    x_ann = torch.tensor([[1.0]])  # the ANN sees neuron 0 at −0.1 (inactive), neuron 1 at 2
    from workbench.methods import msat

    masks = msat.inactive_masks(net, ann, x_ann)
    assert masks["spike1"].tolist() == [[True, False]]
    observer = msat.SINObserver(masks, 2)
    simulate(net, events, observe=observer)
    assert observer.sin["spike1"].tolist() == [1.0, 0.0]
    assert observer.total["spike1"].tolist() == [1.0, 0.0]
    # fed the rate input itself, neuron 0 stays silent and neuron 1 fires every step: no SIN
    assert sin_fraction(net, ann, x_ann, 3)["spike1"].tolist() == [0.0, 0.0, 0.0]


@pytest.mark.parametrize("make, message", [
    (lambda: MSATConstants(alpha=0.0), "alpha must be a finite number > 0"),
    (lambda: MSATConstants(C=math.inf), "C must be a finite number > 0"),
    (lambda: MultiStageThreshold(confidence=0.0), r"confidence must lie in \(0, 1\]"),
    (lambda: MultiStageThreshold(t_c=0), "t_c must be a whole number"),
    (lambda: with_policy(small_converted(), "fancy"), "unknown threshold mode 'fancy'"),
])
def test_bad_msat_parameters(make, message):
    with pytest.raises(WorkbenchError, match=message):
        make()

"""MSAT's adaptive threshold policy, spike confidence and SIN measurement."""

import math

import pytest
import torch
from torch import nn

from workbench.errors import WorkbenchError
from workbench.methods.msat import (
    MSATConstants,
    MSATState,
    MultiStageThreshold,
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
    theta = a.thresholds["spike1"]
    assert torch.isinf(theta[:3]).any()  # gated steps block some neurons
    assert not torch.isinf(theta[3:]).any()  # off after t_c
    other = simulate(with_policy(net, "constant", confidences={"spike1": 0.5}, t_c=3, seed=8),
                     x, 8, record=["spike1"])
    assert not torch.equal(a.spikes["spike1"][:3], other.spikes["spike1"][:3])


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
    sin = {"n": 0.0, "all": 0.0}

    def observe(t, name, spikes, state):
        sin["n"] += float((spikes * masks[name]).sum())
        sin["all"] += float(spikes.sum())

    simulate(net, events, observe=observe)
    assert sin == {"n": 1.0, "all": 1.0}
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

"""Golden-value and gradient tests of the spiking cells."""

import pytest
import torch

from workbench.errors import WorkbenchError
from workbench.neurons import LIFBoxLayer, SpikingCell


@pytest.fixture(params=[True, False], ids=["surrogate-path", "inference-path"])
def grad_mode(request):
    """Run a test with autograd on (Norse surrogate and reset functions) and off (the fused
    in-place inference path that ``simulate`` uses): both must give the same values."""
    with torch.set_grad_enabled(request.param):
        yield


def run(cell, inputs, state=None):
    spikes, volts = [], []
    for x in inputs:
        z, state = cell(torch.tensor([[x]]), state)
        spikes.append(z.item())
        volts.append(state.v.item())
    return spikes, volts


def test_if_soft_reset_golden_values(grad_mode):
    # v: 0.4, 0.8, 1.2 -> spike, 0.2, 0.6, 1.0 (not > 1: no spike), 1.4 -> spike, 0.4
    spikes, volts = run(SpikingCell(threshold=1.0), [0.4] * 6)
    assert spikes == [0, 0, 1, 0, 0, 1]
    assert volts == pytest.approx([0.4, 0.8, 0.2, 0.6, 1.0, 0.4])


def test_lif_hard_reset_golden_values(grad_mode):
    # v ← 0.5·v + x with x = 0.8: 0.8, 1.2 -> spike -> 0, 0.8, 1.2 -> spike
    spikes, volts = run(SpikingCell(threshold=1.0, leak=0.5, reset="zero"), [0.8] * 5)
    assert spikes == [0, 1, 0, 1, 0]
    assert volts == pytest.approx([0.8, 0.0, 0.8, 0.0, 0.8])


def test_initial_potential_half_threshold(grad_mode):
    cell = SpikingCell(threshold=2.0, initial="half")
    spikes, volts = run(cell, [1.5])  # 1.0 + 1.5 = 2.5 > 2 -> spike, 0.5 left
    assert spikes == [1] and volts == pytest.approx([0.5])


def test_per_neuron_threshold_and_multi_spike(grad_mode):
    cell = SpikingCell(threshold=torch.tensor([1.0, 0.5]), max_spikes=3)
    z, state = cell(torch.tensor([[1.7, 1.7]]))
    assert z.tolist() == [[1.0, 3.0]]
    assert state.v[0].tolist() == pytest.approx([0.7, 0.2])


def test_lifbox_matches_its_equation():
    # v ← v + (x − v)/τ, τ = 2, θ = 1, soft reset: 0.75, 1.125 -> spike 0.125, 0.8125
    spikes, volts = run(LIFBoxLayer(tau=2.0), [1.5] * 3)
    assert spikes == [0, 1, 0]
    assert volts == pytest.approx([0.75, 0.125, 0.8125])


@pytest.mark.parametrize("tau", [3.0, 5.0])
def test_lifbox_step_is_norses_lifboxcell_bit_for_bit(tau):
    """Values and gradients equal Norse's own LIFBoxCell (subtractive reset) for its surrogate."""
    from norse.torch.functional.lif_box import LIFBoxParameters
    from norse.torch.functional.reset import reset_subtract
    from norse.torch.module.lif_box import LIFBoxCell

    ours = LIFBoxLayer(tau=tau, surrogate="super", alpha=100.0)
    norse = LIFBoxCell(LIFBoxParameters(tau_mem_inv=torch.tensor(1 / tau), v_th=torch.tensor(1.0),
                                        method="super", alpha=torch.tensor(100.0),
                                        reset_method=reset_subtract), dt=1.0)
    x = (torch.randn(20, 4, 8, generator=torch.Generator().manual_seed(0)) * 2).requires_grad_()

    def run_cell(cell):
        state, out = None, []
        for x_t in x:
            z, state = cell(x_t, state)
            out.append(z * 3 + state.v)  # both the spikes and the membrane carry a gradient
        out = torch.stack(out)
        return out, torch.autograd.grad((out * torch.linspace(0, 1, 20)[:, None, None]).sum(), x)[0]

    (a, grad_a), (b, grad_b) = run_cell(ours), run_cell(norse)
    assert torch.equal(a, b) and torch.equal(grad_a, grad_b)


def test_arctan_surrogate_gradient_and_reach():
    """(α/2) / (1 + (π/2·α·x)²) at x = v − θ: the peak α/2 at θ, 1/(1 + π²) of it at |x| = 1
    (SuperSpike α = 100 keeps 1/101² there)."""
    v = torch.tensor([[1.0, 2.0, 0.0, 1.5]], requires_grad=True)
    z, _ = LIFBoxLayer(tau=1.0, surrogate="atan", alpha=2.0)(v)  # τ = 1: h = x
    z.sum().backward()
    x = v.detach() - 1.0
    assert torch.allclose(v.grad, 1.0 / (1 + (torch.pi * x) ** 2))
    assert v.grad[0, 1] / v.grad[0, 0] == pytest.approx(1 / (1 + torch.pi ** 2))
    assert z.tolist() == [[0.0, 1.0, 0.0, 1.0]]  # forward: Θ(h − θ), strict at θ
    cell = SpikingCell(threshold=1.0, surrogate="atan", alpha=2.0)  # the IF cell takes it too
    v2 = torch.tensor([[1.25]], requires_grad=True)
    cell(v2)[0].sum().backward()
    assert v2.grad.item() == pytest.approx(1.0 / (1 + (torch.pi * 0.25) ** 2))


def test_gradients_reach_threshold_and_leak():
    cell = SpikingCell(threshold=1.0, leak=0.9, trainable_threshold=True, trainable_leak=True,
                       surrogate="triangle", alpha=0.3)
    x = torch.full((4, 3), 0.6, requires_grad=True)
    state, total = None, 0
    for _ in range(4):
        z, state = cell(x, state)
        total = total + z.sum()
    total.backward()
    assert cell.threshold.grad is not None and cell.threshold.grad.abs().item() > 0
    assert cell.leak.grad is not None and cell.leak.grad.abs().item() > 0
    assert x.grad.abs().sum() > 0


def test_triangle_surrogate_value():
    # d z / d v at v/θ − 1 = z0 is γ·max(0, 1 − |z0|)/θ; v = 1.2, θ = 1 -> 0.3·0.8 = 0.24
    cell = SpikingCell(threshold=1.0, surrogate="triangle", alpha=0.3)
    x = torch.tensor([[1.2]], requires_grad=True)
    z, _ = cell(x)
    z.sum().backward()
    assert x.grad.item() == pytest.approx(0.24)


def test_constrain_keeps_leak_at_most_one():
    cell = SpikingCell(leak=1.0, threshold=1.0, trainable_leak=True, trainable_threshold=True)
    with torch.no_grad():
        cell.leak.add_(0.5)
        cell.threshold.sub_(5.0)
    cell.constrain_()
    assert cell.leak.item() <= 1.0 and cell.threshold.item() > 0


class RisingThreshold:
    """A toy policy: θ_t = base + 0.5·(spikes so far), to prove the hook plugs in."""

    def initial_state(self, v):
        return torch.zeros_like(v)

    def threshold(self, base, v_prev, x, state):
        return base + 0.5 * state

    def emit(self, spikes, state):
        return spikes

    def update(self, state, v_post, spikes):
        return state + spikes


def test_threshold_policy_hook(grad_mode):
    cell = SpikingCell(threshold=1.0, policy=RisingThreshold())
    state = None
    thresholds = []
    for _ in range(6):
        z, state = cell(torch.tensor([[0.9]]), state)
        thresholds.append(state.threshold.item())
    assert thresholds[0] == 1.0 and thresholds[-1] > 1.0  # moved after the first spike


@pytest.mark.parametrize("kwargs, message", [
    ({"threshold": 0.0}, "threshold must be > 0"),
    ({"threshold": -1.0}, "threshold must be > 0"),
    ({"leak": 1.5}, "leak must be > 0.0 and <= 1.0"),
    ({"reset": "bounce"}, "unknown reset 'bounce'"),
    ({"initial": "random"}, "unknown initial potential"),
    ({"max_spikes": 0}, "max_spikes"),
])
def test_bad_cell_parameters(kwargs, message):
    with pytest.raises(WorkbenchError, match=message):
        SpikingCell(**kwargs)

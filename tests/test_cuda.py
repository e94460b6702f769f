"""CPU vs CUDA: the same trajectory on either device (skipped without a CUDA device).

With dyadic weights and inputs (multiples of 1/8, few significant bits) every sum is exact in
float32 whatever the summation order, so with cuDNN's transform-based convolutions off the
trajectories must agree bit for bit: this checks that the simulator's bookkeeping does not
depend on the device. With ordinary weights and cuDNN on, float rounding differs and a membrane
within ~1e-6 of θ may fire on one device only; the stated tolerance: readouts within 1e-3 of
their range, spike totals within 0.1 %.
"""

import pytest
import torch
from torch import nn

from workbench.convert import convert
from workbench.methods.msat import with_policy
from workbench.network import SpikingNetwork, simulate
from workbench.neurons import SpikingCell

# not workbench.device.default_device: the suite pins that to the CPU (tests/conftest.py)
DEVICE = torch.device("cuda")
pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


def net(dyadic: bool) -> SpikingNetwork:
    torch.manual_seed(0)
    layers = SpikingNetwork([
        ("conv1", nn.Conv2d(2, 16, 3, padding=1)), ("spike1", SpikingCell(1.0)),
        ("conv2", nn.Conv2d(16, 32, 3, padding=1, stride=2)),
        ("spike2", SpikingCell(1.0, leak=0.5, reset="zero")), ("pool", nn.AvgPool2d(2)),
        ("flatten", nn.Flatten()), ("fc", nn.Linear(32 * 4 * 4, 10)),
    ], (2, 16, 16)).eval()
    if dyadic:
        with torch.no_grad():
            for p in layers.parameters():
                p.copy_(torch.randint(-6, 9, p.shape) / 8)
    return layers


def run(network: SpikingNetwork, x: torch.Tensor, device: torch.device, **kwargs):
    trajectory = simulate(network.to(device), x.to(device), 16, record=["spike1", "spike2"],
                          **kwargs)
    return {"readout": trajectory.readout, "active": trajectory.active,
            **{f"count {k}": v for k, v in trajectory.spike_counts.items()},
            **{f"ops {k}": v for k, v in trajectory.synaptic_ops.items()},
            **{f"spikes {k}": v for k, v in trajectory.spikes.items()},
            **{f"membrane {k}": v for k, v in trajectory.membrane.items()}}


@pytest.mark.parametrize("stop", [None, "steps", "rule"])
def test_dyadic_network_gives_identical_trajectories(stop):
    x = torch.randint(0, 9, (64, 2, 16, 16)) / 8
    kwargs = {}
    if stop == "steps":
        kwargs["stop"] = torch.randint(1, 17, (64,))
    elif stop == "rule":
        kwargs["stop"] = lambda t, readout: readout.max(-1).values > 4.0
    network = net(dyadic=True)
    with torch.backends.cudnn.flags(enabled=False):
        on_gpu = run(network, x, DEVICE, **kwargs)
    on_cpu = run(network, x, torch.device("cpu"), **kwargs)
    for key, value in on_cpu.items():
        assert torch.equal(on_gpu[key].cpu(), value), key


def test_ordinary_network_agrees_within_tolerance():
    events = (torch.rand(16, 256, 2, 16, 16) < 0.2).float()
    network = net(dyadic=False)
    on_gpu = simulate(network.to(DEVICE), events.to(DEVICE))
    on_cpu = simulate(network.cpu(), events)
    span = on_cpu.readout.abs().max().clamp(min=1.0)
    assert (on_gpu.readout.cpu() - on_cpu.readout).abs().max() <= 1e-3 * span
    for name, counts in on_cpu.spike_counts.items():
        total = counts.sum()
        assert (on_gpu.spike_counts[name].cpu().sum() - total).abs() <= 1e-3 * total.clamp(min=1), name


def test_converted_network_runs_where_its_calibration_data_lives():
    """Conversion makes new cells (θ, λ on the CPU): they must follow the layers to CUDA, also
    under MSAT's per-neuron thresholds, which are formed from θ."""
    torch.manual_seed(0)
    ann = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10)).to(DEVICE)
    x = torch.rand(16, 1, 8, 8, device=DEVICE)
    snn = convert(ann, x)
    assert {t.device.type for t in [*snn.parameters(), *snn.buffers()]} == {"cuda"}
    trajectory = simulate(with_policy(snn, "MSAT"), x, 8)
    assert trajectory.readout.device.type == "cuda"

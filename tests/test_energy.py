"""Energy model: op counting, device profiles, the report."""

import json

import pytest
import torch
from torch import nn

from workbench.cli import main
from workbench.energy import (
    PROFILES_FILE,
    DeviceProfile,
    LayerOps,
    ann_ops,
    energy_report,
    layer_joules,
    load_profiles,
    snn_ops,
)
from workbench.errors import WorkbenchError
from workbench.network import SpikingNetwork, simulate
from workbench.neurons import SpikingCell


def dense_784_128():
    """A Dense 784→128 layer of spiking neurons with a 128→1 readout."""
    torch.manual_seed(0)
    return SpikingNetwork([("fc", nn.Linear(784, 128)), ("spike", SpikingCell()),
                           ("out", nn.Linear(128, 1))], (784,))


def test_keras_spiking_cpu_figure():
    """KerasSpiking's documented figure: (100,352 + 128) × 8.6 nJ = 8.64e-4 J per inference."""
    cpu = load_profiles().devices["cpu"]
    layer = ann_ops(dense_784_128())["spike"]
    assert layer.macs == 784 * 128 and layer.neuron_updates == 128
    joules = sum(layer_joules(layer, cpu, "ann").values())
    assert joules == pytest.approx((100_352 + 128) * 8.6e-9)
    assert joules == pytest.approx(8.64e-4, rel=1e-3)


def test_cmos45_by_hand_on_a_small_net():
    torch.manual_seed(1)
    net = SpikingNetwork([("fc1", nn.Linear(6, 5)), ("s1", SpikingCell(0.3)),
                          ("fc2", nn.Linear(5, 3))], (6,))
    with torch.no_grad():
        net.layers.fc1.weight.abs_()
    trajectory = simulate(net, torch.rand(4, 6), 5)
    spikes = trajectory.spike_counts["s1"].sum(0).mean().item()
    assert spikes > 0
    report = energy_report(trajectory, net).summary().set_index(["device", "model"])
    macs, acs = 5 * 6 * 5, spikes * 3  # analog first layer every step; each spike reaches 3 outputs
    expected = 4.6e-12 * macs + 0.9e-12 * acs
    assert report.loc[("cmos45_fp32", "snn"), "joules_per_inference"] == pytest.approx(expected)
    ann_expected = 4.6e-12 * (6 * 5 + 5 * 3)
    assert report.loc[("cmos45_fp32", "ann"), "joules_per_inference"] == pytest.approx(ann_expected)


def test_synops_equal_brute_force_for_linear():
    torch.manual_seed(2)
    net = SpikingNetwork([("fc1", nn.Linear(8, 6)), ("s1", SpikingCell(0.2)),
                          ("fc2", nn.Linear(6, 4)), ("s2", SpikingCell(0.2)),
                          ("fc3", nn.Linear(4, 2))], (8,))
    trajectory = simulate(net, torch.rand(3, 8), 6, record=["s1", "s2"])
    for cell, stage, fan_out in (("s1", "s2", 4), ("s2", "readout", 2)):
        spikes = trajectory.spikes[cell]
        brute = torch.zeros(6, 3)
        for t, b, _ in spikes.nonzero().tolist():  # every spike drives fan_out synapses
            brute[t, b] += fan_out
        assert torch.equal(trajectory.synaptic_ops[stage], brute)


def test_silent_network_costs_only_first_layer_and_neuron_updates():
    net = SpikingNetwork([("conv", nn.Conv2d(1, 4, 3, padding=1, stride=2)),
                          ("s1", SpikingCell(1e6)), ("flatten", nn.Flatten()),
                          ("fc", nn.Linear(4 * 3 * 3, 2))], (1, 6, 6))
    trajectory = simulate(net, torch.rand(2, 1, 6, 6), 7)
    assert trajectory.spike_counts["s1"].sum() == 0
    loihi = load_profiles().devices["loihi"]
    ops = snn_ops(trajectory)
    total = {op: sum(layer_joules(o, loihi, "snn")[op] for o in ops.values())
             for op in ("mac", "synop", "neuron")}
    first_layer_macs = 7 * (4 * 3 * 3) * (1 * 3 * 3)  # T × outputs × fan-in
    assert total["synop"] == 0
    assert total["mac"] == pytest.approx(first_layer_macs * 4.6e-12)
    assert total["neuron"] == pytest.approx(7 * 36 * 81e-12)


def test_early_exit_stops_counting():
    net = dense_784_128()
    x = torch.rand(4, 784)
    full = snn_ops(simulate(net, x, 10))
    stopped_run = simulate(net, x, 10, stop=torch.tensor([2, 2, 2, 2]))
    stopped = snn_ops(stopped_run)
    short = snn_ops(simulate(net, x, 2))
    for layer in full:
        assert stopped[layer] == short[layer]
    assert stopped["spike"].neuron_updates == 2 * 128 < full["spike"].neuron_updates


def test_dense_device_pays_every_synapse_every_step():
    net = dense_784_128()
    report = energy_report(simulate(net, torch.rand(3, 784), 8), net).summary()
    cpu = report.set_index(["device", "model"]).loc[("cpu", "snn")]
    assert cpu["snn_to_ann"] == pytest.approx(8.0)
    assert cpu["synaptic_ops"] == 0 and cpu["macs"] == 8 * (784 * 128 + 128)


def test_memory_traffic_is_optional_and_labelled():
    net = dense_784_128()
    trajectory = simulate(net, torch.rand(2, 784), 4)
    without = energy_report(trajectory, net)
    with_memory = energy_report(trajectory, net, include_memory=True)
    assert (without.summary()["memory_joules"] == 0).all()
    assert (with_memory.summary()["memory_joules"] > 0).all()
    assert "memory traffic excluded" in without.assumptions
    assert "memory traffic included" in with_memory.assumptions


def write_profiles(tmp_path, text):
    path = tmp_path / "profiles.toml"
    path.write_text(text)
    return path


GOOD = """[chip]
label = "chip"
kind = "event"
mac_pj = 1.0
synop_pj = 2.0
neuron_update_pj = 3.0
grade = "made up"
source = "a test"
scope = "arithmetic"
"""


def test_user_profile_loads_without_code_changes(tmp_path):
    profiles = load_profiles(write_profiles(tmp_path, GOOD))
    assert profiles.devices["chip"] == DeviceProfile(
        "chip", "chip", "event", 1.0, 2.0, 3.0, "made up", "a test", "arithmetic", "chip")


@pytest.mark.parametrize("change, message", [
    (("synop_pj = 2.0\n", ""), r"profile 'chip' needs a number synop_pj"),
    (("synop_pj = 2.0", "synop_pj = -2.0"), r"synop_pj = -2.0; energies must be finite and >= 0"),
    (("mac_pj = 1.0", 'mac_pj = "cheap"'), r"needs a number mac_pj"),
    (('kind = "event"', 'kind = "analog"'), r"kind 'analog'; accepted: dense, event"),
    (('source = "a test"\n', ""), r"needs a non-empty text source"),
    (('scope = "arithmetic"\n', 'scope = "arithmetic"\nann_on = "gpu"\n'), r"ann_on = 'gpu'"),
    (("[chip]", "[chip"), r"cannot read energy profiles"),
])
def test_bad_profiles_are_rejected(tmp_path, change, message):
    with pytest.raises(WorkbenchError, match=message):
        load_profiles(write_profiles(tmp_path, GOOD.replace(*change)))


def test_shipped_profiles_cover_the_required_targets():
    profiles = load_profiles(PROFILES_FILE)
    assert {"cmos45_fp32", "cpu", "gpu", "loihi", "spinnaker2"} <= set(profiles.devices)
    assert profiles.devices["cpu"].kind == "dense" and profiles.devices["loihi"].kind == "event"
    assert all(p.source for p in profiles.devices.values())


def test_report_energy_json(capsys):
    assert main(["report", "energy", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)  # strict JSON: no NaN
    assert {"device", "model", "T", "joules_per_inference", "synaptic_ops", "macs"} <= set(rows[0])
    devices = {r["device"] for r in rows}
    assert {"cpu", "gpu", "loihi", "spinnaker2", "cmos45_fp32"} <= devices
    by = {(r["device"], r["model"]): r for r in rows}
    assert by[("loihi", "snn")]["synaptic_ops"] > 0
    assert by[("gpu", "snn")]["joules_per_inference"] > by[("gpu", "ann")]["joules_per_inference"]


def test_layer_ops_rate_approximation_is_beside_not_instead():
    net = dense_784_128()
    ops = snn_ops(simulate(net, torch.rand(3, 784), 6))
    assert isinstance(ops["readout"], LayerOps)
    assert ops["readout"].rate_synops == pytest.approx(ops["readout"].synaptic_ops)  # Linear: exact
    assert ops["spike"].rate_synops is None  # analog-fed layer: MACs, no spikes in

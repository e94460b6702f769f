"""Plots render to Bokeh models in-process and carry the core's numbers (no browser)."""

import holoviews as hv
import numpy as np
import pytest
import torch
from torch import nn

from widgets import plots
from workbench.energy import energy_report
from workbench.network import SpikingNetwork, simulate
from workbench.neurons import SpikingCell

hv.extension("bokeh")


@pytest.fixture(scope="module")
def report():
    torch.manual_seed(0)
    net = SpikingNetwork([("fc1", nn.Linear(16, 12)), ("s1", SpikingCell(0.3)),
                          ("fc2", nn.Linear(12, 3))], (16,))
    with torch.no_grad():
        net.layers.fc1.weight.abs_()
    return energy_report(simulate(net, torch.rand(5, 16), 6, record=["s1"]), net)


def test_energy_bars_carry_report_totals(report):
    summary = report.summary()
    plot = hv.renderer("bokeh").get_plot(plots.energy_bars(summary))
    data = plot.handles["source"].data
    assert np.allclose(sorted(data["joules_per_inference"]),
                       sorted(summary["joules_per_inference"]))
    assert plot.handles["y_range"].start > 0  # a log axis needs a positive floor
    assert plot.handles["glyph"].bottom > 0  # bars rise from that floor, not from 0.01 J


def test_energy_by_layer_sums_to_device_total(report):
    bars = plots.energy_by_layer(report.layers, "loihi")
    total = report.summary().set_index(["device", "model"]).loc[("loihi", "snn"),
                                                               "joules_per_inference"]
    assert bars.dimension_values("joules").sum() == pytest.approx(total)


def test_raster_has_one_tick_per_spike():
    torch.manual_seed(0)
    net = SpikingNetwork([("fc1", nn.Linear(4, 6)), ("s1", SpikingCell(0.2)),
                          ("fc2", nn.Linear(6, 2))], (4,))
    trajectory = simulate(net, torch.rand(2, 4), 8, record=["s1"])
    raster = plots.spike_raster(trajectory, sample=1)
    assert len(raster) == int(trajectory.spikes["s1"][:, 1].sum())


def test_firing_rates_draw_every_run_and_layer_and_the_marked_rate():
    rates = {"chain": {"s1": 0.3, "s2": 0.2}, "direct": {"s1": 0.25, "s2": 0.0}}
    overlay = plots.firing_rates(rates, line=0.1)
    bars = overlay.Bars.I
    assert list(zip(bars.dimension_values("layer"), bars.dimension_values("run"),
                    bars.dimension_values("spikes per neuron per step"), strict=True)) == [
        ("s1", "chain", 0.3), ("s2", "chain", 0.2), ("s1", "direct", 0.25), ("s2", "direct", 0.0)]
    assert overlay.HLine.I.data == 0.1
    plot = hv.renderer("bokeh").get_plot(overlay)
    assert sorted(plot.subplots[("Bars", "I")].handles["source"].data["spikes_per_neuron_per_step"]) \
        == [0.0, 0.2, 0.25, 0.3]
    assert isinstance(plots.firing_rates({"one": rates["chain"]}), hv.Bars)

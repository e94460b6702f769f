"""'Spiking basics': the converted digits SNN, its spikes, membranes and accuracy over time.

Knobs: threshold scale, timesteps, threshold balancing, initial potential, the sample shown.
Changing a knob re-simulates the test split once (cached per setting); every view is a
function of that trajectory.
"""

from __future__ import annotations

from functools import lru_cache

import holoviews as hv
import panel as pn
import param
import torch

from widgets import plots
from workbench.convert import scale_thresholds
from workbench.datasets.digits import load_digits_split
from workbench.device import default_device
from workbench.network import simulate
from workbench.train import evaluate
from workbench.zoo import basics_snn

MAX_T = 64


@lru_cache(maxsize=1)
def _test_split():
    test = load_digits_split()["test"]
    return test.x.to(default_device()), test.y


@lru_cache(maxsize=4)
def _network(balance: str, initial: str):
    snn, ann = basics_snn(balance, initial)
    x, y = _test_split()
    return snn, evaluate(ann, x, y)


@pn.cache(max_items=64)
def accuracy_curve(threshold_scale: float, balance: str, initial: str) -> torch.Tensor:
    """Test accuracy after t = 1..MAX_T for one setting (one simulation)."""
    snn, _ = _network(balance, initial)
    x, y = _test_split()
    return simulate(scale_thresholds(snn, threshold_scale), x, MAX_T).accuracy_curve(y).cpu()


@pn.cache(max_items=64)
def sample_run(threshold_scale: float, balance: str, initial: str, sample: int, T: int):
    """One test sample simulated for T steps with every layer recorded."""
    snn, _ = _network(balance, initial)
    x, y = _test_split()
    net = scale_thresholds(snn, threshold_scale)
    return simulate(net, x[sample:sample + 1], T, record=list(net.cells())), int(y[sample])


class BasicsSettings(param.Parameterized):
    """The knobs of the page (one instance per browser session)."""

    threshold_scale = param.Number(1.0, bounds=(0.25, 3.0), step=0.05,
                                   doc="multiplies every neuron's threshold θ")
    timesteps = param.Integer(32, bounds=(1, MAX_T), doc="simulated timesteps T")
    balance = param.Selector(default="max", objects=["max", "percentile"],
                             doc="threshold balancing: max or 99.9th percentile activation")
    initial = param.Selector(default="zero", objects=["zero", "half"],
                             doc="initial membrane potential: 0 or θ/2")
    sample = param.Integer(0, bounds=(0, 396), doc="test sample shown in raster and traces")
    layer = param.Selector(default="spike1", objects=["spike1", "spike2", "spike3", "spike4"],
                           doc="layer whose membrane potentials are traced")


class BasicsPage(pn.viewable.Viewer):
    """The 'Spiking basics' page."""

    title = "Spiking basics"

    def __init__(self, **params) -> None:
        self.settings = BasicsSettings(**params)
        super().__init__()

    def _run(self):
        s = self.settings
        return sample_run(round(s.threshold_scale, 4), s.balance, s.initial, s.sample, s.timesteps)

    def raster(self, threshold_scale, timesteps, balance, initial, sample):
        trajectory, label = self._run()
        total = int(trajectory.spikes_per_sample()[0])
        pred = int(trajectory.predictions()[-1, 0])
        return plots.spike_raster(trajectory, title=(
            f"Spike raster: θ×{threshold_scale:.2f}, T={timesteps}, {total} spikes, "
            f"label {label}, predicted {pred}"))

    def traces(self, threshold_scale, timesteps, balance, initial, sample, layer):
        trajectory, _ = self._run()
        neurons = plots.most_active(trajectory, layer)
        return plots.membrane_traces(trajectory, layer, neurons, title=(
            f"Membrane potential, {layer}: θ×{threshold_scale:.2f}"))

    def accuracy(self, threshold_scale, timesteps, balance, initial):
        curve = accuracy_curve(round(threshold_scale, 4), balance, initial)
        _, ann_accuracy = _network(balance, initial)
        return plots.accuracy_curves(
            {"SNN": curve}, reference=ann_accuracy, marker=timesteps,
            title=(f"Test accuracy vs timestep, θ×{threshold_scale:.2f}: "
                   f"{float(curve[timesteps - 1]):.3f} at T={timesteps}"))

    def __panel__(self) -> pn.viewable.Viewable:
        p = self.settings.param
        widgets = pn.Param(self.settings, widgets={
            "threshold_scale": {"type": pn.widgets.FloatSlider, "throttled": True},
            "timesteps": {"type": pn.widgets.IntSlider, "throttled": True},
            "sample": {"type": pn.widgets.IntInput},
        }, show_name=False, width=300)
        raster = hv.DynamicMap(pn.bind(self.raster, p.threshold_scale, p.timesteps, p.balance,
                                       p.initial, p.sample))
        traces = hv.DynamicMap(pn.bind(self.traces, p.threshold_scale, p.timesteps, p.balance,
                                       p.initial, p.sample, p.layer))
        accuracy = hv.DynamicMap(pn.bind(self.accuracy, p.threshold_scale, p.timesteps,
                                         p.balance, p.initial))
        intro = pn.pane.Markdown(
            "A ReLU CNN trained on the 8×8 digits, converted to integrate-and-fire neurons "
            "(soft reset). Each neuron must *integrate* input before it fires, and deeper layers "
            "wait for the earlier ones: accuracy needs timesteps. Raise the threshold and spikes "
            "thin out and come later; start at θ/2 and the first spikes come sooner.",
            sizing_mode="stretch_width")
        return pn.Row(
            pn.Column("### Settings", widgets),
            pn.Column(intro, pn.pane.HoloViews(accuracy, sizing_mode="stretch_width"),
                      pn.pane.HoloViews(raster, sizing_mode="stretch_width"),
                      pn.pane.HoloViews(traces, sizing_mode="stretch_width"),
                      sizing_mode="stretch_width"),
            sizing_mode="stretch_width")

"""'Spiking basics': the converted digits SNN, its spikes, membranes and accuracy over time.

Knobs: threshold scale, timesteps, threshold balancing, initial potential, the sample shown.
The raster and traces come from one sample (milliseconds) and redraw at once; the accuracy
curve and energy come from the whole test split (one cached simulation per setting), which
runs on the page's worker thread so that a slider never waits for it.
"""

from __future__ import annotations

from functools import lru_cache

import panel as pn
import param
import torch

from widgets import live, plots
from widgets.energy_view import energy_panel
from widgets.page import Page
from workbench.convert import scale_thresholds
from workbench.datasets.digits import load_digits_split
from workbench.device import default_device
from workbench.energy import EnergyReport, energy_report, load_profiles
from workbench.methods.basics_study import BasicsSetting
from workbench.network import simulate
from workbench.train import evaluate
from workbench.trajectory import Trajectory
from workbench.zoo import basics_snn

MAX_T = 64


@lru_cache(maxsize=1)
def _test_split():
    test = load_digits_split()["test"]
    return test.x.to(default_device()), test.y


@lru_cache(maxsize=4)
def _network(balance: str, initial: str):
    """(SNN, ANN accuracy), the SNN in eval mode: every session reads it, none trains it."""
    snn, ann = basics_snn(balance, initial)
    snn.eval()
    x, y = _test_split()
    return snn, evaluate(ann, x, y)


@pn.cache(max_items=32)
def test_run(threshold_scale: float, balance: str, initial: str) -> Trajectory:
    """The test split simulated for MAX_T steps (counts only, no rasters): one simulation
    gives the accuracy at every T and the energy at every T."""
    snn, _ = _network(balance, initial)
    x, _ = _test_split()
    return simulate(scale_thresholds(snn, threshold_scale), x, MAX_T)


@pn.cache(max_items=64)
def accuracy_curve(threshold_scale: float, balance: str, initial: str) -> torch.Tensor:
    """Test accuracy after t = 1..MAX_T for one setting."""
    return test_run(threshold_scale, balance, initial).accuracy_curve(_test_split()[1]).cpu()


@pn.cache(max_items=64)
def energy(threshold_scale: float, balance: str, initial: str, timesteps: int,
           memory: bool) -> EnergyReport:
    """Energy per inference at T = ``timesteps``, from the cached test run."""
    snn, _ = _network(balance, initial)
    trajectory = test_run(threshold_scale, balance, initial).until(timesteps)
    return energy_report(trajectory, snn, include_memory=memory)


@pn.cache(max_items=64)
def sample_run(threshold_scale: float, balance: str, initial: str, sample: int, T: int):
    """One test sample simulated for T steps with every layer recorded."""
    snn, _ = _network(balance, initial)
    x, y = _test_split()
    net = scale_thresholds(snn, threshold_scale)
    return simulate(net, x[sample:sample + 1], T, record=list(net.cells())), int(y[sample])


class BasicsSettings(param.Parameterized):
    """The knobs of the page (one instance per browser session); :class:`BasicsPage` sets the
    sample and layer bounds from the data and the network."""

    threshold_scale = param.Number(1.0, bounds=(0.25, 3.0), step=0.05,
                                   doc="multiplies every neuron's threshold θ")
    timesteps = param.Integer(32, bounds=(1, MAX_T), doc="simulated timesteps T")
    balance = param.Selector(default="max", objects=["max", "percentile"],
                             doc="threshold balancing: max or 99.9th percentile activation")
    initial = param.Selector(default="zero", objects=["zero", "half"],
                             doc="initial membrane potential: 0 or θ/2")
    sample = param.Integer(0, bounds=(0, 0), doc="test sample shown in raster and traces")
    layer = param.Selector(default=None, objects=[],
                           doc="layer whose membrane potentials are traced")
    device = param.Selector(default="loihi", objects=list(load_profiles().devices),
                            doc="target whose per-layer energy split is shown")
    memory = param.Boolean(False, doc="add the memory-traffic estimate (SRAM accesses)")


TestKey = tuple[float, str, str]  # (θ scale, balancing, initial potential)


class BasicsPage(Page):
    """The 'Spiking basics' page; ``result`` is the :data:`TestKey` of the test-split run on
    show (it follows the knobs once that run is ready)."""

    title = "Spiking basics"
    settings_class = BasicsSettings
    study = "basics"
    slow_knobs = ("threshold_scale", "balance", "initial")

    def bounds(self) -> None:
        p = self.settings.param
        p.sample.bounds = (0, len(_test_split()[1]) - 1)
        p.layer.objects = list(_network("max", "zero")[0].cells())
        self.settings.layer = p.layer.objects[0]

    def request(self) -> tuple[BasicsSetting, float]:
        return self.setting(), round(self.settings.threshold_scale, 4)

    def compute(self, request: tuple[BasicsSetting, float], job) -> TestKey:
        setting, scale = request
        key = (scale, setting.balance, setting.initial)
        accuracy_curve(*key)  # simulates the test split once (cached)
        return key

    def _run(self):
        s = self.settings
        return sample_run(round(s.threshold_scale, 4), s.balance, s.initial, s.sample, s.timesteps)

    def raster(self, threshold_scale, timesteps, balance, initial, sample) -> live.Frame:
        """One test sample re-simulated at the knobs (a live view: drawn before the test split
        finishes)."""
        trajectory, label = self._run()
        total = int(trajectory.spikes_per_sample()[0])
        pred = int(trajectory.predictions()[-1, 0])
        return live.raster_frame(
            f"Spike raster: θ×{threshold_scale:.2f}, T={timesteps}, {total} spikes, "
            f"label {label}, predicted {pred}", trajectory)

    def traces(self, threshold_scale, timesteps, balance, initial, sample, layer):
        trajectory, _ = self._run()
        neurons = plots.most_active(trajectory, layer)
        return plots.membrane_traces(trajectory, layer, neurons, title=(
            f"Membrane potential, {layer}: θ×{threshold_scale:.2f}"))

    def accuracy(self, test_key: TestKey, timesteps: int) -> live.Frame:
        threshold_scale, balance, initial = test_key
        curve = accuracy_curve(*test_key)
        _, ann_accuracy = _network(balance, initial)
        return live.accuracy_frame(
            f"Test accuracy vs timestep, θ×{threshold_scale:.2f}: "
            f"{float(curve[timesteps - 1]):.3f} at T={timesteps}", {"snn": curve.numpy()},
            timesteps, ann_accuracy)

    def __panel__(self) -> pn.viewable.Viewable:
        p = self.settings.param
        widgets = pn.Param(self.settings, widgets={
            "threshold_scale": {"type": pn.widgets.FloatSlider, "throttled": True},
            "timesteps": {"type": pn.widgets.IntSlider, "throttled": True},
            "sample": {"type": pn.widgets.IntInput},
        }, show_name=False, width=300)
        knobs = [p.threshold_scale, p.timesteps, p.balance, p.initial, p.sample]
        energy_views = energy_panel(self, lambda key, t, memory: energy(*key, t, memory),
                                    [self.param.result, *map(self.later, (p.timesteps, p.memory))],
                                    self.later(p.device))
        intro = pn.pane.Markdown(
            "A ReLU CNN trained on the 8×8 digits, converted to integrate-and-fire neurons "
            "(soft reset). Each neuron must *integrate* input before it fires, and deeper layers "
            "wait for the earlier ones: accuracy needs timesteps. Raise the threshold and spikes "
            "thin out and come later; start at θ/2 and the first spikes come sooner.",
            sizing_mode="stretch_width")
        return self.frame(widgets, intro,
                          self.live(live.accuracy({"snn": "SNN"}, "ANN"), self.accuracy,
                                    self.param.result, p.timesteps),
                          self.live(live.raster(), self.raster, *knobs),
                          self.view(self.traces, *knobs, p.layer),
                          "### Energy", energy_views)

"""'Adaptive thresholds (MSAT)': constant vs multi-stage adaptive thresholds in a converted SNN.

A knob change re-simulates the test split (cached per setting; Panel shows a spinner meanwhile):
the accuracy at every T against the constant-threshold baseline, the SIN share over time, the
raster and the membrane with its moving threshold for one sample, and the energy spent.
"""

from __future__ import annotations

import holoviews as hv
import numpy as np
import panel as pn
import param

from widgets import plots
from widgets.energy_view import energy_panel
from workbench.energy import energy_report, load_profiles
from workbench.methods.msat import MODES, MSATConstants
from workbench.methods.msat_study import DATASETS, T_C, run_mode, setting
from workbench.network import simulate

CONSTANTS = ("alpha", "k_a", "k_i", "C", "tau_mp", "tau_rd")
MAX_T = 64


@pn.cache(max_items=32)
def mode_run(dataset: str, mode: str, constants: tuple, confidence: bool):
    """(test trajectory, SIN share per step, network) of one setting."""
    s = setting(dataset)
    net = s.network(mode, confidence, MSATConstants(*constants) if mode != "constant" else None)
    trajectory, sin, _, _ = run_mode(s, net, MAX_T)
    return trajectory, sin, net


@pn.cache(max_items=64)
def sample_run(dataset: str, mode: str, constants: tuple, confidence: bool, sample: int):
    """One test sample with every layer recorded (membranes and moving thresholds)."""
    _, _, net = mode_run(dataset, mode, constants, confidence)
    x = setting(dataset).splits["test"][0]
    one = x[sample:sample + 1] if x.dim() == 4 else x[:, sample:sample + 1]
    return simulate(net, one, MAX_T, record=list(net.cells()))


@pn.cache(max_items=64)
def energy(dataset: str, mode: str, constants: tuple, confidence: bool, T: int, memory: bool):
    trajectory, _, net = mode_run(dataset, mode, constants, confidence)
    return energy_report(trajectory.until(T), net, include_memory=memory)


class MSATSettings(param.Parameterized):
    """Knobs of the page (one instance per browser session)."""

    dataset = param.Selector(default="digits", objects=list(DATASETS))
    mode = param.Selector(default="MSAT", objects=list(MODES),
                          doc="constant θ, the DTT or DET term alone, or both (MSAT)")
    alpha = param.Number(1.0, bounds=(0.05, 5.0), step=0.05, doc="DTT: weight of the deviation")
    k_a = param.Number(1.0, bounds=(0.05, 5.0), step=0.05, doc="DTT: soft-plus gain")
    k_i = param.Number(1.0, bounds=(0.05, 5.0), step=0.05, doc="DTT: soft-plus width")
    C = param.Number(1.0, bounds=(0.05, 5.0), step=0.05, doc="DET: input scale")
    tau_mp = param.Number(1.0, bounds=(0.05, 5.0), step=0.05, doc="DTT: overall gain")
    tau_rd = param.Number(1.0, bounds=(0.05, 5.0), step=0.05, doc="DET: overall gain")
    spike_confidence = param.Boolean(False, doc=f"Bernoulli-gate spikes in the first {T_C} steps")
    timesteps = param.Integer(16, bounds=(1, MAX_T), doc="T for the raster and the energy")
    sample = param.Integer(0, bounds=(0, 396), doc="test sample in raster and traces")
    layer = param.Selector(default="spike2", objects=["spike1", "spike2", "spike3", "spike4"])
    device = param.Selector(default="loihi", objects=list(load_profiles().devices))
    memory = param.Boolean(False, doc="add the memory-traffic estimate")


class MSATPage(pn.viewable.Viewer):
    """The 'Adaptive thresholds (MSAT)' page."""

    title = "Adaptive thresholds (MSAT)"

    def __init__(self, **params) -> None:
        self.settings = MSATSettings(**params)
        super().__init__()
        self.settings.param.watch(self._searched_constants, ["dataset", "mode"])
        self._searched_constants()

    def _searched_constants(self, *_) -> None:
        """Show the constants searched on the validation split for this dataset and mode."""
        s = self.settings
        found = setting(s.dataset).constants.get(s.mode)
        if found is not None:
            s.param.update({k: round(float(getattr(found, k)), 3) for k in CONSTANTS})

    def _setting(self, dataset, mode, constants, confidence):
        """The cache key of a setting (a constant threshold ignores the constants)."""
        return dataset, mode, tuple(constants) if mode != "constant" else (), confidence

    def accuracy(self, dataset, mode, confidence, timesteps, *constants):
        y = setting(dataset).splits["test"][1]
        baseline, _, _ = mode_run(dataset, "constant", (), False)
        run, _, _ = mode_run(*self._setting(dataset, mode, constants, confidence))
        curve = run.accuracy_curve(y)
        label = mode + (" + spike confidence" if confidence else "")
        knobs = "" if mode == "constant" else " (" + ", ".join(
            f"{k}={v:g}" for k, v in zip(CONSTANTS, constants, strict=True)) + ")"
        return plots.accuracy_curves(
            {"constant θ (max balancing)": baseline.accuracy_curve(y), label: curve},
            marker=timesteps, title=(f"Accuracy vs T, {label}{knobs}: "
                                     f"{float(curve[timesteps - 1]):.3f} at T={timesteps}"))

    def sin(self, dataset, mode, confidence, timesteps, *constants):
        _, baseline, _ = mode_run(dataset, "constant", (), False)
        _, mine, _ = mode_run(*self._setting(dataset, mode, constants, confidence))
        steps = np.arange(1, MAX_T + 1)
        return hv.Overlay([
            hv.Curve((steps, baseline.numpy()), "timestep", "SIN share", label="constant θ"),
            hv.Curve((steps, mine.numpy()), "timestep", "SIN share", label=mode),
        ]).opts(title=(f"Spikes of inactivated neurons, first {T_C} steps: "
                       f"{float(mine[:T_C].mean()):.3f} ({mode})"),
                responsive=True, min_height=250, shared_axes=False, legend_position="right")

    def raster(self, dataset, mode, confidence, timesteps, sample, *constants):
        recorded = sample_run(*self._setting(dataset, mode, constants, confidence), sample)
        cut = recorded.until(timesteps)
        return plots.spike_raster(cut, title=(
            f"Spike raster, {mode}: sample {sample}, T={timesteps}, "
            f"{int(cut.spikes_per_sample()[0])} spikes"))

    def traces(self, dataset, mode, confidence, timesteps, sample, layer, *constants):
        recorded = sample_run(*self._setting(dataset, mode, constants, confidence), sample)
        cut = recorded.until(timesteps)
        neurons = plots.most_active(cut, layer)
        return plots.membrane_traces(cut, layer, neurons, title=(
            f"Membrane and threshold, {layer} ({mode})"))

    def __panel__(self) -> pn.viewable.Viewable:
        p = self.settings.param
        constants = [getattr(p, k) for k in CONSTANTS]
        core = [p.dataset, p.mode, p.spike_confidence, p.timesteps]
        widgets = pn.Param(self.settings, widgets={
            k: {"type": pn.widgets.FloatSlider, "throttled": True} for k in CONSTANTS} | {
            "timesteps": {"type": pn.widgets.IntSlider, "throttled": True},
            "sample": {"type": pn.widgets.IntInput}}, show_name=False, width=300)

        def view(method, *deps):
            return pn.pane.HoloViews(hv.DynamicMap(pn.bind(method, *deps)),
                                     sizing_mode="stretch_width")

        energy_views = energy_panel(
            lambda dataset, mode, confidence, T, memory, *c: energy(
                *self._setting(dataset, mode, c, confidence), T, memory),
            [*core, p.memory, *constants], p.device)
        intro = pn.pane.Markdown(
            "With a constant threshold a converted neuron needs many steps to integrate up to θ, "
            "so deep layers start late. **MSAT** (He et al., 2024) lets each neuron's threshold "
            "move: up when its potential sits above its running mean (DTT), down when input "
            "arrives fast (DET). Early spikes of neurons that the ANN keeps silent (SIN) cannot be "
            "taken back; **spike confidence** drops early spikes with a per-layer probability "
            "measured on training data. The six constants were searched on the validation split "
            "(the paper's values are not public).", sizing_mode="stretch_width")
        return pn.Row(
            pn.Column("### Settings", widgets),
            pn.Column(intro, view(self.accuracy, *core, *constants),
                      view(self.sin, *core, *constants),
                      view(self.raster, *core, p.sample, *constants),
                      view(self.traces, *core, p.sample, p.layer, *constants),
                      "### Energy", energy_views, sizing_mode="stretch_width"),
            sizing_mode="stretch_width")

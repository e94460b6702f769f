"""'Adaptive thresholds (MSAT)': constant vs multi-stage adaptive thresholds in a converted SNN.

A knob change redraws the raster of one sample and its neurons' membranes with their moving
thresholds at once (re-simulated: milliseconds) and re-simulates the test split on the page's
worker (cached per setting), which then redraws the accuracy at every T against the
constant-threshold baselines (θ = 1, and θ/v₀ searched with the adaptive modes' budget), the
SIN share over time and the energy spent. The first :data:`FIRST_T` steps are shown first (the
run is causal: the whole run gives the same numbers, up to float rounding), the rest follows.
All views but the energy are live Bokeh views (:mod:`widgets.live`): a result assigns their
data in place, where a HoloViews re-plot cost ≈ 0.5 s of the first answer's paint.
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

import panel as pn
import param

from widgets import live, plots
from widgets.energy_view import energy_panel
from widgets.page import Page
from workbench.energy import energy_report, load_profiles
from workbench.methods import msat_study
from workbench.methods.msat import MODES, PUBLISHED, SCALE_RANGE, Candidate
from workbench.methods.msat_study import T_C, MSATSetting, run_mode
from workbench.network import simulate
from workbench.neurons import INITIAL_POTENTIALS

CONSTANTS = ("alpha", "k_a", "k_i", "C", "tau_mp", "tau_rd")
# the accuracy view's lines: the two constant-θ baselines and the setting on show
ACCURACY_CURVES = {"max": "constant θ (max balancing)", "searched": "constant θ (searched)",
                   "setting": "this setting (title)"}
SIN_CURVES = {"constant": "constant θ (max balancing)", "setting": "this setting (title)"}
TRACED = 3  # neurons whose membranes are drawn: the layer's most active in the sample
MAX_T = 64
CONSTANT_BOUNDS = (0.05, 5.0)  # the search range (0.1..3) and the published C = 5


# a knob move shows the test split's first steps first: half of MSAT's gate span T_C, about
# 0.3 s on one thread (T_C's 16 steps took 1.2 s to paint, over the 1 s budget)
FIRST_T = T_C // 2


class Shown(NamedTuple):
    """What the page shows: the setting, and how many steps of its test run are ready."""

    setting: MSATSetting
    steps: int


# lru_cache, not pn.cache: the frozen Candidate is hashed by value (pn.cache would use its id)
@lru_cache(maxsize=32)
def network(candidate: Candidate, confidence: bool):
    """The setting's network in eval mode: shared by every session, trained by none."""
    return msat_study.network(candidate, spike_confidence=confidence).eval()


def mode_run(candidate: Candidate, confidence: bool, T: int = MAX_T):
    """(test trajectory, SIN observer, network) of one setting, the first ``T`` steps."""
    return _mode_run(candidate, confidence, T)  # one cache key however T is passed


@lru_cache(maxsize=32)
def _mode_run(candidate: Candidate, confidence: bool, T: int):
    net = network(candidate, confidence)
    trajectory, observer = run_mode(net, T)
    return trajectory, observer, net


@lru_cache(maxsize=64)
def sample_run(candidate: Candidate, confidence: bool, sample: int):
    """One test sample with every layer recorded (membranes and moving thresholds)."""
    net = network(candidate, confidence)
    x = msat_study.prepared().splits["test"][0]
    return simulate(net, x[sample:sample + 1], MAX_T, record=list(net.cells()))


@lru_cache(maxsize=64)
def energy(candidate: Candidate, confidence: bool, steps: int, T: int, memory: bool):
    """Energy per inference at ``T`` (at most the ``steps`` simulated)."""
    trajectory, _, net = mode_run(candidate, confidence, steps)
    return energy_report(trajectory.until(min(T, steps)), net, include_memory=memory)


def _knob_text(setting: MSATSetting) -> str:
    """The threshold knobs of ``setting`` for a title: θ scale, v₀ and the six constants."""
    return f" (θ×{setting.threshold_scale:g}, v₀ {setting.initial}" + (
        "" if setting.mode == "constant" else ", " + ", ".join(
            f"{k}={getattr(setting, k):g}" for k in CONSTANTS)) + ")"


class MSATSettings(param.Parameterized):
    """Knobs of the page (one instance per browser session)."""

    mode = param.Selector(default="MSAT", objects=list(MODES),
                          doc="constant θ, the DTT or DET term alone, or both (MSAT)")
    alpha = param.Number(PUBLISHED.alpha, bounds=CONSTANT_BOUNDS, step=0.05,
                         doc="DTT: weight of the deviation")
    k_a = param.Number(PUBLISHED.k_a, bounds=CONSTANT_BOUNDS, step=0.05,
                       doc="DTT: soft-plus gain")
    k_i = param.Number(PUBLISHED.k_i, bounds=CONSTANT_BOUNDS, step=0.05,
                       doc="DTT: soft-plus width")
    C = param.Number(PUBLISHED.C, bounds=CONSTANT_BOUNDS, step=0.05, doc="DET: input scale")
    tau_mp = param.Number(PUBLISHED.tau_mp, bounds=CONSTANT_BOUNDS, step=0.05,
                          doc="DTT: overall gain")
    tau_rd = param.Number(PUBLISHED.tau_rd, bounds=CONSTANT_BOUNDS, step=0.05,
                          doc="DET: overall gain")
    threshold_scale = param.Number(1.0, bounds=SCALE_RANGE, step=0.05,
                                   doc="every θ (θ_max) relative to the balanced θ = 1")
    initial = param.Selector(default="zero", objects=list(INITIAL_POTENTIALS),
                             doc="initial membrane v₀: 0 or θ/2")
    spike_confidence = param.Boolean(False, doc=f"Bernoulli-gate spikes in the first {T_C} steps")
    timesteps = param.Integer(16, bounds=(1, MAX_T), doc="T for the raster and the energy")
    sample = param.Integer(0, bounds=(0, 0), doc="test sample in raster and traces")
    layer = param.Selector(default=None, objects=[], doc="layer whose membranes are traced")
    device = param.Selector(default="loihi", objects=list(load_profiles().devices))
    memory = param.Boolean(False, doc="add the memory-traffic estimate")


class MSATPage(Page):
    """The 'Adaptive thresholds (MSAT)' page; ``result`` is the :class:`Shown` setting and how
    many steps of its test-split run (cached by the worker) are ready."""

    title = "Adaptive thresholds (MSAT)"
    settings_class = MSATSettings
    study = "msat"
    slow_knobs = ("mode", *CONSTANTS, "threshold_scale", "initial", "spike_confidence")

    def bounds(self) -> None:
        """The data's bounds, and the mode's searched setting (knobs given to the page
        override it)."""
        p = self.settings.param
        p.sample.bounds = (0, len(msat_study.prepared().splits["test"][1]) - 1)
        p.layer.objects = list(msat_study.network(Candidate("constant")).cells())
        self.settings.layer = p.layer.objects[min(1, len(p.layer.objects) - 1)]
        self._searched_setting()
        self.settings.param.watch(self._searched_setting, ["mode"])

    def _searched_setting(self, *_) -> None:
        """Show the setting searched on the validation split for this mode."""
        found = msat_study.prepared().searched[self.settings.mode]
        self.settings.param.update(
            {k: round(float(getattr(found.constants, k)), 3) for k in CONSTANTS}
            | {"threshold_scale": round(found.threshold_scale, 3), "initial": found.initial})

    def compute(self, request: MSATSetting, job) -> Shown:
        """The test split's run (cached); served, the first :data:`FIRST_T` steps are shown
        first (the whole run takes about 4× longer; its first steps are the same numbers)."""
        candidate = self._candidate(request)
        if job is not None:  # (a setting shown before: both runs are cached, both paints quick)
            mode_run(candidate, request.spike_confidence, FIRST_T)
            job.partial(Shown(request, FIRST_T))
            job.progress(FIRST_T, MAX_T, f"T ≤ {FIRST_T} shown; simulating up to T = {MAX_T}…")
        mode_run(candidate, request.spike_confidence)
        return Shown(request, MAX_T)

    @staticmethod
    def _candidate(setting: MSATSetting) -> Candidate:
        """The setting's candidate (a constant threshold ignores the constants)."""
        candidate = setting.candidate
        if setting.mode == "constant":
            return Candidate("constant", PUBLISHED, candidate.threshold_scale, candidate.initial)
        return candidate

    def _run(self, shown: Shown):
        """(trajectory, SIN observer) of the steps of ``shown``'s test run that are ready."""
        setting = shown.setting
        trajectory, observer, _ = mode_run(self._candidate(setting), setting.spike_confidence,
                                           shown.steps)
        return trajectory, observer

    def accuracy(self, shown: Shown, timesteps: int) -> live.Frame:
        setting = shown.setting
        y = msat_study.prepared().splits["test"][1]
        searched = msat_study.prepared().searched["constant"]
        baselines = {"max": Candidate("constant"), "searched": searched}
        curves = {name: mode_run(c, False)[0].accuracy_curve(y) for name, c in baselines.items()}
        curve = self._run(shown)[0].accuracy_curve(y)
        label = setting.mode + (" + spike confidence" if setting.spike_confidence else "")
        knobs = _knob_text(setting)
        at = (f"{float(curve[timesteps - 1]):.3f} at T={timesteps}" if timesteps <= shown.steps
              else f"T={timesteps} pending")
        so_far = f" (T ≤ {shown.steps} so far)" if shown.steps < MAX_T else ""
        return live.accuracy_frame(
            f"Accuracy vs T, {label}{knobs}: {at}{so_far}",
            {k: v.cpu().numpy() for k, v in (curves | {"setting": curve}).items()}, timesteps)

    def sin(self, shown: Shown) -> live.Frame:
        """The share of spikes from neurons the ANN leaves silent, per step: constant θ and
        the setting (its steps ready so far), the gate span T_C marked."""
        mode = shown.setting.mode
        runs = {"constant": mode_run(Candidate("constant"), False)[1],
                "setting": self._run(shown)[1]}
        curves = {}
        for name, observer in runs.items():
            sin, total = observer.overall()
            curves[name] = (sin / total.clamp(min=1)).numpy()
        sin, total = runs["setting"].overall(T_C)
        return live.accuracy_frame(
            f"Spikes of inactivated neurons, first {T_C} steps: "
            f"{float(sin.sum() / total.sum().clamp(min=1)):.3f} ({mode})", curves, T_C)

    def _sample_setting(self) -> MSATSetting:
        """The setting the one-sample views re-simulate: the knobs', or for a gated setting
        (which needs spike confidences the worker measures) the last result's."""
        setting = self.setting()
        return self.result.setting if setting.spike_confidence else setting

    def _recorded(self, setting: MSATSetting, timesteps: int, sample: int):
        recorded = sample_run(self._candidate(setting), setting.spike_confidence, sample)
        return recorded.until(timesteps)

    def raster(self, *_) -> live.Frame:
        """One test sample re-simulated at the knobs (a live view: drawn before the test
        split's run finishes). A gated setting needs its layers' spike confidences, measured
        on the training split: that setting's raster follows the worker, which measures them."""
        setting, s = self._sample_setting(), self.settings
        cut = self._recorded(setting, s.timesteps, s.sample)
        return live.raster_frame(
            f"Spike raster, {setting.mode}{_knob_text(setting)}: sample {s.sample}, "
            f"T={s.timesteps}, {int(cut.spikes_per_sample()[0])} spikes", cut)

    def traces(self, *_) -> live.Frame:
        """The membranes and thresholds of the most active neurons of a layer in the raster's
        sample (the same recorded run, so drawn with it)."""
        setting, s = self._sample_setting(), self.settings
        cut = self._recorded(setting, s.timesteps, s.sample)
        return live.membranes_frame(f"Membrane and threshold, {s.layer} ({setting.mode})", cut,
                                    s.layer, plots.most_active(cut, s.layer, k=TRACED), TRACED)

    def __panel__(self) -> pn.viewable.Viewable:
        p, result = self.settings.param, self.param.result
        widgets = pn.Param(self.settings, widgets={
            k: {"type": pn.widgets.FloatSlider, "throttled": True}
            for k in (*CONSTANTS, "threshold_scale")} | {
            "timesteps": {"type": pn.widgets.IntSlider, "throttled": True},
            "sample": {"type": pn.widgets.IntInput}}, show_name=False, width=300)
        energy_views = energy_panel(
            self, lambda shown, T, memory: energy(
                self._candidate(shown.setting), shown.setting.spike_confidence, shown.steps, T,
                memory),
            [result, *map(self.later, (p.timesteps, p.memory))], self.later(p.device))
        intro = pn.pane.Markdown(
            "With a constant threshold a converted neuron needs many steps to integrate up to θ, "
            "so deep layers start late. **MSAT** (He et al., 2024) lets each neuron's threshold "
            "move: up when its potential sits above its running mean (DTT), down when input "
            "arrives fast (DET); each spike carries the charge s·θ_t it removed. Early spikes of "
            "neurons that the ANN keeps silent (SIN) cannot be taken back; **spike confidence** "
            "drops early spikes (after firing and reset) with a per-layer probability measured on "
            "training data. Every mode starts at the setting searched on the validation split "
            "with one budget (the constant baseline too); the adaptive search starts from the "
            "authors' published constants.", sizing_mode="stretch_width")
        return self.frame(widgets, intro,
                          self.live(live.accuracy(ACCURACY_CURVES), self.accuracy, result,
                                    p.timesteps),
                          self.live(live.accuracy(SIN_CURVES, y_label="SIN share"), self.sin,
                                    result),
                          self.live(live.raster(), self.raster, *(p[k] for k in self.slow_knobs),
                                    p.timesteps, p.sample, result),
                          self.live(live.membranes(TRACED), self.traces,
                                    *(p[k] for k in self.slow_knobs), p.timesteps, p.sample,
                                    p.layer, result),
                          "### Energy", energy_views)

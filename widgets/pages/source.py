"""'Your model': the model-agnostic views of any model source (``workbench.sources``).

Accuracy after every timestep, the raster and membranes of one sample, energy on every device,
the stopping policies with their calibration (replayed on the recorded test run: no knob here
re-simulates the split), and, when the source has an ANN, MSAT's searched adaptive thresholds
against the constant θ (searched on demand: it simulates every candidate). Every bound (T, the
samples, the layers) comes from the source. A source is loaded once per process and shared
read-only by every session; each session owns its page and knobs.
"""

from __future__ import annotations

from functools import lru_cache

import holoviews as hv
import panel as pn
import param

from widgets import live, plots
from widgets.energy_view import energy_panel
from widgets.page import Page
from workbench import source_report
from workbench.energy import EnergyReport, energy_report, load_profiles
from workbench.methods.early_exit import (
    DynamicConfidence,
    TopKCutoff,
    fixed_t_curve,
    oracle_curve,
    outcome,
)
from workbench.methods.early_exit_study import AOI_EPSILON, calibrated_policies, policy_rows
from workbench.sources import ModelSource, load_source

POLICIES = ("Dynamic Confidence", "AOI Top-K cutoff")
EPSILONS = (0.0, 0.005, 0.01, 0.02, 0.03, 0.05, 0.08, 0.12, 0.2, 0.3)
MSAT_MODES = ("constant (θ = 1)", "constant (searched)", "MSAT (searched)")


class Shared:
    """A loaded source, hashed by identity: the key of the process-wide caches below (a
    ``ModelSource`` is a mutable dataclass and has no hash)."""

    def __init__(self, source: ModelSource) -> None:
        self.source = source


_SHARED: dict[int, Shared] = {}


def shared(source: ModelSource) -> Shared:
    """The one :class:`Shared` of ``source``, its runs and calibration computed up front so
    that sessions only read it."""
    if id(source) not in _SHARED:
        source_report.ann_accuracy(source)
        _SHARED[id(source)] = Shared(source)
        calibration_table(_SHARED[id(source)])  # the runs and the calibration, before a session
    return _SHARED[id(source)]


@lru_cache(maxsize=4)
def load_shared(model: str, data: str | None = None) -> Shared:
    """The source named on the command line, loaded once per process (never from a browser)."""
    return shared(load_source(model, data))


@lru_cache(maxsize=4)
def calibrated(s: Shared) -> dict:
    """Every policy calibrated on the source's calibration split (the oracles see test labels:
    they are the bound, not a policy)."""
    return calibrated_policies(source_report.base_run(s.source))


@lru_cache(maxsize=4)
def calibration_table(s: Shared):
    """Every calibrated policy on the test split at the source's T (as source_report.early_exit
    gives it, from the policies calibrated once here)."""
    table = policy_rows(source_report.base_run(s.source), calibrated(s))
    return table[["policy", "settings", "accuracy", "mean_steps", "p90_steps",
                  "spikes_per_sample"]]


@lru_cache(maxsize=64)
def topk(s: Shared, epsilon: float) -> TopKCutoff:
    base = source_report.base_run(s.source)
    return TopKCutoff(epsilon).calibrate(base.calibration, base.calibration_labels)


@lru_cache(maxsize=256)
def replay(s: Shared, policy: str, threshold: float, epsilon: float, T: int):
    """Stop times [B] of a policy setting on the test run cut at T (no re-simulation)."""
    test = source_report.base_run(s.source).test.until(T)
    if policy == POLICIES[0]:
        scale = calibrated(s)["Dynamic Confidence"].scale
        return DynamicConfidence(threshold=threshold, scale=scale).stop_times(test)
    return topk(s, epsilon).stop_times(test)


@lru_cache(maxsize=64)
def reference_curves(s: Shared, T: int):
    """Fixed-T and oracle accuracy vs mean steps up to T."""
    base = source_report.base_run(s.source)
    test = base.test.until(T)
    return fixed_t_curve(test, base.test_labels), oracle_curve(test, base.test_labels)


@lru_cache(maxsize=64)
def recorded(s: Shared, sample: int):
    """One test sample re-simulated with every cell recorded, and its label."""
    return source_report.recorded_sample(s.source, sample)


@lru_cache(maxsize=64)
def energy(s: Shared, T: int, memory: bool) -> EnergyReport:
    """Energy per inference at T from the recorded test run."""
    test = source_report.base_run(s.source).test.until(T)
    return energy_report(test, s.source.snn, include_memory=memory)


@lru_cache(maxsize=8)
def msat_rows(s: Shared, trials: int):
    """MSAT's searched thresholds against the constant θ (source_report.msat: every mode)."""
    return source_report.msat(s.source, trials)


class SourceSettings(param.Parameterized):
    """Knobs of the page (one instance per session); :class:`SourcePage` sets the bounds of
    ``timesteps``, ``sample`` and ``layer`` from its source."""

    timesteps = param.Integer(1, bounds=(1, 1), doc="timesteps T (up to the source's T)")
    sample = param.Integer(0, bounds=(0, 0), doc="test sample in the raster and traces")
    layer = param.Selector(default=None, objects=[], check_on_set=True,
                           doc="cell whose membranes are traced")
    policy = param.Selector(default=POLICIES[0], objects=list(POLICIES), doc="stopping policy")
    threshold = param.Number(0.9, bounds=(0.3, 0.999), step=0.005,
                             doc="Dynamic Confidence: stop when max softmax(O_t/K) > c* (K "
                                 "calibrated)")
    epsilon = param.Selector(default=AOI_EPSILON, objects=list(EPSILONS),
                             doc="AOI Top-K: tolerated share of unstable exits ε")
    device = param.Selector(default="loihi", objects=list(load_profiles().devices),
                            doc="target whose per-layer energy split is shown")
    memory = param.Boolean(False, doc="add the memory-traffic estimate (SRAM accesses)")
    trials = param.Integer(20, bounds=(2, 200), doc="MSAT: search trials per threshold mode")


class SourcePage(Page):
    """The 'Your model' page of one model source."""

    title = "Your model"
    settings_class = SourceSettings
    msat_done = param.Integer(0, precedence=-1, doc="trials of the MSAT search on show (0: none)")

    def __init__(self, source: ModelSource | Shared, **values) -> None:
        """``values`` set knobs of :class:`SourceSettings` within the source's bounds."""
        self.shared = source if isinstance(source, Shared) else shared(source)
        super().__init__(**values)
        p = self.settings.param
        t, sample = self.later(p.timesteps), self.later(p.sample)
        self.accuracy_view = hv.DynamicMap(pn.bind(self.accuracy, t))
        self.raster_view = self.live(live.raster(), self.raster, p.sample, p.timesteps)
        self.traces_view = hv.DynamicMap(pn.bind(self.traces, sample, t, self.later(p.layer)))
        self.policy_view = self.live(live.policy_view(sweep=False), self.operating_point,
                                     p.policy, p.threshold, p.epsilon, p.timesteps)
        self.msat_view = hv.DynamicMap(pn.bind(self.msat, self.param.msat_done))

    def bounds(self) -> None:
        """T, the samples and the cells of the source; c* at its calibrated value."""
        source = self.shared.source
        base = source_report.base_run(source)
        p = self.settings.param
        p.timesteps.bounds = (1, base.T)
        p.sample.bounds = (0, base.test.B - 1)
        p.layer.objects = list(source.snn.cells())
        dc = calibrated(self.shared)["Dynamic Confidence"]
        self.settings.param.update(timesteps=base.T, layer=p.layer.objects[0],
                                   threshold=round(min(max(dc.threshold, 0.3), 0.999), 3))

    @property
    def source(self) -> ModelSource:
        return self.shared.source

    def accuracy(self, timesteps: int) -> hv.Overlay:
        curve = source_report.accuracy_curve(self.source)
        return plots.accuracy_curves(
            {"SNN": curve}, reference=source_report.ann_accuracy(self.source), marker=timesteps,
            title=(f"Accuracy vs timestep, {self.source.name}: "
                   f"{float(curve[timesteps - 1]):.3f} at T={timesteps}"))

    def _sample(self, sample: int, timesteps: int):
        trajectory, label = recorded(self.shared, sample)
        return trajectory.until(timesteps), label

    def raster(self, sample: int, timesteps: int) -> live.Frame:
        """The recorded sample cut at T (a live view: T and the sample replay the recording)."""
        trajectory, label = self._sample(sample, timesteps)
        spikes = int(trajectory.spikes_per_sample()[0])
        predicted = int(trajectory.predictions()[-1, 0])
        return live.raster_frame(
            f"Spike raster: sample {sample}, T={timesteps}, {spikes} spikes, label {label}, "
            f"predicted {predicted}", trajectory)

    def traces(self, sample: int, timesteps: int, layer: str) -> hv.Overlay:
        trajectory, _ = self._sample(sample, timesteps)
        neurons = plots.most_active(trajectory, layer)
        return plots.membrane_traces(trajectory, layer, neurons, title=(
            f"Membrane potential, {layer}: sample {sample}"))

    def outcome(self, policy: str, threshold: float, epsilon: float, timesteps: int):
        """The replayed policy's accuracy, mean and p90 steps on the test run cut at T."""
        base = source_report.base_run(self.source)
        stops = replay(self.shared, policy, round(threshold, 4), epsilon, timesteps)
        return outcome(base.test.until(timesteps), base.test_labels, stops)

    def operating_point(self, policy: str, threshold: float, epsilon: float,
                        timesteps: int) -> live.Frame:
        """The fixed-T and oracle curves with the policy's operating point (a live view: the
        policy knobs replay the recorded test run)."""
        fixed, oracle = reference_curves(self.shared, timesteps)
        o = self.outcome(policy, threshold, epsilon, timesteps)
        accuracy = float(source_report.accuracy_curve(self.source)[timesteps - 1])
        knob = (f"c*={threshold:.3f}, K={calibrated(self.shared)['Dynamic Confidence'].scale:g}"
                if policy == POLICIES[0] else f"ε={epsilon}")
        return live.policy_frame(
            f"{policy} at {knob}: accuracy {o.accuracy:.3f} at {o.mean_steps:.2f} mean steps "
            f"(fixed T={timesteps}: {accuracy:.3f})",
            {"fixed T": fixed, "oracle: first correct": oracle}, o.mean_steps, o.accuracy,
            timesteps)

    def msat(self, msat_done: int) -> hv.Overlay:
        """Accuracy vs T of the searched MSAT against the constant θ, once searched."""
        if not msat_done:
            return hv.Overlay([hv.Curve([], "T", "accuracy")]).opts(
                title="MSAT: not searched yet", responsive=True, min_height=260)
        rows = msat_rows(self.shared, msat_done)
        curves = [hv.Curve(rows[rows["mode"] == mode], "T", "accuracy", label=mode).opts(
                      line_dash="solid" if mode.startswith("MSAT") else "dashed")
                  * hv.Scatter(rows[rows["mode"] == mode], "T", "accuracy").opts(size=6)
                  for mode in MSAT_MODES]
        final = rows[rows["T"] == rows["T"].max()].set_index("mode")["accuracy"]
        return hv.Overlay([c for pair in curves for c in pair]).opts(
            title=(f"Accuracy vs T, MSAT searched vs constant θ ({msat_done} trials): "
                   f"{final['MSAT (searched)']:.3f} vs {final['constant (θ = 1)']:.3f} at "
                   f"T={rows['T'].max()}"),
            logx=True, ylim=(0, 1.02), responsive=True, min_height=280, shared_axes=False,
            legend_position="bottom_right")

    def search_msat(self, *_) -> int:
        """Run the MSAT search on the page's worker (every mode, ``trials`` each), then show
        it; the request's generation."""
        trials = self.settings.trials

        def search(job) -> int:
            msat_rows(self.shared, trials)  # cached: the view reads it
            return trials

        return self.run(search, lambda done: setattr(self, "msat_done", done),
                        progress_text=f"Searching every threshold mode, {trials} trials each…")

    def _msat_section(self) -> pn.viewable.Viewable:
        if self.source.ann is None:
            return pn.pane.Markdown(
                "MSAT adapts the thresholds of an SNN *converted from an ANN* and measures spike "
                "confidence against that ANN: this source has no ANN, so there is no MSAT view.",
                sizing_mode="stretch_width")
        button = pn.widgets.Button(label="Search MSAT thresholds", color="primary")
        button.on_click(self.search_msat)
        trials = pn.widgets.IntInput.from_param(self.settings.param.trials, width=200)
        return pn.Column(
            pn.pane.Markdown("The constant θ and every adaptive mode are searched with the same "
                             "budget on the calibration split, then measured on the test split: "
                             "a few seconds to minutes, so only on demand.",
                             sizing_mode="stretch_width"),
            pn.Row(trials, button), self.progress, self.status,
            pn.pane.HoloViews(self.msat_view, sizing_mode="stretch_width"),
            sizing_mode="stretch_width")

    def __panel__(self) -> pn.viewable.Viewable:
        s, p = self.source, self.settings.param
        widgets = pn.Param(self.settings, parameters=[
            "timesteps", "sample", "layer", "policy", "threshold", "epsilon", "device", "memory"],
            widgets={"timesteps": {"type": pn.widgets.IntSlider, "throttled": True},
                     "sample": {"type": pn.widgets.IntInput},
                     "threshold": {"type": pn.widgets.FloatSlider},
                     "epsilon": {"type": pn.widgets.DiscreteSlider}},
            show_name=False, width=300)
        about = "\n".join(f"- {note}" for note in s.notes)
        intro = pn.pane.Markdown(
            f"**{s.name}** on **{s.data.name}**: T = {s.data.T}, "
            f"{source_report.base_run(s).test.B} test samples, cells "
            f"{', '.join(p.layer.objects)}{'; converted from an ANN' if s.ann is not None else ''}"
            f".\n\n{about}\n\nThe accuracy curve, the stopping policies and the energy replay one "
            "recorded test run (the policies are calibrated on the calibration split only); the "
            "raster and membranes re-simulate the sample shown.", sizing_mode="stretch_width")
        table = pn.pane.DataFrame(calibration_table(self.shared), index=False,
                                  sizing_mode="stretch_width")
        energy_views = energy_panel(self, lambda t, memory: energy(self.shared, t, memory),
                                    [*map(self.later, (p.timesteps, p.memory))],
                                    self.later(p.device))

        def pane(view, **opts):
            return pn.pane.HoloViews(view.opts(**opts) if opts else view,
                                     sizing_mode="stretch_width")

        return pn.Row(
            pn.Column("### Settings", widgets),
            pn.Column(self.alert, intro, pane(self.accuracy_view), self.raster_view,
                      pane(self.traces_view), "### Stopping early", self.policy_view,
                      "Calibrated on the calibration split, measured on the test split at "
                      f"T = {s.data.T}:", table,
                      "### Energy", energy_views,
                      "### Adaptive thresholds (MSAT)", self._msat_section(),
                      sizing_mode="stretch_width"),
            sizing_mode="stretch_width")


def open_source(model, data=None, T: int | None = None) -> SourcePage:
    """The page of a model source from Python: a SOURCE string or a model object (see
    :func:`workbench.sources.load_source`), or a loaded ``ModelSource``."""
    source = model if isinstance(model, ModelSource) else load_source(model, data, T)
    return SourcePage(source)

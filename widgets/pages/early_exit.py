"""'Stopping early': confidence policies replayed on cached trajectories.

Every knob here replays the recorded test run of the chosen base SNN (no re-simulation):
the stop times of the policy, its accuracy-vs-latency operating point against the fixed-T and
oracle curves, the stop-time histogram, the confidence of a few samples, the raster of one
sample cut where it exits, and the energy actually spent. Curves that a policy knob cannot
change are drawn once per base/policy/K/T_max. A knob moves the operating point at once; the
histogram, exit marks, raster and energy views follow once the page's worker has replayed it.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import numpy as np
import panel as pn
import param
import torch

from widgets import live
from widgets.energy_view import energy_panel
from widgets.page import Page
from workbench.energy import EnergyReport, energy_report, load_profiles
from workbench.methods.early_exit import (
    DynamicConfidence,
    StopPolicy,
    TopKCutoff,
    fixed_t_curve,
    oracle_curve,
    outcome,
    policy_curve,
)
from workbench.methods.early_exit_study import (
    BASES,
    EarlyExitSetting,
    base_run,
    calibrated_policies,
)
from workbench.network import simulate

POLICIES = ("Dynamic Confidence", "AOI Top-K cutoff")
EPSILONS = (0.0, 0.005, 0.01, 0.02, 0.03, 0.05, 0.08, 0.12, 0.2, 0.3)
SHOWN_SAMPLES = 6


@pn.cache(max_items=8)
def calibrated(base: str) -> Mapping[str, StopPolicy]:
    """The base's calibrated policies (calibration data only), read-only: every session
    shares them."""
    return MappingProxyType(calibrated_policies(base_run(base)))


@pn.cache(max_items=32)
def shown_statistic(base: str, policy: str, scale: float, T_max: int) -> np.ndarray:
    """The policy's statistic over time of the first :data:`SHOWN_SAMPLES` test samples,
    [T_max, samples] (no threshold knob moves it)."""
    readout = test_until(base, T_max).readout[:, :SHOWN_SAMPLES]
    if policy == POLICIES[0]:
        return DynamicConfidence(scale=scale).confidence(readout).cpu().numpy()
    return TopKCutoff.gap(readout).cpu().numpy()


@pn.cache(max_items=32)
def test_until(base: str, T_max: int):
    """The base's test run up to T_max (clamped to its T: a base switch reaches the views
    before the T_max knob adopts the new base's range)."""
    run = base_run(base)
    return run.test.until(min(T_max, run.T))


@pn.cache(max_items=64)
def topk(base: str, epsilon: float) -> TopKCutoff:
    run = base_run(base)
    return TopKCutoff(epsilon).calibrate(run.calibration, run.calibration_labels)


@pn.cache(max_items=64)
def reference_curves(base: str, T_max: int):
    """Fixed-T and oracle curves (independent of the policy knobs)."""
    trajectory, labels = test_until(base, T_max), base_run(base).test_labels
    return fixed_t_curve(trajectory, labels), oracle_curve(trajectory, labels)


@pn.cache(max_items=64)
def sweep_curve(base: str, policy: str, scale: float, T_max: int):
    """The policy's accuracy vs mean latency over its knob (c* for DC, ε for Top-K)."""
    trajectory, labels = test_until(base, T_max), base_run(base).test_labels
    if policy == "Dynamic Confidence":
        dc = DynamicConfidence(scale=scale)
        return policy_curve(trajectory, labels, lambda c: dc.stop_times_for(trajectory, c),
                            np.linspace(0.3, 0.9999, 60))
    return policy_curve(trajectory, labels, lambda e: topk(base, e).stop_times(trajectory),
                        EPSILONS)


@pn.cache(max_items=64)
def recorded_sample(base: str, sample: int):
    """One test sample simulated for the base's full T with every layer recorded."""
    run = base_run(base)
    return simulate(run.net, run.sample_inputs(sample), run.T, record=list(run.net.cells()))


@pn.cache(max_items=256)
def replay(base: str, policy: str, threshold: float, scale: float, epsilon: float, T_max: int):
    """Stop times [B] of a policy setting on the cached test run."""
    trajectory = test_until(base, T_max)
    if policy == "Dynamic Confidence":
        return DynamicConfidence(threshold=threshold, scale=scale).stop_times(trajectory)
    return topk(base, epsilon).stop_times(trajectory)


@pn.cache(max_items=256)
def spent_energy(base: str, policy: str, threshold: float, scale: float, epsilon: float,
                 T_max: int, memory: bool) -> EnergyReport:
    stops = replay(base, policy, threshold, scale, epsilon, T_max)
    return energy_report(test_until(base, T_max).stopped_at(stops), base_run(base).net,
                         include_memory=memory)


def _knob_text(policy: str, threshold: float, scale: float, epsilon: float) -> str:
    return f"c*={threshold:.3f}, K={scale:g}" if policy == POLICIES[0] else f"ε={epsilon}"


class EarlyExitSettings(param.Parameterized):
    """Knobs of the page (one instance per browser session); :class:`EarlyExitPage` sets the
    T_max and sample bounds from the chosen base's run."""

    base = param.Selector(default="digits_qcfs", objects=list(BASES), doc="base SNN")
    policy = param.Selector(default=POLICIES[0], objects=list(POLICIES), doc="stopping policy")
    threshold = param.Number(0.9, bounds=(0.3, 0.999), step=0.005,
                             doc="Dynamic Confidence: stop when max softmax(O_t/K) > c*")
    scale = param.Selector(default=4.0, objects=list(DynamicConfidence().scales),
                           doc="Dynamic Confidence: the readout scale K")
    epsilon = param.Selector(default=0.01, objects=list(EPSILONS),
                             doc="AOI Top-K: tolerated share of unstable exits ε")
    T_max = param.Integer(1, bounds=(1, 1), doc="latest exit step")
    sample = param.Integer(0, bounds=(0, 0), doc="test sample shown in the raster")
    device = param.Selector(default="loihi", objects=list(load_profiles().devices),
                            doc="per-layer energy split")
    memory = param.Boolean(False, doc="add the memory-traffic estimate")


KNOBS = ("base", "policy", "threshold", "scale", "epsilon", "T_max")
Settled = tuple[str, str, float, float, float, int]  # the KNOBS, T_max within the base's T


class EarlyExitPage(Page):
    """The 'Stopping early (confidence policies)' page; ``result`` is the :data:`Settled`
    policy setting shown by the histogram, exits, raster and energy."""

    title = "Stopping early"
    settings_class = EarlyExitSettings
    study = "early-exit"
    related_studies = ("rcs",)  # AOI's RCS regulariser over its α grid
    study_knobs = {"aoi_epsilon": "epsilon"}
    slow_knobs = KNOBS

    def bounds(self) -> None:
        self._adopt_base()
        self.settings.param.watch(self._adopt_base, "base")

    def _adopt_base(self, *_) -> None:
        """Start a base at its calibrated operating point, its T and sample range."""
        s, run = self.settings, base_run(self.settings.base)
        dc = calibrated(s.base)["Dynamic Confidence"]
        s.param.T_max.bounds = (1, run.T)
        s.param.sample.bounds = (0, run.test.B - 1)
        s.param.update(T_max=run.T, threshold=round(min(max(dc.threshold, 0.3), 0.999), 3),
                       scale=dc.scale, sample=min(s.sample, run.test.B - 1))

    def request(self) -> Settled:
        s = self.settings
        setting: EarlyExitSetting = self.setting()
        return (setting.base, s.policy, round(s.threshold, 4), s.scale, s.epsilon,
                min(s.T_max, base_run(setting.base).T))

    def compute(self, request: Settled, job) -> Settled:
        replay(*request)  # the stop times every slow view reads (cached)
        return request

    def operating_point(self, base, policy, threshold, scale, epsilon, T_max) -> live.Frame:
        """The fixed-T, oracle and policy-sweep curves with the knobs' operating point (a live
        view: every knob here replays the recorded run)."""
        key = self.request()
        T_max = key[-1]
        fixed, oracle = reference_curves(base, T_max)
        o = outcome(test_until(base, T_max), base_run(base).test_labels, replay(*key))
        knob = _knob_text(policy, threshold, scale, epsilon)
        return live.policy_frame(
            f"{policy} at {knob}: accuracy {o.accuracy:.3f} at {o.mean_steps:.2f} mean steps "
            f"(fixed T={T_max}: {float(fixed.accuracy.iloc[-1]):.3f})",
            {"fixed T": fixed, "oracle: first correct": oracle,
             "policy sweep": sweep_curve(base, policy, scale, T_max)}, o.mean_steps, o.accuracy,
            T_max)

    def histogram(self, *_) -> live.Frame:
        """How many test samples stop at each step (a live view of the knobs)."""
        settled = self.request()
        T_max = settled[-1]
        stops = replay(*settled).cpu().numpy()
        counts = np.bincount(stops, minlength=T_max + 1)[1:]
        return live.Frame(
            f"Stop times: median {np.median(stops):g}, 90th percentile {np.percentile(stops, 90):g}",
            {"bars": {"x": [str(t) for t in range(1, T_max + 1)], "top": counts}},
            factors=[str(t) for t in range(1, T_max + 1)],
            ranges={"y": (0.0, float(max(counts.max(), 1)) * 1.05)})

    def confidence(self, *_) -> live.Frame:
        """The policy's statistic of a few test samples over time, its threshold (c* or β_t)
        and each shown sample's exit (a live view of the knobs)."""
        base, policy, threshold, scale, epsilon, T_max = settled = self.request()
        stat = shown_statistic(base, policy, scale, T_max)  # [T_max, shown samples]
        stops = replay(*settled)
        steps = np.arange(1, T_max + 1)
        if policy == POLICIES[0]:
            line = {"x": [1, T_max], "y": [threshold, threshold]}
        else:
            line = {"x": steps, "y": topk(base, epsilon).beta_tensor(T_max).numpy()}
        shown = range(min(SHOWN_SAMPLES, stat.shape[1]))
        sources = {f"line {b}": {"x": steps, "y": stat[:, b]} if b in shown else
                   {"x": [], "y": []} for b in range(SHOWN_SAMPLES)}
        exits = [int(stops[b]) for b in shown]
        marks = [float(stat[t - 1, b]) for b, t in zip(shown, exits, strict=True)]
        sources |= {"threshold": line, "marks": {"x": exits, "y": marks}}
        statistic = "max softmax(O_t / K)" if policy == POLICIES[0] else "top1 − top2 of O_t"
        top = float(max(np.max(stat[:, list(shown)]), np.max(line["y"]))) if len(shown) else 1.0
        return live.Frame(
            f"Confidence of {len(shown)} test samples and where they exit: "
            f"{_knob_text(policy, threshold, scale, epsilon)} ({statistic})", sources,
            ranges={"x": (0.5, T_max + 0.5), "y": (0.0, top * 1.05 if top > 0 else 1.0)})

    def raster(self, settled, sample) -> live.Frame:
        """The shown sample's spikes until its exit (a live view: the sample knob replays)."""
        base, T_max = settled[0], settled[-1]
        sample = min(sample, base_run(base).test.B - 1)
        recorded = recorded_sample(base, sample).until(T_max)
        stop = int(replay(*settled)[sample])
        cut = recorded.stopped_at(torch.tensor([stop]))
        return live.raster_frame(f"Sample {sample} exits at step {stop} of {T_max}: "
                                 f"{int(cut.spikes_per_sample()[0])} spikes", cut)

    def __panel__(self) -> pn.viewable.Viewable:
        p = self.settings.param
        knobs = [p.base, p.policy, p.threshold, p.scale, p.epsilon, p.T_max]
        widgets = pn.Param(self.settings, widgets={
            "threshold": {"type": pn.widgets.FloatSlider},
            "scale": {"type": pn.widgets.DiscreteSlider},
            "epsilon": {"type": pn.widgets.DiscreteSlider},
            "T_max": {"type": pn.widgets.IntSlider},
            "sample": {"type": pn.widgets.IntInput},
        }, show_name=False, width=300)

        energy_views = energy_panel(self, lambda settled, memory: spent_energy(*settled, memory),
                                    [self.param.result, self.later(p.memory)],
                                    self.later(p.device))
        intro = pn.pane.Markdown(
            "A fixed number of timesteps wastes time on easy inputs. A stopping policy reads the "
            "accumulated output after every step and lets each sample exit once it is confident: "
            "**Dynamic Confidence** (Li et al., ICCV 2023) thresholds the max softmax of O_t/K at "
            "c*; **AOI's Top-K cutoff** (Wu et al., 2023) thresholds the top-1 minus top-2 gap "
            "at a per-step β_t calibrated for a share 1 − ε of stable exits. The oracle stops "
            "every sample at its first correct step: the potential. Knobs replay the recorded "
            "run: nothing is re-simulated. Calibration used training/validation data only.",
            sizing_mode="stretch_width")
        return self.frame(widgets, intro,
                          self.live(live.policy_view(), self.operating_point, *knobs),
                          self.live(live.bars("stop step", "samples"), self.histogram, *knobs),
                          self.live(live.traces_with_marks(SHOWN_SAMPLES, "timestep",
                                                           "statistic"), self.confidence, *knobs),
                          self.live(live.raster(), self.raster, self.param.result, p.sample),
                          "### Energy actually spent", energy_views)

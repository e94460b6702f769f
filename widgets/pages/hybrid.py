"""'ANN-initialized SNN (pose)': a low-rate ANN sets the SNN's state on event-camera pose.

Pick the ANN-initialization rate, the SNN rate and a predictor; play one test sequence with the
predicted and true skeletons over its events, follow the error through time with the
initialization instants marked, watch membrane potentials jump at every initialization, and
compare the energy per second with the ANN run at the SNN rate. Models come from the cache
(``workbench prepare``); the page predicts the first :data:`SHOWN_CLIPS` test clips (the
study, all 30), cached per setting, and a rate change runs on the page's worker.
"""

from __future__ import annotations

import holoviews as hv
import numpy as np
import panel as pn
import param

from widgets import live
from widgets.page import Page
from workbench.datasets.stick_figure import BONES, CANVAS
from workbench.energy import load_profiles
from workbench.methods.hybrid_data import SNN_RATES, Timing
from workbench.methods.hybrid_study import (
    LABELS,
    PREPARED,
    SHOWN_CLIPS,
    HybridSetting,
    load_ann,
    load_variant,
    run,
    study_run,
    test_sequences,
)

MODELS = ("hybrid", "ann_held", "snn_alone", "ann_high_rate")
INIT_RATES = (2.0, 5.0, 10.0, 20.0)
LAYERS = ("lif1", "lif2", "lif3", "lif4")
EVENTS_SHOWN_MS = 50  # the player draws the events of the last 50 ms


def shown_run(kind: str, snn_rate: int, init_rate: float):
    """``kind`` on the page's test clips (:data:`SHOWN_CLIPS`; cached per setting)."""
    return study_run(kind, snn_rate, init_rate, clips=SHOWN_CLIPS)


@pn.cache(max_items=16)
def sequence_run(kind: str, snn_rate: int, init_rate: float, sequence: int, layer: str):
    """One test sequence with every neuron of ``layer`` recorded (membranes, spikes)."""
    first = sequence - sequence % 2
    seqs = test_sequences(snn_rate, clips=SHOWN_CLIPS).select([first, first + 1])
    model = load_variant(kind, snn_rate, progress=False)[0]
    result = run(kind, seqs, Timing(snn_rate, init_rate), load_ann(progress=False)[0], model,
                 record=[layer], keep_trajectory=True)
    return result, sequence % 2


class HybridSettings(param.Parameterized):
    """Knobs of the page (one instance per browser session)."""

    init_rate = param.Selector(default=10.0, objects=list(INIT_RATES),
                               doc="ANN initializations per second (Hz)")
    snn_rate = param.Selector(default=100, objects=list(SNN_RATES), doc="SNN steps per second (Hz)")
    model = param.Selector(default="hybrid", objects=list(MODELS),
                           doc="hybrid / ANN held / SNN alone / ANN at the SNN rate")
    sequence = param.Integer(0, bounds=(0, 0), doc="test sequence (clip × camera view)")
    step = param.Integer(0, bounds=(0, 399), doc="prediction shown in the player")
    layer = param.Selector(default="lif4", objects=list(LAYERS), doc="SNN layer of the traces")
    device = param.Selector(default="loihi", objects=list(load_profiles().devices))


class HybridPage(Page):
    """The 'ANN-initialized SNN (pose)' page; ``result`` is the study's Setting (rates) whose
    runs are on show."""

    title = "ANN-initialized SNN (pose)"
    settings_class = HybridSettings
    study = "hybrid"
    study_knobs = {"snn_rate_hz": "snn_rate", "init_rate_hz": "init_rate"}
    slow_knobs = ("snn_rate", "init_rate")

    def bounds(self) -> None:
        self.player_widget = pn.widgets.Player.from_param(
            self.settings.param.step, interval=150, loop_policy="loop", width=300)
        self._step_bounds()
        self.settings.param.watch(self._step_bounds, ["snn_rate", "init_rate"])

    def compute(self, request: HybridSetting, job) -> HybridSetting:
        for kind in ("ann_high_rate", "ann_held", *PREPARED[request.snn_rate_hz]):
            shown_run(kind, request.snn_rate_hz, request.init_rate_hz)  # cached
        return request

    def _step_bounds(self, *_) -> None:
        """The sequences and the player's steps: one sequence's predictions at these rates."""
        s = self.settings
        timing = Timing(s.snn_rate, s.init_rate)
        test = test_sequences(s.snn_rate, clips=SHOWN_CLIPS)
        s.param.sequence.bounds = (0, test.frames.shape[0] - 1)
        count = len(test.window_starts(timing.steps_per_window))
        last = count * timing.steps_per_window - 1
        s.param.step.bounds = (0, last)
        s.step = min(s.step, last)
        self.player_widget.end = last

    @staticmethod
    def _flat(result, sequence: int):
        """(times [n] ms, predicted uv [n, 13, 2], true uv, errors [n]) of one sequence."""
        times = result.times_ms.flatten().numpy()
        uv, true = result.uv[sequence].flatten(0, 1), result.true_uv[sequence].flatten(0, 1)
        return times, uv.numpy(), true.numpy(), result.errors_2d[sequence].flatten().numpy()

    def player(self, setting: HybridSetting, model, sequence, step) -> live.Frame:
        """The last 50 ms of events under the true and the predicted skeleton at one step (a
        live view: the player's step replays the cached run)."""
        snn_rate, init_rate = setting.snn_rate_hz, setting.init_rate_hz
        result = shown_run(model, snn_rate, init_rate)
        times, uv, true, errors = self._flat(result, sequence)
        step = min(step, len(times) - 1)
        end = int(round(times[step] * snn_rate / 1000))  # boundary at the end of this step
        frames = test_sequences(snn_rate, clips=SHOWN_CLIPS).frames
        shown = frames[sequence, end - EVENTS_SHOWN_MS * snn_rate // 1000:end].sum(0).numpy()
        height = shown.shape[-2]
        # rows are stored bottom-up; the one array goes as one binary buffer, the few joint
        # coordinates as plain lists (each array would be a websocket frame of its own)
        sources = {"image": {"image": [(shown[1] - shown[0]).astype(np.float32)]}}
        for label, joints in (("true", true[step]), ("predicted", uv[step])):
            x, y = joints[:, 0].tolist(), (height - joints[:, 1]).tolist()  # v grows downwards
            sources[label] = {"xs": [[x[i] for i in b] for b in BONES],
                              "ys": [[y[i] for i in b] for b in BONES]}
            sources[f"{label} joints"] = {"x": x, "y": y}
        return live.Frame(title=(f"t = {times[step]:.0f} ms, {LABELS[model]}: "
                                 f"{errors[step]:.2f} px (sequence {sequence})"), sources=sources)

    def error_in_time(self, setting: HybridSetting, model, sequence):
        snn_rate, init_rate = setting.snn_rate_hz, setting.init_rate_hz
        reference = shown_run("ann_high_rate", snn_rate, init_rate)
        result = shown_run(model, snn_rate, init_rate)
        times, _, _, errors = self._flat(result, sequence)
        _, _, _, ref = self._flat(reference, sequence)
        return hv.Overlay([
            hv.Curve((times, ref), "time (ms)", "MPJPE 2D (px)", label=LABELS["ann_high_rate"]),
            hv.Curve((times, errors), "time (ms)", "MPJPE 2D (px)", label=LABELS[model]),
            _instants(result, snn_rate, max(errors.max(), ref.max())),
        ]).opts(title=(f"Error over time, {LABELS[model]}: mean {errors.mean():.2f} px "
                       f"(ANN at {snn_rate} Hz: {ref.mean():.2f} px), init every "
                       f"{1000 / init_rate:.0f} ms"),
                responsive=True, min_height=260, shared_axes=False, legend_position="top_right")

    def per_step(self, setting: HybridSetting):
        snn_rate, init_rate = setting.snn_rate_hz, setting.init_rate_hz
        kinds = ("ann_high_rate", "ann_held", *PREPARED[snn_rate])
        curves = []
        for kind in kinds:
            errors = shown_run(kind, snn_rate, init_rate).errors_2d.mean((0, 1)).numpy()
            curves.append(hv.Curve((np.arange(1, len(errors) + 1), errors), "step inside the window",
                                   "MPJPE 2D (px)", label=LABELS[kind]))
        return hv.Overlay(curves).opts(
            title=(f"Error per step inside the window ({snn_rate} Hz SNN, init at "
                   f"{init_rate:g} Hz), mean over the test sequences"),
            responsive=True, min_height=280, shared_axes=False, legend_position="right",
            logy=True)

    def membranes(self, setting: HybridSetting, model, sequence, layer):
        snn_rate, init_rate = setting.snn_rate_hz, setting.init_rate_hz
        if model not in PREPARED[snn_rate]:
            return hv.Curve([], "time (ms)", "membrane v").opts(
                title=f"Membrane potential: {LABELS[model]} has no SNN", responsive=True,
                min_height=240)
        result, index = sequence_run(model, snn_rate, init_rate, sequence, layer)
        trajectory = result.trajectory
        nW = len(result.starts)
        windows = slice(index * nW, (index + 1) * nW)  # this view's windows
        v = trajectory.membrane[layer][:, windows]  # [W, nW, N]
        spikes = trajectory.spikes[layer][:, windows].sum((0, 1))
        neurons = spikes.argsort(descending=True)[:4]
        times = result.times_ms.flatten().numpy()
        traces = v.transpose(0, 1).flatten(0, 1)[:, neurons].numpy()
        jump = (result.state_jumps or {}).get(layer)
        jump_text = "none (no state init)" if jump is None else f"{jump:.2f}"
        return hv.Overlay([
            *[hv.Curve((times, traces[:, i]), "time (ms)", "membrane v (θ = 1)",
                       label=f"neuron {int(n)}") for i, n in enumerate(neurons)],
            hv.HLine(1.0).opts(color="black", line_dash="dashed"),
            _instants(result, snn_rate, float(traces.max())),
        ]).opts(title=(f"Membrane potential, {layer} ({LABELS[model]}): mean jump at an "
                       f"initialization {jump_text}"),
                responsive=True, min_height=260, shared_axes=False, legend_position="right")

    def energy(self, setting: HybridSetting, model, device):
        snn_rate, init_rate = setting.snn_rate_hz, setting.init_rate_hz
        totals = {kind: shown_run(kind, snn_rate, init_rate).energy
                  for kind in dict.fromkeys((model, "ann_high_rate"))}
        rows = [(target, LABELS[kind], sum(parts.values()))
                for kind, energy in totals.items() for target, parts in energy.items()]
        ratio = sum(totals[model][device].values()) / sum(totals["ann_high_rate"][device].values())
        watts = [w for _, _, w in rows]
        # a log axis starts its bars at the lower end of the value range: span all values
        return hv.Bars(rows, kdims=["device", "model"], vdims="watts").redim.range(
            watts=(min(watts) / 3, max(watts) * 3)).opts(
            title=(f"Energy per second of sequence: {LABELS[model]} / ANN at {snn_rate} Hz = "
                   f"{ratio:.3f} on {device}"),
            logy=True, ylabel="W = J per second (log)", responsive=True, min_height=300,
            xrotation=30, multi_level=True, shared_axes=False, framewise=True, tools=["hover"])

    def breakdown(self, setting: HybridSetting, model, device):
        snn_rate, init_rate = setting.snn_rate_hz, setting.init_rate_hz
        parts = shown_run(model, snn_rate, init_rate).energy[device]
        return hv.Bars([(k, v) for k, v in parts.items()], "part", "watts").opts(
            title=f"{LABELS[model]} on {device}: where the energy goes", responsive=True,
            min_height=240, shared_axes=False, ylabel="W")

    def __panel__(self) -> pn.viewable.Viewable:
        p = self.settings.param
        result = self.param.result
        widgets = pn.Param(self.settings, parameters=["init_rate", "snn_rate", "model", "sequence",
                                                      "layer", "device"],
                           widgets={"sequence": {"type": pn.widgets.IntInput}},
                           show_name=False, width=300)
        intro = pn.pane.Markdown(
            "An SNN's state needs a transient to build up and decays when input is sparse. "
            "**Aydin et al. (2024)** let an ANN, run at a low rate on the 100 ms of events "
            "*before* each window, set every SNN layer's membrane potential through small state "
            "heads and start the readout from its heatmaps; the SNN then updates the pose at a "
            "high rate from one event frame per step. Compare: the ANN at the SNN rate (best, "
            "costly), the ANN at the low rate with its prediction held (cheap, drifts), the SNN "
            "alone from a zero state (slow transient). Train and measure: `workbench report "
            "hybrid`.", sizing_mode="stretch_width")
        return self.frame(
            widgets, intro,
            self.live(live.pose(CANVAS, CANVAS, ("true", "predicted")), self.player, result,
                      p.model, p.sequence, p.step),
            self.view(self.error_in_time, result, p.model, p.sequence),
            self.view(self.per_step, result),
            self.view(self.membranes, result, p.model, p.sequence, p.layer),
            "### Energy", self.view(self.energy, result, p.model, p.device),
            self.view(self.breakdown, result, p.model, p.device),
            pn.pane.Markdown(
                "*Energy per second of sequence = ANN calls × ANN ops + state heads + "
                "SNN windows × their measured synaptic ops and neuron updates. On a "
                "neuromorphic target the ANN and heads run on its `ann_on` profile "
                "(45 nm CMOS); CPU and GPU simulate the SNN clock-driven.*",
                sizing_mode="stretch_width"),
            extra=("### Player", self.player_widget))


def _instants(result, snn_rate: int, top: float) -> hv.Segments:
    """Dotted vertical lines at the ANN initializations (one element, whatever their number)."""
    inits = result.starts.numpy() * 1000 / snn_rate
    return hv.Segments([(float(t), 0.0, float(t), float(top)) for t in inits],
                       ["time (ms)", "y", "x1", "y1"], label="ANN initialization").opts(
        color="#999999", line_dash="dotted")


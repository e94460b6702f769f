"""Views that a replay knob redraws in place: a Bokeh figure built once, whose data sources,
title and ranges a knob move assigns directly.

Why not HoloViews here: a HoloViews view re-plots its element on every change (15–80 ms on
this machine for one bar chart or raster) and then makes Bokeh re-walk the whole page's model
graph (≈ 100 ms for a page of ~300 models), while a replay knob has 150 ms from key press to
paint. Assigning new columns to an existing ``ColumnDataSource`` creates no model, so Bokeh
sends one small patch and recomputes nothing. The heavier views stay in HoloViews and follow
a tick later (:meth:`widgets.page.Page.view`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import panel as pn
import torch
from bokeh.models import ColumnDataSource, FactorRange, LinearColorMapper, Range1d
from bokeh.palettes import RdBu11
from bokeh.plotting import figure

from widgets.plots import MODEL_COLOURS, energy_columns, raster_columns
from workbench.errors import WorkbenchError

Columns = Mapping[str, Sequence]


@dataclass(frozen=True)
class Frame:
    """What one redraw shows: the title, each named source's columns, the categories of a
    categorical x axis, and numeric axis ranges (``x``/``y`` → (start, end))."""

    title: str
    sources: Mapping[str, Columns]
    factors: Sequence[str] | None = None
    ranges: Mapping[str, tuple[float, float]] = field(default_factory=dict)


def _finite(name: str, columns: Columns) -> None:
    for column, values in columns.items():
        array = np.asarray(values)
        if array.dtype.kind in "fc" and not np.isfinite(array).all():
            raise WorkbenchError(f"the view's {name}.{column} holds a NaN or inf value: "
                                 "not drawn")


class LiveFigure(pn.viewable.Viewer):
    """A Bokeh ``figure`` with named ``sources``; :meth:`draw` shows a :class:`Frame` by
    assigning only what changed (an unchanged source sends nothing)."""

    def __init__(self, fig, sources: Mapping[str, ColumnDataSource]) -> None:
        super().__init__()
        self.figure = fig
        self.sources = dict(sources)
        self.pane = pn.pane.Bokeh(fig, sizing_mode="stretch_width")

    def draw(self, frame: Frame) -> None:
        """Show ``frame``; a non-finite number raises a WorkbenchError and draws nothing."""
        for name, columns in frame.sources.items():
            _finite(name, columns)
        for name, columns in frame.sources.items():
            source = self.sources[name]
            if not _same(source.data, columns):
                source.data = dict(columns)
        if frame.factors is not None and list(self.figure.x_range.factors) != list(frame.factors):
            self.figure.x_range.factors = list(frame.factors)
        for axis, (start, end) in frame.ranges.items():
            if not (math.isfinite(start) and math.isfinite(end)):
                raise WorkbenchError(f"the view's {axis} range ({start}, {end}) is not finite")
            bounds = getattr(self.figure, f"{axis}_range")
            if (bounds.start, bounds.end) != (start, end):
                bounds.update(start=start, end=end)
        if self.figure.title.text != frame.title:
            self.figure.title.text = frame.title

    def __panel__(self) -> pn.pane.Bokeh:
        return self.pane


def _same(old: Mapping[str, Sequence], new: Columns) -> bool:
    if old.keys() != new.keys():
        return False
    for key, value in new.items():
        a, b = np.asarray(old[key]), np.asarray(value)
        if a.shape != b.shape or not np.array_equal(a, b):
            return False
    return True


def _figure(**options):
    return figure(sizing_mode="stretch_width", min_height=260, toolbar_location="right",
                  tools="pan,wheel_zoom,box_zoom,reset,save", **options)


def traces_with_marks(lines: int, x_label: str, y_label: str) -> LiveFigure:
    """``lines`` thin lines (sources ``line 0``, ``line 1``, …: ``x``, ``y``), a dashed
    ``threshold`` line and ``marks`` (× markers): e.g. a statistic of a few samples over time,
    a policy's threshold and where each sample stops."""
    fig = _figure(x_range=Range1d(0.5, 1.5), y_range=Range1d(0, 1), x_axis_label=x_label,
                  y_axis_label=y_label)
    palette = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
               "#7f7f7f")
    sources = {}
    for i in range(lines):
        sources[f"line {i}"] = ColumnDataSource({"x": [], "y": []})
        fig.line("x", "y", source=sources[f"line {i}"], color=palette[i % len(palette)],
                 line_width=1.5, alpha=0.8, name=f"line {i}")
    sources["threshold"] = ColumnDataSource({"x": [], "y": []})
    fig.line("x", "y", source=sources["threshold"], color="black", line_dash="dashed",
             line_width=2, legend_label="threshold", name="threshold")
    sources["marks"] = ColumnDataSource({"x": [], "y": []})
    fig.scatter("x", "y", source=sources["marks"], marker="x", size=11, color="black",
                line_width=2, legend_label="exit", name="marks")
    fig.legend.location = "bottom_right"
    return LiveFigure(fig, sources)


def bars(x_label: str, y_label: str, tooltips: Sequence[tuple[str, str]] = ()) -> LiveFigure:
    """Vertical bars over categories: source ``bars`` with columns ``x`` (category), ``top``."""
    fig = _figure(x_range=FactorRange(), y_range=Range1d(0, 1), x_axis_label=x_label,
                  y_axis_label=y_label, tooltips=list(tooltips) or None)
    source = ColumnDataSource({"x": [], "top": []})
    fig.vbar(x="x", top="top", width=0.8, source=source, color="#1f77b4")
    fig.xaxis.major_label_orientation = 0.5
    return LiveFigure(fig, {"bars": source})


def curves_and_point(curves: Mapping[str, Mapping[str, object]], point_label: str,
                     x_label: str, y_label: str) -> LiveFigure:
    """Lines (source per name in ``curves``, columns ``x``, ``y``; the value holds line
    options) and one marked point (source ``point``, columns ``x``, ``y``)."""
    fig = _figure(x_range=Range1d(0, 1), y_range=Range1d(0, 1.02), x_axis_label=x_label,
                  y_axis_label=y_label)
    sources = {}
    for name, options in curves.items():
        sources[name] = ColumnDataSource({"x": [], "y": []})
        fig.line("x", "y", source=sources[name], legend_label=name, line_width=2, **options)
    sources["point"] = ColumnDataSource({"x": [], "y": []})
    fig.scatter("x", "y", source=sources["point"], marker="diamond", size=14, color="black",
                legend_label=point_label)
    fig.legend.location = "bottom_right"
    fig.legend.click_policy = "hide"
    return LiveFigure(fig, sources)


def accuracy(curves: Mapping[str, str], reference: str | None = None,
             y_label: str = "accuracy") -> LiveFigure:
    """Accuracy (or another share in [0, 1], ``y_label``) after every timestep: one line per
    source name in ``curves`` (value: its legend label), a dotted horizontal ``reference`` line
    (legend label; None: no line) and a faint vertical ``marker`` at a T of interest (sources
    ``reference``/``marker``: ``x``, ``y``)."""
    fig = _figure(x_range=Range1d(0.5, 1.5), y_range=Range1d(0, 1.02), x_axis_label="timestep",
                  y_axis_label=y_label)
    palette = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728")
    sources = {}
    for (name, label), colour in zip(curves.items(), palette, strict=False):
        sources[name] = ColumnDataSource({"x": [], "y": []})
        fig.line("x", "y", source=sources[name], legend_label=label, line_width=2, color=colour,
                 name=name)
    if reference is not None:
        sources["reference"] = ColumnDataSource({"x": [], "y": []})
        fig.line("x", "y", source=sources["reference"], legend_label=reference, color="gray",
                 line_dash="dotted", line_width=2, name="reference")
    sources["marker"] = ColumnDataSource({"x": [], "y": []})
    fig.line("x", "y", source=sources["marker"], color="black", alpha=0.3, line_width=2,
             name="marker")
    fig.legend.location = "bottom_right"
    fig.legend.click_policy = "hide"
    return LiveFigure(fig, sources)


def accuracy_frame(title: str, curves: Mapping[str, Sequence[float]], marker: int,
                   reference: float | None = None) -> Frame:
    """An :func:`accuracy` frame: ``curves`` maps a source name to the accuracy after t = 1..T."""
    sources = {name: {"x": np.arange(1, len(y) + 1), "y": np.asarray(y, dtype=float)}
               for name, y in curves.items()}
    T = max(len(y) for y in curves.values())
    if reference is not None:
        sources["reference"] = {"x": [0.5, T + 0.5], "y": [float(reference)] * 2}
    sources["marker"] = {"x": [marker, marker], "y": [0.0, 1.02]}
    return Frame(title, sources, ranges={"x": (0.5, T + 0.5)})


def energy_bars() -> LiveFigure:
    """Joules per inference of the SNN and its ANN on every device, log axis: source ``bars``
    with columns ``x`` ((device, model) factors), ``top``, ``bottom`` (the axis floor: a log
    axis has no zero), ``color`` and the hover's ``charged_on`` and ``snn_to_ann``."""
    fig = _figure(x_range=FactorRange(), y_range=Range1d(1e-9, 1.0), y_axis_type="log",
                  y_axis_label="J per inference (log)",
                  tooltips=[("", "@x"), ("J per inference", "@top{0.000e}"),
                            ("charged on", "@charged_on"), ("SNN/ANN", "@snn_to_ann{0.000}")])
    source = ColumnDataSource({k: [] for k in ("x", "top", "bottom", "color", "charged_on",
                                               "snn_to_ann")})
    fig.vbar(x="x", top="top", bottom="bottom", width=0.8, color="color", source=source)
    fig.xaxis.group_label_orientation = 0.5  # long device names side by side
    return LiveFigure(fig, {"bars": source})


def energy_bars_frame(summary, title: str) -> Frame:
    """An :func:`energy_bars` frame of :meth:`workbench.energy.EnergyReport.summary` rows."""
    columns, (low, high) = energy_columns(summary)
    factors = list(zip(columns["device"], columns["model"], strict=True))
    return Frame(title, {"bars": {
        "x": factors, "top": columns["joules"], "bottom": np.full(len(factors), low),
        "color": [MODEL_COLOURS.get(m, MODEL_COLOURS["snn"]) for m in columns["model"]],
        "charged_on": list(columns["charged_on"]), "snn_to_ann": columns["snn_to_ann"]}},
        factors=factors, ranges={"y": (float(low), float(high))})


def stacked_bars(keys: Sequence[str], x_label: str, y_label: str,
                 colours: Sequence[str] = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728")
                 ) -> LiveFigure:
    """Bars over categories stacked by ``keys``: source ``stack`` with column ``x`` and one
    column per key."""
    fig = _figure(x_range=FactorRange(), y_range=Range1d(0, 1), x_axis_label=x_label,
                  y_axis_label=y_label, tooltips=[("", "@x"), ("$name", "@$name{0.000e}")])
    source = ColumnDataSource({"x": [], **{k: [] for k in keys}})
    fig.vbar_stack(list(keys), x="x", width=0.8, color=list(colours[:len(keys)]), source=source,
                   legend_label=list(keys))
    fig.legend.location = "top_right"
    return LiveFigure(fig, {"stack": source})


def stacked_frame(title: str, table, x: str, keys: Sequence[str]) -> Frame:
    """A :func:`stacked_bars` frame of ``table`` (one row per category ``x``, a column per
    key; a missing key counts zero)."""
    columns = {k: (table[k].to_numpy(float) if k in table else np.zeros(len(table)))
               for k in keys}
    total = sum(columns.values()) if columns else np.zeros(len(table))
    top = float(np.max(total)) if len(table) else 1.0
    return Frame(title, {"stack": {"x": [str(v) for v in table[x]], **columns}},
                 factors=[str(v) for v in table[x]],
                 ranges={"y": (0.0, top * 1.08 if top > 0 else 1.0)})


def pose(height: int, width: int, skeletons: Sequence[str],
         colours: Sequence[str] = ("#2ca02c", "#d62728", "#9467bd", "#ff7f0e")) -> LiveFigure:
    """An event frame (source ``image``: column ``image``, one [H, W] array of ON − OFF counts,
    array row 0 drawn at the bottom) under skeletons (per label: source ``<label>`` with ``xs``/``ys``, one
    list per bone, and ``<label> joints`` with ``x``/``y``)."""
    fig = figure(width=460, height=500, x_range=Range1d(0, width), y_range=Range1d(0, height),
                 x_axis_label="u (px)", y_axis_label="v (px)", match_aspect=True,
                 tools="pan,wheel_zoom,reset,save")
    sources = {"image": ColumnDataSource({"image": [np.zeros((height, width))]})}
    fig.image("image", x=0, y=0, dw=width, dh=height, source=sources["image"],
              color_mapper=LinearColorMapper(RdBu11, low=-2, high=2))  # red: more ON events
    for label, colour in zip(skeletons, colours, strict=False):
        sources[label] = ColumnDataSource({"xs": [], "ys": []})
        sources[f"{label} joints"] = ColumnDataSource({"x": [], "y": []})
        fig.multi_line("xs", "ys", source=sources[label], color=colour, line_width=3,
                       legend_label=label)
        fig.scatter("x", "y", source=sources[f"{label} joints"], color=colour, size=6,
                    legend_label=label)
    fig.legend.location = "bottom_center"
    fig.legend.orientation = "horizontal"
    return LiveFigure(fig, sources)


POLICY_CURVES = {"fixed T": {"color": "#1f77b4"},
                 "oracle: first correct": {"color": "#ff7f0e", "line_dash": "dashed"},
                 "policy sweep": {"color": "#2ca02c", "alpha": 0.6}}


def policy_view(sweep: bool = True) -> LiveFigure:
    """Accuracy vs mean timesteps of a stopping policy: the fixed-T and oracle curves, the
    policy's sweep over its knob (when ``sweep``) and its operating point."""
    curves = {k: v for k, v in POLICY_CURVES.items() if sweep or k != "policy sweep"}
    return curves_and_point(curves, "operating point", "mean timesteps per sample", "accuracy")


def policy_frame(title: str, curves: Mapping[str, object], mean_steps: float, accuracy: float,
                 T: int) -> Frame:
    """A :func:`policy_view` frame: ``curves`` maps a curve's name to a table with columns
    ``mean_steps`` and ``accuracy``; the point is (``mean_steps``, ``accuracy``)."""
    sources = {name: {"x": curve.mean_steps.to_numpy(float), "y": curve.accuracy.to_numpy(float)}
               for name, curve in curves.items()}
    sources["point"] = {"x": [float(mean_steps)], "y": [float(accuracy)]}
    return Frame(title, sources, ranges={"x": (0.5, T + 0.5)})


def membranes(neurons: int) -> LiveFigure:
    """Membrane potentials of ``neurons`` neurons over time (sources ``v 0``, ``v 1``, …: ``x``,
    ``y``), each neuron's moving threshold dashed in its colour (``θ 0``, …; empty under a
    constant θ) and a constant θ as a black dashed line (``threshold``; empty when it moves)."""
    fig = _figure(x_range=Range1d(0.5, 1.5), y_range=Range1d(0, 1), x_axis_label="timestep",
                  y_axis_label="membrane")
    palette = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd")
    sources = {}
    for i in range(neurons):
        colour = palette[i % len(palette)]
        sources[f"v {i}"] = ColumnDataSource({"x": [], "y": []})
        fig.line("x", "y", source=sources[f"v {i}"], color=colour, line_width=2,
                 legend_label=f"neuron {i + 1}", name=f"v {i}")
        sources[f"θ {i}"] = ColumnDataSource({"x": [], "y": []})
        fig.line("x", "y", source=sources[f"θ {i}"], color=colour, line_dash="dashed",
                 line_width=1.5, name=f"θ {i}")
    sources["threshold"] = ColumnDataSource({"x": [], "y": []})
    fig.line("x", "y", source=sources["threshold"], color="black", line_dash="dashed",
             line_width=2, legend_label="threshold θ", name="threshold")
    fig.legend.location = "top_left"
    fig.legend.click_policy = "hide"
    return LiveFigure(fig, sources)


def membranes_frame(title: str, trajectory, layer: str, neurons: Sequence[int], lines: int,
                    sample: int = 0) -> Frame:
    """A :func:`membranes` frame of a figure of ``lines`` neurons: the recorded ``neurons``
    (indices into ``layer``'s recorded neurons, at most ``lines``; the other lines are emptied)
    of ``sample``; a gated step's infinite θ (spike confidence) is left out of its line."""
    v = trajectory.membrane[layer][:, sample].cpu().numpy()  # [T, N]
    theta = trajectory.thresholds[layer]
    steps = np.arange(1, trajectory.T + 1)
    empty = {"x": [], "y": []}
    sources = {f"{kind} {i}": empty for kind in ("v", "θ") for i in range(lines)}
    sources |= {f"v {i}": {"x": steps, "y": v[:, n]} for i, n in enumerate(neurons)}
    finite = theta[torch.isfinite(theta)]
    top = max(float(v[:, list(neurons)].max(initial=0.0)),
              float(finite.max()) if finite.numel() else 0.0)
    bottom = min(float(v[:, list(neurons)].min(initial=0.0)), 0.0)
    if theta.dim() == 3:  # a threshold per neuron and step: [T, B, N]
        th = theta[:, sample].cpu().numpy()
        for i, n in enumerate(neurons):
            keep = np.isfinite(th[:, n])
            sources[f"θ {i}"] = {"x": steps[keep], "y": th[keep, n]}
        sources["threshold"] = empty
    else:
        value = float(theta.flatten()[0]) if theta.numel() == 1 else float(theta.mean())
        sources["threshold"] = {"x": [0.5, trajectory.T + 0.5], "y": [value, value]}
    span = max(top - bottom, 1e-6)
    return Frame(title, sources, ranges={"x": (0.5, trajectory.T + 0.5),
                                         "y": (bottom - 0.05 * span, top + 0.1 * span)})


def raster() -> LiveFigure:
    """A spike raster (source ``spikes``: the columns of :func:`widgets.plots.raster_columns`)."""
    fig = _figure(x_range=Range1d(0.5, 1.5), y_range=Range1d(-1, 1), x_axis_label="timestep",
                  y_axis_label="neuron (by layer)")
    source = ColumnDataSource({k: [] for k in ("timestep", "neuron", "timestep_end",
                                                "neuron_end", "color")})
    fig.segment("timestep", "neuron", "timestep_end", "neuron_end", color="color", line_width=2,
                source=source)
    return LiveFigure(fig, {"spikes": source})


def raster_frame(title: str, trajectory, sample: int = 0) -> Frame:
    """A :func:`raster` frame of one recorded sample of ``trajectory`` [T, B, ...]."""
    columns, neurons = raster_columns(trajectory, sample)
    return Frame(title, {"spikes": columns},
                 ranges={"x": (0.5, trajectory.T + 0.5), "y": (-1.0, float(max(neurons, 1)))})

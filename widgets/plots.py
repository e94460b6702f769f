"""Pure functions from core objects to HoloViews elements."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import holoviews as hv
import numpy as np
import pandas as pd
import torch
from torch import Tensor

from workbench.trajectory import Trajectory

LAYER_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")


def raster_columns(trajectory: Trajectory, sample: int = 0,
                   layers: Sequence[str] | None = None) -> tuple[dict[str, np.ndarray | list], int]:
    """The recorded spikes of one sample as tick segments: columns ``timestep``/``timestep_end``
    (t ± 0.4), ``neuron``/``neuron_end`` (layers stacked bottom-up) and ``color`` (by layer);
    and the neuron count (the height of the stack)."""
    layers = list(layers or trajectory.spikes)
    x0, y0, colour = [], [], []
    offset = 0
    for i, name in enumerate(layers):
        spikes = trajectory.spikes[name][:, sample].cpu().numpy()  # [T, N]
        t, n = np.nonzero(spikes)
        x0.append(t + 1)
        y0.append(n + offset)
        colour += [LAYER_COLORS[i % len(LAYER_COLORS)]] * len(t)
        offset += spikes.shape[1]
    x0 = np.concatenate(x0) if x0 else np.zeros(0)
    y0 = np.concatenate(y0) if y0 else np.zeros(0)
    return {"timestep": x0 - 0.4, "neuron": y0, "timestep_end": x0 + 0.4, "neuron_end": y0,
            "color": colour}, offset


def spike_raster(trajectory: Trajectory, sample: int = 0, layers: Sequence[str] | None = None,
                 title: str = "Spike raster") -> hv.Segments:
    """All recorded spikes of one sample as one ``hv.Segments`` glyph: a tick per spike at
    (timestep, neuron); layers stacked bottom-up, coloured by layer."""
    data, neurons = raster_columns(trajectory, sample, layers)
    return hv.Segments(data, kdims=["timestep", "neuron", "timestep_end", "neuron_end"],
                       vdims=["color"]).opts(
        color="color", line_width=2, title=title, xlabel="timestep", ylabel="neuron (by layer)",
        xlim=(0.5, trajectory.T + 0.5), ylim=(-1, max(neurons, 1)), responsive=True,
        min_height=260, tools=["hover"], framewise=True, shared_axes=False)


def membrane_traces(trajectory: Trajectory, layer: str, neurons: Sequence[int], sample: int = 0,
                    title: str = "Membrane potential") -> hv.Overlay:
    """Membrane potential (post-reset) of a few recorded neurons over time, with the threshold
    (a line, or the moving threshold under an adaptive policy)."""
    v = trajectory.membrane[layer][:, sample].cpu().numpy()  # [T, N]
    theta = trajectory.thresholds[layer]
    steps = np.arange(1, trajectory.T + 1)
    curves = [hv.Curve((steps, v[:, n]), "timestep", "membrane", label=f"neuron {n}")
              for n in neurons]
    finite = theta[torch.isfinite(theta)]  # a gated step (spike confidence) has θ = inf
    top = float(max(v[:, list(neurons)].max(initial=0.0), finite.max() if finite.numel() else 0))
    bottom = float(min(v[:, list(neurons)].min(initial=0.0), 0.0))
    if theta.dim() == 3:
        th = theta[:, sample].cpu().numpy()
        th = np.where(np.isfinite(th), th, np.nan)  # drawn as gaps
        curves += [hv.Curve((steps, th[:, n]), "timestep", "membrane",
                            label=f"θ neuron {n}").opts(line_dash="dashed") for n in neurons]
        overlay = hv.Overlay(curves)
    else:
        value = float(theta.flatten()[0]) if theta.numel() == 1 else float(theta.mean())
        overlay = hv.Overlay(curves) * hv.HLine(value, label="threshold θ").opts(
            color="black", line_dash="dashed")
    return overlay.opts(hv.opts.Curve(framewise=True), hv.opts.Overlay(
        title=title, responsive=True, min_height=260, legend_position="right", shared_axes=False,
        ylim=(bottom - 0.05 * (top - bottom), top + 0.1 * (top - bottom))))


def accuracy_curves(curves: Mapping[str, Tensor | np.ndarray], reference: float | None = None,
                    marker: int | None = None, title: str = "Accuracy vs timestep") -> hv.Overlay:
    """Accuracy after t = 1..T for each named run, the ANN reference and the current T."""
    elements = []
    for label, curve in curves.items():
        y = np.asarray(curve.cpu() if isinstance(curve, Tensor) else curve, dtype=float)
        elements.append(hv.Curve((np.arange(1, len(y) + 1), y), "timestep", "accuracy",
                                 label=label))
    if reference is not None:
        elements.append(hv.HLine(reference, label="ANN").opts(color="gray", line_dash="dotted"))
    if marker is not None:
        elements.append(hv.VLine(marker).opts(color="black", alpha=0.3))
    return hv.Overlay(elements).opts(title=title, ylim=(0, 1.02), responsive=True, shared_axes=False,
                                     min_height=260, legend_position="bottom_right")


def firing_rates(rates: Mapping[str, Mapping[str, float]], title: str = "Firing rates",
                 line: float | None = None) -> hv.Bars | hv.Overlay:
    """Spikes per neuron per step of every layer (:meth:`Trajectory.mean_firing_rates`) of each
    run in ``rates`` (run label → layer → rate), grouped by layer; ``line`` marks a rate."""
    bars = hv.Bars([(layer, run, float(rate)) for run, layers in rates.items()
                    for layer, rate in layers.items()], ["layer", "run"],
                   "spikes per neuron per step").opts(
        title=title, responsive=True, min_height=250, shared_axes=False, framewise=True,
        tools=["hover"], multi_level=len(rates) > 1, color=hv.dim("run"), cmap="Category10",
        show_legend=len(rates) > 1)
    if line is None:
        return bars
    return (bars * hv.HLine(line).opts(color="black", line_dash="dashed")).opts(
        title=title, responsive=True, min_height=250)


def most_active(trajectory: Trajectory, layer: str, sample: int = 0, k: int = 3) -> list[int]:
    """Indices (into the recorded neurons) of the k neurons of ``layer`` that spiked most."""
    counts = trajectory.spikes[layer][:, sample].sum(0)
    return counts.argsort(descending=True)[:k].tolist()


MODEL_COLOURS = {"snn": "#1f77b4", "ann": "#aaaaaa"}


def energy_columns(summary) -> tuple[dict[str, np.ndarray], tuple[float, float]]:
    """The energy bars' data from :meth:`workbench.energy.EnergyReport.summary` rows: columns
    ``device``, ``model``, ``joules`` (at least the floor), ``charged_on`` and each device's
    ``snn_to_ann`` ratio, and the log axis' (floor, ceiling): a third below the smallest
    positive value, three times the largest (a log axis has no zero)."""
    joules = summary.joules_per_inference.to_numpy(float)
    snn = (summary.model == "snn").to_numpy()
    ratio = dict(zip(summary.device[snn], summary.snn_to_ann[snn], strict=True))
    positive = joules[joules > 0]
    low, high = (positive.min() / 3, positive.max() * 3) if len(positive) else (1e-12, 1.0)
    return {"device": summary.device.to_numpy(), "model": summary.model.to_numpy(),
            "joules": joules.clip(min=low), "charged_on": summary.charged_on.to_numpy(),
            "snn_to_ann": np.array([ratio[d] for d in summary.device], dtype=float)}, (low, high)


def energy_bars(summary, title: str = "Energy per inference") -> hv.Bars:
    """Joules per inference of the SNN and its ANN on every device (log scale), from
    :meth:`workbench.energy.EnergyReport.summary`; hover shows the SNN/ANN ratio."""
    columns, (low, high) = energy_columns(summary)
    data = pd.DataFrame(columns).rename(columns={"joules": "joules_per_inference"})
    # on a log axis the bars start at the value dimension's lower range (else at 0.01 J)
    return hv.Bars(data, kdims=["device", "model"],
                   vdims=["joules_per_inference", "charged_on", "snn_to_ann"]).redim.range(
        joules_per_inference=(low, high)).opts(
        title=title, logy=True, ylabel="J per inference (log)",
        responsive=True, min_height=300,
        tools=["hover"], xrotation=30, multi_level=True, shared_axes=False, framewise=True,
        color=hv.dim("model").categorize(MODEL_COLOURS))


def energy_by_layer(layers, device: str, title: str | None = None) -> hv.Bars:
    """The SNN's joules per inference on one device split by layer and op kind (stacked), from
    :attr:`workbench.energy.EnergyReport.layers`."""
    rows = layers[(layers.device == device) & (layers.model == "snn")]
    return hv.Bars(rows, kdims=["layer", "op"], vdims="joules").opts(
        stacked=True, title=title or f"SNN energy by layer on {device}", responsive=True,
        min_height=300, tools=["hover"], ylabel="J per inference", shared_axes=False,
        framewise=True, legend_position="top_right")


def pose_overlay(frame: np.ndarray, skeletons: Mapping[str, np.ndarray], bones: Sequence[tuple],
                 title: str = "Events and skeletons") -> hv.Overlay:
    """One event frame ``frame`` [2, H, W] (ON − OFF counts, pixel (i, j) centred at
    (j + 0.5, i + 0.5)) under skeletons ``{label: joints [J, 2] (u, v) in pixels}``."""
    H, W = frame.shape[-2:]
    image = hv.Image(np.flipud(frame[1] - frame[0]), bounds=(0, 0, W, H),
                     kdims=["u (px)", "v (px)"], vdims="ON − OFF events").opts(
        cmap="RdBu_r", clim=(-2, 2), colorbar=False)
    colours = ("#2ca02c", "#d62728", "#9467bd", "#ff7f0e")
    elements = [image]
    for (label, joints), colour in zip(skeletons.items(), colours, strict=False):
        flipped = np.stack([joints[:, 0], H - joints[:, 1]], -1)  # image rows grow downwards
        elements.append(hv.Path([flipped[list(b)] for b in bones], label=label).opts(
            color=colour, line_width=3))
        elements.append(hv.Points(flipped, label=label).opts(color=colour, size=6))
    return hv.Overlay(elements).opts(title=title, width=460, height=500, shared_axes=False,
                                     legend_position="bottom", xlim=(0, W), ylim=(0, H))

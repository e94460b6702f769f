# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # An ANN sets the state: hybrid ANN-SNN pose estimation
#
# A spiking network carries its knowledge of the scene in its *state*: membrane potentials that
# build up from input spikes. Starting from zero, that state needs a transient before the
# predictions are any good; with sparse input it decays. Aydin, Gehrig, Gehrig & Scaramuzza
# (2024) let a conventional ANN, run at a low rate, *set* the state of every SNN layer; the SNN
# then updates the prediction at a high rate, cheaply, until the next initialization.
#
# Task: 13 joints of a stick figure seen by two 32×32 event cameras (`stick_figure_events`:
# 150 training and 30 test clips of 2 s). The seed-0 models ship with the package; the cells
# below predict the first 8 test clips (as the dashboard page does), the stored verdicts at the
# end use all 30, over the training seeds `workbench reproduce hybrid` has stored.

# %%
import os

import holoviews as hv
import ipywidgets as widgets
import numpy as np
import panel as pn
import torch
from IPython.display import Markdown, display

from widgets import plots
from widgets.claims_view import stored_verdicts
from workbench.claims import load_claims
from workbench.datasets.stick_figure import BONES
from workbench.methods.hybrid_data import Timing
from workbench.methods.hybrid_study import (
    LABELS,
    SHOWN_CLIPS,
    load_ann,
    load_variant,
    run,
    study_run,
    test_sequences,
)
from workbench.neurons import LIFBoxLayer

hv.extension("bokeh", inline=True)
pn.extension(inline=True)
# the test suite runs this notebook with a short sweep
INIT_RATES = (5.0, 10.0) if os.environ.get("NOTEBOOK_T") else (2.0, 5.0, 10.0, 20.0)


def shown(kind: str, snn_rate: int = 100, init_rate: float = 10.0):
    """``kind`` predicting the first SHOWN_CLIPS test clips (the dashboard page's; cached)."""
    return study_run(kind, snn_rate, init_rate, clips=SHOWN_CLIPS)

# %% [markdown]
# ## 1. State transients and decay
# The SNN's neurons follow `v ← v + (x − v)/τ` (Norse's `LIFBoxCell`, τ in steps) and spike when
# v crosses θ = 1, then subtract θ. Feed one neuron a constant input from v = 0: for the first
# steps it is silent, whatever the input says. Then take the input away: v leaks back to zero,
# and the memory of what the neuron saw goes with it.

# %%
steps = 30
x = torch.cat([torch.full((15, 1), 0.8), torch.zeros((15, 1))])  # input on, then off
curves = []
for tau in (3.0, 5.0):
    cell, state, trace = LIFBoxLayer(tau=tau, threshold=1.0), None, []
    for t in range(steps):
        _, state = cell(x[t], state)
        trace.append(float(state.v[0]))
    curves.append(hv.Curve((np.arange(1, steps + 1), trace), "step", "membrane v", label=f"τ = {tau:g}"))
hv.Overlay(curves).opts(title="Transient (input 0.8 on for 15 steps) and decay", width=600,
                        legend_position="right")

# %% [markdown]
# ## 2. The SNN alone starts blind
# The same transient, in a trained network: the SNN restarted from a zero state at the start of
# every 100 ms window (10 steps at 100 Hz). Its error is large at step 1 and falls as the state
# builds up. An ANN that sees 100 ms of events at once has no transient, but runs a much larger
# network every time it is asked.

# %%
alone = shown("snn_alone")
ann_fast = shown("ann_high_rate")
for name, result in (("SNN alone", alone), ("ANN at 100 Hz", ann_fast)):
    per_step = result.errors_2d.mean((0, 1))
    print(f"{name:>14}: MPJPE per step (px)", [round(float(e), 2) for e in per_step])
assert alone.errors_2d.mean((0, 1))[0] > alone.errors_2d.mean((0, 1))[-1]  # the transient

# %% [markdown]
# ## 3. The ANN sets the state
# At each initialization the ANN reads the events of the 100 ms *before* the window (never the
# window's own events: that would leak the future) and predicts joint heatmaps. Small 1×1-conv
# *state heads* map its feature maps to the membrane potential of every SNN layer, and the leaky
# readout `y_t = 0.8·y_{t−1} + head(s_t)` starts from the ANN's heatmaps. Training adds a
# *state-consistency* loss (weight ρ = 0.05): the SNN's membranes at the end of a window should
# match what the ANN will set at the next initialization, so the jump there stays small.
# Below: membranes of the four most active neurons of the last SNN layer, one test sequence.
# Dotted lines mark the initializations.

# %%
seqs = test_sequences(clips=1)  # the first test clip, both camera views
hybrid, _ = load_variant("hybrid")
ann, _ = load_ann()
traced = run("hybrid", seqs, Timing(100, 10.0), ann, hybrid, record=["lif4"], keep_trajectory=True)
nW = len(traced.starts)
v = traced.trajectory.membrane["lif4"][:, :nW]  # sequence 0: [steps, windows, neurons]
busiest = traced.trajectory.spikes["lif4"][:, :nW].sum((0, 1)).argsort(descending=True)[:4]
times = traced.times_ms.flatten().numpy()
traces = v.transpose(0, 1).flatten(0, 1)[:, busiest].numpy()
hv.Overlay([hv.Curve((times, traces[:, i]), "time (ms)", "membrane v", label=f"neuron {int(n)}")
            for i, n in enumerate(busiest)]
           + [hv.VLine(float(t)).opts(color="grey", line_dash="dotted")
              for t in traced.starts.numpy() * 10]).opts(
    title="Membrane potentials, lif4: set by the ANN every 100 ms", width=700, legend_position="right")

# %% [markdown]
# ## 4. Held ANN, SNN alone, hybrid
# The paper's comparison, on the same test sequences: error per step inside the window. The
# ANN run once per window with its prediction held goes stale as the figure moves; the SNN
# alone starts blind; the hybrid starts where the ANN is and keeps up with the events. The two
# ablations separate the readout initialization from the state initialization.

# %%
kinds = ("ann_high_rate", "ann_held", "snn_alone", "hybrid", "no_state_init", "no_consistency")
results = {kind: shown(kind) for kind in kinds}
hv.Overlay([hv.Curve((np.arange(1, 11), r.errors_2d.mean((0, 1)).numpy()), "step inside the window",
                     "MPJPE 2D (px)", label=LABELS[k]) for k, r in results.items()]).opts(
    title="Error per step inside the window (100 Hz SNN, ANN at 10 Hz)", width=700, logy=True,
    legend_position="right")

# %%
for kind, r in results.items():
    print(f"{LABELS[kind]:>28}: 2D {float(r.errors_2d.mean()):.2f} px, "
          f"3D {float(r.errors_3d.mean()) * 100:.1f} cm (two views triangulated)")

# %% [markdown]
# ## What the stored reproductions say
# The curves above are one trained set of models. The paper's claims are judged over the
# training seeds stored with the package (`workbench reproduce hybrid`, at 100 and 200 Hz): each
# verdict with its mean, 95 % interval, and the command and commit that made it — the table of
# the dashboard page and the README. "Reproduced" needs the whole interval to meet `needs`;
# "inconclusive" means the interval straddles it.

# %%
stored = stored_verdicts("hybrid")
display(Markdown(stored.origin), stored.styled())

# %% [markdown]
# Whether the hybrid stays "within 15 %" of the ANN at the SNN's rate depends on where in the
# window you look: it starts each window at about the ANN's error (the ANN has just set its
# state) and drifts upward until the next initialization, so its mean over the window sits
# between its first and last step. The window mean is what the claim judges; the figure above
# shows the drift, and the cell below puts both ends beside the claim's bound.

# %%
[bound] = [c.threshold for c in load_claims() if c.id == "hybrid-error"]
ann_px = float(results["ann_high_rate"].errors_2d.mean())
hybrid_steps = results["hybrid"].errors_2d.mean((0, 1))
print(f"hybrid / ANN at 100 Hz: step 1 {float(hybrid_steps[0]) / ann_px:.2f}x, last step "
      f"{float(hybrid_steps[-1]) / ann_px:.2f}x, window mean "
      f"{float(hybrid_steps.mean()) / ann_px:.2f}x (bound {bound:g}x)")
assert float(hybrid_steps[0]) < float(hybrid_steps.mean()) < float(hybrid_steps[-1])  # the drift

# %% [markdown]
# The consistency loss (ρ = 0.05) asks the SNN to end each window where the ANN will set it
# next; training resets every window, so within the trained 100 ms it changes little. Where it
# could matter is beyond: one initialization, then 200 ms of SNN on its own (ANN at 5 Hz), with
# and without the loss (the models trained on 100 ms windows). `workbench report hybrid` judges
# this over the seeds (claim "the consistency loss lowers the error 200 ms after a single
# initialization").

# %%
drift = {kind: shown(kind, 100, 5.0).errors_2d.mean((0, 1)) for kind in ("hybrid", "no_consistency")}
for kind, steps in drift.items():
    print(f"{LABELS[kind]:>15}: error at 100 ms {float(steps[9]):.3f} px, at 200 ms "
          f"{float(steps[-1]):.3f} px")
assert all(len(steps) == 20 for steps in drift.values())  # one window of 200 ms at 100 Hz

# %% [markdown]
# One frame of a test sequence: events (red ON, blue OFF), true skeleton and the hybrid's.

# %%
step = 25
frame = seqs.frames[0, int(times[step] / 10) - 1].numpy()
plots.pose_overlay(frame, {"true": traced.true_uv[0].flatten(0, 1)[step].numpy(),
                           "hybrid": traced.uv[0].flatten(0, 1)[step].numpy()}, BONES,
                   title=f"t = {times[step]:.0f} ms")

# %% [markdown]
# ## 5. What it costs
# Energy per second of sequence = ANN calls × the ANN's ops + state heads + SNN windows × their
# *measured* synaptic operations. The ANN at the SNN rate pays 100 ANN calls a second; the hybrid
# pays `init rate` of them plus a small SNN. The saving is bounded by the ratio of the rates:
# the initialization rate is the knob. (A neuromorphic target runs the ANN and heads on its
# `ann_on` profile, here 45 nm CMOS.)

# %%
reference = sum(ann_fast.energy["cmos45_fp32"].values())
for rate in INIT_RATES:
    r = shown("hybrid", 100, rate)
    watts = sum(r.energy["cmos45_fp32"].values())
    print(f"ANN every {1000 / rate:>4.0f} ms: 2D {float(r.errors_2d.mean()):.2f} px, "
          f"{watts * 1e3:.3f} mW on 45 nm fp32 = {watts / reference:.2f}× the ANN at 100 Hz; "
          f"parts (mW): " + ", ".join(f"{k} {v * 1e3:.3f}" for k, v in r.energy["cmos45_fp32"].items()))

# %% [markdown]
# ## 6. Try it: the initialization rate
# Pick a rate on the slider: the curve is the hybrid's error against the time since the last
# ANN initialization (every window of every test sequence averaged), the dashed line the ANN's
# own error at the SNN rate, and the line below the mean error and the power. The SNN starts
# each window where the ANN put it; the rarer the initialization, the longer it runs on its own:
# less power, more error.

# %%
reference_px = float(ann_fast.errors_2d.mean())
ceiling_px = 1.1 * max(float(shown("hybrid", 100, r).errors_2d.mean((0, 1)).max())
                       for r in INIT_RATES)


def at_rate(rate: float) -> tuple[hv.Overlay, str]:
    """The figure and summary line shown for ANN initializations at ``rate`` Hz (cached runs)."""
    r = shown("hybrid", 100, rate)
    per_step = r.errors_2d.mean((0, 1)).numpy()  # [W] px, averaged over sequences and windows
    since_ms = np.arange(1, len(per_step) + 1) * r.timing.bin_us / 1000
    watts = sum(r.energy["cmos45_fp32"].values())
    figure = (hv.Curve((since_ms, per_step), "time since the ANN initialization (ms)",
                       "MPJPE 2D (px)")
              * hv.HLine(reference_px).opts(color="grey", line_dash="dashed")).opts(
        xlim=(0, 1000 / min(INIT_RATES)), ylim=(0, ceiling_px), width=600,
        title=f"Hybrid, ANN every {1000 / rate:.0f} ms (dashed: ANN at 100 Hz)")
    line = (f"ANN every {1000 / rate:.0f} ms: 2D {float(r.errors_2d.mean()):.2f} px "
            f"(ANN at 100 Hz {reference_px:.2f} px), {watts * 1e3:.3f} mW on 45 nm fp32 = "
            f"{watts / reference:.2f}× the ANN at 100 Hz")
    return figure, line


init_rate = widgets.SelectionSlider(options=[(f"{r:g} Hz", r) for r in INIT_RATES], value=10.0,
                                    continuous_update=False, description="ANN init")
view = widgets.Output()


def show(change: dict) -> None:
    figure, line = at_rate(change["new"])
    with view:
        view.clear_output(wait=True)
        display(figure)
        print(line)


init_rate.observe(show, names="value")
show({"new": init_rate.value})  # the first view, drawn by the same callback as every move
display(widgets.VBox([init_rate, view]))

# %%
# what the slider changes: a rarer initialization leaves the SNN alone longer, costs less and
# errs more
rare, often = shown("hybrid", 100, min(INIT_RATES)), shown("hybrid", 100, max(INIT_RATES))
print(at_rate(min(INIT_RATES))[1], at_rate(max(INIT_RATES))[1], sep="\n")
assert rare.errors_2d.shape[-1] > often.errors_2d.shape[-1]
assert sum(rare.energy["cmos45_fp32"].values()) < sum(often.energy["cmos45_fp32"].values())
assert rare.errors_2d.mean() > often.errors_2d.mean()

# %% [markdown]
# Try it in the dashboard's **ANN-initialized SNN (pose)** page; its "Paper claims" card and
# `workbench report hybrid` show the stored verdicts above with every row behind them.

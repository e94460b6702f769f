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
# # Adaptive thresholds (MSAT)
#
# A converted SNN replaces each ReLU by an integrate-and-fire neuron with a *constant*
# threshold θ. This notebook shows why that delays spikes, what the multi-stage adaptive
# threshold of MSAT (He et al., Neural Computing and Applications 2024) changes, and what its
# "spike confidence" repairs — with the plots of the dashboard's MSAT page.

# %%
import os

import holoviews as hv
import numpy as np
import panel as pn
import torch
from IPython.display import Markdown, display

from widgets import plots
from widgets.claims_view import stored_verdicts
from widgets.pages.msat import MSATPage
from workbench.methods import msat_study
from workbench.methods.msat import PUBLISHED, Candidate, MultiStageThreshold, score, with_policy
from workbench.methods.msat_study import T_C, MSATSetting, run_mode
from workbench.network import simulate

hv.extension("bokeh", inline=True)
pn.extension(inline=True)
T = int(os.environ.get("NOTEBOOK_T", "64"))
base = msat_study.prepared()  # converted digits CNN; every mode searched on the validation split
snn = base.snn["max"]
x, y = base.splits["test"]

# %% [markdown]
# ## 1. A constant threshold delays spikes
# A neuron whose ReLU output is a = 0.1 (in units of θ) gets input 0.1 per step: it fires its
# first spike after 10 steps, and its successor hears nothing until then. Each layer adds its
# own wait, so deep layers start late.

# %%
constant = simulate(snn, x, T)
first_spike = {name: int((r > 0).nonzero()[0]) + 1 for name, r in constant.firing_rates().items()}
print("first step with any spike, per layer (constant θ):", first_spike)
assert list(first_spike.values()) == sorted(first_spike.values())

# %% [markdown]
# ## 2. What MSAT changes
# Each neuron's threshold moves: up when its potential sits above its own running mean
# (DTT), down when its input arrives fast (DET), θ_t = θ_max·sigmoid(θ_mp + θ_rd). A strongly
# driven neuron crosses a lowered threshold sooner. Each spike carries the charge s·θ_t it
# removed from the membrane (the authors' neuron returns `spike * threshold`), so a lower
# threshold means more, smaller packets of charge: finer steps, not more charge.
#
# We start from the constants the authors ship with their code (α = 0.3, k_a = 1, k_i = 1,
# C = 5, τ_mp = 0.2, τ_rd = 0.1, for ResNet20 on CIFAR-10).

# %%
policy = MultiStageThreshold(PUBLISHED)
state = policy.update(policy.initial_state(torch.zeros(1, 3)), torch.zeros(1, 3), None)
inputs = torch.tensor([[0.05, 0.3, 1.0]])
theta = policy.threshold(torch.tensor(1.0), torch.zeros(1, 3), inputs, state)
print("θ_t for inputs 0.05, 0.3, 1.0:", theta.numpy().round(3))
assert theta[0, 0] >= theta[0, 2]

# %% [markdown]
# A fair comparison gives the constant threshold the same search as the adaptive one: its θ scale
# and initial potential v₀ are tuned on the validation split with the same objective and budget.
# Lowering θ alone already makes a converted network faster — how much of MSAT's gain is left?

# %%
shown = {"constant θ = 1": Candidate("constant"), "constant (searched)": base.searched["constant"],
         "MSAT (published)": Candidate("MSAT"), "MSAT (searched)": base.searched["MSAT"]}
curves = {label: simulate(c.network(snn), x, T).accuracy_curve(y) for label, c in shown.items()}
print({label: [round(float(c[t - 1]), 3) for t in (2, 4, 8, T)] for label, c in curves.items()})
# the searched baseline is at least as good as θ = 1 where the search scored it (validation)
assert base.val_scores["constant"] >= score(Candidate("constant").network(snn), *base.splits["val"])
plots.accuracy_curves(curves, title="Accuracy vs T: constant and adaptive thresholds")

# %% [markdown]
# The moving threshold of the busiest neurons of layer 2, for one digit:

# %%
msat_net = base.searched["MSAT"].network(snn)
one = simulate(msat_net, x[:1], min(T, 24), record=["spike2"])
plots.membrane_traces(one, "spike2", plots.most_active(one, "spike2", k=2),
                      title="Membrane (solid) and moving threshold (dashed), spike2")

# %% [markdown]
# ## 3. Spikes of inactivated neurons (SIN) and spike confidence
# Early on, a neuron whose ANN activation is 0 can still be pushed over threshold by a burst of
# positive input before the negative input arrives: that spike cannot be taken back. Spike
# confidence lets such a neuron fire and reset as usual, then drops the spike with probability
# 1 − c_l during the first 16 steps (c_l: the layer's share of correct early spikes, measured on
# training data). The gate is random, so we average over 5 seeds.

# %%
gates = msat_study.confidences(base.searched["MSAT"])
print("spike confidences per layer (training data):", {k: round(v, 3) for k, v in gates.items()})
_, plain = run_mode(msat_net, T)
sin_gated = []
for seed in range(5):
    _, gated = run_mode(msat_study.network(base.searched["MSAT"], spike_confidence=True,
                                           gate_seed=seed), T)
    sin, total = gated.overall()
    sin_gated.append((sin / total.clamp(min=1)).numpy())
sin, total = plain.overall()
sin_plain = (sin / total.clamp(min=1)).numpy()
steps = np.arange(1, T + 1)
print(f"SIN share of the first {T_C} steps: {sin_plain[:T_C].mean():.3f} without, "
      f"{np.mean(sin_gated, 0)[:T_C].mean():.3f} with spike confidence (mean of 5 seeds)")
hv.Curve((steps, sin_plain), "timestep", "SIN share", label="MSAT") * hv.Curve(
    (steps, np.mean(sin_gated, 0)), "timestep", "SIN share", label="MSAT + spike confidence")

# %% [markdown]
# The same study row as `workbench report msat` prints, from the study contract:

# %%
result = msat_study.run(MSATSetting.of(base.searched["MSAT"], spike_confidence=True,
                                       gate_seeds=2))
msat_study.rows(result)

# %% [markdown]
# With both terms off, the policy is exactly the constant-threshold neuron (a test checks it):
# MSAT is one policy plugged into the same IF cell, not a second neuron model. Here the spikes
# are identical; the readout agrees to float rounding only: the plain cell's sparse 0/1 spikes
# reach the last Linear through a sparse product (only the spiking inputs' weight columns are
# added), the policy cell's charges s·θ through the dense one: the same terms in another order.

# %%
same, plain = simulate(with_policy(snn, "constant"), x[:16], 8), simulate(snn, x[:16], 8)
assert all(torch.equal(same.spike_counts[n], plain.spike_counts[n]) for n in plain.spike_counts)
assert torch.allclose(same.readout, plain.readout, rtol=1e-5, atol=1e-5)

# %% [markdown]
# ## What the stored reproductions say
# The curves above are one run. The paper's claims are judged over the gate seeds stored with
# the package (`workbench reproduce msat`; only the spike-confidence gate is random here, so the
# other rows agree across seeds): each verdict with its mean, 95 % interval and the command and
# commit that made it — the table of the dashboard page and the README. "Reproduced" needs the
# whole interval to meet `needs`, "not reproduced" none of it.

# %%
stored = stored_verdicts("msat")
display(Markdown(stored.origin), stored.styled())

# %% [markdown]
# Where "MSAT is clearly above the constant threshold for T ≤ 16" does not reproduce, the
# accuracy curves of section 2 show why: compare "constant (searched)" with "MSAT (searched)"
# over the first 16 steps. Searching θ and v₀ for the constant threshold already makes the plain
# IF network accurate within its first steps, while MSAT's first step uses θ_max, so its layers
# start silent. The gain over θ = 1 belongs to tuning, not to adaptation.
#
# Where "spike confidence lowers the early SIN share" does not reproduce, the SIN curve of
# section 3 shows why: there is hardly any SIN on this network to remove.

# %%
early = min(16, T)
for label in ("constant θ = 1", "constant (searched)", "MSAT (searched)"):
    print(f"{label:>20}: mean accuracy over T ≤ {early}: {float(curves[label][:early].mean()):.3f}")
assert curves["constant (searched)"][:early].mean() > curves["MSAT (searched)"][:early].mean()
assert curves["constant (searched)"][:early].mean() > curves["constant θ = 1"][:early].mean()
assert curves["MSAT (searched)"][0] < curves["constant (searched)"][0]  # silent at first
print(f"SIN share of the first {T_C} steps without spike confidence: {sin_plain[:T_C].mean():.3f}")
assert sin_plain[:T_C].mean() < 0.05

# %% [markdown]
# ## 4. Try it
# The dashboard's page, live: move the constants, θ scale and v₀, switch spike confidence on.

# %%
MSATPage()

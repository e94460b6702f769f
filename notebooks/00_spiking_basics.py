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
# # Spiking basics: why an SNN needs time
#
# A ReLU network answers in one pass. Its spiking twin — the same weights, with each ReLU
# replaced by an integrate-and-fire (IF) neuron — answers by *counting spikes over timesteps*.
# This notebook shows where the latency comes from, with the same views as the dashboard's
# "Spiking basics" page.
#
# The neuron (soft reset, Norse surrogate threshold):
#
# $$v_t = v_{t-1} + x_t,\qquad z_t = \Theta(v_t/\theta - 1),\qquad v_t \leftarrow v_t - \theta z_t$$
#
# A neuron fed a constant current $x$ fires at rate $\approx x/\theta$: a spike *rate* stands in
# for the ReLU activation, and a rate can only be read after several steps.

# %%
import os

import holoviews as hv
import panel as pn
import torch

from widgets import plots
from widgets.pages.basics import BasicsPage
from workbench.convert import scale_thresholds
from workbench.datasets.digits import load_digits_split
from workbench.network import simulate
from workbench.neurons import SpikingCell
from workbench.train import evaluate
from workbench.zoo import basics_snn

hv.extension("bokeh", inline=True)
pn.extension(inline=True)
T = int(os.environ.get("NOTEBOOK_T", "64"))  # the test suite runs this notebook small

# %% [markdown]
# ## One neuron
# Feed one IF neuron a constant input of 0.3: it needs four steps to cross θ = 1, then fires
# about every third or fourth step. With θ/2 as its starting potential it fires sooner.

# %%
for initial in ("zero", "half"):
    cell, state, spikes = SpikingCell(threshold=1.0, initial=initial), None, []
    for _ in range(12):
        z, state = cell(torch.tensor([[0.3]]), state)
        spikes.append(int(z.item()))
    print(f"initial {initial:>4}: spikes {spikes}, first at step {spikes.index(1) + 1}")
    assert sum(spikes) in (3, 4)

# %% [markdown]
# ## The converted digits network
# The zoo's CNN (trained in seconds on scikit-learn's bundled digits) is converted with
# max-activation threshold balancing. One simulation gives the accuracy after *every* step.

# %%
test = load_digits_split()["test"]
snn, ann = basics_snn("max", "zero")
ann_accuracy = evaluate(ann, test.x, test.y)
trajectory = simulate(snn, test.x, T)
curve = trajectory.accuracy_curve(test.y)
print(f"ANN accuracy {ann_accuracy:.3f}; SNN after 1 step {curve[0]:.3f}, after {T} {curve[-1]:.3f}")
assert curve[-1] > curve[0]

# %% [markdown]
# Deeper layers wait for earlier ones: the first spikes of layer 4 come several steps after
# those of layer 1, and until then the readout is blind. That is the latency.

# %%
rates = trajectory.firing_rates()
first_active = {name: int((r > 0).nonzero()[0]) + 1 if (r > 0).any() else None
                for name, r in rates.items()}
print("first step with any spike, per layer:", first_active)

# %% [markdown]
# ## Thresholds and initial potentials trade latency for accuracy
# Scaling θ down makes neurons fire sooner but less precisely; θ/2 as initial potential
# removes half a period of delay at no cost (the QCFS insight).

# %%
curves = {}
for scale in (0.5, 1.0, 2.0):
    net = scale_thresholds(snn, scale)
    curves[f"θ×{scale}"] = simulate(net, test.x, T).accuracy_curve(test.y)
half, _ = basics_snn("max", "half")
curves["θ×1.0, v₀=θ/2"] = simulate(half, test.x, T).accuracy_curve(test.y)
plots.accuracy_curves(curves, reference=ann_accuracy)

# %% [markdown]
# ## What the neurons do
# A raster of every spike of one test digit (layers stacked, coloured by layer) and the
# membrane potential of the three busiest neurons of the first layer.

# %%
one = simulate(snn, test.x[:1], T, record=list(snn.cells()))
raster = plots.spike_raster(one, title="Spike raster, test sample 0")
traces = plots.membrane_traces(one, "spike1", plots.most_active(one, "spike1"))
(raster + traces).cols(1)

# %% [markdown]
# ## The dashboard page, inside the notebook
# The same page the served app shows; move the sliders.

# %%
page = BasicsPage(timesteps=min(T, 32))
pn.panel(page)

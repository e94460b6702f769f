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
# # Where SNN energy comes from
#
# Every joule the workbench shows is **operation counts × energy per operation** of a device
# profile (`workbench/data/energy_profiles.toml`, each constant with its published source). This notebook
# takes the counts apart: spikes × fan-out against dense MACs, why one SNN is cheap on Loihi and
# expensive on a GPU, and why timesteps multiply the cost.

# %%
import os

import holoviews as hv
import pandas as pd
import panel as pn
import torch
from torch import nn

from widgets import plots
from workbench.datasets.digits import load_digits_split
from workbench.energy import energy_report, layer_joules, load_profiles, snn_ops
from workbench.network import SpikingNetwork, simulate
from workbench.neurons import SpikingCell
from workbench.zoo import basics_snn

hv.extension("bokeh", inline=True)
pn.extension(inline=True)
T = int(os.environ.get("NOTEBOOK_T", "32"))
profiles = load_profiles()
pd.DataFrame([vars(p) for p in profiles.devices.values()])[
    ["name", "kind", "mac_pj", "synop_pj", "neuron_update_pj", "grade", "source"]]

# %% [markdown]
# ## 1. A spike costs its fan-out
# An ANN layer multiplies every input by every weight: **MACs = outputs × fan-in**, whatever the
# input values. A spiking layer only *adds* the weights of the inputs that spiked: each spike
# costs one accumulate (synaptic op) per synapse it drives — its **fan-out**. For a convolution
# the fan-out depends on where the input sits: with padding, an edge pixel reaches fewer output
# positions than a central one. The workbench counts from the actual spikes with that map; the
# common shortcut "firing rate × dense MACs" assumes every input has the average fan-out.

# %%
conv = nn.Conv2d(1, 4, 3, padding=1, stride=2)
net = SpikingNetwork([("conv0", nn.Conv2d(1, 1, 1)), ("s0", SpikingCell(0.5)), ("conv", conv),
                      ("s1", SpikingCell(1.0)), ("flatten", nn.Flatten()),
                      ("fc", nn.Linear(4 * 4 * 4, 2))], (1, 8, 8))
with torch.no_grad():
    net.layers.conv0.weight.fill_(1.0)
    net.layers.conv0.bias.zero_()
x = torch.zeros(1, 1, 8, 8)
x[0, 0, 0, :] = 1.0  # only the top edge of the image is bright: edge pixels spike
ops = snn_ops(simulate(net, x, 4))["s1"]
print(f"exact synaptic ops {ops.synaptic_ops:.0f}, rate × dense MACs {ops.rate_synops:.0f}")
assert ops.synaptic_ops != ops.rate_synops

# %% [markdown]
# ## 2. The same SNN on five targets
# The converted digits network of the "Spiking basics" page, at T steps, on every profile.
# A *dense* device (CPU, GPU) simulates the SNN clock-driven: it pays for every synapse at every
# step, so the SNN costs exactly T times its ANN there. An *event-driven* chip pays only for the
# spikes that happen, plus each neuron update.

# %%
test = load_digits_split()["test"]
snn, _ = basics_snn("max", "zero")
report = energy_report(simulate(snn, test.x, T), snn)
summary = report.summary()
cpu = summary.set_index(["device", "model"]).loc[("cpu", "snn")]
assert cpu["snn_to_ann"] == T
summary[["device", "model", "charged_on", "joules_per_inference", "synaptic_ops", "macs",
         "snn_to_ann"]]

# %%
plots.energy_bars(summary)

# %% [markdown]
# On the 45 nm arithmetic model the SNN's accumulates are 5× cheaper than MACs, yet this SNN
# still costs about as much as its ANN: at T steps with ~10 % firing it makes several times more
# synaptic ops than the ANN makes MACs. Loihi adds 81 pJ per neuron update and 27 pJ per synaptic
# op, so *sparsity and few timesteps* are what make an SNN pay. Where the energy goes, per layer:

# %%
plots.energy_by_layer(report.layers, "loihi")

# %% [markdown]
# ## 3. Timesteps multiply the cost
# Every step repeats the neuron updates and (at roughly constant firing) the synaptic ops.
# Accuracy saturates; energy keeps growing. This is the trade-off the method pages attack.

# %%
run = simulate(snn, test.x, T)
accuracy = run.accuracy_curve(test.y)
loihi = profiles.devices["loihi"]
rows = []
for t in sorted({1, 2, 4, 8, 16, T} & set(range(1, T + 1))):
    layer_ops = snn_ops(run.until(t))
    joules = sum(sum(layer_joules(o, loihi, "snn").values()) for o in layer_ops.values())
    rows.append({"T": t, "accuracy": round(float(accuracy[t - 1]), 3), "loihi_joules": joules})
table = pd.DataFrame(rows)
assert table["loihi_joules"].is_monotonic_increasing
table

# %%
hv.Curve(table, "T", "loihi_joules").opts(logy=True, title="Energy on Loihi grows with T") + \
    hv.Curve(table, "T", "accuracy").opts(title="Accuracy saturates")

# %% [markdown]
# ## 4. Memory traffic
# Arithmetic is not the whole bill: weights and membrane potentials must be read and written.
# The optional estimate (SRAM, 10 pJ per 32-bit access, Horowitz 2014) shows how large that
# share can be; it is off by default and always labelled.

# %%
with_memory = energy_report(run, snn, include_memory=True).summary()
share = with_memory["memory_joules"] / with_memory["joules_per_inference"]
print(with_memory.assign(memory_share=share)[["device", "model", "memory_share"]].round(2))

# %% [markdown]
# ## 5. Try it: timesteps against energy
# Move the slider: the bars are the same SNN's energy per inference on every target at T steps
# (one simulation per value; the CPU/GPU bars grow exactly with T, the event targets with the
# spikes that happen).

# %%
steps = pn.widgets.IntSlider(name="timesteps T", start=1, end=64, value=min(T, 16))


def bars_at(t: int):
    return plots.energy_bars(energy_report(simulate(snn, test.x, t), snn).summary(),
                             title=f"Energy per inference at T={t}")


pn.Column(steps, pn.pane.HoloViews(hv.DynamicMap(pn.bind(bars_at, steps.param.value_throttled)),
                                   sizing_mode="stretch_width"))

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
# # Your own network: from Norse through NIR into the workbench
#
# The question a researcher brings: *how early can my SNN stop, and what does it cost on
# Loihi?* Here "my SNN" is built and trained in **Norse**, exported to **NIR** (the
# Neuromorphic Intermediate Representation, Pedersen et al., Nat. Commun. 2024) and explored
# with the workbench's model-agnostic views: accuracy at every T, rasters and membranes, energy
# on every device, and the stopping policies with their calibration. The same works from the
# command line: `workbench report early-exit --model my_net.nir --data DATA`, and as a dashboard
# page: `workbench serve --model my_net.nir --data DATA` (section 6).

# %%
import os
import tempfile
from pathlib import Path

import holoviews as hv
import nir
import norse.torch as norse
import panel as pn
import torch
from torch import nn

import workbench
from widgets import plots
from workbench import source_report
from workbench.datasets.digits import load_digits_split
from workbench.network import simulate
from workbench.nir import to_nir
from workbench.sources import load_source

hv.extension("bokeh", inline=True)
pn.extension(inline=True)
T = int(os.environ.get("NOTEBOOK_T", "16"))  # the test suite runs this notebook small
torch.manual_seed(0)

# %% [markdown]
# ## 1. A network built in Norse
# Norse's `IAFCell` is the integrate-and-fire neuron `v ← v + x`, spiking when `v > θ` and
# resetting to 0. A two-layer network on the 8×8 digits, flattened to 64 inputs: Norse's NIR
# exporter (1.1.0) writes `nn.Flatten` as an empty node, so the flattening happens in the data.
# We train it with Norse's surrogate gradient for a few epochs, the digits repeated every step.

# %%
digits = load_digits_split()
data = {split: (digits[split].x.flatten(1), digits[split].y) for split in ("train", "test")}
model = norse.SequentialState(nn.Linear(64, 96), norse.IAFCell(), nn.Linear(96, 10))


def run(model, x, steps):
    """Summed readout of the Norse model over ``steps`` steps of the same input, [B, 10]."""
    state, total = None, 0
    for _ in range(steps):
        out, state = model(x, state)
        total = total + out
    return total


optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
x_train, y_train = data["train"]
for _ in range(12):
    for i in torch.randperm(len(y_train)).split(100):
        loss = nn.functional.cross_entropy(run(model, x_train[i], 8) / 8, y_train[i])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
with torch.no_grad():
    x_test, y_test = data["test"]
    norse_accuracy = (run(model, x_test, T).argmax(1) == y_test).float().mean().item()
print(f"Norse's own simulation, T = {T}: test accuracy {norse_accuracy:.3f}")

# %% [markdown]
# ## 2. Export to NIR, load it into the workbench
# `norse.torch.to_nir` writes an `Affine → IF → Affine` graph. `workbench.sources.load_source`
# reads it (through `workbench.nir.from_nir`), adds an accumulating readout, and pairs it with
# the data: here a dict of splits (the calibration split, which the stopping policies learn
# from, is the training split; the test split is only measured).
#
# **Reset caveat.** NIR nodes reset to a value (`v_reset`); the workbench's converted cells
# subtract θ instead. Norse's `IAFCell` resets to 0, so this graph imports exactly; a graph
# from a subtract-reset framework (sinabs) imports with NIR's reset to 0.

# %%
graph = norse.to_nir(model, torch.zeros(1, 64))
print({name: type(node).__name__ for name, node in graph.nodes.items()})
splits = {"calibration": data["train"], "test": data["test"]}
source = load_source(graph, splits, T=T)
source.snn

# %% [markdown]
# Norse writes its IF parameters as scalars, which `nir.write` cannot store (h5py refuses
# compression on scalar datasets); the workbench's own export writes per-neuron arrays, so the
# imported network goes to a `.nir` file and comes back as a file source — the form
# `workbench report … --model my_net.nir` takes.

# %%
path = Path(tempfile.mkdtemp()) / "norse_digits.nir"
nir.write(path, to_nir(source.snn))
source = load_source(str(path), splits, T=T)

# %% [markdown]
# The imported network simulates like Norse's own: same spikes, so the same accuracy.

# %%
workbench_accuracy = source_report.basics(source).set_index("T").loc[T, "accuracy"]
print(f"workbench, T = {T}: {workbench_accuracy:.3f} (Norse: {norse_accuracy:.3f})")
assert abs(workbench_accuracy - norse_accuracy) < 1e-4  # the table rounds to 4 decimals

# %% [markdown]
# ## 3. Accuracy at every T, rasters and membranes
# One simulation of the test split gives the accuracy after every step (not T separate runs).
# Rasters and membrane traces come from re-simulating one sample with its cells recorded.

# %%
table = source_report.basics(source)
test_run, labels = source.runs["test"]
curve = plots.accuracy_curves({"imported Norse SNN": test_run.accuracy_curve(labels)},
                              reference=None)
sample = simulate(source.snn, x_test[:1], T, record=list(source.snn.cells()))
layer = next(iter(source.snn.cells()))
pn.Column(table, curve, plots.spike_raster(sample),
          plots.membrane_traces(sample, layer, plots.most_active(sample, layer)))

# %% [markdown]
# ## 4. What it costs, on every device
# Operation counts × energy per operation of each device profile (arithmetic only). The first
# layer receives analog pixels, so it is charged MACs (NeuroBench's `Effective_MACs`: non-zero
# inputs × fan-out); the second receives spikes (`Effective_ACs`: spikes × fan-out).

# %%
costs = source_report.energy(source)
pn.Column(costs[["device", "model", "T", "joules_per_inference", "Effective_ACs",
                 "Effective_MACs", "snn_to_ann"]], plots.energy_bars(costs))

# %% [markdown]
# ## 5. How early can it stop?
# The stopping policies replay the recorded test run: each is calibrated on the calibration
# split (Dynamic Confidence's c*, AOI's per-step thresholds), then applied to the test split.
# The oracles show the best any policy could do.

# %%
policies = source_report.early_exit(source)
loihi = policies["energy"].map(lambda e: e["loihi"])
policies.assign(loihi_joules=loihi).drop(columns="energy")

# %% [markdown]
# ## 6. All of it as one dashboard page
# `workbench.open(model, data)` returns the dashboard's **Your model** page for a model source
# (a SOURCE string, a network object with its data, or the source loaded above, whose test run
# is reused): knobs for T, the sample, the layer, the stopping policy and the device, each
# bounded by the source. The policy knobs replay the recorded run; only the raster re-simulates
# the one sample shown. An ANN source also gets MSAT's threshold search, behind a button. The
# same page is served by `workbench serve --model my_net.nir --data DATA`, first in the app.

# %%
page = workbench.open(source)
assert page.settings.param.timesteps.bounds == (1, T)
assert page.settings.param.layer.objects == list(source.snn.cells())
page

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
# # Exploring settings: sessions, fronts, trade-offs
#
# Moving sliders answers "what does this knob do?". Which *combination* of knobs trades accuracy,
# latency and energy best is a search: an **exploration session**. A session names a study (a
# method with its `Setting` knobs), the fields to vary (their ranges come from the knobs' own
# metadata), a sampler (grid, random, or NSGA-II for the Pareto front), the seeds and a budget.
# Optuna samples and stores every trial (an SQLite file under the cache folder by default); Dask
# runs the trials on a local cluster, or on a cluster you name with `--scheduler`. The same
# sessions are on the command line (`workbench explore ...`) and on the dashboard's Explore page.

# %%
import os
import tempfile

import holoviews as hv
import ipywidgets as widgets
import panel as pn
from IPython.display import display

from widgets import explore_views
from workbench import explore
from workbench.methods.registry import STUDIES
from workbench.study import knobs

hv.extension("bokeh", inline=True)
pn.extension(inline=True)
SMALL = bool(os.environ.get("NOTEBOOK_T"))  # the test suite runs this notebook with a tiny budget
# the test suite keeps its own store; yours is the default one under the cache folder
STORAGE = f"sqlite:///{tempfile.mkdtemp()}/sessions.db" if SMALL else None
# trials in this process for the test suite; a Dask LocalCluster (one worker per core) otherwise
SCHEDULER = explore.INLINE if SMALL else None

# %% [markdown]
# ## 1. What can be varied
# Every field of a study's `Setting` carries its range, unit and meaning. The "Spiking basics"
# study converts the digits CNN with one of two threshold balancings and starts the membranes at
# 0 or θ/2; its objectives are the accuracy and spikes per sample at T = 16 and the latency (the
# first T whose accuracy is within 1 pt of the curve's best).

# %%
study = STUDIES["basics"]
[(k.name, k.accepted, k.doc) for k in knobs(study.setting).values()]

# %%
[(o.name, o.direction, o.doc) for o in study.objectives]

# %% [markdown]
# ## 2. Run a small session
# A grid over both fields: four settings, one seed each (these converted networks are
# deterministic; a stochastic study would take `seeds=(0, 1, 2)`). `run` resumes a session that
# was stopped and does nothing when its budget is spent, so this cell can run again.

# %%
NAME = "notebook-basics"
store = explore.open_storage(STORAGE)
if NAME not in explore.session_names(store):
    vary = explore.parse_vary(study, ["balance", "initial"])
    explore.create(explore.SessionSpec(NAME, "basics", vary, sampler="grid", budget=4), store)
counts = explore.run(NAME, STORAGE, SCHEDULER, progress=False)
assert counts.complete == 4 and counts.failed == 0, counts
counts

# %% [markdown]
# ## 3. A finished session is a DataFrame
# One row per trial: the full setting (`setting.*`), its seed, the objectives, every number the
# study reports (`accuracy[T=4]`, `spikes_per_sample[T=64]`, ...), wall time and provenance
# (package versions, git commit). `explore.export(NAME, "file.parquet")` writes it to disk.

# %%
table = explore.frame(NAME, STORAGE)
assert {"setting.balance", "setting.initial", "accuracy", "latency", "spikes",
        "accuracy[T=64]"} <= set(table.columns)
table[["trial", "setting.balance", "setting.initial", "accuracy", "latency", "spikes",
       "accuracy[T=64]", "wall_s"]]

# %% [markdown]
# ## 4. The front
# A trial is Pareto-optimal when no other trial is at least as good in every objective and
# better in one. Here each setting on the front is best at one thing: max balancing with
# v₀ = θ/2 reaches its plateau soonest, percentile balancing with v₀ = θ/2 is the most accurate,
# max balancing from v₀ = 0 spends the fewest spikes. Which is "best" depends on what you pay
# for a timestep and for a spike. The figure has two axes, so its line joins only the trials
# that no other beats in both latency and accuracy.

# %%
front = explore.pareto(table)
assert 1 <= len(front) <= len(table)
by_setting = front.set_index(["setting.balance", "setting.initial"])
assert by_setting["latency"].idxmin() == ("max", "half")
assert by_setting["accuracy"].idxmax() == ("percentile", "half")
assert by_setting["spikes"].idxmin() == ("max", "zero")
front[["trial", "setting.balance", "setting.initial", "accuracy", "latency", "spikes"]]

# %%
explore_views.front(table, "latency", "accuracy", color="spikes")

# %% [markdown]
# ## 5. Try it: open a trial
# Pick a trial: its point is ringed on the accuracy-vs-latency figure, its accuracy-vs-T curve
# is drawn over the other trials' (grey), and the line below gives its setting, its objectives and
# whether it is Pareto-optimal in all three. Everything is read from the session's table: nothing
# is run again.

# %%
settings = [c for c in table.columns if c.startswith("setting.")]
curve_columns = {int(c.removeprefix("accuracy[T=").removesuffix("]")): c
                 for c in table.columns if c.startswith("accuracy[T=")}
steps = sorted(curve_columns)


def accuracy_curve(row) -> hv.Curve:
    return hv.Curve((steps, [row[curve_columns[t]] for t in steps]), "T", "test accuracy")


def setting_of(row) -> str:
    return ", ".join(f"{c.removeprefix('setting.')}={row[c]}" for c in settings)


def at_trial(number: int) -> tuple[hv.Layout, str]:
    """The figure and summary line shown for trial ``number`` of the session's table."""
    row = table.set_index("trial").loc[number]
    ringed = hv.Points([(row["latency"], row["accuracy"])], ["latency", "accuracy"]).opts(
        size=20, fill_alpha=0, line_color="red", line_width=3)
    where = (explore_views.front(table, "latency", "accuracy", color="spikes") * ringed).opts(
        responsive=False, width=450, height=350, title=f"Trial {number} (ringed)")
    curves = hv.Overlay([accuracy_curve(other).opts(color="lightgrey")
                         for _, other in table.iterrows()]
                        + [accuracy_curve(row).opts(color="red", line_width=3)]).opts(
        logx=True, width=380, height=350, title=f"Trial {number}: accuracy vs T")
    scores = ", ".join(f"{o.name} {row[o.name]:.4g}" for o in study.objectives)
    status = "Pareto-optimal" if number in set(front["trial"]) else "dominated"
    return where + curves, f"trial {number} ({setting_of(row)}): {scores}; {status}"


trial = widgets.Dropdown(options=[(f"{row.trial}: {setting_of(row)}", int(row.trial))
                                  for _, row in table.iterrows()], description="trial")
view = widgets.Output()


def show(change: dict) -> None:
    figure, line = at_trial(change["new"])
    with view:
        view.clear_output(wait=True)
        display(figure)
        print(line)


trial.observe(show, names="value")
show({"new": trial.value})  # the first view, drawn by the same callback as every choice
display(widgets.VBox([trial, view]))

# %%
# what the dropdown changes: every trial shows its own setting and scores
lines = [at_trial(n)[1] for n in table["trial"]]
print(*lines, sep="\n")
assert len(set(lines)) == len(table)

# %% [markdown]
# Larger sessions (an MSAT study over θ scale × the adaptive constants, NSGA-II, several seeds)
# belong on the command line, where they survive a closed notebook:
#
# ```sh
# workbench explore new msat-front --study msat --vary threshold_scale --vary alpha \
#     --vary initial --sampler nsga2 --budget 200 --run
# workbench explore resume msat-front     # after a crash or kill: nothing is lost
# workbench explore export msat-front msat-front.parquet
# ```

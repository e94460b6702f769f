"""The RCS study: how AOI's RCS regulariser weight α moves the Top-K cutoff and the optimal
cutoff timestep of the directly trained event SNN (Wu et al., AOI-SNN, arXiv 2301.09522).

One row per α ∈ {0, 0.002, 0.01, 0.05} (0.002: the authors' code default; 0.05: the zoo's
``event_snn_rcs``): the event SNN trained with that α (:func:`workbench.zoo.rcs_spec`: α = 0 and
α = 0.05 are the zoo's own cache entries), the cutoff calibrated as the early-exit study's event
bases are (training split, dropout on, masks from the seed), and on the test split:

- ``accuracy_at_T``: accuracy of every sample run the full T = 10 steps;
- ``aoi_accuracy``, ``aoi_mean_steps``, ``aoi_spikes_per_sample``: the Top-K cutoff (ε);
- ``optimal_cutoff_steps``: the oracle's optimal cutoff timestep averaged over the test samples,
  OCT = min{t̂ : the prediction is right at every t ≥ t̂}, counted as T for a sample that is
  wrong at T (it never settles on the right class).

The ``seed`` knob is the training seed of the four models (seed 0: α = 0 and α = 0.05 ship) and
the seed of the calibration's dropout masks.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import pandas as pd

from workbench.methods.early_exit import Oracle, TopKCutoff, outcome
from workbench.methods.early_exit_study import AOI_EPSILON, BaseRun, event_base
from workbench.study import BUDGETS, SEED_LIMIT, Objective, Study, knob, setting
from workbench.zoo import load_spec, rcs_spec

ALPHAS = (0.0, 0.002, 0.01, 0.05)
T = 10


@setting
class RCSSetting:
    """The RCS study's knobs: the regulariser weight, the cutoff's ε, seed and budget."""

    alpha: float = knob(0.0, "RCS regulariser weight α of the event SNN's training (0: TET alone)",
                        low=0.0, high=0.2)
    aoi_epsilon: float = knob(AOI_EPSILON, "AOI: share of calibration exits allowed to be "
                              "unstable (ε)", low=0.0, high=0.5)
    seed: int = knob(0, "training seed of the event SNN and of its calibration's dropout masks "
                     "(0: α = 0 and α = 0.05 are the shipped models)", low=0, high=SEED_LIMIT,
                     integer=True)
    budget: str = knob("full", "training budget of a model that is not shipped",
                       choices=tuple(BUDGETS))


@lru_cache(maxsize=4)
def alpha_run(alpha: float, seed: int = 0, budget: str = "full") -> BaseRun:
    """The event SNN trained with ``alpha`` (``seed``, ``budget``) on its calibration (dropout
    on) and test data (cached per process)."""
    net, _ = load_spec(rcs_spec(alpha, seed, budget), progress=False)
    return event_base(f"α={alpha:g}", net, seed, T)


@dataclass(frozen=True)
class RCSResult:
    """One α's runs and its calibrated cutoff."""

    setting: RCSSetting
    run: BaseRun
    cutoff: TopKCutoff


def run(setting: RCSSetting) -> RCSResult:
    base = alpha_run(setting.alpha, setting.seed, setting.budget)
    cutoff = TopKCutoff(setting.aoi_epsilon).calibrate(base.calibration, base.calibration_labels)
    return RCSResult(setting, base, cutoff)


def rows(result: RCSResult) -> pd.DataFrame:
    """One row: α, T, accuracy at T, the cutoff's accuracy, mean steps and spikes, and the mean
    optimal cutoff timestep (all on the test split)."""
    base = result.run
    at_T = float(base.test.accuracy_curve(base.test_labels)[-1])
    aoi = outcome(base.test, base.test_labels, result.cutoff.stop_times(base.test))
    oct_steps = Oracle(base.test_labels, stably=True).stop_times(base.test).float().mean()
    return pd.DataFrame([{
        "alpha": result.setting.alpha, "T": base.T, "accuracy_at_T": round(at_T, 4),
        "aoi_accuracy": round(aoi.accuracy, 4), "aoi_mean_steps": round(aoi.mean_steps, 3),
        "aoi_spikes_per_sample": round(aoi.spikes_per_sample, 1),
        "optimal_cutoff_steps": round(float(oct_steps), 3)}])


def prepare(progress: bool = True) -> list[str]:
    """Train (or load) the event SNN of every α of the report (α = 0 and 0.05 ship)."""
    lines = []
    for alpha in ALPHAS:
        _, record = load_spec(rcs_spec(alpha), progress)
        lines.append(f"event SNN with RCS α = {alpha:g}: test accuracy "
                     f"{record['metrics']['test_accuracy']:.3f}")
    return lines


def objectives(table: pd.DataFrame) -> dict[str, float]:
    """The cutoff's test accuracy and mean exit step, and the mean optimal cutoff timestep."""
    row = table.iloc[0]
    return {name: float(row[name])
            for name in ("aoi_accuracy", "aoi_mean_steps", "optimal_cutoff_steps")}


STUDY = Study(name="rcs", title="AOI's RCS regulariser: α against the cutoff's steps",
              setting=RCSSetting, run=run, rows=rows, prepare=prepare,
              report_settings=lambda: [RCSSetting(alpha) for alpha in ALPHAS],
              row_key=("alpha",),
              objectives=(Objective("aoi_accuracy", "maximize", "Top-K cutoff test accuracy"),
                          Objective("aoi_mean_steps", "minimize", "Top-K cutoff mean exit step"),
                          Objective("optimal_cutoff_steps", "minimize",
                                    "mean optimal cutoff timestep (oracle)")),
              measure=objectives, seed_kind="training")

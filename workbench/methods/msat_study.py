"""The MSAT study: constant vs adaptive thresholds on the converted digits SNN.

Every threshold mode, the constant baseline included, is searched on the validation split with
one objective (mean accuracy over T ∈ {2, 4, 8, 16, 64}) and one budget: the constant baseline
over its θ scale and v₀ ∈ {0, θ/2}, the adaptive modes over their six constants starting from the
published ones. The results are stored in the cache. Spike confidences are measured on the
training split for each setting's own ungated network; gated rows are the mean over
``gate_seeds`` gate seeds (:data:`GATE_SEEDS` in the report), the block of gate seeds
``seed · gate_seeds …`` of the ``seed`` knob, so that different seeds never share a draw.

The study uses static (direct-encoded) digits only: a converted network assumes a stationary
input per step, and the paper makes no event-data claim.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from workbench.cache import JSON, load_or_build
from workbench.convert import convert
from workbench.datasets.digits import load_digits_split
from workbench.device import default_device
from workbench.methods.msat import (
    MODES,
    PUBLISHED,
    SCALE_RANGE,
    SEARCH_T,
    Candidate,
    MSATConstants,
    SINObserver,
    inactive_masks,
    search,
    spike_confidences,
)
from workbench.network import SpikingNetwork, simulate
from workbench.neurons import INITIAL_POTENTIALS
from workbench.study import (
    SEED_LIMIT,
    Study,
    curve_objectives,
    curve_study_objectives,
    knob,
    setting,
)
from workbench.trajectory import Trajectory
from workbench.zoo import load_model

T_VALUES = (1, 2, 4, 8, 16, 32, 64)
T_C = 16
OBJECTIVE_T = 8  # the T at which exploration sessions compare accuracy and spikes
SEARCH_TRIALS = 60
GATE_SEEDS = 5
BALANCES = ("max", "percentile")


@dataclass
class Base:
    """The converted digits SNNs (max and percentile balancing, θ = 1) with their ANN, the data
    splits and the searched candidate of every mode."""

    ann: nn.Module
    snn: dict[str, SpikingNetwork]
    splits: dict[str, tuple[Tensor, Tensor]]
    searched: dict[str, Candidate]
    val_scores: dict[str, float]


def _searched(snn: SpikingNetwork, splits, model_meta: dict
              ) -> tuple[dict[str, Candidate], dict[str, float]]:
    """The searched candidate and validation score of every mode (one store artifact)."""
    def build() -> tuple[dict, dict]:
        x_val, y_val = splits["val"]
        found = {}
        for mode in MODES:
            best, val_score = search(snn, mode, x_val, y_val, SEARCH_TRIALS)
            found[mode] = {"candidate": asdict(best), "val_score": val_score}
        return found, {mode: v["val_score"] for mode, v in found.items()}

    setting = {"model": model_meta.get("config"), "trials": SEARCH_TRIALS, "T": list(SEARCH_T),
               "search": "every mode, the constant θ scale and v0 too"}
    found, _ = load_or_build("msat-search", setting, build, JSON,
                             meta={"what": "MSAT threshold settings searched on the validation "
                                           "split"})
    candidates = {mode: Candidate(**{**v["candidate"],
                                     "constants": MSATConstants(**v["candidate"]["constants"])})
                  for mode, v in found.items()}
    return candidates, {mode: v["val_score"] for mode, v in found.items()}


@lru_cache(maxsize=1)
def prepared() -> Base:
    """The study's base (built once per process; the search, with a progress bar, is cached on
    disk)."""
    device = default_device()
    splits = {k: (v.x.to(device), v.y) for k, v in load_digits_split().items()}
    ann, meta = load_model("digits_ann")
    ann = ann.to(device).eval()
    snn = {balance: convert(ann, splits["train"][0], balance) for balance in BALANCES}
    searched, scores = _searched(snn["max"], splits, meta)
    return Base(ann, snn, splits, searched, scores)


@lru_cache(maxsize=64)
def confidences(candidate: Candidate, balance: str = "max") -> dict[str, float]:
    """Per-layer spike confidence of ``candidate``'s ungated network, on the training split."""
    base = prepared()
    return spike_confidences(candidate.network(base.snn[balance]), base.ann,
                             base.splits["train"][0], T_C)


def network(candidate: Candidate, balance: str = "max", spike_confidence: bool = False,
            gate_seed: int = 0) -> SpikingNetwork:
    """The converted SNN under ``candidate``'s thresholds, optionally gated."""
    gates = confidences(candidate, balance) if spike_confidence else None
    return candidate.network(prepared().snn[balance], gates, seed=gate_seed)


def run_mode(net: SpikingNetwork, T: int = max(T_VALUES)) -> tuple[Trajectory, SINObserver]:
    """Simulate the test split once: the trajectory (counts only) and its SIN counts."""
    base = prepared()
    x = base.splits["test"][0]
    observer = SINObserver(inactive_masks(net, base.ann, x), T)
    return simulate(net, x, T, observe=observer), observer


@setting
class MSATSetting:
    """One threshold setting of the converted digits SNN: the knobs of the MSAT study."""

    mode: str = knob("MSAT", "threshold mode: constant θ, the DTT or DET term alone, or both",
                     choices=MODES)
    alpha: float = knob(PUBLISHED.alpha, "DTT: weight of the deviation from the running mean",
                        low=0.05, high=5.0, log=True)
    k_a: float = knob(PUBLISHED.k_a, "DTT: soft-plus gain", low=0.05, high=5.0, log=True)
    k_i: float = knob(PUBLISHED.k_i, "DTT: soft-plus width", low=0.05, high=5.0, log=True)
    C: float = knob(PUBLISHED.C, "DET: input scale", low=0.05, high=5.0, log=True)
    tau_mp: float = knob(PUBLISHED.tau_mp, "DTT: overall gain", low=0.05, high=5.0, log=True)
    tau_rd: float = knob(PUBLISHED.tau_rd, "DET: overall gain", low=0.05, high=5.0, log=True)
    threshold_scale: float = knob(1.0, "every θ (θ_max) relative to the balanced θ = 1",
                                  low=SCALE_RANGE[0], high=SCALE_RANGE[1], log=True)
    initial: str = knob("zero", "initial membrane v₀: 0 or θ/2", choices=INITIAL_POTENTIALS)
    balance: str = knob("max", "threshold balancing of the conversion", choices=BALANCES)
    spike_confidence: bool = knob(False, f"gate spikes in the first {T_C} steps with each "
                                  "layer's measured confidence", choices=(False, True))
    gate_seeds: int = knob(1, "gate seeds averaged (gated settings)", low=1, high=20,
                           integer=True)
    seed: int = knob(0, "which block of gate seeds (gated settings): seed · gate_seeds onwards",
                     low=0, high=SEED_LIMIT, integer=True)
    name: str = ""  # the row label in reports; not a knob

    @classmethod
    def of(cls, candidate: Candidate, **kw) -> MSATSetting:
        """The setting of a search candidate; ``kw`` sets (or overrides) other knobs."""
        return cls(**{"mode": candidate.mode, **asdict(candidate.constants),
                      "threshold_scale": candidate.threshold_scale,
                      "initial": candidate.initial, **kw})

    @property
    def candidate(self) -> Candidate:
        constants = MSATConstants(**{k: getattr(self, k) for k in MSATConstants.__dataclass_fields__})
        return Candidate(self.mode, constants, self.threshold_scale, self.initial)


@dataclass(frozen=True)
class MSATResult:
    """Test-split curves of one setting: accuracy and cumulative spikes per sample after every
    step, [seeds, T], and the SIN share of the first ``T_C`` steps per seed."""

    setting: MSATSetting
    accuracy: Tensor
    spikes: Tensor
    sin_early: tuple[float, ...]


def run(setting: MSATSetting) -> MSATResult:
    """Simulate the test split for every gate seed of the setting's block (one run when
    ungated)."""
    y = prepared().splits["test"][1]
    n = setting.gate_seeds if setting.spike_confidence else 1
    seeds = range(setting.seed * n, (setting.seed + 1) * n)
    curves, spikes, early = [], [], []
    for seed in seeds:
        net = network(setting.candidate, setting.balance, setting.spike_confidence, seed)
        trajectory, observer = run_mode(net)
        curves.append(trajectory.accuracy_curve(y))
        spikes.append(trajectory.cumulative_spikes().mean(1))
        sin, total = observer.overall(T_C)
        early.append(float(sin.sum() / total.sum().clamp(min=1)))
    return MSATResult(setting, torch.stack(curves), torch.stack(spikes), tuple(early))


def rows(result: MSATResult) -> pd.DataFrame:
    """Accuracy (mean and spread over gate seeds), spikes and early SIN share at every T of
    :data:`T_VALUES`."""
    s, acc, spike = result.setting, result.accuracy, result.spikes
    return pd.DataFrame([
        {"mode": s.name or s.mode, "T": t,
         "accuracy": round(float(acc[:, t - 1].mean()), 4),
         "accuracy_sd": round(float(acc[:, t - 1].std(unbiased=False)), 4),
         "seeds": acc.shape[0],
         "spikes_per_sample": round(float(spike[:, t - 1].mean()), 1),
         # not rounded: spike confidence drops SIN and other spikes alike, so the share
         # moves in the fifth digit or later, and a rounded column would hide it
         "sin_fraction_early": float(np.mean(result.sin_early))} for t in T_VALUES])


def report_settings() -> list[MSATSetting]:
    """The rows of ``workbench report msat``: the constant baselines, the published constants,
    every mode as searched, the searched MSAT starting at v0 = θ/2, and the gated variants over
    :data:`GATE_SEEDS` seeds."""
    searched = prepared().searched
    gated = {"spike_confidence": True, "gate_seeds": GATE_SEEDS}
    return [
        MSATSetting(mode="constant", name="constant (max)"),
        MSATSetting(mode="constant", balance="percentile", name="constant (percentile)"),
        MSATSetting.of(searched["constant"], name="constant (searched)"),
        MSATSetting(name="MSAT (published constants)"),
        *(MSATSetting.of(searched[mode], name=mode) for mode in ("DTT", "DET", "MSAT")),
        # the searched constant's best v0 is θ/2; the same start for the searched MSAT
        MSATSetting.of(searched["MSAT"], initial="half", name="MSAT, v0 = θ/2"),
        MSATSetting.of(searched["constant"], name="constant (searched) + spike confidence",
                       **gated),
        MSATSetting.of(searched["MSAT"], name="MSAT + spike confidence", **gated),
    ]


def prepare(progress: bool = True) -> list[str]:
    base = prepared()
    return ["MSAT thresholds searched (validation score): " + "; ".join(
        f"{mode} {score:.3f}" for mode, score in base.val_scores.items())]


def notes(table: pd.DataFrame) -> list[str]:
    """The searched settings and what the rows show beside the claims, as report lines."""
    base = prepared()
    test_x, test_y = base.splits["test"]
    with torch.no_grad():
        ann = float((base.ann(test_x).argmax(-1).cpu() == test_y).float().mean())
    acc = table.pivot_table(index="mode", columns="T", values="accuracy")
    sd = table.pivot_table(index="mode", columns="T", values="accuracy_sd")
    sin = table.groupby("mode")["sin_fraction_early"].first()
    early = [t for t in acc.columns if t <= 16]
    lines = ["searched on the validation split (mean accuracy over T = "
             + ", ".join(map(str, SEARCH_T)) + f", {SEARCH_TRIALS} trials each): " + "; ".join(
                 f"{mode}: {_describe(c)} (val {base.val_scores[mode]:.3f})"
                 for mode, c in base.searched.items())]
    gain = acc.loc["MSAT", early].mean() - acc.loc["constant (max)", early].mean()
    lines.append(f"against the unsearched constant θ = 1 (max balancing), MSAT gains "
                 f"{gain * 100:+.1f} pt over T ≤ 16")
    published = acc.loc["MSAT (published constants)"]
    lines.append(f"published constants, unsearched: {published[4]:.3f} at T=4, "
                 f"{published[16]:.3f} at T=16, {published[64]:.3f} at T=64; the ANN: {ann:.3f}")
    for mode in ("MSAT", "constant (searched)"):
        gated = f"{mode} + spike confidence"
        change = acc.loc[gated, early].mean() - acc.loc[mode, early].mean()
        lines.append(f"spike confidence on {mode} (mean of {GATE_SEEDS} gate seeds): accuracy "
                     f"over T ≤ 16 {change * 100:+.1f} pt (seed spread at T=8 "
                     f"±{sd.loc[gated, 8] * 100:.1f} pt), early SIN share {sin[mode]:.3f} -> "
                     f"{sin[gated]:.3f}")
    return lines


def _describe(c: Candidate) -> str:
    if c.mode == "constant":
        return f"θ scale {c.threshold_scale:.3g}, v0 {c.initial}"
    return ", ".join(f"{k}={v:.3g}" for k, v in asdict(c.constants).items())


STUDY = Study(name="msat", title="MSAT: constant vs adaptive thresholds, spike confidence",
              setting=MSATSetting, run=run, rows=rows, prepare=prepare,
              report_settings=report_settings, notes=notes, row_key=("T",),
              objectives=curve_study_objectives(OBJECTIVE_T),
              measure=lambda table: curve_objectives(table, OBJECTIVE_T), seed_kind="gate")

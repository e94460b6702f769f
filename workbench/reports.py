"""Result tables behind ``workbench report <name>`` (pandas DataFrames; JSON with ``--json``)."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from workbench.datasets.digits import load_digits_split
from workbench.device import default_device
from workbench.network import simulate
from workbench.train import evaluate
from workbench.zoo import basics_snn

BASICS_T = (1, 2, 4, 8, 16, 32, 64)


def basics() -> pd.DataFrame:
    """Accuracy of the converted digits SNN at T ∈ {1..64} for each balancing and initial
    potential, beside its ANN: the accuracy-latency trade-off of plain conversion."""
    test = load_digits_split()["test"]
    x = test.x.to(default_device())
    rows = []
    for balance in ("max", "percentile"):
        for initial in ("zero", "half"):
            snn, ann = basics_snn(balance, initial)
            ann_accuracy = round(evaluate(ann, test.x, test.y), 4)
            trajectory = simulate(snn, x, max(BASICS_T))
            curve = trajectory.accuracy_curve(test.y)
            rows += [{"balance": balance, "initial": initial, "T": t,
                      "accuracy": round(float(curve[t - 1]), 4),
                      "ann_accuracy": ann_accuracy,
                      "spikes_per_sample": round(float(
                          sum(c[:t].sum(0) for c in trajectory.spike_counts.values()).mean()), 1)}
                     for t in BASICS_T]
    return pd.DataFrame(rows)


ENERGY_COLUMNS = ["device", "model", "charged_on", "T", "joules_per_inference", "mac_joules",
                  "synop_joules", "neuron_joules", "synaptic_ops", "macs", "neuron_updates",
                  "snn_to_ann"]


def energy(T: int = 32) -> pd.DataFrame:
    """Energy per inference of the 'Spiking basics' SNN (max balancing, v₀ = 0, T steps, mean over
    the test digits) and of its ANN, on every device profile. Arithmetic only."""
    from workbench.energy import energy_report

    snn, _ = basics_snn("max", "zero")
    x = load_digits_split()["test"].x.to(default_device())
    return energy_report(simulate(snn, x, T), snn).summary()[ENERGY_COLUMNS]


def early_exit() -> pd.DataFrame:
    """Every stopping policy on every base SNN (test split; calibration never sees it), with the
    papers' claims set against the measurement in ``table.attrs["notes"]``."""
    from workbench.methods.early_exit_study import early_exit_table

    table = early_exit_table()
    notes = []
    for base, rows in table.groupby("base", sort=False):
        by = rows.set_index("policy")
        fixed = by[by.index.str.startswith("fixed T=")].iloc[0]
        for policy, claim_gap, claim_speed in (
                ("Dynamic Confidence", 0.003, "≥ 40 % fewer mean steps (Li et al., ICCV 2023)"),
                (next(p for p in by.index if p.startswith("AOI")), 0.01,
                 "≥ 1.5× fewer mean steps (Wu et al., AOI-SNN: 1.64–2.76×)")):
            row = by.loc[policy]
            gap = fixed.accuracy - row.accuracy
            saved = 1 - row.mean_steps / fixed.mean_steps
            holds = gap <= claim_gap and (saved >= 0.4 if policy == "Dynamic Confidence"
                                          else fixed.mean_steps / row.mean_steps >= 1.5)
            notes.append(
                f"{base} / {policy}: claim = within {claim_gap * 100:.1f} pt of fixed T and "
                f"{claim_speed}; measured = {gap * 100:+.1f} pt below fixed T "
                f"({row.accuracy:.3f} vs {fixed.accuracy:.3f}), {saved:.0%} fewer steps "
                f"({row.mean_steps:.2f} vs {fixed.mean_steps:.0f}) -> "
                f"{'reproduced' if holds else 'NOT reproduced'}")
    table.attrs["notes"] = notes
    return table


def msat() -> pd.DataFrame:
    """Constant vs adaptive thresholds on the converted digits and saccade-event SNNs (test
    split), with the paper's claims set against the measurement in ``table.attrs["notes"]``."""
    from workbench.methods.msat_study import msat_table

    table = msat_table()
    notes = ["MSAT's six constants are not published; ours were searched on the validation split "
             "(mean accuracy over T = 2, 4, 8, 16) and are stored beside the model."]
    for dataset, rows in table.groupby("dataset", sort=False):
        acc = rows.pivot_table(index="mode", columns="T", values="accuracy")
        early = [t for t in acc.columns if t <= 16]
        gain = acc.loc["MSAT", early].mean() - acc.loc["constant (max)", early].mean()
        late = acc.loc["MSAT", 64] - acc.loc["constant (max)", 64]
        sin = rows.groupby("mode")["sin_fraction_early"].first()
        notes.append(
            f"{dataset}: claim = MSAT clearly above the constant threshold for T ≤ 16 and equal at "
            f"large T (He et al., NCA 2024); measured = {gain * 100:+.1f} pt mean over T ≤ 16, "
            f"{late * 100:+.1f} pt at T = 64 -> "
            f"{'early gain reproduced' if gain > 0.02 else 'NO early gain'}, "
            f"{'equal at large T' if abs(late) <= 0.01 else 'NOT equal at large T'}")
        drop = sin["MSAT"] - sin["MSAT + spike confidence"]
        notes.append(
            f"{dataset}: claim = spike confidence lowers early SIN; measured = SIN share of the "
            f"first 16 steps {sin['MSAT']:.3f} -> {sin['MSAT + spike confidence']:.3f} "
            f"-> {'reproduced' if drop > 0 else 'NOT reproduced'}")
    table.attrs["notes"] = notes
    return table


def iir() -> pd.DataFrame:
    """The IIR chain T = 5 → 1 and its equal-budget baselines (test split), with the paper's
    claim set against the measurement in ``table.attrs["notes"]``."""
    from workbench.methods.iir_study import iir_table

    table = iir_table()
    notes = []
    for dataset, rows in table.groupby("dataset", sort=False):
        by = rows.set_index("label")
        iir1 = by.loc["IIR T=1"]
        baselines = by.loc[["ANN init, trained at T=1", "random init, trained at T=1",
                            "converted, T=1, untrained"]]
        margin = iir1.accuracy - baselines.accuracy.max()
        silent = {label: sum(r < 0.01 for r in row.firing_rates.values())
                  for label, row in baselines.iterrows()}
        ratio = by.loc["ANN (same layers)"].energy["cmos45_fp32"] / iir1.energy["cmos45_fp32"]
        notes.append(
            f"{dataset}: claim = IIR at T=1 clearly above the baselines at an equal epoch budget, "
            f"their deep layers (nearly) silent (Chowdhury et al., 2021); measured = IIR T=1 "
            f"{iir1.accuracy:.3f}, best baseline {baselines.accuracy.max():.3f} "
            f"({margin * 100:+.1f} pt) -> {'reproduced' if margin > 0.02 else 'NOT reproduced'}; "
            f"silent layers (rate < 1 %) per baseline: {silent}")
        notes.append(f"{dataset}: claim = 25–33× more energy-efficient than the same-architecture "
                     f"ANN (45 nm, arithmetic); measured = {ratio:.1f}× at T=1")
    table.attrs["notes"] = notes
    return table


REPORTS: dict[str, Callable[[], pd.DataFrame]] = {"basics": basics, "energy": energy,
                                                  "early-exit": early_exit, "msat": msat,
                                                  "iir": iir}

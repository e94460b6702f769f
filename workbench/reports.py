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
# the reports that also run on any model source (--model): report name -> source_report view
SOURCE_REPORTS = {"basics": "basics", "energy": "energy", "early-exit": "early_exit",
                  "msat": "msat"}


def on_source(view: str, model, data=None) -> pd.DataFrame:
    """The model-agnostic ``view`` (a name in ``SOURCE_REPORTS``) of a model source
    (``workbench.sources``), with the source and its conversion in ``attrs["notes"]``."""
    from workbench import source_report
    from workbench.sources import load_source

    source = load_source(model, data)
    table = getattr(source_report, SOURCE_REPORTS[view])(source)
    table.attrs["notes"] = [f"model {source.name} on {source.data.name}, T = {source.data.T}",
                            *source.notes]
    return table


def basics(model=None, data=None) -> pd.DataFrame:
    """Accuracy of the converted digits SNN at T ∈ {1..64} for each balancing and initial
    potential, beside its ANN: the accuracy-latency trade-off of plain conversion. With
    ``model`` (a model source, optionally with ``data``): accuracy, spikes and activation
    sparsity of that model at every T."""
    if model is not None:
        return on_source("basics", model, data)
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


def energy(T: int = 32, model=None, data=None) -> pd.DataFrame:
    """Energy per inference of the 'Spiking basics' SNN (max balancing, v₀ = 0, T steps, mean over
    the test digits) and of its ANN, on every device profile. Arithmetic only. With ``model``:
    the same for that model source at its T."""
    if model is not None:
        return on_source("energy", model, data)
    from workbench.energy import energy_report

    snn, _ = basics_snn("max", "zero")
    x = load_digits_split()["test"].x.to(default_device())
    return energy_report(simulate(snn, x, T), snn).summary()[ENERGY_COLUMNS]


def early_exit(model=None, data=None) -> pd.DataFrame:
    """Every stopping policy on every base SNN (test split; calibration never sees it), with the
    papers' claims set against the measurement in ``table.attrs["notes"]``. With ``model``: the
    policies on that model source, calibrated on its calibration split."""
    if model is not None:
        return on_source("early-exit", model, data)
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


# the paper's DHP19 figures (camera 3, 2D), from the authors' result files (methods.md §1.3)
PAPER_HYBRID = {100: "hybrid 5.19 px vs ANN 5.03 px, 0.424 vs 3.718 W",
                200: "hybrid 5.17 px, 0.432 W vs ANN 7.436 W"}


def hybrid() -> pd.DataFrame:
    """The six pose predictors on the same test sequences (ANN initialization at 10 Hz; SNN at
    100 and 200 Hz): MPJPE 2D (pixels) and 3D (metres), per step inside the window, and energy
    per second of sequence (W) per target, with the paper's claims set against the measurement
    in ``table.attrs["notes"]``."""
    from workbench.methods.hybrid_study import hybrid_table

    table = hybrid_table()
    notes = []
    for rate, rows in table.groupby("snn_rate_hz", sort=False):
        by = rows.set_index("kind")
        ann, hyb = by.loc["ann_high_rate"], by.loc["hybrid"]
        more_error = hyb.mpjpe_2d / ann.mpjpe_2d - 1
        saved = {d: 1 - hyb.energy[d] / ann.energy[d] for d in ann.energy}
        holds = more_error <= 0.15 and saved["cmos45_fp32"] >= 0.8
        notes.append(
            f"{rate} Hz: claim = hybrid 88 % less power than the ANN run at the same rate for about "
            f"4 % more error (Aydin et al.; DHP19 2D: {PAPER_HYBRID[rate]}); measured "
            f"= {hyb.mpjpe_2d:.2f} vs {ann.mpjpe_2d:.2f} px ({more_error:+.0%} error), power "
            + ", ".join(f"{saving:.0%} less on {d}" if saving > 0 else f"{-saving:.0%} MORE on {d}"
                        for d, saving in saved.items())
            + f" -> {'reproduced' if holds else 'NOT reproduced'}"
            " (the paper's shape: within ~15 % error at a small fraction of the energy)")
        snn = by.loc["snn_alone"]
        lower = 1 - hyb.mpjpe_2d / snn.mpjpe_2d
        notes.append(
            f"{rate} Hz: claim = 74 % lower error than an SNN alone; measured = {lower:.0%} lower "
            f"({hyb.mpjpe_2d:.2f} vs {snn.mpjpe_2d:.2f} px; the zero-state SNN goes from "
            f"{snn.mpjpe_2d_first_step:.2f} px at step 1 to {snn.mpjpe_2d_last_step:.2f} px at "
            f"the last step) -> {'reproduced' if lower >= 0.5 else 'NOT reproduced'}")
        held = by.loc["ann_held"]
        drifts = held.mpjpe_2d_last_step > held.mpjpe_2d_first_step
        notes.append(
            f"{rate} Hz: claim = the held ANN prediction drifts upward through the window (5.08 -> "
            f"6.73 px); measured = {held.mpjpe_2d_first_step:.2f} -> {held.mpjpe_2d_last_step:.2f} "
            f"px -> {'reproduced' if drifts else 'NOT reproduced'}")
    by = table[table.snn_rate_hz == 100].set_index("kind")
    notes.append(
        "ablations (100 Hz): hybrid {:.2f} px; without state init (ANN sets only the readout) "
        "{:.2f} px, first -> last step {:.2f} -> {:.2f}; without the consistency loss {:.2f} px, "
        "mean membrane jump at an initialization {:.3f} vs {:.3f} with it. Per-step errors are in "
        "mpjpe_2d_per_step.".format(
            by.loc["hybrid"].mpjpe_2d, by.loc["no_state_init"].mpjpe_2d,
            by.loc["no_state_init"].mpjpe_2d_first_step, by.loc["no_state_init"].mpjpe_2d_last_step,
            by.loc["no_consistency"].mpjpe_2d, by.loc["no_consistency"].state_jump,
            by.loc["hybrid"].state_jump))
    notes.append("energy = W (joules per second of sequence): ANN and state heads are charged on "
                 "each target's ann_on profile, the SNN on the target itself (see `workbench report "
                 "energy` for the constants).")
    table.attrs["notes"] = notes
    return table


REPORTS: dict[str, Callable[..., pd.DataFrame]] = {"basics": basics, "energy": energy,
                                                  "early-exit": early_exit, "msat": msat,
                                                  "iir": iir, "hybrid": hybrid}

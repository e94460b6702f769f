"""The deep IIR study on the tiny budget and a few samples: finite rows, learning curves one
point per epoch, baselines matched to the chain in epochs and in sample·timesteps, early
firing-rate logs of all ten layers, and its claims measured."""

import math

import pytest

from workbench import zoo
from workbench.claims import verdicts
from workbench.datasets.digits import Split, load_digits_split, shifted_digits
from workbench.errors import WorkbenchError
from workbench.methods import iir_deep_study
from workbench.methods.iir import Baselines, IIRConfig
from workbench.methods.iir_deep_study import (
    DIRECT,
    RATE_EPOCHS,
    STUDY,
    IIRDeepSetting,
    chain_config,
    notes,
    silent_text,
)

SAMPLES = 48  # per split


@pytest.fixture(scope="module")
def table():
    splits = load_digits_split()
    small = {k: Split(v.x[:SAMPLES], v.y[:SAMPLES], v.index[:SAMPLES]) for k, v in splits.items()}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(zoo, "load_digits_split", lambda seed=0: small)
        iir_deep_study.study.cache_clear()
        rows = STUDY.rows(STUDY.run(IIRDeepSetting(budget="tiny")))
        iir_deep_study.study.cache_clear()
    return rows


def test_rows_are_finite_and_name_every_setting(table):
    assert list(table.label) == [*iir_deep_study.LABELS.values(), "ANN (same layers)"]
    for column in ("accuracy", "T", "silent_layers"):
        assert all(math.isfinite(v) for v in table[column]), column
    trained = table[table.budget != "ann"]
    assert all(math.isfinite(v) and v >= 0 for v in trained.train_seconds)
    assert all(0.0 <= a <= 1.0 for a in table.accuracy)
    assert all(len(r) == 10 for r in trained.firing_rates), "ten spiking layers"


def test_learning_curves_have_one_point_per_epoch(table):
    for row in table[table.budget.isin(["chain", "epochs", "compute"])].itertuples():
        assert len(row.val_curve) == row.epochs > 0, row.label
        assert all(0.0 <= a <= 1.0 for a in row.val_curve)


def test_baselines_match_the_chain_in_epochs_and_in_sample_timesteps(table):
    config = chain_config(budget="tiny")
    chain = table[table.budget == "chain"]
    # the samples per epoch the chain was trained on (the tiny chains of another test module,
    # on fewer samples, share the cache key: the training-set size is not part of it)
    first = chain.iloc[0]
    n_train = first["sample_steps"] / (first["epochs"] * first["T"])
    assert n_train == int(n_train) and 0 < n_train <= SAMPLES
    # the counted quantity matches exactly (tolerance 0): whole epochs at T = 1 can always
    # equal the chain's Σ epochs·T
    assert chain.sample_steps.sum() == config.total_timestep_epochs * n_train == 15 * n_train
    assert chain.epochs.sum() == config.total_epochs == 5
    for name in DIRECT:
        row = table[table.setting == name].iloc[0]
        if name.endswith("_compute"):
            assert row.sample_steps == chain.sample_steps.sum() and row.epochs == 15
        else:
            assert row.epochs == chain.epochs.sum() and row.sample_steps == 5 * n_train
    converted = table[table.setting == "converted_T1"].iloc[0]
    assert converted.epochs == 0 and converted.sample_steps == 0


def test_early_firing_rates_are_logged_before_and_after_the_first_epochs(table):
    for row in table[table.budget.isin(["chain", "epochs", "compute"])].itertuples():
        assert len(row.early_rates) == min(row.epochs, RATE_EPOCHS) + 1, row.label
        assert all(len(r) == 10 and all(0.0 <= v <= 1.0 for v in r.values())
                   for r in row.early_rates)
        assert set(row.silent_by_epoch) == {f"e{e}" for e in range(len(row.early_rates))}
    # every direct baseline of one init starts from the same network: the same rates at e0
    first = {name: table[table.setting == name].iloc[0].early_rates[0] for name in DIRECT}
    assert first["ann_init_T1"] == first["ann_init_T1_compute"]
    assert first["random_init_T1"] == first["random_init_T1_compute"]
    converted = table[table.setting == "converted_T1"].iloc[0]
    assert converted.early_rates == [first["ann_init_T1"]], "the converted net is ANN-init at e0"
    lines = notes(table)
    assert sum("silent (rate < 1%) of 10 layers after epoch e0" in line
               for line in lines) == len(DIRECT) + 1
    assert any("wall time" in line for line in lines)


def test_the_claims_at_equal_epochs_and_equal_compute_are_measured(table):
    found = {v.claim.id: v for v in verdicts("iir-deep", table.assign(seed=0), kind="training")}
    assert set(found) == {"iir-deep-beats-baselines-epochs", "iir-deep-beats-baselines-compute"}
    assert all(v.verdict == "too few seeds" and v.interval is not None for v in found.values())


def test_bad_baselines_and_placements_are_refused():
    with pytest.raises(WorkbenchError, match="budgets must be some of epochs, compute"):
        Baselines(budgets=("wall",))
    with pytest.raises(WorkbenchError, match="rate_epochs must be >= 0"):
        Baselines(rate_epochs=-1)
    with pytest.raises(WorkbenchError, match=r"size must be in \[8, canvas=16\]"):
        shifted_digits(load_digits_split()["test"].x[:2], size=20)
    assert IIRConfig(first_epochs=5, stage_epochs=2).total_timestep_epochs == 45


def test_silent_layers_are_named_as_ranges_with_equal_epochs_merged():
    silent, busy = 0.0, 0.5
    early = [{"s1": busy, "s2": silent, "s3": silent, "s4": busy, "s5": silent},
             {"s1": busy, "s2": silent, "s3": silent, "s4": busy, "s5": silent},
             {"s1": busy, "s2": busy, "s3": busy, "s4": busy, "s5": busy}]
    assert silent_text(early) == "e0–e1: layers 2–3, 5; e2: none"


def test_shifted_digits_keep_every_pixel_on_the_canvas():
    x = load_digits_split()["test"].x[:16]
    import torch

    placed = shifted_digits(x, generator=torch.Generator().manual_seed(0))
    assert placed.shape == (16, 1, 16, 16)
    # bilinear upsampling keeps the mean intensity; the canvas adds zeros only
    assert torch.allclose(placed.sum((1, 2, 3)), x.mean((1, 2, 3)) * 144, rtol=0.05)

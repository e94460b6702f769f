"""The RCS study: α grid models sharing the zoo's cache entries, rows on the tiny budget, and its
claims evaluated over seeds (α against α = 0)."""


import numpy as np
import pandas as pd
import pytest
from test_determinism import cut_saccade_events

from workbench import zoo
from workbench.cache import config_key
from workbench.claims import VERDICTS, load_claims, verdicts
from workbench.errors import WorkbenchError
from workbench.methods import rcs_study
from workbench.zoo import SPECS, model_spec, rcs_spec

SAMPLES = 40  # per split: the tiny budget's pipeline in seconds


@pytest.mark.parametrize(("alpha", "name"), [(0.0, "event_snn"), (0.05, "event_snn_rcs")])
@pytest.mark.parametrize(("seed", "budget"), [(0, "full"), (2, "tiny")])
def test_the_zoo_alphas_are_the_zoo_cache_entries(alpha, name, seed, budget):
    spec = rcs_spec(alpha, seed, budget)
    assert spec.name == name and spec.rcs_alpha == SPECS[name].rcs_alpha
    assert config_key(spec.config()) == config_key(model_spec(name, seed, budget).config())


def test_other_alphas_are_new_entries_and_bad_alphas_are_refused():
    keys = {config_key(rcs_spec(a).config()) for a in rcs_study.ALPHAS}
    assert len(keys) == len(rcs_study.ALPHAS)
    assert rcs_spec(0.01).rcs_alpha == 0.01 and "α = 0.01" in rcs_spec(0.01).description
    for bad in (-0.1, float("nan"), float("inf"), True, "0.1"):
        with pytest.raises(WorkbenchError, match="RCS weight α"):
            rcs_spec(bad)


def test_the_shipped_alphas_load_without_training(monkeypatch):
    def no_training(*args, **kwargs):
        raise AssertionError("trained a model that ships")

    monkeypatch.setattr(zoo, "_train", no_training)
    for alpha in (0.0, 0.05):
        _, record = zoo.load_spec(rcs_spec(alpha))
        assert record["config"]["rcs_alpha"] == alpha


@pytest.fixture
def few_events(monkeypatch):
    """The saccade digits cut to SAMPLES per split (training included)."""
    cut_saccade_events(monkeypatch, SAMPLES)
    rcs_study.alpha_run.cache_clear()
    yield
    rcs_study.alpha_run.cache_clear()


def test_the_study_runs_on_the_tiny_budget_and_its_claims_evaluate(few_events):
    study = rcs_study.STUDY
    tables = []
    for seed in range(3):
        settings = [rcs_study.RCSSetting(a, seed=seed, budget="tiny") for a in rcs_study.ALPHAS]
        tables.append(study.table(settings).assign(seed=seed))
    table = pd.concat(tables, ignore_index=True)
    assert table["alpha"].tolist() == list(rcs_study.ALPHAS) * 3
    numbers = table.drop(columns="seed").to_numpy(dtype=float)
    assert np.isfinite(numbers).all()
    assert table[["accuracy_at_T", "aoi_accuracy"]].stack().between(0, 1).all()
    assert table[["aoi_mean_steps", "optimal_cutoff_steps"]].stack().between(1, rcs_study.T).all()
    assert set(study.measure(table.iloc[:1])) == {o.name for o in study.objectives}

    found = verdicts("rcs", table, kind="training")
    claims = [c for c in load_claims() if c.study == "rcs"]
    assert {v.claim.id for v in found} == {c.id for c in claims} and len(claims) >= 3
    assert sorted({v.group for v in found}) == [0.002, 0.01, 0.05], "α = 0 is the baseline only"
    for v in found:
        assert v.verdict in VERDICTS[:3] and v.interval.n == 3
        column = v.claim.metric
        rows = table.set_index(["seed", "alpha"])[column]
        expected = [rows[(s, v.group)] - rows[(s, 0.0)] for s in range(3)]
        assert v.values == pytest.approx(expected)

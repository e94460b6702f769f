"""The claims file and its evaluator (not each claim's prose)."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from workbench.claims import (
    Claim,
    evaluate,
    judge,
    load_claims,
    t_interval,
    verdict_table,
    verdicts,
)
from workbench.errors import WorkbenchError
from workbench.methods.registry import STUDIES

TABLE = pd.DataFrame([
    {"base": "a", "policy": "fixed T=32", "accuracy": 0.90, "mean_steps": 32.0,
     "energy": {"loihi": 2.0}},
    {"base": "a", "policy": "Dynamic Confidence", "accuracy": 0.899, "mean_steps": 10.0,
     "energy": {"loihi": 1.0}},
    {"base": "b", "policy": "fixed T=10", "accuracy": 0.80, "mean_steps": 10.0,
     "energy": {"loihi": 2.0}},
    {"base": "b", "policy": "Dynamic Confidence", "accuracy": 0.70, "mean_steps": 9.0,
     "energy": {"loihi": float("nan")}},
])


def claim(**kw) -> Claim:
    fields = dict(id="c", study="s", source="paper", statement="it holds", metric="accuracy",
                  measure="difference", comparator=">=", threshold=-0.003, per="base",
                  select={"policy": "Dynamic Confidence"}, baseline={"policy": "fixed T=*"})
    return Claim(**(fields | kw))


def test_difference_per_group_with_a_glob_baseline():
    a, b = evaluate(claim(), TABLE)
    assert (a.group, b.group) == ("a", "b")
    assert a.measured == pytest.approx(-0.001) and a.verdict == "reproduced"
    assert b.measured == pytest.approx(-0.1) and b.verdict == "not reproduced"
    assert "base a: claim = it holds (paper)" in a.text() and a.text().endswith("reproduced")


def test_a_baseline_naming_the_per_column_compares_every_group_with_one_row_per_seed():
    """per = "alpha", baseline α = 0: each α against the same seed's α = 0 row; a select naming
    α picks the groups, so α = 0 is not compared with itself."""
    table = pd.DataFrame([{"seed": s, "alpha": a, "steps": 3.0 - 10 * a + 0.1 * s}
                          for s in range(3) for a in (0.0, 0.01, 0.05)])
    found = evaluate(claim(per="alpha", metric="steps", comparator="<", threshold=0.0,
                           select={"alpha": [0.01, 0.05]}, baseline={"alpha": 0.0}), table,
                     "training")
    assert [v.group for v in found] == [0.01, 0.05]
    assert [v.values for v in found] == [pytest.approx((-0.1,) * 3), pytest.approx((-0.5,) * 3)]
    assert [v.verdict for v in found] == ["reproduced", "reproduced"]
    # without the per column in the baseline, the baseline is looked up inside each group
    inside = evaluate(claim(per="alpha", metric="steps", select={}, baseline={"seed": 0}), table)
    assert [v.group for v in inside] == [0.0, 0.01, 0.05]


@pytest.mark.parametrize("measure, comparator, threshold, expected", [
    ("saving", ">=", 0.6, [pytest.approx(1 - 10 / 32), pytest.approx(0.1)]),
    ("speedup", ">=", 1.5, [pytest.approx(3.2), pytest.approx(10 / 9)]),
    ("ratio", "<=", 0.5, [pytest.approx(10 / 32), pytest.approx(0.9)]),
])
def test_measures_on_latency(measure, comparator, threshold, expected):
    found = evaluate(claim(metric="mean_steps", measure=measure, comparator=comparator,
                           threshold=threshold), TABLE)
    assert [v.measured for v in found] == expected
    assert [v.verdict for v in found] == ["reproduced", "not reproduced"]


def test_dict_metrics_missing_rows_and_nan_are_not_comparable():
    energy = evaluate(claim(metric="energy.loihi", measure="saving", threshold=0.4), TABLE)
    assert energy[0].measured == pytest.approx(0.5) and energy[0].verdict == "reproduced"
    assert energy[1].measured is None and energy[1].verdict == "not comparable"  # NaN cell
    missing = evaluate(claim(select={"policy": "AOI*"}), TABLE)
    assert {v.verdict for v in missing} == {"not comparable"}
    assert evaluate(claim(per="dataset"), TABLE) == []  # no such column: nothing to evaluate


def test_aggregates_and_absolute_comparator():
    best = evaluate(claim(per=None, select={"policy": "fixed T=32"},
                          baseline={"policy": ["fixed T=10", "Dynamic Confidence"]},
                          baseline_aggregate="max", comparator="abs<=", threshold=0.1), TABLE)
    assert best[0].measured == pytest.approx(0.90 - 0.899) and best[0].verdict == "reproduced"


def test_the_claims_file_loads_and_names_known_studies():
    claims = load_claims()
    assert len({c.id for c in claims}) == len(claims) >= 10
    assert {c.study for c in claims} <= set(STUDIES)
    table = verdict_table(verdicts("early-exit", TABLE, claims))
    assert {"claim", "group", "measured", "verdict"} <= set(table.columns)


@pytest.mark.parametrize("text, message", [
    ('[[claim]]\nid = "x"\nmeasure = "log"\n', "measure 'log'; accepted: value, difference"),
    ('[[claim]]\nid = "x"\ncolour = 1\n', "unknown field"),
    ('[[claim]]\nid = "x"\nstudy = "s"\n', "claim 'x' is incomplete"),
    ('[[claim\n', "cannot read claims"),
])
def test_bad_claims_files_are_clear_errors(tmp_path, text, message):
    path = tmp_path / "claims.toml"
    path.write_text(text)
    with pytest.raises(WorkbenchError, match=message):
        load_claims(path)


def seeded(differences: list[float]) -> pd.DataFrame:
    """One fixed-T and one Dynamic Confidence row per seed, DC − fixed = ``differences[seed]``."""
    return pd.DataFrame([row for seed, d in enumerate(differences) for row in (
        {"seed": seed, "base": "a", "policy": "fixed T=32", "accuracy": 0.9},
        {"seed": seed, "base": "a", "policy": "Dynamic Confidence", "accuracy": 0.9 + d})])


def test_t_interval_matches_the_textbook_formula():
    values = [0.1, 0.3, 0.2, 0.6]
    i = t_interval(values)
    half = stats.t.ppf(0.975, 3) * np.std(values, ddof=1) / 2
    assert (i.mean, i.n) == (pytest.approx(0.3), 4)
    assert (i.low, i.high) == (pytest.approx(0.3 - half), pytest.approx(0.3 + half))
    # 3.18 × s / 2 for n = 4: wider than the normal 1.96 × s / 2
    assert i.high - i.low > 2 * 1.96 * np.std(values, ddof=1) / 2
    assert t_interval([0.5]) == t_interval([0.5, 0.5]).__class__(0.5, 0.5, 0.5, 1)
    with pytest.raises(WorkbenchError, match="finite"):
        t_interval([0.1, float("nan")])


@pytest.mark.parametrize("differences, kind, expected", [
    ([0.001, 0.002, 0.0], "training", "reproduced"),  # interval above −0.3 pt
    ([-0.02, -0.03, -0.025], "training", "not reproduced"),  # wholly below
    ([0.01, -0.02, 0.0], "training", "inconclusive"),  # spans −0.3 pt
    ([0.001, 0.002], "training", "too few seeds"),  # 2 < 3
    ([0.001, 0.002, 0.0, 0.001], "gate", "too few seeds"),  # 4 < 5
    ([0.001], "exact", "reproduced"),
])
def test_every_verdict_over_seeds(differences, kind, expected):
    (v,) = evaluate(claim(), seeded(differences), kind)
    assert v.verdict == expected and v.values == pytest.approx(differences)
    assert v.measured == pytest.approx(np.mean(differences))
    if len(differences) > 1 and expected != "too few seeds":
        assert "[" in v.shown() and f"{len(differences)} {kind} seeds" in v.text()
    if expected == "too few seeds":
        assert "< minimum" in v.text()


def test_judge_on_an_absolute_bound_spanning_both_sides():
    c = claim(comparator="abs<=", threshold=0.01)
    assert judge(c, t_interval([-0.001, 0.001, 0.0]), "training") == "reproduced"
    assert judge(c, t_interval([0.02, 0.03, 0.025]), "training") == "not reproduced"
    # wider than [−1 pt, +1 pt] on both sides: part of it satisfies the claim
    assert judge(c, t_interval([-0.05, 0.05, 0.0]), "training") == "inconclusive"


def test_a_seed_missing_a_row_makes_the_claim_not_comparable():
    table = seeded([0.0, 0.0, 0.0])
    table = table[~((table.seed == 1) & (table.policy == "Dynamic Confidence"))]
    (v,) = evaluate(claim(), table, "training")
    assert v.verdict == "not comparable" and v.interval is None and "—" in v.text()
    with pytest.raises(WorkbenchError, match="seed kind"):
        evaluate(claim(), table, "lucky")

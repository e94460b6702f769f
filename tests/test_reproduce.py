"""`workbench reproduce` (a toy study over seeds, inline, tiny), stored results read back by
`workbench report`, and the README's generated result tables."""

import json
from pathlib import Path

import pandas as pd
import pytest

from workbench import claims
from workbench.claims import Claim
from workbench.cli import main
from workbench.errors import WorkbenchError
from workbench.methods.registry import STUDIES
from workbench.readme import BLOCK, render
from workbench.reproduce import reproduce, summary
from workbench.study import BUDGETS, Study, knob, setting

README = Path(__file__).resolve().parents[1] / "README.md"
CALLS: list[int] = []
FAIL_SEEDS: set[int] = set()


@setting
class ToySetting:
    seed: int = knob(0, "seed", low=0, high=100, integer=True)
    budget: str = knob("full", "budget", choices=tuple(BUDGETS))


def toy_rows(s: ToySetting) -> pd.DataFrame:
    CALLS.append(s.seed)
    if s.seed in FAIL_SEEDS:
        raise RuntimeError(f"seed {s.seed} broke")
    return pd.DataFrame([
        {"policy": "fixed T=4", "accuracy": 0.9, "energy": {"loihi": 2.0}},
        {"policy": "fast", "accuracy": 0.9 + 0.001 * s.seed, "energy": {"loihi": 1.0 + s.seed}}])


TOY = Study(name="toy", title="toy", setting=ToySetting, run=lambda s: s, rows=toy_rows,
            prepare=lambda progress: [], report_settings=lambda: [ToySetting()],
            seed_kind="training")
TOY_CLAIM = Claim(id="toy-fast", study="toy", source="toy paper", statement="fast is as accurate",
                  metric="accuracy", measure="difference", comparator=">=", threshold=-0.01,
                  select={"policy": "fast"}, baseline={"policy": "fixed T=*"})


@pytest.fixture
def toy(monkeypatch, tmp_path):
    monkeypatch.setitem(STUDIES, "toy", TOY)
    monkeypatch.setattr(claims, "load_claims", lambda path=None: [TOY_CLAIM])
    monkeypatch.setenv("WORKBENCH_RESULTS", str(tmp_path / "results"))
    CALLS.clear()
    FAIL_SEEDS.clear()
    return f"sqlite:///{tmp_path / 'sessions.db'}"


def test_reproduce_stores_every_seed_and_report_reads_intervals(toy, capsys):
    assert main(["reproduce", "toy", "--budget", "tiny", "--scheduler", "inline", "--storage",
                 toy, "--quiet"]) == 0
    assert sorted(CALLS) == [0, 1, 2]  # the training minimum: 3 seeds
    path = Path(capsys.readouterr().out.split()[1].rstrip(";"))
    stored = json.loads(path.read_text())
    assert path.name == "toy-tiny.json" and stored["seeds"] == [0, 1, 2]
    assert stored["command"] == "workbench reproduce toy --seeds 3 --budget tiny"
    assert {"git_commit", "git_dirty", "versions", "host"} == set(stored["provenance"])
    assert [r["seed"] for r in stored["rows"]] == [0, 0, 1, 1, 2, 2]

    assert main(["report", "toy", "--budget", "tiny", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    fast = rows[1]
    assert fast["accuracy"] == pytest.approx(0.901)
    assert fast["accuracy_low"] < 0.901 < fast["accuracy_high"]
    assert fast["energy.loihi"] == pytest.approx(2.0) and rows[0]["accuracy"] == 0.9
    assert "accuracy_low" not in rows[0] or rows[0]["accuracy_low"] is None  # equal in all seeds
    assert main(["report", "toy", "--budget", "tiny"]) == 0
    text = capsys.readouterr().out
    assert "3 training seeds (0, 1, 2)" in text
    assert "0.901 ± 0.0025" in text and "accuracy_low" not in text  # mean ± half the interval
    assert ("measured difference = +0.001, 95 % interval [-0.00148, +0.00348], 3 training seeds"
            in text)
    assert text.rstrip().endswith("-> reproduced")

    # a rerun of the finished session runs nothing again and rewrites the same rows
    reproduce("toy", budget="tiny", scheduler="inline", storage=toy, progress=False)
    assert sorted(CALLS) == [0, 1, 2]


def test_a_failed_seed_writes_nothing_and_a_rerun_runs_only_it(toy):
    FAIL_SEEDS.add(1)
    with pytest.raises(WorkbenchError, match=r"seed\(s\) \[1\] failed.*seed 1 broke.*resumes"):
        reproduce("toy", scheduler="inline", storage=toy, progress=False)
    FAIL_SEEDS.clear()
    path = reproduce("toy", scheduler="inline", storage=toy, progress=False)
    assert sorted(CALLS) == [0, 1, 1, 2] and path.name == "toy.json"
    assert json.loads(path.read_text())["seeds"] == [0, 1, 2]


def test_reproduce_refuses_bad_seed_counts(toy):
    with pytest.raises(WorkbenchError, match="deterministic: one run is exact"):
        reproduce("basics", seeds=3, scheduler="inline", storage=toy)
    with pytest.raises(WorkbenchError, match="whole number >= 1"):
        reproduce("toy", seeds=0, scheduler="inline", storage=toy)


def test_report_without_stored_results_says_how_to_make_them(toy, capsys):
    assert main(["report", "toy"]) == 2
    err = capsys.readouterr().err
    assert "no stored results for 'toy'" in err
    assert "`workbench reproduce toy --seeds 3 --budget full`" in err and "--live" in err


def test_summary_marks_varying_text_and_rejects_ragged_seeds():
    table = pd.DataFrame([{"seed": 0, "p": "a", "settings": "c*=0.6", "x": 1.0},
                          {"seed": 1, "p": "a", "settings": "c*=0.7", "x": 3.0}])
    row = summary(table).iloc[0]
    assert (row["p"], row["settings"], row["x"]) == ("a", "varies", 2.0)
    with pytest.raises(WorkbenchError, match="number of rows"):
        summary(pd.concat([table, table.iloc[:1]]))


def test_the_readme_matches_the_stored_results(monkeypatch):
    monkeypatch.delenv("WORKBENCH_RESULTS", raising=False)  # the committed results
    text = README.read_text()
    names = [m.group("name") for m in BLOCK.finditer(text)]
    assert set(names) == set(STUDIES), "every study has one generated results block"
    assert render(text) == text, "README.md is stale: run `workbench readme` and commit it"


def test_seed_zero_on_the_full_budget_is_what_ships_and_other_seeds_are_new_entries():
    from workbench.methods.hybrid_study import HybridConfig, training_config
    from workbench.methods.iir import IIRConfig
    from workbench.methods.iir_study import chain_config
    from workbench.zoo import SPECS, model_spec

    for name in SPECS:  # the same config, so the same cache key as the shipped artifact
        assert model_spec(name).config() == SPECS[name].config()
    tiny = model_spec("event_snn", seed=2, budget="tiny")
    assert (tiny.seed, tiny.epochs) == (2, 1)
    assert chain_config() == IIRConfig() and training_config() == HybridConfig()
    assert chain_config(1, "tiny").stage_epochs == 1 and training_config(1).seed == 1
    with pytest.raises(WorkbenchError, match="budget must be one of full, tiny"):
        model_spec("event_snn", budget="huge")


def test_readme_command_rewrites_a_stale_block_and_check_fails_on_it(monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("WORKBENCH_RESULTS", raising=False)
    path = tmp_path / "README.md"
    stale = BLOCK.sub(lambda m: m.group(1) + "| hand | written |\n" + m.group(4), README.read_text())
    path.write_text(stale)
    assert main(["readme", "--check", "--path", str(path)]) == 2
    assert "differs from the stored results" in capsys.readouterr().err
    assert main(["readme", "--path", str(path)]) == 0
    assert path.read_text() == README.read_text()
    assert main(["readme", "--check", "--path", str(path)]) == 0

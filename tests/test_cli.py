"""The ``workbench`` command and the package boundaries."""

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.ioloop import IOLoop
from tornado.websocket import websocket_connect

from widgets.app import websocket_origins
from widgets.browser import served_app
from workbench import __version__
from workbench.cli import main
from workbench.methods.registry import STUDIES

RESULTS = Path(__file__).resolve().parents[1] / "workbench" / "data" / "results"


@pytest.mark.parametrize("name", sorted(p.stem for p in RESULTS.glob("*.json")))
def test_a_stored_report_prints_no_nan(capsys, name, monkeypatch):
    monkeypatch.delenv("WORKBENCH_RESULTS", raising=False)  # the committed results
    assert main(["report", name]) == 0
    assert not re.search(r"\bnan\b", capsys.readouterr().out, re.IGNORECASE)


def test_report_basics_json(capsys):
    assert main(["report", "basics", "--live", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {"balance", "initial", "T", "accuracy", "ann_accuracy"} <= set(rows[0])
    by_t = {(r["balance"], r["initial"], r["T"]): r["accuracy"] for r in rows}
    # the trade-off the page teaches: more steps, better accuracy
    assert by_t[("max", "zero", 64)] > by_t[("max", "zero", 2)]


def test_unknown_report_is_a_clear_error(capsys):
    assert main(["report", "nonsense"]) == 2
    assert "unknown report 'nonsense'; available: basics" in capsys.readouterr().err


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.strip() == f"workbench {__version__}"


def test_help_lists_every_report(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    assert ", ".join(STUDIES) in " ".join(capsys.readouterr().out.split())


def test_websocket_origins_are_loopback_plus_the_allowed_hosts():
    assert websocket_origins(5006) == ["127.0.0.1:5006", "localhost:5006"]
    assert websocket_origins(80, ("lab.example", "10.0.0.7:8080"))[2:] == ["lab.example:80",
                                                                           "10.0.0.7:8080"]


def handshake(port: int, origin: str) -> int | None:
    """HTTP status of a refused websocket handshake from ``origin``; None when accepted."""
    async def connect():
        request = HTTPRequest(f"ws://127.0.0.1:{port}/ws", headers={"Origin": f"http://{origin}"})
        try:
            (await websocket_connect(request)).close()
        except HTTPClientError as exc:
            return exc.code
        return None
    return IOLoop.current().run_sync(connect, timeout=30)


def test_served_app_accepts_allowed_origins_only():
    with served_app("--no-prepare", "--allow-websocket-origin", "lab.example") as url:
        port = int(url.rstrip("/").rsplit(":", 1)[1])
        assert handshake(port, f"lab.example:{port}") is None
        assert handshake(port, f"127.0.0.1:{port}") is None
        assert handshake(port, f"elsewhere.example:{port}") == 403


def test_core_imports_no_ui():
    code = ("import sys, workbench.network, workbench.zoo, workbench.reports, workbench.datasets;"
            "print(sorted(m for m in ('panel', 'holoviews', 'ipywidgets', 'bokeh') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_torchvision_is_never_imported():
    code = "import sys, workbench.zoo, widgets.app; print('torchvision' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_report_early_exit_json(capsys):
    assert main(["report", "early-exit", "--live", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    fields = {"base", "policy", "accuracy", "mean_steps", "p90_steps", "spikes_per_sample",
              "energy"}
    assert fields <= set(rows[0])
    assert {"digits_qcfs", "events", "events_rcs"} == {r["base"] for r in rows}
    for base in ("digits_qcfs", "events", "events_rcs"):
        by = {r["policy"]: r for r in rows if r["base"] == base}
        fixed = next(r for p, r in by.items() if p.startswith("fixed T="))
        oracle = by["oracle: first correct"]
        # the oracle is at least as accurate as fixed T, and faster
        assert oracle["accuracy"] >= fixed["accuracy"] and oracle["mean_steps"] < fixed["mean_steps"]
        assert by["Dynamic Confidence"]["energy"]["loihi"] < fixed["energy"]["loihi"]


def test_report_msat_json_with_a_small_search(capsys, monkeypatch):
    """Every mode searched with one budget (3 trials here), gated rows over 5 gate seeds."""
    from workbench.methods import msat_study
    from workbench.methods.msat import Candidate, score

    monkeypatch.setattr(msat_study, "SEARCH_TRIALS", 3)
    msat_study.prepared.cache_clear()
    msat_study.confidences.cache_clear()
    try:
        assert main(["report", "msat", "--live", "--json"]) == 0
        out = capsys.readouterr().out
        base = msat_study.prepared()
        x_val, y_val = base.splits["val"]
        # the search starts from θ = 1, v0 = 0 (constant) and the published constants (MSAT)
        for mode in ("constant", "MSAT"):
            assert base.val_scores[mode] >= score(Candidate(mode).network(base.snn["max"]),
                                                  x_val, y_val)
    finally:
        msat_study.prepared.cache_clear()
        msat_study.confidences.cache_clear()
    rows = json.loads(out)
    assert {"mode", "T", "accuracy", "accuracy_sd", "seeds", "sin_fraction_early"} <= set(rows[0])
    by = {(r["mode"], r["T"]): r for r in rows}
    assert {m for m, _ in by} == {
        "constant (max)", "constant (percentile)", "constant (searched)",
        "MSAT (published constants)", "DTT", "DET", "MSAT", "MSAT, v0 = θ/2",
        "constant (searched) + spike confidence", "MSAT + spike confidence"}
    assert {t for _, t in by} == {1, 2, 4, 8, 16, 32, 64}
    assert by[("MSAT + spike confidence", 8)]["seeds"] == 5 and by[("MSAT", 8)]["seeds"] == 1
    assert all(0 <= r["accuracy"] <= 1 and r["accuracy_sd"] >= 0 for r in rows)
    # the adaptive threshold fires earlier than θ = 1: more spikes by T = 4
    assert by[("MSAT", 4)]["spikes_per_sample"] > by[("constant (max)", 4)]["spikes_per_sample"]


def test_report_iir_json(capsys):
    assert main(["report", "iir", "--live", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {"setting", "T", "accuracy", "energy"} <= set(rows[0])
    digits = {r["label"]: r for r in rows if r["dataset"] == "digits"}
    assert [digits[f"IIR T={t}"]["T"] for t in (5, 4, 3, 2, 1)] == [5, 4, 3, 2, 1]
    # trained from scratch at T=1, spikes vanish: its deep layers are silent and it guesses
    random = digits["random init, trained at T=1"]
    assert random["firing_rates"]["spike5"] < 0.01 and random["accuracy"] < 0.2
    assert digits["IIR T=1"]["accuracy"] > 0.9
    loihi = {k: r["energy"]["loihi"] for k, r in digits.items() if k.startswith("IIR")}
    assert loihi["IIR T=1"] < loihi["IIR T=5"]


@pytest.fixture
def four_test_clips(monkeypatch):
    """The pose study on its first four test clips (the whole test set takes minutes)."""
    from workbench.methods import hybrid_study

    every = hybrid_study.sequences

    def first_clips(split, *args, **kwargs):
        seqs = every(split, *args, **kwargs)
        return seqs.select(np.flatnonzero(seqs.clip < 4)) if split == "test" else seqs

    monkeypatch.setattr(hybrid_study, "sequences", first_clips)
    for cached in (hybrid_study._study_run, hybrid_study._test_sequences):
        cached.cache_clear()
    yield
    for cached in (hybrid_study._study_run, hybrid_study._test_sequences):
        cached.cache_clear()


def test_report_hybrid_json(capsys, four_test_clips):
    assert main(["report", "hybrid", "--live", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {"model", "mpjpe_2d", "mpjpe_3d", "energy", "mpjpe_2d_per_step"} <= set(rows[0])
    # the windows of the paper (ANN at 10 Hz) at both rates, and the 200 ms drift at 100 Hz
    assert {(r["snn_rate_hz"], r["init_rate_hz"]) for r in rows} == {(100, 10.0), (200, 10.0),
                                                                     (100, 5.0)}
    by = {(r["snn_rate_hz"], r["kind"]): r for r in rows if r["init_rate_hz"] == 10.0}
    assert {k for _, k in by} == {"ann_high_rate", "ann_held", "snn_alone", "hybrid",
                                  "no_state_init", "no_consistency"}
    for rate in (100, 200):
        fast, held = by[(rate, "ann_high_rate")], by[(rate, "ann_held")]
        # the ANN at the SNN rate makes rate/10 times the ANN calls of the one at 10 Hz
        assert fast["energy"]["cmos45_fp32"] == pytest.approx(rate / 10 * held["energy"]["cmos45_fp32"])
        hybrid, alone = by[(rate, "hybrid")], by[(rate, "snn_alone")]
        # cheaper than the ANN at the SNN rate on 45 nm CMOS and Loihi; not on the CPU, GPU or
        # SpiNNaker 2, which pay every neuron's update at every step (the README says so)
        assert all(hybrid["energy"][d] < fast["energy"][d]
                   for d in ("cmos45_fp32", "cmos45_fp16", "cmos45_int8", "loihi"))
        # the zero-state SNN's transient, the held prediction's drift
        assert alone["mpjpe_2d_first_step"] > 2 * alone["mpjpe_2d_last_step"]
        assert held["mpjpe_2d_last_step"] > held["mpjpe_2d_first_step"]
        assert hybrid["mpjpe_2d"] < alone["mpjpe_2d"]
        assert len(hybrid["mpjpe_2d_per_step"]) == rate // 10

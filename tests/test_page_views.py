"""Dashboard pages in-process (no browser): set knobs, then assert the setting shown and the
data the views draw; two sessions of a page at once each show their own data; a failing worker
shows an error in its page only; the shared models stay read-only. (The pose page builds its
event data for minutes on a fresh cache: its check is the Chromium smoke test.)"""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import holoviews as hv
import numpy as np
import panel as pn
import pytest
import torch

from workbench.claims import load_claims
from workbench.methods.basics_study import BasicsSetting
from workbench.methods.iir_study import IIRSetting

hv.extension("bokeh")


def title(element) -> str:
    return element.opts.get().kwargs["title"]


def shown(page, prefix: str):
    """The element drawn by the page's first plot whose title starts with ``prefix``."""
    layout = pn.panel(page)
    for pane in layout.select(pn.pane.HoloViews):
        element = pane.object[()] if isinstance(pane.object, hv.DynamicMap) else pane.object
        for candidate in [element, *(element if isinstance(element, hv.Overlay) else [])]:
            text = candidate.opts.get().kwargs.get("title", "")
            if text.startswith(prefix):
                return candidate
    raise AssertionError(f"no plot titled {prefix!r}…")


def live_shown(page, prefix: str):
    """The data sources of the page's live view whose title starts with ``prefix``."""
    for pane in pn.panel(page).select(pn.pane.Bokeh):
        if pane.object.title.text.startswith(prefix):
            return {r.name or i: r.data_source.data for i, r in enumerate(pane.object.renderers)}
    raise AssertionError(f"no live view titled {prefix!r}…")


def live_title(page, prefix: str) -> str:
    """The title of the page's live view whose title starts with ``prefix``."""
    return next(t for pane in pn.panel(page).select(pn.pane.Bokeh)
                if (t := pane.object.title.text).startswith(prefix))


@pytest.fixture(scope="module")
def basics():
    from widgets.pages import basics

    return basics


def test_basics_knobs_set_the_setting_and_the_views(basics):
    page = basics.BasicsPage(threshold_scale=1.5, timesteps=12, sample=5)
    assert page.setting() == BasicsSetting("max", "zero")
    assert page.settings.param.sample.bounds == (0, len(basics._test_split()[1]) - 1)
    assert page.settings.param.layer.objects == list(basics._network("max", "zero")[0].cells())
    curve = basics.accuracy_curve(1.5, "max", "zero")
    assert (live_title(page, "Test accuracy vs timestep")
            == f"Test accuracy vs timestep, θ×1.50: {float(curve[11]):.3f} at T=12")
    assert np.allclose(live_shown(page, "Test accuracy vs timestep")["snn"]["y"], curve.numpy())
    trajectory, label = basics.sample_run(1.5, "max", "zero", 5, 12)
    raster = live_shown(page, "Spike raster")[0]  # a live view
    spikes = len(raster["timestep"])
    assert spikes == int(trajectory.spikes_per_sample()[0]) > 0
    assert f"T=12, {spikes} spikes, label {label}" in live_title(page, "Spike raster")
    report = basics.energy(1.5, "max", "zero", 12, False)  # the energy views (live)
    summary = report.summary()
    bars = live_shown(page, "Energy per inference, T=12")[0]
    assert list(bars["x"]) == list(zip(summary.device, summary.model, strict=True))
    assert np.allclose(bars["top"], summary.joules_per_inference)
    stacked = live_shown(page, "SNN energy by layer on loihi")["mac"]  # one source per key
    snn = report.layers.query("device == 'loihi' and model == 'snn'")
    per_layer = snn.groupby("layer", sort=False).joules.sum()
    assert list(stacked["x"]) == list(per_layer.index)
    assert np.allclose(sum(np.asarray(stacked[k]) for k in ("mac", "synop", "neuron", "memory")),
                       per_layer.to_numpy())
    page.settings.device = "cpu"  # the device knob redraws the split
    assert live_title(page, "SNN energy by layer on") == "SNN energy by layer on cpu"
    page.settings.balance = "percentile"
    page.wait()
    assert page.setting() == BasicsSetting("percentile", "zero")
    moved = basics.accuracy_curve(1.5, "percentile", "zero")
    assert np.allclose(live_shown(page, "Test accuracy")["snn"]["y"], moved.numpy())
    assert not torch.equal(moved, curve)


def test_two_basics_sessions_at_once_show_their_own_data(basics):
    one, two = basics.BasicsPage(), basics.BasicsPage()
    one.settings.threshold_scale, two.settings.threshold_scale = 0.5, 2.0  # both in flight
    one.wait()
    two.wait()
    for page, scale in ((one, 0.5), (two, 2.0)):
        assert live_title(page, "Test accuracy vs timestep").startswith(
            f"Test accuracy vs timestep, θ×{scale:.2f}:")
        assert np.allclose(live_shown(page, "Test accuracy vs timestep")["snn"]["y"],
                           basics.accuracy_curve(scale, "max", "zero").numpy())
        assert live_shown(page, f"Spike raster: θ×{scale:.2f}")
    assert one.settings is not two.settings and one.worker is not two.worker
    # the shared network is read-only: in eval mode, its thresholds untouched by θ scales
    snn, _ = basics._network("max", "zero")
    assert not any(m.training for m in snn.modules())
    assert [float(c.threshold.flatten()[0]) for c in snn.cells().values()] == \
        [float(c.threshold.flatten()[0]) for c in basics.basics_snn()[0].cells().values()]


def test_a_failing_worker_shows_an_error_on_its_page_only(basics, monkeypatch):
    real = basics.accuracy_curve

    def broken(threshold_scale, balance, initial):
        if balance == "percentile":
            raise RuntimeError("simulation failed")
        return real(threshold_scale, balance, initial)

    monkeypatch.setattr(basics, "accuracy_curve", broken)
    failing, working = basics.BasicsPage(), basics.BasicsPage()
    failing.settings.balance = "percentile"
    working.settings.threshold_scale = 1.25
    failing.wait()
    working.wait()
    assert failing.alert.visible and "simulation failed" in failing.alert.object
    assert failing.result == (1.0, "max", "zero")  # the last good run stays on show
    assert not working.alert.visible and working.result == (1.25, "max", "zero")


def test_msat_knobs_set_the_setting_and_the_views():
    from widgets.pages.msat import FIRST_T, MAX_T, MSATPage, Shown, mode_run, sample_run
    from workbench.methods import msat_study

    page = MSATPage(mode="constant", threshold_scale=1.2, timesteps=8, sample=3)
    setting = page.setting()
    assert (setting.mode, setting.threshold_scale, setting.spike_confidence) == \
        ("constant", 1.2, False)
    assert page.result == Shown(setting, MAX_T)
    y = msat_study.prepared().splits["test"][1]
    assert page.settings.param.sample.bounds == (0, len(y) - 1)
    run = msat_study.run(setting)  # the study's own run of the setting shown
    drawn = live_shown(page, "Accuracy vs T, constant (θ×1.2")["setting"]["y"]
    assert np.allclose(drawn, run.accuracy[0, :len(drawn)].numpy())
    assert live_title(page, "Accuracy vs T, constant (θ×1.2").endswith(
        f"{float(run.accuracy[0, 7]):.3f} at T=8")
    raster = live_shown(page, f"Spike raster, constant (θ×1.2, v₀ {setting.initial}): sample 3, T=8")[0]
    recorded = sample_run(page._candidate(setting), False, 3).until(8)
    assert len(raster["timestep"]) == int(recorded.spikes_per_sample()[0]) > 0
    _, _, net = mode_run(page._candidate(setting), False)
    assert not any(m.training for m in net.modules())  # shared by every session: read-only
    # served, a new setting shows its first FIRST_T steps before the whole run
    page.settings.param.update(timesteps=40, threshold_scale=1.25)
    page.wait()  # the page's own request ends first: its whole run must not land after the
    # first answer shown below (a worker thread races this test's own calls otherwise)
    request, first = page.request(), []
    job = SimpleNamespace(partial=first.append, progress=lambda *a: None)
    assert page.compute(request, job) == Shown(request, MAX_T)
    assert first == [Shown(request, FIRST_T)]
    page._show(first[0])  # what the session sees meanwhile
    drawn = live_shown(page, "Accuracy vs T, constant (θ×1.25")["setting"]["y"]
    whole = mode_run(page._candidate(request), False)[0].accuracy_curve(y)
    # the same steps (a layer call on other row counts may round a membrane differently)
    assert len(drawn) == FIRST_T and np.abs(drawn - whole[:FIRST_T].numpy()).max() <= 1 / len(y)
    assert live_title(page, "Accuracy vs T, constant (θ×1.25").endswith(
        f"T=40 pending (T ≤ {FIRST_T} so far)")
    assert page.compute(request, job) == Shown(request, MAX_T)  # both runs cached now
    assert first == [Shown(request, FIRST_T)] * 2


def test_iir_knobs_set_the_setting_and_the_views():
    from widgets.pages.iir import IIRPage

    page = IIRPage(setting="random_init_T1", sample=4)
    assert page.setting() == IIRSetting("digits")
    result = page.result.result
    assert page.settings.param.sample.bounds == (0, len(result.labels) - 1)
    trajectory, _, _ = result.runs["random_init_T1"]
    accuracy = float(trajectory.accuracy_curve(result.labels)[-1])
    raster = shown(page, "random init, trained at T=1")
    assert title(raster).startswith(f"random init, trained at T=1: test accuracy {accuracy:.3f}; "
                                    "sample 4 makes")
    rates = live_shown(page, "Firing rates, random init")[0]
    expected = trajectory.mean_firing_rates()
    assert list(rates["x"]) == list(expected)
    assert np.allclose(rates["top"], list(expected.values()))
    page.settings.setting = "T2"  # the stage knob redraws the live view in place
    assert np.allclose(live_shown(page, "Firing rates, IIR T=2")[0]["top"],
                       list(result.runs["T2"][0].mean_firing_rates().values()))
    t1 = next(r for r in page.result.rows if r[0] == "T1")
    assert title(shown(page, "Accuracy and energy along the IIR chain (digits)")).endswith(
        f"T=1 {t1[2]:.3f} at {t1[3]:.2g} J on Loihi")
    # the stored verdicts of the page's claims (tests/test_claims_view.py checks their numbers)
    [card] = pn.panel(page).select(pn.Card)
    assert card.title.startswith("Paper claims over the stored seeds: ")
    shown_claims = {claim for table in card.select(pn.pane.DataFrame)
                    for claim in table.object["claim"].str.split(" \\(dataset").str[0]}
    assert page.claim_studies() == ("iir", "iir-deep")  # the study and its deeper version
    assert shown_claims == {c.statement for c in load_claims() if c.study in ("iir", "iir-deep")}


def test_early_exit_knobs_replay_the_policy_shown():
    from widgets.pages import early_exit
    from workbench.methods.early_exit import outcome

    page = early_exit.EarlyExitPage(policy="AOI Top-K cutoff", epsilon=0.05)
    assert page.setting().aoi_epsilon == 0.05
    run = early_exit.base_run(page.settings.base)
    assert page.settings.param.T_max.bounds == (1, run.T)
    assert page.settings.param.sample.bounds == (0, run.test.B - 1)
    stops = early_exit.topk(page.settings.base, 0.05).stop_times(run.test)
    o = outcome(run.test, run.test_labels, stops)
    drawn = live_shown(page, "AOI Top-K cutoff at ε=0.05")
    point = next(d for d in drawn.values() if len(d["x"]) == 1)
    assert np.allclose([point["x"][0], point["y"][0]], [o.mean_steps, o.accuracy])
    policies = early_exit.calibrated(page.settings.base)  # shared by every session: read-only
    with pytest.raises(TypeError):
        policies["Dynamic Confidence"] = None
    with pytest.raises(dataclasses.FrozenInstanceError):
        policies["Dynamic Confidence"].threshold = 0.5
    page.settings.T_max = 5
    page.wait()
    assert page.result[-1] == 5
    histogram = live_shown(page, "Stop times")[0]  # live: redrawn from the knobs at once
    assert sum(histogram["top"]) == run.test.B and list(histogram["x"]) == list("12345")
    exits = live_shown(page, "Confidence of 6 test samples")
    stops = early_exit.replay(*page.request())
    assert list(exits["marks"]["x"]) == [int(t) for t in stops[:6]]
    assert max(exits["marks"]["x"]) <= 5 and len(exits["line 0"]["x"]) == 5


def test_msat_sin_and_membrane_views_follow_the_setting():
    from widgets.pages.msat import TRACED, MSATPage, sample_run

    page = MSATPage(mode="MSAT", timesteps=12, sample=2, layer="spike2")
    sin = live_shown(page, "Spikes of inactivated neurons, first 16 steps")
    assert set(sin) >= {"constant", "setting", "marker"} and len(sin["setting"]["y"]) == 64
    assert all(0 <= y <= 1 for y in sin["setting"]["y"])
    drawn = live_shown(page, "Membrane and threshold, spike2 (MSAT)")
    recorded = sample_run(page._candidate(page.setting()), False, 2).until(12)
    v = recorded.membrane["spike2"][:, 0].numpy()
    lines = [drawn[f"v {i}"]["y"] for i in range(TRACED)]
    assert all(len(y) == 12 for y in lines) and any(np.allclose(y, v[:, n]) for y in lines
                                                    for n in range(v.shape[1]))
    assert len(drawn["θ 0"]["y"]) == 12 and not len(drawn["threshold"]["y"])  # θ moves
    page.settings.mode = "constant"
    page.wait()
    drawn = live_shown(page, "Membrane and threshold, spike2 (constant)")
    assert not len(drawn["θ 0"]["y"]) and len(drawn["threshold"]["y"]) == 2

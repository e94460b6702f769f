"""The 'Your model' page in-process (no browser): its views carry the source report's numbers,
its knobs replay the recorded run, its bounds come from the source, and only the command line
or Python choose a model source (never a URL parameter)."""

import textwrap

import holoviews as hv
import numpy as np
import panel as pn
import pytest
import torch
from test_sources import FACTORY
from torch import nn

import workbench
from workbench import source_report
from workbench.cli import main
from workbench.errors import WorkbenchError
from workbench.network import SpikingNetwork
from workbench.neurons import SpikingCell
from workbench.sources import load_source

hv.extension("bokeh")


@pytest.fixture(scope="module")
def factory(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    (folder / "page_models.py").write_text(textwrap.dedent(FACTORY))
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(folder))
        yield "page_models"


@pytest.fixture(scope="module")
def page(factory):
    from widgets.pages.source import SourcePage

    return SourcePage(load_source(f"{factory}:ann"))


def title(element) -> str:
    return element.opts.get().kwargs["title"]


def test_accuracy_curve_is_the_basics_table(page):
    table = source_report.basics(page.source).set_index("T")
    page.settings.timesteps = 8
    shown = page.accuracy_view[()]
    curve = shown.Curve.SNN.dimension_values("accuracy")
    assert len(curve) == page.source.data.T == 32
    assert np.allclose(curve[table.index - 1], table.accuracy, atol=5e-5)
    assert shown.HLine.ANN.data == table.ann_accuracy.iloc[0] == 1.0
    assert title(shown).endswith(f"{table.accuracy[8]:.3f} at T=8")


def test_bounds_come_from_the_source(page):
    p = page.settings.param
    assert p.timesteps.bounds == (1, 32) and p.sample.bounds == (0, 99)  # 100 test samples
    assert p.layer.objects == list(page.source.snn.cells())
    with pytest.raises(ValueError, match="sample"):
        page.settings.sample = 100
    with pytest.raises(WorkbenchError, match="sample = 100 is out of range .* accepted: 0..99"):
        type(page)(page.shared, sample=100)
    with pytest.raises(WorkbenchError, match="layer = 'fc9' .* accepted: spike1"):
        type(page)(page.shared, layer="fc9")
    assert type(page)(page.shared, sample=99, timesteps=4).settings.timesteps == 4


def test_raster_shows_the_recorded_runs_spikes(page):
    page.settings.param.update(sample=3, timesteps=16)
    raster = page.raster_view  # a live view
    test = source_report.base_run(page.source).test.until(16)
    spikes = int(test.spikes_per_sample()[3])  # the counts-only test run, same sample and T
    assert spikes > 0 and len(raster.sources["spikes"].data["timestep"]) == spikes
    assert raster.figure.title.text.startswith(f"Spike raster: sample 3, T=16, {spikes} spikes")
    traces = page.traces_view[()]
    assert title(traces) == f"Membrane potential, {page.settings.layer}: sample 3"
    assert all(len(c.data) == 16 for c in traces.Curve)


def test_policy_knobs_replay_without_resimulating(page, monkeypatch):
    import workbench.network

    def no_simulation(*args, **kwargs):
        raise AssertionError("a policy knob re-simulated")

    monkeypatch.setattr(workbench.network, "simulate", no_simulation)
    monkeypatch.setattr(source_report, "simulate", no_simulation)
    s = page.settings
    s.param.update(policy="Dynamic Confidence", timesteps=32, threshold=0.5)
    low = page.outcome(s.policy, s.threshold, s.epsilon, s.timesteps)
    s.threshold = 0.99
    high = page.outcome(s.policy, s.threshold, s.epsilon, s.timesteps)
    assert high.mean_steps > low.mean_steps  # a stricter c* waits longer
    point = page.policy_view.sources["point"].data  # a live view: drawn in place
    assert np.allclose([point["x"][0], point["y"][0]], [high.mean_steps, high.accuracy])
    assert "c*=0.990" in page.policy_view.figure.title.text
    s.policy = "AOI Top-K cutoff"
    assert "ε=0.01" in page.policy_view.figure.title.text


def test_msat_is_searched_on_demand(page):
    assert title(page.msat_view[()]) == "MSAT: not searched yet"
    page.settings.trials = 2
    page.search_msat()
    page.wait()
    shown = page.msat_view[()]
    rows = source_report.msat(page.source, 2)  # the same search (seeded): the same curves
    msat = rows[rows["mode"] == "MSAT (searched)"]
    drawn = shown.Curve.MSAT_left_parenthesis_searched_right_parenthesis
    assert np.allclose(drawn.dimension_values("accuracy"), msat.accuracy)
    assert title(shown).startswith("Accuracy vs T, MSAT searched vs constant θ (2 trials)")


def test_snn_source_from_python_has_no_msat_view(factory):
    from widgets.pages.source import SourcePage

    torch.manual_seed(0)
    snn = SpikingNetwork([("fc1", nn.Linear(4, 6)), ("spike1", SpikingCell(0.3)),
                          ("fc2", nn.Linear(6, 2))], (4,))
    x = torch.rand(60, 4)
    data = {"calibration": (x[:40], (x[:40, 1] > x[:40, 0]).long()),
            "test": (x[40:], (x[40:, 1] > x[40:, 0]).long())}
    page = workbench.open(snn, data, T=12)
    assert isinstance(page, SourcePage) and page.source.ann is None
    assert page.settings.param.timesteps.bounds == (1, 12)
    assert page.settings.param.sample.bounds == (0, 19)
    assert page.settings.layer == "spike1"
    section = page._msat_section()
    assert isinstance(section, pn.pane.Markdown) and "no MSAT view" in section.object
    assert not [e for e in page.accuracy_view[()] if isinstance(e, hv.HLine)]  # no ANN line


def menu(template) -> pn.widgets.RadioButtonGroup:
    return next(o for o in template.sidebar if isinstance(o, pn.widgets.RadioButtonGroup))


def test_serve_model_puts_your_model_first(factory, monkeypatch):
    import widgets.app
    import widgets.pages.source

    served, loads = [], []
    # the method pages stubbed: building them loads (or trains) their own models
    monkeypatch.setattr(widgets.app, "PAGES", {name: lambda: pn.pane.Markdown("stub")
                                               for name in widgets.app.PAGES})
    monkeypatch.setattr(pn, "serve", lambda app, **kwargs: served.append(app))
    monkeypatch.setattr(widgets.pages.source, "load_source",
                        lambda *args: loads.append(args) or load_source(*args))
    assert main(["serve", "--model", f"{factory}:ann", "--port", "0"]) == 0
    [app] = served
    template = app()
    assert menu(template).options == ["Your model", *widgets.app.PAGES]
    [shown] = template.main[0].objects
    shown.get_root()  # the Bokeh model tree builds
    [table] = shown.select(pn.pane.DataFrame)
    assert table.object.policy.tolist()[:3] == ["fixed T=32", "Dynamic Confidence",
                                                "AOI Top-K cutoff (ε=0.01)"]
    texts = [m.object for m in shown.select(pn.pane.Markdown)]
    assert any(t.startswith(f"**{factory}:ann** on **data**: T = 32") for t in texts)
    assert shown.select(pn.widgets.Button)[0].label == "Search MSAT thresholds"  # an ANN source
    # a second session: its own page and knobs over the source loaded once, before serving
    other = app().main[0].objects[0]
    assert loads == [(f"{factory}:ann", None)]
    assert other.select(pn.widgets.IntSlider)[0] is not shown.select(pn.widgets.IntSlider)[0]
    # a method page on its own model says so
    menu(template).value = "Fewer timesteps (IIR)"
    [banner, page] = template.main[0].objects[0].objects
    assert isinstance(banner, pn.pane.Alert) and "IIR chain" in banner.object
    assert page.object == "stub"


def test_serve_with_data_needs_a_model(capsys):
    assert main(["serve", "--data", "digits", "--port", "0"]) == 2
    assert "--data goes with --model" in capsys.readouterr().err


def test_url_parameters_cannot_choose_a_model_source(factory, monkeypatch):
    import widgets.app
    import widgets.pages.source

    def refuse(*args, **kwargs):
        raise AssertionError("a model source was loaded from the browser's request")

    monkeypatch.setattr(widgets.pages.source, "load_source", refuse)
    monkeypatch.setattr(widgets.app, "load_shared", refuse)
    arguments = {"page": [b"Your model"], "model": [f"{factory}:ann".encode()],
                 "data": [b"digits"], "source": [b"/etc/passwd"]}
    monkeypatch.setattr(type(pn.state), "session_args", property(lambda self: arguments))
    monkeypatch.setattr(widgets.app, "PAGES", {"Stub": lambda: pn.pane.Markdown("stub")})
    template = widgets.app.create_app()
    assert menu(template).options == ["Stub"] and menu(template).value == "Stub"

"""The Explore page without a browser: its form makes knob-checked specs, it shows a finished
session (front, table, matrix) and links a trial to its method's page; URL parameters set a
page's settings only through their declared types."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import holoviews as hv
import panel as pn
import pytest
from test_explore import TOY, new

from widgets.pages.basics import BasicsSettings
from widgets.pages.explore import ExplorePage, method_link
from widgets.url_settings import settings_from_url
from workbench import explore
from workbench.errors import WorkbenchError
from workbench.methods import registry

hv.extension("bokeh")


def test_url_parameters_set_only_known_settings_of_their_declared_type():
    args = {"balance": [b"percentile"], "initial": [b"half"], "threshold_scale": [b"9.0"],
            "timesteps": [b"12"], "__class__": [b"x"], "memory": [b"yes"], "name": [b"evil"]}
    # 9.0 is outside the θ scale's bounds and "yes" is not a Boolean: both ignored
    assert settings_from_url(BasicsSettings, args) == {"balance": "percentile", "initial": "half",
                                                       "timesteps": 12}


def test_a_trial_links_to_its_setting_on_its_method_page():
    link = method_link("energy", {"T": 24, "memory": False})
    query = parse_qs(urlparse(link).query)
    assert query == {"page": ["Spiking basics"], "timesteps": ["24"], "memory": ["False"]}
    assert method_link("iir", {"dataset": "digits"}) is None


@pytest.fixture
def page_store(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path))
    monkeypatch.setitem(registry.STUDIES, "toy", TOY)
    store = explore.store.default_storage()
    new(store, name="one", budget=3)
    new(store, name="two", budget=2)
    for name in ("one", "two"):
        explore.run(name, store, explore.INLINE, progress=False)
    return store


def test_the_page_shows_a_session_its_front_and_a_second_one_overlaid(page_store):
    page = ExplorePage()
    assert page.settings.param.session.objects == ["one", "two"]
    page.settings.session = "one"
    assert len(page.table.value) == 3 and "accuracy" in page.table.value.columns
    assert "3 complete, 0 failed" in page.counts.object
    front = page.front_view()
    assert isinstance(front, hv.Overlay)
    assert front.get(0).data.shape[0] == 3  # every trial a point
    page.settings.compare = "two"
    both = page.front_view()
    assert "one vs two" in both.opts.get().kwargs["title"]
    assert page._csv().getvalue().count("\n") == 4  # header and three trials
    pn.panel(page).get_root()  # the whole layout builds


def test_the_form_makes_a_knob_checked_spec(page_store):
    page = ExplorePage()
    page.chosen_study.value = "energy"
    page.fields.value = ["T", "memory"]
    page.ranges.objects[0].value = (4, 12)
    page.ranges.objects[1].value = [False]
    page.sampler.value, page.budget.value, page.seeds.value = "grid", 3, "0,1"
    page.session_name.value = "from-the-page"
    spec = page.spec()
    assert (spec.vary[0].low, spec.vary[0].high, spec.vary[1].choices) == (4, 12, (False,))
    assert spec.seeds == (0, 1) and spec.trials_planned == 6
    page.seeds.value = "zero"
    with pytest.raises(WorkbenchError, match="seeds are whole numbers"):
        page.spec()
    page.seeds.value = "0"
    page.session_name.value = "one"
    page._start()  # an existing name: the page says so and starts nothing
    assert page.message.alert_type == "danger" and "exists already" in page.message.object

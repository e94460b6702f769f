"""'Your model' served for a factory source (``workbench serve --model``), in headless Chromium."""

import os
import shutil
import textwrap

import pytest
from test_sources import FACTORY

from widgets.browser import (
    CHROMIUM,
    TITLES,
    browser_page,
    press_slider,
    served_app,
    titles,
    wait_title,
)

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def source_url(tmp_path_factory):
    if not shutil.which(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium")
    folder = tmp_path_factory.mktemp("served_models")
    (folder / "served_models.py").write_text(textwrap.dedent(FACTORY))
    path = os.pathsep.join(p for p in (str(folder), os.environ.get("PYTHONPATH")) if p)
    with served_app("--no-prepare", "--model", "served_models:ann", timeout=300,
                    env={"PYTHONPATH": path}) as url:
        yield url


def test_your_model_page_redraws_on_its_knobs(source_url):
    with browser_page(source_url) as page:
        wait_title(page, "Accuracy vs timestep, served_models:ann: ", timeout_ms=120_000)
        wait_title(page, "Spike raster: sample 0, T=32, ")
        wait_title(page, "Dynamic Confidence at c*=")
        assert page.get_by_text("Your model").count() >= 1
        assert "MSAT: not searched yet" in titles(page)  # an ANN source: searched on demand
        # the first slider is T: one step less redraws raster, energy and accuracy
        [(raster, _), _] = press_slider(page, 0, "ArrowLeft", "Spike raster: sample 0, T=31",
                                        "Energy per inference, T=31")
        page.wait_for_function(f"() => ({TITLES})().some(t => t.startsWith('Accuracy vs "
                               "timestep') && t.endsWith(' at T=31'))", timeout=60_000)
        assert int(raster.split(", ")[2].split()[0]) >= 0  # "N spikes"
        assert not page.errors, page.errors


def test_a_method_page_says_it_shows_its_own_model(source_url):
    with browser_page(source_url, page_title="Spiking basics") as page:
        page.get_by_text("This page shows the workbench's own model").first.wait_for(
            timeout=120_000)
        assert page.get_by_text("digits_ann").count() >= 1
        wait_title(page, "Spike raster: θ×1.00")

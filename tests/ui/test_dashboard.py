"""The served dashboard in a real headless Chromium."""

import re
import shutil

import pytest

from widgets.browser import (
    CHROMIUM,
    browser_page,
    press_slider,
    served_app,
    titles,
    wait_new_title,
    wait_title,
)

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def app_url():
    if not shutil.which(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium")
    with served_app("--no-prepare") as url:
        yield url


def spikes_in(title: str) -> int:
    return int(re.search(r"(\d+) spikes", title).group(1))


def test_threshold_slider_redraws_raster(app_url, tmp_path):
    with browser_page(app_url) as page:
        first = wait_title(page, "Spike raster: θ×1.00")
        assert page.get_by_text("Spiking basics").count() >= 1
        before = page.screenshot()
        [(raised, _)] = press_slider(page, 0, "ArrowRight", "Spike raster: θ×1.05")
        [(again, _), _, _] = press_slider(page, 0, "ArrowRight", "Spike raster: θ×1.10",
                                          "Test accuracy vs timestep, θ×1.10",
                                          "Energy per inference, T=32")
        # higher thresholds: fewer spikes in the same sample and the same T
        assert spikes_in(first) > spikes_in(again)
        assert spikes_in(raised) >= spikes_in(again)
        assert any(t.startswith("Membrane potential, spike1: θ×1.10") for t in titles(page))
        assert any(t.startswith("Energy per inference, T=32") for t in titles(page))
        assert any(t == "SNN energy by layer on loihi" for t in titles(page))
        after = page.screenshot(path=str(tmp_path / "basics.png"), full_page=True)
        assert after != before
        assert not page.errors, page.errors


def test_timestep_slider_changes_accuracy_title(app_url):
    with browser_page(app_url) as page:
        wait_title(page, "Test accuracy vs timestep")
        [(title, _), (accuracy, _), _] = press_slider(
            page, 1, "ArrowLeft", "Spike raster: θ×1.00, T=31", "Test accuracy vs timestep",
            "Energy per inference, T=31")
        assert "T=31" in title
        wait_title(page, "Test accuracy vs timestep, θ×1.00: ")
        assert any(t.endswith("at T=31") for t in titles(page))
        assert not page.errors, page.errors


def test_stopping_early_page_replays_policies(app_url):
    with browser_page(app_url, page_title="Stopping early") as page:
        first = wait_title(page, "Dynamic Confidence at c*=", timeout_ms=120_000)
        value = float(re.search(r"c\*=([0-9.]+)", first).group(1))
        assert any(t.startswith("Stop times: median") for t in titles(page))
        assert any(t.startswith("Energy per inference") for t in titles(page))
        handle = page.locator(".noUi-handle").first  # c* (its slider snaps to 0.005 steps)
        handle.focus()
        handle.press("ArrowRight")
        title = wait_new_title(page, "Dynamic Confidence at c*=", first)
        assert float(re.search(r"c\*=([0-9.]+)", title).group(1)) > value
        # a higher confidence threshold never exits earlier
        steps = [float(re.search(r"at ([0-9.]+) mean steps", t).group(1)) for t in (first, title)]
        assert steps[1] >= steps[0]
        wait_title(page, "Sample 0 exits at step")
        assert not page.errors, page.errors


def test_msat_page_moves_the_threshold_constants(app_url):
    with browser_page(app_url, page_title="Adaptive thresholds (MSAT)") as page:
        first = wait_title(page, "Accuracy vs T, MSAT (θ×", timeout_ms=180_000)
        alpha = float(re.search(r"alpha=([0-9.]+)", first).group(1))
        assert any(t.startswith("Spikes of inactivated neurons") for t in titles(page))
        assert any(t.startswith("Membrane and threshold, spike2") for t in titles(page))
        handle = page.locator(".noUi-handle").first  # the α slider
        handle.focus()
        handle.press("ArrowRight")
        title = wait_new_title(page, "Accuracy vs T, MSAT (θ×", first)
        assert float(re.search(r"alpha=([0-9.]+)", title).group(1)) > alpha
        assert not page.errors, page.errors


def test_iir_page_shows_stages_and_cancels_a_retrain(app_url):
    with browser_page(app_url, page_title="Fewer timesteps (IIR)") as page:
        wait_title(page, "Accuracy and energy along the IIR chain (digits)", timeout_ms=240_000)
        first = wait_title(page, "IIR T=1: test accuracy")
        page.locator("select").nth(1).select_option("random_init_T1")
        wait_title(page, "random init, trained at T=1: test accuracy")
        assert any(t.startswith("Firing rates, random init") for t in titles(page))
        # the stored verdicts: collapsed under their tally, drawn as a table once opened
        from widgets.claims_view import stored_verdicts

        expected = stored_verdicts("iir").table["verdict"].iloc[0]
        verdict = page.locator("td", has_text=re.compile(f"^{expected}$")).first
        assert not verdict.is_visible()
        page.get_by_text("Paper claims over the stored seeds: ").first.click()
        verdict.wait_for(state="visible", timeout=30_000)
        page.get_by_role("button", name="Retrain the chain").click()
        page.get_by_text("Retraining").first.wait_for(timeout=30_000)
        page.get_by_role("button", name="Cancel").click()
        page.get_by_text("Cancelled: the cached models are unchanged.").wait_for(timeout=60_000)
        assert first.startswith("IIR T=1")
        assert not page.errors, page.errors


def test_hybrid_page_plays_a_sequence_and_changes_the_init_rate(app_url):
    with browser_page(app_url, page_title="ANN-initialized SNN (pose)") as page:
        first = wait_title(page, "t = 110 ms, hybrid ANN-SNN", timeout_ms=600_000)
        assert re.search(r"\d+\.\d+ px \(sequence 0\)", first)
        wait_title(page, "Error over time, hybrid ANN-SNN: mean")
        wait_title(page, "Error per step inside the window (100 Hz SNN, init at 10 Hz)")
        wait_title(page, "Membrane potential, lif4 (hybrid ANN-SNN): mean jump")
        energy = wait_title(page, "Energy per second of sequence: hybrid ANN-SNN / ANN at 100 Hz")
        assert float(energy.split("= ")[1].split(" ")[0]) < 1.0  # cheaper than the ANN at 100 Hz
        # the player's slider steps through the sequence
        page.locator("input[type=range]").first.focus()
        page.keyboard.press("ArrowRight")
        wait_title(page, "t = 120 ms, hybrid ANN-SNN")
        # a lower initialization rate: windows of 20 steps, error and energy redrawn
        errors = wait_title(page, "Error over time, hybrid ANN-SNN")
        page.locator("select").first.select_option("5.0")
        assert wait_new_title(page, "Error over time, hybrid ANN-SNN", errors,
                              timeout_ms=120_000).endswith("init every 200 ms")
        wait_title(page, "Error per step inside the window (100 Hz SNN, init at 5 Hz)")
        cheaper = wait_new_title(page, "Energy per second of sequence: hybrid ANN-SNN", energy)
        assert float(cheaper.split("= ")[1].split(" ")[0]) < float(energy.split("= ")[1].split(" ")[0])
        assert not page.errors, page.errors


def test_explore_page_shows_a_session_and_opens_a_trial_on_its_page(app_url):
    """A finished session in the served app's store: its front is drawn, a click on a trial
    gives the link, and the link opens the method's page at that setting."""
    from workbench import explore
    from workbench.explore.spec import Dimension, SessionSpec

    store = explore.open_storage()  # the app's store: the same cache folder
    name = "browser-energy"
    if name not in explore.session_names(store):
        explore.create(SessionSpec(name, "energy", (Dimension("T", choices=(12, 20)),),
                                   sampler="grid", budget=2), store)
    explore.run(name, None, explore.INLINE, progress=False)
    with browser_page(app_url, page_title="Explore") as page:
        wait_title(page, f"Pareto front of {name}: ", timeout_ms=120_000)
        page.locator(".tabulator-row").first.click()
        link = page.get_by_role("link", name="open this setting on its page")
        link.wait_for(timeout=30_000)
        href = link.get_attribute("href")
        assert "page=Spiking+basics" in href and "timesteps=" in href
        T = int(re.search(r"timesteps=(\d+)", href).group(1))
        assert T in (12, 20)
        page.goto(app_url + href)
        wait_title(page, f"Spike raster: θ×1.00, T={T},", timeout_ms=120_000)
        assert not page.errors, page.errors

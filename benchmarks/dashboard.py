"""Median knob→repaint latency of every dashboard page in a real browser.

Serves the app on loopback, opens each page in headless Chromium, moves one knob N times (always
to a new value, so every awaited plot title is new) and prints, per view, the latency from the
input event (as the browser stamps it) to two animation frames after the new plot title exists,
measured in the page (Playwright's round trips are not part of what a user waits for):

- Spiking basics, θ scale: the raster re-simulates one sample (target 500 ms); the accuracy
  curve and energy wait for the whole test split on the page's worker (1 s, progress shown).
- Stopping early, c*: the operating point replays the recorded run (150 ms); histogram, exits,
  raster and energy follow from the worker (500 ms).
- Adaptive thresholds (MSAT), α: the raster re-simulates one sample (500 ms); the accuracy
  curve shows the test split's first steps, then all 64, from the worker (1 s each, progress
  shown).
- Fewer timesteps (IIR), the stage shown: the firing rates replay the cached stage (150 ms);
  the raster re-simulates one sample, and the energy follows (500 ms).
- ANN-initialized SNN (pose), the player's step: replays the cached run (150 ms).
- Explore (a 3-trial energy session made first), the front's y axis: a view knob (150 ms).
- Your model (``workbench serve --model zoo:digits_ann``, a second app): c* replays the
  operating point (150 ms); T cuts the recorded sample's raster (500 ms).

    WORKBENCH_THREADS=1 python benchmarks/dashboard.py [--presses 10] [--pages basics,msat]
"""

from __future__ import annotations

import argparse
import re
import statistics
from collections.abc import Callable

from widgets.browser import TITLES, browser_page, served_app, titles, wait_new_title, wait_title
from widgets.pages.early_exit import SHOWN_SAMPLES as SHOWN
from widgets.pages.msat import FIRST_T
from workbench.methods.iir_study import LABELS

# In the page: the time of the first input event after arming (the key press or the select's
# change, as the browser stamps it), and the time two animation frames after a new title exists
# (the frame that paints it has then been drawn). Playwright's own round trips stay outside.
ARM = """() => {
  if (!window.__knobArmed) {
    const stamp = e => { if (window.__knobAt === null) window.__knobAt = e.timeStamp; };
    for (const kind of ["keydown", "input", "change"])
      window.addEventListener(kind, stamp, {capture: true});
    window.__knobArmed = true;
  }
  window.__knobAt = null;
}"""
PAINTED = """() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(
  () => r(performance.now() - window.__knobAt))))"""


def timed(page, act: Callable[[], None], *prefixes: str, old: str = "") -> list[float]:
    """``act()``, then, per prefix in turn, ms from the input event to the paint of a new plot
    title with that prefix (measured in the page)."""
    page.evaluate(ARM)
    act()
    seen = []
    for prefix in prefixes:
        wait_new_title(page, prefix, old, timeout_ms=120_000)
        seen.append(page.evaluate(PAINTED))
    return seen


def arrow(page, locator: str, index: int = 0, key: str = "ArrowRight") -> Callable[[], None]:
    handle = page.locator(locator).nth(index)
    return lambda: (handle.focus(), handle.press(key))


def report(label: str, views: dict[str, int], rows: list[list[float]]) -> None:
    for (view, target), values in zip(views.items(), zip(*rows, strict=True), strict=True):
        median = statistics.median(values)
        print(f"{label} → {view}: median {median:.0f} ms (target {target} ms"
              f"{'' if median <= target else ', MISSED'}), max {max(values):.0f} ms, "
              f"all {[round(v) for v in values]}")


def basics(page, presses: int) -> None:
    wait_title(page, "Spike raster: θ×1.00", timeout_ms=180_000)
    rows = [timed(page, arrow(page, ".noUi-handle"), f"Spike raster: θ×{1 + 0.05 * i:.2f}",
                  f"Test accuracy vs timestep, θ×{1 + 0.05 * i:.2f}") for i in range(1, presses + 1)]
    report("Spiking basics: θ scale", {"raster": 500, "accuracy curve + energy": 1000}, rows)


def early_exit(page, presses: int) -> None:
    first = wait_title(page, "Dynamic Confidence at c*=", timeout_ms=180_000)
    arrow(page, ".noUi-handle")()  # untimed: the slider snaps c* to its 0.005 grid
    snapped = wait_new_title(page, "Dynamic Confidence at c*=", first)
    start = float(re.search(r"c\*=([0-9.]+)", snapped).group(1))
    rows = [timed(page, arrow(page, ".noUi-handle"),
                  f"Dynamic Confidence at c*={start + 0.005 * i:.3f}",
                  f"Confidence of {SHOWN} test samples and where they exit: "
                  f"c*={start + 0.005 * i:.3f}") for i in range(1, presses + 1)]
    report("Stopping early: c*", {"operating point": 150,
                                  "histogram, exits, raster, energy": 500}, rows)


def msat(page, presses: int) -> None:
    rows = []
    wait_title(page, "Accuracy vs T, MSAT (θ×", timeout_ms=300_000)
    for _ in range(presses):
        # α is in every title: the raster (one sample, live), the accuracy curve's first
        # 16 steps (its title says "so far"), then the whole curve
        before = set(titles(page))
        page.evaluate(ARM)
        arrow(page, ".noUi-handle")()
        row = []
        for test in ("t.startsWith('Spike raster, MSAT (θ×')",
                     "t.startsWith('Accuracy vs T, MSAT (θ×')",
                     "t.startsWith('Accuracy vs T, MSAT (θ×') && !t.includes('so far')"):
            page.wait_for_function(
                f"old => ({TITLES})().some(t => {test} && !old.includes(t))", arg=list(before),
                timeout=120_000, polling="raf")
            row.append(page.evaluate(PAINTED))
        rows.append(row)
    report("Adaptive thresholds: α", {"raster (one sample re-simulated)": 500,
                                      f"accuracy curve, T ≤ {FIRST_T} (first answer)": 1000,
                                      "accuracy curve, T ≤ 64 (whole run)": 1000}, rows)


def iir(page, presses: int) -> None:
    wait_title(page, "IIR T=1: test accuracy", timeout_ms=300_000)
    stages = ["T2", "T1"]
    rows = []
    for i in range(presses):
        stage = stages[i % 2]
        rows.append(timed(page, lambda s=stage: page.locator("select").nth(1).select_option(s),
                          f"Firing rates, {LABELS[stage]}:", f"{LABELS[stage]}: test accuracy"))
    report("Fewer timesteps: stage", {"firing rates": 150, "raster (one sample re-simulated), "
                                      "energy": 500}, rows)


def pose(page, presses: int) -> None:
    first = wait_title(page, "t = 110 ms, hybrid ANN-SNN", timeout_ms=600_000)
    rows = [timed(page, arrow(page, "input[type=range]"), f"t = {110 + 10 * i} ms, hybrid",
                  old=first) for i in range(1, presses + 1)]
    report("ANN-initialized SNN: player step", {"player": 150}, rows)


EXPLORED = "bench-energy"  # the session the Explore page shows (made before serving)


def explored() -> None:
    """A finished 3-trial session of the energy study in the app's store."""
    from workbench import explore
    from workbench.explore.spec import Dimension, SessionSpec

    store = explore.open_storage()
    if EXPLORED not in explore.session_names(store):
        explore.create(SessionSpec(EXPLORED, "energy", (Dimension("T", choices=(8, 16, 32)),),
                                   sampler="grid", budget=3), store)
    explore.run(EXPLORED, None, explore.INLINE, progress=False)


def explore_page(page, presses: int) -> None:
    prefix = f"Pareto front of {EXPLORED}: "
    title = wait_title(page, prefix, timeout_ms=120_000)
    current = title.split("(")[-1].split(" vs ")[0]  # the title ends "(y vs x)"
    # the axis selectors list the objectives: x comes first, then y
    selects = page.locator("select")
    axes = [selects.nth(i) for i in range(selects.count())
            if current in selects.nth(i).locator("option").all_text_contents()]
    y = axes[1]
    other = next(o for o in y.locator("option").all_text_contents() if o != current)
    rows = []
    for i in range(presses):
        rows.append(timed(page, lambda t=(other, current)[i % 2]: y.select_option(t), prefix,
                          old=title))
        title = next(t for t in titles(page) if t.startswith(prefix))
    report("Explore: front's y axis", {"front": 150}, rows)


def your_model(page, presses: int) -> None:
    first = wait_title(page, "Dynamic Confidence at c*=", timeout_ms=300_000)
    arrow(page, ".noUi-handle", 1)()  # untimed: the slider snaps c* to its 0.005 grid
    snapped = wait_new_title(page, "Dynamic Confidence at c*=", first)
    start = float(re.search(r"c\*=([0-9.]+)", snapped).group(1))
    rows = [timed(page, arrow(page, ".noUi-handle", 1), f"Dynamic Confidence at c*="
                  f"{start + 0.005 * i:.3f}") for i in range(1, presses + 1)]
    report("Your model: c*", {"operating point": 150}, rows)
    T = int(re.search(r"T=(\d+)", wait_title(page, "Spike raster: sample 0, T=")).group(1))
    rows = [timed(page, arrow(page, ".noUi-handle", 0, "ArrowLeft"),
                  f"Spike raster: sample 0, T={T - i},") for i in range(1, presses + 1)]
    report("Your model: T", {"raster (the recorded sample cut at T)": 500}, rows)


PAGES = {"basics": ("Spiking basics", basics), "early-exit": ("Stopping early", early_exit),
         "msat": ("Adaptive thresholds (MSAT)", msat), "iir": ("Fewer timesteps (IIR)", iir),
         "pose": ("ANN-initialized SNN (pose)", pose), "explore": ("Explore", explore_page)}
MODEL = "zoo:digits_ann"  # the source of 'Your model' (served by a second app)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presses", type=int, default=10)
    parser.add_argument("--pages", default=",".join([*PAGES, "your-model"]),
                        help=f"comma-separated, of: {', '.join(PAGES)}, your-model")
    args = parser.parse_args()
    names = args.pages.split(",")
    if "explore" in names:
        explored()
    with served_app(timeout=300) as url:
        for name in (n for n in names if n in PAGES):
            title, measure = PAGES[name]
            with browser_page(url, page_title=title) as page:
                measure(page, args.presses)
                if page.errors:
                    print(f"{title}: JavaScript errors:", page.errors)
    if "your-model" in names:
        with served_app("--no-prepare", "--model", MODEL, timeout=300) as url, \
                browser_page(url) as page:
            your_model(page, args.presses)
            if page.errors:
                print("Your model: JavaScript errors:", page.errors)


if __name__ == "__main__":
    main()

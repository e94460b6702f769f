"""Median slider→repaint latency of the 'Spiking basics' threshold slider in a real browser.

Serves the app on loopback, opens it in headless Chromium, presses the threshold slider's
arrow key N times (always to a new value, so every awaited plot title is new) and prints two
latencies, each until the new plot title exists and two animation frames have passed: the
raster (one sample re-simulated), and the accuracy curve (the whole test split re-simulated in
a worker thread; the energy views redraw with it). Then the same for the c* slider of the
"Stopping early" page, which only replays the cached trajectory (target: median <= 150 ms).
Includes Playwright's own overhead.

    python benchmarks/dashboard.py [--presses 10] [--screenshot shot.png]
"""

from __future__ import annotations

import argparse
import re
import statistics

from widgets.browser import browser_page, press_slider, served_app, wait_title
from widgets.pages.early_exit import SHOWN_SAMPLES as SHOWN


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presses", type=int, default=10)
    parser.add_argument("--screenshot", default=None)
    args = parser.parse_args()
    with served_app() as url, browser_page(url) as page:
        wait_title(page, "Spike raster: θ×1.00")
        raster, curve, scale = [], [], 1.0
        for _ in range(args.presses):
            scale = round(scale + 0.05, 2)
            (_, ms_raster), (_, ms_curve) = press_slider(
                page, 0, "ArrowRight", f"Spike raster: θ×{scale:.2f}",
                f"Test accuracy vs timestep, θ×{scale:.2f}")
            raster.append(ms_raster)
            curve.append(ms_curve)
        if args.screenshot:
            page.screenshot(path=args.screenshot, full_page=True)
        for name, values in (("raster", raster), ("accuracy curve + energy", curve)):
            print(f"threshold slider→{name} repaint: median {statistics.median(values):.0f} ms, "
                  f"max {max(values):.0f} ms, all {[round(x) for x in values]}")
        print("target: median <= 500 ms")
    with served_app() as url, browser_page(url, page_title="Stopping early") as page:
        title = wait_title(page, "Dynamic Confidence at c*=", timeout_ms=120_000)
        value = float(re.search(r"c\*=([0-9.]+)", title).group(1))
        point, everything = [], []
        for _ in range(args.presses):
            value = round(value + 0.005, 3)
            (_, ms_point), (_, ms_all) = press_slider(
                page, 0, "ArrowRight", f"Dynamic Confidence at c*={value:.3f}",
                f"Confidence of {SHOWN} test samples and where they exit: c*={value:.3f}")
            point.append(ms_point)
            everything.append(ms_all)
        for name, values in (("operating point", point),
                             ("histogram, exits, raster, energy", everything)):
            print(f"Stopping early: c* slider→{name} repaint (replay): median "
                  f"{statistics.median(values):.0f} ms, max {max(values):.0f} ms, "
                  f"all {[round(x) for x in values]}")
        print("target: median <= 150 ms")
        if page.errors:
            print("JavaScript errors:", page.errors)


if __name__ == "__main__":
    main()

"""Median slider→repaint latency of the 'Spiking basics' threshold slider in a real browser.

Serves the app on loopback, opens it in headless Chromium, presses the threshold slider's
arrow key N times (always to a new value, so every awaited plot title is new) and prints the
latency until the raster's new title exists and two animation frames have passed. Includes
the re-simulation of the test split and Playwright's own overhead.

    python benchmarks/dashboard.py [--presses 10] [--screenshot shot.png]
"""

from __future__ import annotations

import argparse
import statistics

from widgets.browser import browser_page, press_slider, served_app, wait_title


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presses", type=int, default=10)
    parser.add_argument("--screenshot", default=None)
    args = parser.parse_args()
    with served_app() as url, browser_page(url) as page:
        wait_title(page, "Spike raster: θ×1.00")
        latencies, scale = [], 1.0
        for _ in range(args.presses):
            scale = round(scale + 0.05, 2)
            _, ms = press_slider(page, 0, "ArrowRight", f"Spike raster: θ×{scale:.2f}")
            latencies.append(ms)
        if args.screenshot:
            page.screenshot(path=args.screenshot, full_page=True)
        print("threshold slider→repaint ms:", [round(x) for x in latencies])
        print(f"median {statistics.median(latencies):.0f} ms, max {max(latencies):.0f} ms "
              "(target: median <= 500 ms)")
        if page.errors:
            print("JavaScript errors:", page.errors)


if __name__ == "__main__":
    main()

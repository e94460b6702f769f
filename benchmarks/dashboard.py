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


def time_presses(page, presses: int, prefixes) -> list[list[float]]:
    """Press the first slider's right arrow ``presses`` times; ``prefixes(i)`` names the new
    plot titles awaited after press i. Returns, per prefix, the latencies in ms."""
    latencies = None
    for i in range(presses):
        seen = press_slider(page, 0, "ArrowRight", *prefixes(i))
        latencies = latencies or [[] for _ in seen]
        for series, (_, ms) in zip(latencies, seen, strict=True):
            series.append(ms)
    return latencies


def report(label: str, names: tuple[str, ...], latencies: list[list[float]], target: int) -> None:
    for name, values in zip(names, latencies, strict=True):
        print(f"{label}→{name} repaint: median {statistics.median(values):.0f} ms, "
              f"max {max(values):.0f} ms, all {[round(x) for x in values]}")
    print(f"target: median <= {target} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presses", type=int, default=10)
    parser.add_argument("--screenshot", default=None)
    args = parser.parse_args()
    with served_app() as url, browser_page(url) as page:
        wait_title(page, "Spike raster: θ×1.00")
        latencies = time_presses(page, args.presses, lambda i: (
            f"Spike raster: θ×{1 + 0.05 * (i + 1):.2f}",
            f"Test accuracy vs timestep, θ×{1 + 0.05 * (i + 1):.2f}"))
        if args.screenshot:
            page.screenshot(path=args.screenshot, full_page=True)
        report("Spiking basics: threshold slider", ("raster", "accuracy curve + energy"),
               latencies, 500)
    with served_app() as url, browser_page(url, page_title="Stopping early") as page:
        title = wait_title(page, "Dynamic Confidence at c*=", timeout_ms=120_000)
        start = float(re.search(r"c\*=([0-9.]+)", title).group(1))
        latencies = time_presses(page, args.presses, lambda i: (
            f"Dynamic Confidence at c*={start + 0.005 * (i + 1):.3f}",
            f"Confidence of {SHOWN} test samples and where they exit: "
            f"c*={start + 0.005 * (i + 1):.3f}"))
        report("Stopping early: c* slider (replay)",
               ("operating point", "histogram, exits, raster, energy"), latencies, 150)
        if page.errors:
            print("JavaScript errors:", page.errors)


if __name__ == "__main__":
    main()

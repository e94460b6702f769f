"""A newcomer's first run, timed: ``workbench serve`` (what ``make run`` does after installing; it
prepares the other pages in the background), and each dashboard page opened in headless Chromium
until its first plot is drawn. Run it on an empty cache to time a first run::

    WORKBENCH_CACHE=$(mktemp -d) python benchmarks/first_run.py [--page TITLE ...]
"""

from __future__ import annotations

import argparse
import time

from widgets.browser import browser_page, served_app, wait_title

# each page, and the title of a plot that exists only once the page has computed
PAGES = {"Spiking basics": "Spike raster: θ×1.00",
         "Stopping early": "Dynamic Confidence at c*=",
         "Adaptive thresholds (MSAT)": "Accuracy vs T, MSAT (θ×",
         "Fewer timesteps (IIR)": "IIR T=1: test accuracy",
         "ANN-initialized SNN (pose)": "t = 110 ms, hybrid ANN-SNN"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--page", action="append", choices=list(PAGES),
                        help="time only these pages, in this order (default: all)")
    args = parser.parse_args()
    start = time.perf_counter()

    def mark(what: str) -> None:
        print(f"{time.perf_counter() - start:7.1f} s  {what}", flush=True)

    with served_app(timeout=600) as url:
        mark(f"dashboard served at {url}")
        for title in args.page or PAGES:
            with browser_page(url, page_title=title) as page:
                wait_title(page, PAGES[title], timeout_ms=600_000)
                mark(f"page drawn: {title}" + (f" (JS errors: {page.errors})" if page.errors else ""))


if __name__ == "__main__":
    main()

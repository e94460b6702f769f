"""Concurrent dashboard sessions: errors, slider→repaint latency per page, server memory.

Serves the app on loopback and opens N sessions, each a separate headless Chromium context
(its own cookies, websocket and server-side session) on one page of the dashboard, spread over
the pages round robin. Once its page is shown, every session moves one knob of the page (its first
slider, three steps right, three left, ...; on the pose page, which has none, the traced-layer
selector through its options) for a bounded time and times each press until a plot
title that was not there before the press exists, plus two animation frames. Before the
concurrent phase every page is measured alone (one session) the same way, so each page's
figures under load sit beside its single-session figures (this also loads every page's shared
models before the memory baseline). Reported: errors (JavaScript errors, presses with no
repaint within the timeout, server tracebacks), median and p95 latency per page, and the
server's resident memory before the sessions, at its peak, and 60 s after each wave of sessions
closed (Panel discards a closed session's document after its unused-session lifetime): memory
that is bounded stops growing from one wave to the next.

    python benchmarks/load.py [--sessions 20] [--seconds 180] [--alone-presses 6] [--after 60]
                              [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from urllib.parse import quote

import psutil

from widgets.app import PAGES
from widgets.browser import CHROMIUM, CHROMIUM_ARGS, NEXT_FRAME, TITLES, served_app

KNOB_PAGES = [name for name in PAGES if name != "Explore"]  # Explore runs sessions, not views
# pages whose sessions move a selector (the one holding this option) instead of their first slider
SELECTORS = {"ANN-initialized SNN (pose)": "lif4"}  # the traced layer: its views replay, fast
NEW_TITLE = f"(old) => ({TITLES})().some(t => !old.includes(t))"


@dataclass
class SessionLog:
    """What one session saw: its page, press latencies (ms) and errors."""

    page: str
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


async def drive(browser, url: str, log: SessionLog, seconds: float | None, presses: int | None,
                press_timeout_ms: int, pause: float = 0.0) -> None:
    """One session: open ``log.page``, then move its first knob for ``seconds`` or ``presses``
    moves, whichever ends first, waiting ``pause`` seconds after each repaint (a person
    reading the plot; 0: the next move at once)."""
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = await context.new_page()
        page.on("pageerror", lambda e: log.errors.append(f"JavaScript: {e}"))
        # a page's first request builds it (its models load on first use): wait for that
        await page.goto(f"{url}?page={quote(log.page)}", timeout=300_000)
        await page.wait_for_function(f"() => ({TITLES})().length > 0", timeout=300_000)
        option = SELECTORS.get(log.page)
        knob = (page.locator("select", has=page.locator("option", has_text=option)) if option
                else page.locator(".noUi-handle, select")).first
        await knob.wait_for(timeout=300_000)
        slider = option is None and await page.locator(".noUi-handle").count() > 0
        if slider:
            knob = page.locator(".noUi-handle").first
        else:
            options = await knob.locator("option").count()
        until = None if seconds is None else time.monotonic() + seconds
        i = 0
        while (until is None or time.monotonic() < until) and (presses is None or i < presses):
            before = await page.evaluate(TITLES)
            if slider:
                await knob.focus()
            start = time.perf_counter()
            if slider:
                await knob.press("ArrowRight" if (i // 3) % 2 == 0 else "ArrowLeft")
            else:
                await knob.select_option(index=(i + 1) % options)
            try:
                await page.wait_for_function(NEW_TITLE, arg=before, timeout=press_timeout_ms,
                                             polling="raf")
                await page.evaluate(NEXT_FRAME)
                log.latencies.append((time.perf_counter() - start) * 1000)
            except Exception as error:  # a knob move that never repaints counts as an error
                log.errors.append(f"{log.page}, move {i}: no repaint ({type(error).__name__})")
            i += 1
            await asyncio.sleep(pause)
    except Exception as error:
        log.errors.append(f"{log.page}: {type(error).__name__}: {error}"[:300])
    finally:
        await context.close()


async def sample_rss(process: psutil.Process, peak: list[float], stop: asyncio.Event) -> None:
    while not stop.is_set():
        peak[0] = max(peak[0], rss_mib(process))
        await asyncio.sleep(0.5)


def rss_mib(process: psutil.Process) -> float:
    return process.memory_info().rss / 2**20


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(logs: list[SessionLog]) -> dict[str, tuple[int, float, float]]:
    """Per page: (presses timed, median ms, p95 ms)."""
    out = {}
    for name in KNOB_PAGES:
        values = [ms for log in logs if log.page == name for ms in log.latencies]
        if values:
            out[name] = (len(values), statistics.median(values), percentile(values, 0.95))
    return out


async def measure(url: str, server: psutil.Process, sessions: int, seconds: float,
                  alone_presses: int, after: float, rounds: int = 1, pause: float = 0.0) -> dict:
    """Single sessions, then ``rounds`` waves of ``sessions`` concurrent ones, each wave
    followed by ``after`` seconds without sessions (server RSS read after each)."""
    from playwright.async_api import async_playwright

    logs, settled = [], []
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        alone = [SessionLog(name) for name in KNOB_PAGES] if alone_presses else []
        for log in alone:  # one session at a time: the single-session reference
            await drive(browser, url, log, None, alone_presses, 60_000)
        before = rss_mib(server)
        peak, stop = [before], asyncio.Event()
        sampler = asyncio.create_task(sample_rss(server, peak, stop))
        for _ in range(rounds):
            wave = [SessionLog(KNOB_PAGES[i % len(KNOB_PAGES)]) for i in range(sessions)]
            await asyncio.gather(*(drive(browser, url, log, seconds, None, 60_000, pause)
                                   for log in wave))
            logs += wave
            await asyncio.sleep(after)  # closed sessions are discarded meanwhile
            settled.append(rss_mib(server))
        stop.set()
        await sampler
        await browser.close()
    return {"alone": alone, "logs": logs, "before": before, "peak": peak[0], "settled": settled}


# tornado logs a client that closes while the server writes to it: a browser leaving, no fault
CLIENT_GONE = ("WebSocketClosedError", "StreamClosedError")


def server_faults(log: str) -> list[str]:
    """The exception line of every traceback in the server's log, except a client gone away."""
    faults = []
    for block in log.split("Traceback (most recent call last):")[1:]:
        line = next((x for x in block.splitlines() if x and not x[0].isspace()), "")
        if not any(name in line for name in CLIENT_GONE):
            faults.append(line)
    return faults


def run(sessions: int, seconds: float, alone_presses: int, after: float, rounds: int = 1,
        pause: float = 0.0) -> dict:
    """Serve, measure, stop (``pause``: seconds each session waits after a repaint); the result
    dict also holds the server's tracebacks."""
    with tempfile.TemporaryFile() as log:
        # --no-prepare: nothing but the sessions runs beside the server (pages build on first use)
        with served_app("--no-prepare", timeout=300, log=log) as url:
            port = url.rstrip("/").rsplit(":", 1)[1]
            server = next(child for child in psutil.Process().children()
                          if port in child.cmdline())  # the `workbench serve` just started
            result = asyncio.run(measure(url, server, sessions, seconds, alone_presses, after,
                                         rounds, pause))
            result["served"] = server.is_running()
        log.seek(0)
        text = log.read().decode(errors="replace")
    result["server_errors"] = len(server_faults(text))
    result["server_log"] = text
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=180)
    parser.add_argument("--alone-presses", type=int, default=6)
    parser.add_argument("--after", type=float, default=60)
    parser.add_argument("--rounds", type=int, default=2,
                        help="waves of sessions: memory that stays bounded stops growing")
    parser.add_argument("--pause", type=float, default=0.0,
                        help="seconds a session waits after each repaint (0: moves at once)")
    args = parser.parse_args()
    result = run(args.sessions, args.seconds, args.alone_presses, args.after, args.rounds,
                 args.pause)
    errors = [e for log in result["logs"] + result["alone"] for e in log.errors]
    alone, loaded = summary(result["alone"]), summary(result["logs"])
    print(f"{args.sessions} concurrent Chromium sessions for {args.seconds:.0f} s over "
          f"{len(KNOB_PAGES)} pages; errors: {len(errors) + result['server_errors']} "
          f"({len(errors)} in sessions, {result['server_errors']} server tracebacks; a client "
          "closing mid-write is not counted)")
    for e in errors[:10]:
        print("  ", e)
    print(f"{'page':<30} {'alone: n':>9} {'median':>7} {'p95':>7} {'loaded: n':>10} "
          f"{'median':>7} {'p95':>7}   (ms, first knob → new plot title)")
    for name in KNOB_PAGES:
        a, b = alone.get(name, (0, float("nan"), float("nan"))), \
            loaded.get(name, (0, float("nan"), float("nan")))
        print(f"{name:<30} {a[0]:>9} {a[1]:>7.0f} {a[2]:>7.0f} {b[0]:>10} {b[1]:>7.0f} "
              f"{b[2]:>7.0f}")
    settled = ", ".join(f"{mib:.0f} MiB" for mib in result["settled"])
    print(f"server RSS: {result['before']:.0f} MiB before the sessions, {result['peak']:.0f} MiB "
          f"at peak, {args.after:.0f} s after each wave closed: {settled}; still serving: "
          f"{result['served']}")


if __name__ == "__main__":
    main()

"""Serve the dashboard on a free loopback port and drive it in headless Chromium.

Shared by the browser tests and ``benchmarks/dashboard.py``. Needs Debian's chromium and the
``playwright`` package (test extra); launched through ``executable_path`` because playwright
cannot download browsers offline.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote

CHROMIUM = os.environ.get("WORKBENCH_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
TITLES = """() => (window.Bokeh && Bokeh.documents || []).flatMap(
    d => [...d.all_models].filter(m => m.type === 'Title').map(m => m.text))"""
NEXT_FRAME = "() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def served_app(*options: str, timeout: float = 120.0, env: dict[str, str] | None = None,
               log: BinaryIO | None = None) -> Iterator[str]:
    """Start ``workbench serve`` (with ``options``, e.g. ``--model SOURCE``; ``env`` adds
    environment variables; its output goes to ``log``, a temporary file by default) on a free
    loopback port; yield its URL; stop it."""
    port = free_port()
    own_log = log is None
    log = tempfile.TemporaryFile() if own_log else log
    proc = subprocess.Popen([sys.executable, "-m", "workbench.cli", "serve", "--port", str(port),
                             *options], stdout=log, stderr=subprocess.STDOUT,
                            cwd=Path(__file__).resolve().parents[1], env={**os.environ, **(env or {})})
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                # one patient request: each retry would build another session of the first page
                urllib.request.urlopen(url, timeout=max(5.0, deadline - time.monotonic()))
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    raise RuntimeError("dashboard did not start:\n" + log.read().decode()) from None
                time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        if own_log:
            log.close()


@contextlib.contextmanager
def browser_page(url: str, width: int = 1400, height: int = 1000, page_title: str | None = None):
    """A fresh headless Chromium page at ``url`` (at the app page ``page_title`` if given);
    ``page.errors`` collects JS errors."""
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile, \
            sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
            viewport={"width": width, "height": height})
        page = context.pages[0] if context.pages else context.new_page()
        page.errors = []
        page.on("pageerror", lambda e: page.errors.append(str(e)))
        # the server builds the page (its first results included) before the HTML loads
        page.goto(url if page_title is None else f"{url}?page={quote(page_title)}",
                  timeout=300_000)
        try:
            yield page
        finally:
            context.close()


def titles(page) -> list[str]:
    """Texts of every Bokeh plot title currently in the page."""
    return page.evaluate(TITLES)


def wait_title(page, prefix: str, timeout_ms: int = 60_000) -> str:
    """Wait until a plot title starting with ``prefix`` exists; return it."""
    page.wait_for_function(
        f"() => ({TITLES})().some(t => t.startsWith({json.dumps(prefix)}))",
        timeout=timeout_ms, polling="raf")
    return next(t for t in titles(page) if t.startswith(prefix))


def wait_new_title(page, prefix: str, old: str, timeout_ms: int = 60_000) -> str:
    """Wait until a plot title starts with ``prefix`` and differs from ``old``; return it."""
    page.wait_for_function(
        f"() => ({TITLES})().some(t => t.startsWith({json.dumps(prefix)}) && t !== "
        f"{json.dumps(old)})", timeout=timeout_ms, polling="raf")
    return next(t for t in titles(page) if t.startswith(prefix) and t != old)


def press_slider(page, index: int, key: str, *expect_prefixes: str) -> list[tuple[str, float]]:
    """Press ``key`` on the ``index``-th slider handle; wait, in turn, for a plot title starting
    with each of ``expect_prefixes`` and two animation frames. Returns (title, ms since the
    key press) per prefix."""
    handle = page.locator(".noUi-handle").nth(index)
    handle.focus()
    start = time.perf_counter()
    handle.press(key)
    seen = []
    for prefix in expect_prefixes:
        title = wait_title(page, prefix)
        page.evaluate(NEXT_FRAME)
        seen.append((title, (time.perf_counter() - start) * 1000))
    return seen

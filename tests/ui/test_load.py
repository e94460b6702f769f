"""Concurrent sessions against one served dashboard (the short version of benchmarks/load.py)."""

import shutil
import sys
from pathlib import Path

import pytest

from widgets.browser import CHROMIUM

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import load  # noqa: E402  (benchmarks/load.py)

pytestmark = pytest.mark.browser


def test_concurrent_sessions_on_every_page_repaint_without_errors():
    if not shutil.which(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium")
    sessions = len(load.KNOB_PAGES)  # one session on each page, all at once
    # each session reads its plot for a second between moves: the suite runs this beside
    # another test worker on two cores, and sessions that move again the instant a live view
    # repaints queue their pages' slower views faster than the one event loop draws them
    # (`benchmarks/load.py` without --pause measures that back-to-back case)
    result = load.run(sessions=sessions, seconds=10, alone_presses=0, after=0, pause=1.0)
    errors = [e for log in result["logs"] for e in log.errors]
    assert not errors, errors
    assert result["server_errors"] == 0, load.server_faults(result["server_log"])
    assert result["served"]
    timed = {log.page for log in result["logs"] if log.latencies}
    assert timed == set(load.KNOB_PAGES)
    print(f"{sessions} sessions: " + ", ".join(
        f"{page} median {median:.0f} ms" for page, (_, median, _) in load.summary(result["logs"]).items()))

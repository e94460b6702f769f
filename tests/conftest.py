"""Shared fixtures: an isolated cache per test session and small trained models."""

from __future__ import annotations

import os
import sys
from collections import Counter

import pytest
import torch

# Every test run gets its own cache folder unless one is given: tests never reuse a user's
# cache and never depend on the network.
if "WORKBENCH_CACHE" not in os.environ:
    import tempfile

    os.environ["WORKBENCH_CACHE"] = tempfile.mkdtemp(prefix="workbench-test-cache-")
os.environ.setdefault("WORKBENCH_DEVICE", "cpu")
# `make test` runs two pytest-xdist workers on this 2-core machine: each gets one torch thread
# (and so do the servers and kernels it starts), since two workers with two threads each
# oversubscribe the cores and every OpenMP barrier then waits for a descheduled thread.
if "PYTEST_XDIST_WORKER" in os.environ:
    os.environ["WORKBENCH_THREADS"] = "1"
    # notebook kernels never call workbench.device.set_threads: their torch reads these
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = "1"
torch.set_num_threads(int(os.environ.get("WORKBENCH_THREADS", "0")) or 2)


@pytest.fixture(scope="session")
def digits():
    from workbench.datasets.digits import load_digits_split

    return load_digits_split()


@pytest.fixture(scope="session")
def digits_ann():
    """The zoo's default ReLU CNN (trained once per session, a few seconds)."""
    from workbench.zoo import load_model

    model, meta = load_model("digits_ann", progress=False)
    return model, meta


# pytest-xdist workers hand their fuzzing counts to the controller, which prints the summary
_WORKERS_TRIED: Counter[str] = Counter()


def _tried_here() -> dict[str, int]:
    fuzzing = sys.modules.get("fuzzing")
    return dict(fuzzing.TRIED) if fuzzing is not None else {}


def pytest_sessionfinish(session) -> None:
    if hasattr(session.config, "workeroutput"):  # an xdist worker
        session.config.workeroutput["fuzzing_tried"] = _tried_here()


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error) -> None:
    _WORKERS_TRIED.update(getattr(node, "workeroutput", {}).get("fuzzing_tried", {}))


def pytest_terminal_summary(terminalreporter) -> None:
    """How many fuzzed inputs the hypothesis tests tried, per entry point (tests/fuzzing.py)."""
    tried = _WORKERS_TRIED + Counter(_tried_here())
    if not tried:
        return
    terminalreporter.write_sep("-", f"fuzzing: {sum(tried.values())} inputs tried over "
                                    f"{len(tried)} entry points")
    for entry, count in sorted(tried.items()):
        terminalreporter.write_line(f"  {count:6d}  {entry}")

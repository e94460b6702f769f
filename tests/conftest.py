"""Shared fixtures: an isolated cache per test session and small trained models."""

from __future__ import annotations

import os
import sys

import pytest
import torch

# Every test run gets its own cache folder unless one is given: tests never reuse a user's
# cache and never depend on the network.
if "WORKBENCH_CACHE" not in os.environ:
    import tempfile

    os.environ["WORKBENCH_CACHE"] = tempfile.mkdtemp(prefix="workbench-test-cache-")
os.environ.setdefault("WORKBENCH_DEVICE", "cpu")
torch.set_num_threads(2)


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


def pytest_terminal_summary(terminalreporter) -> None:
    """How many fuzzed inputs the hypothesis tests tried, per entry point (tests/fuzzing.py)."""
    fuzzing = sys.modules.get("fuzzing")
    if fuzzing is None or not fuzzing.TRIED:
        return
    tried = fuzzing.TRIED
    terminalreporter.write_sep("-", f"fuzzing: {sum(tried.values())} inputs tried over "
                                    f"{len(tried)} entry points")
    for entry, count in sorted(tried.items()):
        terminalreporter.write_line(f"  {count:6d}  {entry}")

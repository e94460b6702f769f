"""Shared fixtures: an isolated cache per test session and small trained models."""

from __future__ import annotations

import os

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

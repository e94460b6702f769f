"""Shared by the fuzz tests: one hypothesis profile (derandomized, no example database, so CI
cannot flake), a count of the inputs tried per entry point (printed at the end of the run by
tests/conftest.py) and the one verdict every fuzzed input must meet."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import torch
from hypothesis import HealthCheck, event, settings

from workbench.errors import WorkbenchError

TRIED: Counter[str] = Counter()  # entry point -> inputs tried in this run

# deadline=None: a shared, loaded 2-core machine makes per-example timing meaningless
settings.register_profile("workbench", derandomize=True, database=None, deadline=None,
                          print_blob=True, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("workbench")


def non_finite(value: Any) -> float | None:
    """The first NaN or infinite number in ``value`` (tensors, arrays, floats and containers of
    them), else None. In DataFrames only infinities count: NaN there is a missing cell, shown
    blank (e.g. the SNN/ANN ratio on an ANN row)."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy() if value.is_floating_point() else None
    if isinstance(value, np.ndarray):
        bad = value[~np.isfinite(value)] if value.dtype.kind == "f" else value[:0]
        return float(bad.flat[0]) if bad.size else None
    if isinstance(value, pd.DataFrame):
        numeric = value.select_dtypes("number").to_numpy(float)
        if np.isinf(numeric).any():
            return float(numeric[np.isinf(numeric)][0])
        value = [cell for column in value.columns if pd.api.types.is_object_dtype(value[column])
                 for cell in value[column]]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list | tuple):
        return next((b for b in map(non_finite, value) if b is not None), None)
    if isinstance(value, float) and not math.isfinite(value):
        return value
    return None


def outcome(entry: str, call: Callable[[], Any], *named: str) -> Any:
    """Run ``call()`` for one fuzzed input of ``entry``: it returns a result without a non-finite
    number, or raises a WorkbenchError whose message contains one of ``named`` (the bad value,
    as the user wrote it) when any are given. Any other exception fails the test. Returns the
    result, or the error."""
    TRIED[entry] += 1
    try:
        result = call()
    except WorkbenchError as exc:
        event("WorkbenchError")  # the share of each outcome: pytest --hypothesis-show-statistics
        if named:
            assert any(n in str(exc) for n in named), f"{exc!r} names none of {named}"
        return exc
    event("result")
    bad = non_finite(result)
    assert bad is None, f"{entry} returned a non-finite number: {bad}"
    return result

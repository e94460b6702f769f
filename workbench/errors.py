"""One error type for user mistakes, and the checks that raise it.

Every check names the bad value and what is accepted, so that a user's mistake never surfaces
as a traceback from deep inside torch.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

# runs longer than this are refused: a typo such as T=10**9 would otherwise run (or allocate
# frames) for days; no latency study needs more than a few thousand steps
MAX_TIMESTEPS = 100_000


class WorkbenchError(ValueError):
    """A user-facing error: bad parameters, bad shapes, missing or corrupt data."""


def check_timesteps(T: int, name: str = "T", maximum: int | None = None) -> int:
    """Return ``T`` as an int if it is a whole number >= 1 (and <= ``maximum`` when given);
    numpy numbers count as numbers."""
    if (isinstance(T, bool) or not isinstance(T, numbers.Real) or not math.isfinite(T)
            or int(T) != T or T < 1):
        raise WorkbenchError(f"{name} must be a whole number of timesteps >= 1, got {T!r}")
    if maximum is not None and T > maximum:
        raise WorkbenchError(f"{name} must be a whole number of timesteps in 1..{maximum}, "
                             f"got {T!r}")
    return int(T)


def check_positive(value: float, name: str) -> float:
    """Return ``value`` if it is a finite number > 0."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise WorkbenchError(f"{name} must be a number > 0, got {value!r}") from None
    if not v > 0 or v == float("inf"):
        raise WorkbenchError(f"{name} must be a finite number > 0, got {value!r}")
    return v


def check_choice(value: str, choices: Sequence[str], name: str) -> str:
    """Return ``value`` if it is one of ``choices``."""
    if value not in choices:
        raise WorkbenchError(f"unknown {name} {value!r}; accepted: {', '.join(map(str, choices))}")
    return value

"""Event streams in tonic's structured format and their binning into frames.

An event stream is a numpy structured array with fields ``x, y`` (pixel), ``t`` (µs, >= 0) and
``p`` (polarity 0 = OFF, 1 = ON). ``sensor_size`` is ``(W, H, P)`` as in tonic.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from workbench.errors import MAX_TIMESTEPS, WorkbenchError, check_positive, check_timesteps

EVENT_DTYPE = np.dtype([("x", "<i2"), ("y", "<i2"), ("t", "<i8"), ("p", "<i1")])
FIELDS = ("x", "y", "t", "p")


def make_events(x, y, t, p) -> np.ndarray:
    """A structured event array from four equally long sequences."""
    events = np.empty(len(t), dtype=EVENT_DTYPE)
    events["x"], events["y"], events["t"], events["p"] = x, y, t, p
    return events


def check_sensor_size(sensor_size) -> tuple[int, int, int]:
    """``sensor_size`` as ``(W, H, P)`` whole numbers >= 1."""
    try:
        size = tuple(check_timesteps(s, "a sensor dimension") for s in sensor_size)
    except (TypeError, WorkbenchError):
        size = ()
    if len(size) != 3:
        raise WorkbenchError(f"sensor size must be (width, height, polarities), three whole "
                             f"numbers >= 1, got {sensor_size!r}")
    return size


def validate_events(events: np.ndarray, sensor_size: tuple[int, int, int]) -> np.ndarray:
    """Check fields, their dtypes, timestamps, coordinates and polarity; raise a clear error
    otherwise."""
    names = getattr(getattr(events, "dtype", None), "names", None) or ()
    missing = [f for f in FIELDS if f not in names]
    if missing:
        raise WorkbenchError(f"event array lacks field(s) {missing}; expected a structured array "
                             f"with fields {list(FIELDS)} (tonic's format), got fields {list(names)}")
    if events.ndim != 1:
        raise WorkbenchError(f"an event stream is one row per event, got shape {events.shape}")
    for field in FIELDS:  # floats would index pixels and bins wrongly (NaN, 1.5)
        if events.dtype[field].kind not in ("iub" if field == "p" else "iu"):
            raise WorkbenchError(f"event field {field!r} must hold whole numbers, got dtype "
                                 f"{events.dtype[field]}")
    width, height, polarities = check_sensor_size(sensor_size)
    if len(events) == 0:
        return events
    if (events["t"] < 0).any():
        raise WorkbenchError(f"event timestamps must be >= 0 µs; found {events['t'].min()}")
    for field, size in (("x", width), ("y", height)):
        lo, hi = events[field].min(), events[field].max()
        if lo < 0 or hi >= size:
            raise WorkbenchError(f"event {field} must lie in 0..{size - 1} for sensor size "
                                 f"{sensor_size}; found {lo}..{hi}")
    bad = np.setdiff1d(np.unique(events["p"]), np.arange(polarities))
    if bad.size:
        raise WorkbenchError(f"event polarity must be in 0..{polarities - 1}; found {bad.tolist()}")
    return events


def to_frames(events: np.ndarray, sensor_size: tuple[int, int, int], n_time_bins: int,
              duration_us: int | None = None) -> np.ndarray:
    """Event counts per time bin, polarity and pixel, [n_time_bins, P, H, W] float32.

    Bins split ``[0, duration_us)`` evenly (default: up to the last timestamp)."""
    n_time_bins = check_timesteps(n_time_bins, "n_time_bins", maximum=MAX_TIMESTEPS)
    validate_events(events, sensor_size)
    width, height, polarities = check_sensor_size(sensor_size)
    frames = np.zeros((n_time_bins, polarities, height, width), dtype=np.float32)
    if len(events) == 0:
        return frames
    duration = (int(events["t"].max()) + 1 if duration_us is None
                else math.ceil(check_positive(duration_us, "duration_us")))
    if int(events["t"].max()) > np.iinfo(np.int64).max // n_time_bins:
        raise WorkbenchError(f"event timestamps up to {events['t'].max()} µs are too large to "
                             f"split into {n_time_bins} bins")
    # one integer type for the index arithmetic: t·bins in a narrower type would wrap around,
    # and numpy mixes uint64 with int64 into float64
    x, y, t, p = (events[f].astype(np.int64) for f in FIELDS)
    bins = np.minimum(t * n_time_bins // duration, n_time_bins - 1)
    keep = t < duration
    flat = (((bins * polarities + p) * height + y) * width + x)[keep]
    frames.reshape(-1)[:] = np.bincount(flat, minlength=frames.size)
    return frames


def batch_frames(streams: Sequence[np.ndarray], sensor_size: tuple[int, int, int],
                 n_time_bins: int, duration_us: int | None = None) -> torch.Tensor:
    """Frames of many streams stacked time-major: [T, B, P, H, W] (the network's event input)."""
    frames = np.stack([to_frames(e, sensor_size, n_time_bins, duration_us) for e in streams], 1)
    return torch.from_numpy(frames)

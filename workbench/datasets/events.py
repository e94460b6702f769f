"""Event streams in tonic's structured format and their binning into frames.

An event stream is a numpy structured array with fields ``x, y`` (pixel), ``t`` (µs, >= 0) and
``p`` (polarity 0 = OFF, 1 = ON). ``sensor_size`` is ``(W, H, P)`` as in tonic.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from workbench.errors import WorkbenchError, check_timesteps

EVENT_DTYPE = np.dtype([("x", "<i2"), ("y", "<i2"), ("t", "<i8"), ("p", "<i1")])
FIELDS = ("x", "y", "t", "p")


def make_events(x, y, t, p) -> np.ndarray:
    """A structured event array from four equally long sequences."""
    events = np.empty(len(t), dtype=EVENT_DTYPE)
    events["x"], events["y"], events["t"], events["p"] = x, y, t, p
    return events


def validate_events(events: np.ndarray, sensor_size: tuple[int, int, int]) -> np.ndarray:
    """Check fields, timestamps, coordinates and polarity; raise a clear error otherwise."""
    names = getattr(getattr(events, "dtype", None), "names", None) or ()
    missing = [f for f in FIELDS if f not in names]
    if missing:
        raise WorkbenchError(f"event array lacks field(s) {missing}; expected a structured array "
                             f"with fields {list(FIELDS)} (tonic's format), got fields {list(names)}")
    if len(events) == 0:
        return events
    width, height, polarities = sensor_size
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
    n_time_bins = check_timesteps(n_time_bins, "n_time_bins")
    width, height, polarities = sensor_size
    frames = np.zeros((n_time_bins, polarities, height, width), dtype=np.float32)
    if len(events) == 0:
        return frames
    duration = int(duration_us or events["t"].max() + 1)
    bins = np.minimum(events["t"] * n_time_bins // duration, n_time_bins - 1)
    keep = events["t"] < duration
    flat = (((bins * polarities + events["p"]) * height + events["y"]) * width + events["x"])[keep]
    frames.reshape(-1)[:] = np.bincount(flat, minlength=frames.size)
    return frames


def batch_frames(streams: Sequence[np.ndarray], sensor_size: tuple[int, int, int],
                 n_time_bins: int, duration_us: int | None = None) -> torch.Tensor:
    """Frames of many streams stacked time-major: [T, B, P, H, W] (the network's event input)."""
    frames = np.stack([to_frames(e, sensor_size, n_time_bins, duration_us) for e in streams], 1)
    return torch.from_numpy(frames)

"""Fuzzing the event-stream entries (tonic's structured x, y, t, p arrays): unsorted or
negative timestamps, coordinates off the sensor, wrong field dtypes, empty streams and bad
sensor sizes give the right frames or a WorkbenchError naming the bad field, never a numpy
error or silently misplaced events."""

from __future__ import annotations

import numpy as np
from fuzzing import outcome
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.datasets.events import FIELDS, to_frames
from workbench.datasets.frames import FrameConfig, event_frames
from workbench.errors import WorkbenchError

FIELD_DTYPES = ("<i2", "<i8", "<u1", "<u8", "<f8", "?")


@st.composite
def cases(draw) -> tuple[np.ndarray, tuple]:
    """A sensor size and an event stream: half of them well-formed (integer fields, on the
    sensor), the others with any field dtype and values around and beyond the sensor's."""
    if draw(st.integers(0, 3)):
        sensor = draw(st.tuples(st.integers(1, 6), st.integers(1, 6), st.integers(1, 2)))
    else:
        sensor = draw(st.sampled_from([(0, 4, 2), (4, -1, 2), (4, 4), (4.5, 4, 2), "34x34",
                                       (4, 4, float("nan"))]))
    n = draw(st.integers(0, 12))
    on_sensor = len(sensor) == 3 and all(isinstance(s, int) and s >= 1 for s in sensor)
    if on_sensor and draw(st.integers(0, 3)):
        width, height, polarities = sensor
        limits = {"x": (0, width - 1), "y": (0, height - 1), "t": (0, 400), "p": (0, polarities - 1)}
        dtypes = [(f, draw(st.sampled_from(FIELD_DTYPES[:3]))) for f in FIELDS]
    else:
        limits = {"x": (-2, 7), "y": (-2, 7), "t": (-5, 400), "p": (-1, 2)}
        dtypes = [(f, draw(st.sampled_from(FIELD_DTYPES))) for f in FIELDS]
    events = np.zeros(n, dtype=np.dtype(dtypes))
    for field, (lo, hi) in limits.items():
        column = draw(st.lists(st.integers(lo, hi), min_size=n, max_size=n))
        with np.errstate(all="ignore"):
            events[field] = np.array(column).astype(events.dtype[field])
    if draw(st.booleans()):  # most streams in time order, as sensors write them
        events = events[np.argsort(events["t"], kind="stable")]
    return events, sensor


def counted(events: np.ndarray, sensor, bin_of) -> np.ndarray:
    """The frames by hand: one event at a time into bin ``bin_of(t)`` (None: not seen)."""
    width, height, polarities = sensor
    bins = [bin_of(int(t)) for t in events["t"]]
    frames = np.zeros((1 + max([b for b in bins if b is not None], default=0), polarities,
                       height, width), np.float32)
    for e, b in zip(events, bins, strict=True):
        if b is not None:
            frames[b, int(e["p"]), int(e["y"]), int(e["x"])] += 1
    return frames


def same(frames: np.ndarray, expected: np.ndarray) -> bool:
    padded = np.zeros_like(frames)
    padded[:len(expected)] = expected[:len(frames)]
    return np.array_equal(frames, padded) and expected[len(frames):].sum() == 0


@settings(max_examples=300)
@given(case=cases(), bins=st.integers(-1, 6),
       duration=st.one_of(st.none(), st.integers(-2, 500), st.just(0.5)))
def test_to_frames_bins_every_event_or_names_the_bad_input(case, bins, duration):
    events, sensor = case
    frames = outcome("to_frames(events)", lambda: to_frames(events, sensor, bins, duration),
                     *FIELDS, "sensor", "n_time_bins", "duration_us", "polarity")
    if isinstance(frames, WorkbenchError):
        return
    span = int(events["t"].max()) + 1 if duration is None and len(events) else (duration or 1)
    span = int(np.ceil(span))
    expected = counted(events, sensor, lambda t: None if t >= span else min(t * bins // span,
                                                                           bins - 1))
    assert frames.shape == (bins, sensor[2], sensor[1], sensor[0]) and same(frames, expected)


@settings(max_examples=300)
@given(case=cases(), window=st.sampled_from([1, 40, 40, 150.5, 150.5, -5, 0]),
       steps=st.integers(-1, 5), spatial=st.sampled_from([1.0, 1.0, 1.0, 0.5, 0.5, 0.01, 0.0, 1.5]))
def test_event_frames_bin_by_time_window_in_any_event_order(case, window, steps, spatial):
    events, sensor = case
    def run():
        return event_frames(events, sensor, FrameConfig(window, steps, spatial))

    frames = outcome("event_frames(events, FrameConfig)", run, *FIELDS, "sensor", "timesteps",
                     "time_window_us", "spatial_factor", "polarity")
    if isinstance(frames, WorkbenchError):
        return
    seen = events[events["t"] < steps * window]
    assert frames.shape[0] == steps and frames.sum() == len(seen)
    if spatial == 1.0:
        assert same(frames, counted(events, sensor, lambda t: int(t // window)
                                    if t < steps * window else None))

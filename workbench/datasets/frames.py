"""Event recordings → fixed-length frame sequences, streamed in batches (larger than memory).

One timestep is a fixed span of ``time_window_us`` µs: frames come from tonic's
``ToFrame(time_window=…)`` over ``[0, timesteps·time_window_us)``. Not ``n_time_bins``: that
divides *each recording's own* span into T bins, so a timestep would last 10 ms in a 300 ms
N-MNIST sample and 60 ms in a 6 s gesture, and "stop after t steps" would mean a different
latency — and a different event rate per step — for every sample. With a time window, a step
is the same physical time everywhere, which is what latency and energy per inference need.

:class:`FrameDataset` reads one recording per item (a :class:`RealEventDataset` or any
indexable of ``(events, label)``); :func:`frame_loader` batches it time-major,
``x`` [T, B, P, H, W] and ``y`` [B], through a torch ``DataLoader``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from tonic.transforms import Downsample, ToFrame
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from workbench.datasets.events import check_sensor_size, validate_events
from workbench.errors import MAX_TIMESTEPS, WorkbenchError, check_positive, check_timesteps


@dataclass(frozen=True)
class FrameConfig:
    """``timesteps`` frames of ``time_window_us`` µs each from the start of a recording;
    ``spatial_factor`` (0, 1] shrinks the sensor (tonic's ``Downsample``; 0.25: 128 → 32 px)."""

    time_window_us: int = 10_000
    timesteps: int = 30
    spatial_factor: float = 1.0

    def __post_init__(self) -> None:
        check_timesteps(self.timesteps, "timesteps", maximum=MAX_TIMESTEPS)
        check_positive(self.time_window_us, "time_window_us")
        if not 0.0 < self.spatial_factor <= 1.0:
            raise WorkbenchError(f"spatial_factor must lie in (0, 1], got {self.spatial_factor}")

    def frame_size(self, sensor_size: tuple[int, int, int]) -> tuple[int, int, int]:
        """Sensor size ``(W, H, P)`` after downsampling: one past the last pixel that tonic's
        ``Downsample`` (x ← int(x·factor)) can write, so that every event lands on a pixel."""
        w, h, p = check_sensor_size(sensor_size)
        return int((w - 1) * self.spatial_factor) + 1, int((h - 1) * self.spatial_factor) + 1, p


def event_frames(events: np.ndarray, sensor_size: tuple[int, int, int],
                 config: FrameConfig) -> np.ndarray:
    """Event counts per frame, polarity and pixel, [timesteps, P, H', W'] float32; events after
    ``timesteps·time_window_us`` are not seen (the run ends there). Events may come in any
    order."""
    validate_events(events, sensor_size)
    t = events["t"]
    if (t[1:] < t[:-1]).any():  # tonic's time slicer bisects: it needs them in time order
        events = events[np.argsort(t, kind="stable")]
    if config.spatial_factor != 1.0:
        events = Downsample(spatial_factor=config.spatial_factor)(events.copy())
        sensor_size = config.frame_size(sensor_size)
    W, H, P = sensor_size
    if len(events) == 0:  # tonic's slicer indexes the first timestamp
        return np.zeros((config.timesteps, P, H, W), dtype=np.float32)
    to_frame = ToFrame(sensor_size=sensor_size, time_window=config.time_window_us, start_time=0,
                       end_time=config.timesteps * config.time_window_us)
    return to_frame(events).astype(np.float32)


class FrameDataset(Dataset):
    """Frames [T, P, H, W] and label of recording ``i``, read when asked for."""

    def __init__(self, recordings: Sequence, sensor_size: tuple[int, int, int] | None,
                 config: FrameConfig) -> None:
        name = getattr(recordings, "name", "this dataset")
        if sensor_size is None:
            raise WorkbenchError(f"{name} has no fixed sensor size; frames need one "
                                 "(W, H, P) for every sample")
        self.recordings, self.sensor_size, self.config = recordings, tuple(sensor_size), config

    def __len__(self) -> int:
        return len(self.recordings)

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        events, label = self.recordings[i]
        validate_events(events, self.sensor_size)
        return torch.from_numpy(event_frames(events, self.sensor_size, self.config)), int(label)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """One step's input ``(P, H, W)``: what the network must accept."""
        W, H, P = self.config.frame_size(self.sensor_size)
        return P, H, W


def time_major(batch: list[tuple[Tensor, int]]) -> tuple[Tensor, Tensor]:
    """Collate ``[(frames [T, ...], label)]`` into ``x`` [T, B, ...] and ``y`` [B]."""
    frames, labels = zip(*batch, strict=True)
    return torch.stack(frames, 1), torch.tensor(labels)


def frame_loader(dataset: FrameDataset, batch_size: int = 64, limit: int | None = None
                 ) -> DataLoader:
    """Batches of (x [T, B, P, H, W], y [B]) in file order, read as they are consumed (only one
    batch of frames is in memory); ``limit`` keeps the first N recordings."""
    check_timesteps(batch_size, "batch_size")
    if limit is not None:
        check_timesteps(limit, "limit")
        dataset = torch.utils.data.Subset(dataset, range(min(limit, len(dataset))))
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=time_major)

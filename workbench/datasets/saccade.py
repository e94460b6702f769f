"""``digits_saccade_events``: N-MNIST-style event streams made from the bundled digits.

Like N-MNIST (Orchard et al., Front. Neurosci. 2015), each static digit is seen by an event
camera that moves in three saccades along a triangle: here the 8×8 digit is upsampled to 12×12
on a 16×16 canvas, shifted with sub-pixel (bilinear) motion for 3 × 100 ms at 1 ms resolution,
and passed through the emulated DVS pixel array of :mod:`workbench.datasets.dvs`. Same
train/val/test split as the static digits.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from scipy.ndimage import zoom

from workbench.datasets.arrays import cached_arrays, pack_streams, unpack_streams
from workbench.datasets.digits import digits_images, split_indices
from workbench.datasets.dvs import DVSConfig, emulate
from workbench.datasets.events import batch_frames

SENSOR_SIZE = (16, 16, 2)
# saccade triangle (pixels, dy/dx relative to centre): three legs of equal duration
TRIANGLE = np.array([[-1.0, -1.0], [1.0, 0.0], [-1.0, 1.0], [-1.0, -1.0]])


@dataclass(frozen=True)
class SaccadeConfig:
    """Generator settings; ``amplitude`` in pixels, durations in ms at ``dt_us`` resolution."""

    saccade_ms: int = 100
    dt_us: int = 1000
    amplitude: float = 1.5
    dvs: DVSConfig = field(default_factory=DVSConfig)
    seed: int = 0
    limit: int | None = None  # first N digits only (tests)


@dataclass
class EventDataset:
    """Event streams with labels: ``streams[i]`` structured (x, y, t, p), ``labels[i]``."""

    streams: list[np.ndarray]
    labels: np.ndarray
    sensor_size: tuple[int, int, int]
    duration_us: int
    splits: dict[str, np.ndarray]

    def frames(self, split: str, n_time_bins: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Binned inputs [T, B, 2, H, W] and labels [B] of one split."""
        idx = self.splits[split]
        x = batch_frames([self.streams[i] for i in idx], self.sensor_size, n_time_bins,
                         self.duration_us)
        return x, torch.from_numpy(self.labels[idx])


def _shift(images: np.ndarray, dy: float, dx: float) -> np.ndarray:
    """Shift a batch [S, H, W] by (dy, dx) pixels with bilinear interpolation, zero fill."""
    out = np.zeros_like(images)
    iy, ix = int(np.floor(dy)), int(np.floor(dx))
    fy, fx = dy - iy, dx - ix
    H, W = images.shape[1:]
    for oy, wy in ((iy, 1 - fy), (iy + 1, fy)):
        for ox, wx in ((ix, 1 - fx), (ix + 1, fx)):
            w = wy * wx
            if w == 0:
                continue
            src = images[:, max(0, -oy):H - max(0, oy), max(0, -ox):W - max(0, ox)]
            out[:, max(0, oy):max(0, oy) + src.shape[1], max(0, ox):max(0, ox) + src.shape[2]] += (
                w * src)
    return out


def saccade_path(config: SaccadeConfig) -> np.ndarray:
    """(dy, dx) offset at every frame, [F, 2]: linear motion along the triangle's legs."""
    per_leg = config.saccade_ms * 1000 // config.dt_us
    legs = [np.linspace(a, b, per_leg, endpoint=False) for a, b in zip(TRIANGLE[:-1], TRIANGLE[1:],
                                                                       strict=True)]
    return np.concatenate(legs) * config.amplitude


def render_videos(images: np.ndarray, config: SaccadeConfig) -> np.ndarray:
    """Intensity videos [S, F, 16, 16] of 8×8 digits moving along the saccade path."""
    big = zoom(images, (1, 1.5, 1.5), order=1).clip(0, 1)
    canvas = np.zeros((len(images), SENSOR_SIZE[1], SENSOR_SIZE[0]), dtype=np.float32)
    canvas[:, 2:14, 2:14] = big
    return np.stack([_shift(canvas, dy, dx) for dy, dx in saccade_path(config)], 1)


def _build(config: SaccadeConfig) -> dict[str, np.ndarray]:
    images, labels = digits_images()
    if config.limit is not None:
        images, labels = images[:config.limit], labels[:config.limit]
    rng = np.random.default_rng(config.seed)
    streams = []
    for start in range(0, len(images), 256):  # bounded memory: 256 videos at a time
        videos = render_videos(images[start:start + 256], config)
        streams += emulate(videos, config.dt_us, config.dvs, rng)
    return {**pack_streams(streams), "labels": labels}


def digits_saccade_events(config: SaccadeConfig | None = None) -> EventDataset:
    """The saccade-digit event dataset (built in seconds on first use, then cached)."""
    config = config or SaccadeConfig()
    arrays = cached_arrays("digits_saccade_events", asdict(config), lambda: _build(config))
    n = len(arrays["labels"])
    splits = {k: v[v < n] for k, v in split_indices().items()}
    duration = 3 * config.saccade_ms * 1000
    return EventDataset(unpack_streams(arrays), arrays["labels"], SENSOR_SIZE, duration, splits)

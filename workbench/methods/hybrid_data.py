"""Pose sequences for the hybrid ANN-SNN: event frames at the SNN rate, the ANN's causal input,
joint labels at every SNN step boundary, Gaussian heatmaps and their decoding, MPJPE.

Time is counted in SNN *bins* of ``1 / snn_rate_hz`` seconds; boundary ``b`` is the instant
``b`` bins after the clip starts. Bin ``b`` holds the events of ``[b, b + 1)`` and its target is
the pose at boundary ``b + 1`` (the end of the bin). The ANN that initializes a window starting
at boundary ``b`` reads only the events of the 100 ms *before* ``b`` (Aydin et al.: causal input,
10 temporal bins × 2 polarities = 20 channels).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from workbench.datasets.events import to_frames
from workbench.datasets.stick_figure import CANVAS, LABEL_EVERY_US, PoseDataset
from workbench.errors import WorkbenchError, check_positive

SNN_RATES = (100, 200)
ANN_HISTORY_BINS = 10  # the ANN's histogram: 10 bins of 10 ms before the window
ANN_BIN_US = 10_000
HEATMAP_SIGMA = 1.0


@dataclass(frozen=True)
class Timing:
    """SNN rate (Hz; its neuron τ and readout leak λ_out are coupled to it as in the paper:
    100 Hz → τ = 3, λ_out = 0.8; 200 Hz → τ = 5, λ_out = 0.9) and ANN-initialization rate (Hz)."""

    snn_rate_hz: int = 100
    init_rate_hz: float = 10.0

    def __post_init__(self) -> None:
        if self.snn_rate_hz not in SNN_RATES:
            raise WorkbenchError(f"SNN rate must be one of {SNN_RATES} Hz, got {self.snn_rate_hz}")
        rate = check_positive(self.init_rate_hz, "ANN-initialization rate (Hz)")
        steps = self.snn_rate_hz / rate
        if rate > self.snn_rate_hz or abs(steps - round(steps)) > 1e-9:
            raise WorkbenchError(
                f"the ANN-initialization rate ({rate:g} Hz) must divide the SNN rate "
                f"({self.snn_rate_hz} Hz) into a whole number of SNN steps per window")

    @property
    def bin_us(self) -> int:
        return 1_000_000 // self.snn_rate_hz

    @property
    def steps_per_window(self) -> int:
        """SNN steps between two ANN initializations."""
        return round(self.snn_rate_hz / self.init_rate_hz)

    @property
    def tau(self) -> float:
        return 3.0 if self.snn_rate_hz == 100 else 5.0

    @property
    def readout_leak(self) -> float:
        return 0.8 if self.snn_rate_hz == 100 else 0.9

    @property
    def history_bins(self) -> int:
        """SNN bins covered by the ANN's 100 ms input history."""
        return ANN_HISTORY_BINS * ANN_BIN_US // self.bin_us


@dataclass
class PoseSequences:
    """Event frames and labels of S sequences (one per clip and camera view).

    ``frames`` [S, N, 2, 32, 32] event counts per SNN bin; ``joints2d`` [S, N, 13, 2] pixels and
    ``joints3d`` [S, N, 13, 3] metres: the pose at every boundary 0..N−1; ``clip``, ``view`` [S].
    """

    frames: Tensor
    joints2d: Tensor
    joints3d: Tensor
    clip: np.ndarray
    view: np.ndarray
    projection: np.ndarray
    timing: Timing

    @property
    def bins(self) -> int:
        return self.frames.shape[1]

    def ann_input(self, seq: Tensor, boundary: Tensor) -> Tensor:
        """The ANN's input for windows starting at ``boundary`` [B] of sequences ``seq`` [B]:
        event counts of the 100 ms before the boundary in 10 bins × 2 polarities,
        [B, 20, 32, 32]. Events at or after the boundary are never read."""
        history = self.timing.history_bins
        if (boundary < history).any() or (boundary > self.bins).any():
            raise WorkbenchError(f"an ANN input needs {history} bins of history before its "
                                 f"boundary and at most {self.bins}; got {boundary.tolist()}")
        offsets = torch.arange(-history, 0)
        frames = self.frames[seq[:, None], boundary[:, None] + offsets]  # [B, history, 2, H, W]
        B = len(seq)
        grouped = frames.reshape(B, ANN_HISTORY_BINS, history // ANN_HISTORY_BINS, 2, CANVAS, CANVAS)
        return grouped.sum(2).reshape(B, 2 * ANN_HISTORY_BINS, CANVAS, CANVAS)

    def window_starts(self, steps: int) -> Tensor:
        """Boundaries where windows of ``steps`` bins start: the first after 100 ms of history,
        as many whole windows as have a label at every step's end."""
        first = self.timing.history_bins
        count = (self.bins - 1 - first) // steps
        if count < 1:
            raise WorkbenchError(f"sequences of {self.bins} bins are too short for one window of "
                                 f"{steps} steps after {first} bins of history")
        return first + steps * torch.arange(count)

    def select(self, index: np.ndarray | Tensor) -> PoseSequences:
        index = np.asarray(index)
        return PoseSequences(self.frames[index], self.joints2d[index], self.joints3d[index],
                             self.clip[index], self.view[index], self.projection, self.timing)


def _labels_at(labels: np.ndarray, bins: int, bin_us: int) -> np.ndarray:
    """Labels given every 10 ms [L, ...] resampled at ``bins`` boundaries of ``bin_us``
    (linear interpolation; the last label is held)."""
    position = np.arange(bins) * bin_us / LABEL_EVERY_US
    lo = np.minimum(np.floor(position).astype(int), len(labels) - 1)
    hi = np.minimum(lo + 1, len(labels) - 1)
    w = (position - lo).reshape(-1, *([1] * (labels.ndim - 1)))
    return (1 - w) * labels[lo] + w * labels[hi]


def pose_sequences(dataset: PoseDataset, timing: Timing = Timing()) -> PoseSequences:
    """Every clip and view of one split of the stick-figure dataset, binned at the SNN rate."""
    duration_us = dataset.joints2d.shape[1] * LABEL_EVERY_US
    bins = duration_us // timing.bin_us
    frames, j2, j3, clip_ids, views = [], [], [], [], []
    for clip in range(dataset.clips):
        for view in range(dataset.views):
            frames.append(to_frames(dataset.stream(clip, view), dataset.sensor_size, bins,
                                    duration_us))
            j2.append(_labels_at(dataset.joints2d[clip, :, view], bins, timing.bin_us))
            j3.append(_labels_at(dataset.joints3d[clip], bins, timing.bin_us))
            clip_ids.append(clip)
            views.append(view)
    return PoseSequences(torch.from_numpy(np.stack(frames)),
                         torch.from_numpy(np.stack(j2)).float(),
                         torch.from_numpy(np.stack(j3)).float(),
                         np.array(clip_ids), np.array(views), dataset.projection, timing)


def heatmaps(joints: Tensor, size: int = CANVAS, sigma: float = HEATMAP_SIGMA) -> Tensor:
    """Gaussian heatmaps [..., J, size, size] (peak 1, σ in pixels) of joints [..., J, 2] (u, v)
    in pixels; pixel (i, j) has its centre at (j + 0.5, i + 0.5)."""
    centres = torch.arange(size, dtype=joints.dtype, device=joints.device) + 0.5
    # separable: exp(−(du + dv)/2σ²) = exp(−du/2σ²)·exp(−dv/2σ²), 2·size exponentials per map
    # instead of size² (the training targets of every batch are made here)
    gu = torch.exp(-(centres - joints[..., 0:1]) ** 2 / (2 * sigma ** 2))  # [..., J, W]
    gv = torch.exp(-(centres - joints[..., 1:2]) ** 2 / (2 * sigma ** 2))  # [..., J, H]
    return gv[..., :, None] * gu[..., None, :]


def decode_heatmaps(maps: Tensor) -> Tensor:
    """Joint positions (u, v) [..., J, 2] in pixels from heatmaps [..., J, H, W]: the peak,
    refined to sub-pixel by the centroid of the positive values in its 5×5 neighbourhood
    (at most ~0.05 px off for a σ = 1 px Gaussian)."""
    *lead, H, W = maps.shape
    flat = maps.reshape(-1, H, W)
    peak = flat.flatten(1).argmax(1)
    py, px = peak // W, peak % W
    ys = torch.arange(H, device=maps.device)
    xs = torch.arange(W, device=maps.device)
    near = (((ys[None, :, None] - py[:, None, None]).abs() <= 2)
            & ((xs[None, None, :] - px[:, None, None]).abs() <= 2))
    weight = flat.clamp(min=0) * near
    total = weight.sum((1, 2))
    u = (weight.sum(1) * (xs + 0.5)).sum(1) / total.clamp(min=1e-12)
    v = (weight.sum(2) * (ys + 0.5)).sum(1) / total.clamp(min=1e-12)
    flat_peak = total <= 1e-12  # an all-negative map: the peak pixel's centre
    u = torch.where(flat_peak, px + 0.5, u)
    v = torch.where(flat_peak, py + 0.5, v)
    return torch.stack([u, v], -1).reshape(*lead, 2)


def mpjpe(predicted: Tensor, true: Tensor) -> Tensor:
    """Mean per-joint position error: the Euclidean distance averaged over joints,
    [...] from [..., J, D] (pixels for 2D, metres for 3D)."""
    if predicted.shape != true.shape:
        raise WorkbenchError(f"predicted joints {tuple(predicted.shape)} and true joints "
                             f"{tuple(true.shape)} differ in shape")
    return (predicted - true).norm(dim=-1).mean(-1)

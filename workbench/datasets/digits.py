"""scikit-learn's bundled handwritten digits (1,797 8×8 images, no download), split once.

Stratified split 1200 train / 200 validation / 397 test, fixed by ``seed``; pixels scaled
from 0..16 to [0, 1]. Shapes: x [N, 1, 8, 8] float32, y [N] int64.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import Tensor

from workbench.errors import WorkbenchError

SPLIT_SIZES = {"train": 1200, "val": 200, "test": 397}


@dataclass(frozen=True)
class Split:
    """Inputs ``x`` and labels ``y`` of one split; ``index`` into the 1,797 source images."""

    x: Tensor
    y: Tensor
    index: np.ndarray

    def __len__(self) -> int:
        return len(self.y)


def split_indices(seed: int = 0) -> dict[str, np.ndarray]:
    """Indices of the stratified train/val/test split of the 1,797 digits."""
    labels = load_digits().target
    all_idx = np.arange(len(labels))
    train, rest = train_test_split(all_idx, train_size=SPLIT_SIZES["train"],
                                   stratify=labels, random_state=seed)
    val, test = train_test_split(rest, train_size=SPLIT_SIZES["val"],
                                 stratify=labels[rest], random_state=seed)
    return {"train": np.sort(train), "val": np.sort(val), "test": np.sort(test)}


def digits_images() -> tuple[np.ndarray, np.ndarray]:
    """All 1,797 images [N, 8, 8] in [0, 1] (float32) and labels [N]."""
    bunch = load_digits()
    return (bunch.images / 16.0).astype(np.float32), bunch.target.astype(np.int64)


def load_digits_split(seed: int = 0) -> dict[str, Split]:
    """The digits as ``{"train", "val", "test"}`` splits of tensors [N, 1, 8, 8]."""
    images, labels = digits_images()
    return {name: Split(torch.from_numpy(images[idx]).unsqueeze(1),
                        torch.from_numpy(labels[idx]), idx)
            for name, idx in split_indices(seed).items()}


def shifted_digits(x: Tensor, canvas: int = 16, size: int = 12,
                   generator: torch.Generator | None = None) -> Tensor:
    """Digits ``x`` [N, 1, 8, 8] upsampled (bilinear) to ``size``×``size`` and placed at a random
    whole-pixel offset (uniform in 0 … canvas − size per axis, drawn from ``generator``) on a
    black ``canvas``×``canvas`` image: [N, 1, canvas, canvas]."""
    if not 8 <= size <= canvas:
        raise WorkbenchError(f"size must be in [8, canvas={canvas}], got {size}")
    big = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    offsets = torch.randint(0, canvas - size + 1, (len(x), 2), generator=generator)
    out = torch.zeros(len(x), x.shape[1], canvas, canvas)
    for i, (dy, dx) in enumerate(offsets.tolist()):
        out[i, :, dy:dy + size, dx:dx + size] = big[i]
    return out

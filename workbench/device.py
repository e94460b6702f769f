"""Where tensors live: the one place that picks CPU or CUDA and sets CPU threads."""

from __future__ import annotations

import os

import torch


def default_device() -> torch.device:
    """CUDA when present, else CPU; ``WORKBENCH_DEVICE`` (e.g. ``cpu``) overrides."""
    name = os.environ.get("WORKBENCH_DEVICE")
    if name:
        return torch.device(name)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def set_threads(n: int | None = None) -> int:
    """Set torch's intra-op CPU threads (``WORKBENCH_THREADS`` or all cores); return the count."""
    n = n or int(os.environ.get("WORKBENCH_THREADS", "0")) or (os.cpu_count() or 1)
    torch.set_num_threads(n)
    return n

"""Where tensors live: the one place that picks CPU or CUDA and tunes the CPU runtime."""

from __future__ import annotations

import ctypes
import ctypes.util
import os

import torch

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_ALLOCATOR_BYTES = 256 * 1024 * 1024


def default_device() -> torch.device:
    """CUDA when present, else CPU; ``WORKBENCH_DEVICE`` (e.g. ``cpu``) overrides."""
    name = os.environ.get("WORKBENCH_DEVICE")
    if name:
        return torch.device(name)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def tune_allocator() -> bool:
    """Keep glibc from returning multi-MB tensor buffers to the OS after every timestep.

    A simulation allocates and frees the same few MB-sized tensors every step; by default glibc
    serves them with fresh ``mmap`` pages (page faults each time), which cost up to a third of
    the simulation time at batch 256 (``benchmarks/simulate.py``). Returns False off glibc.
    """
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, _ALLOCATOR_BYTES)
                    and libc.mallopt(_M_TRIM_THRESHOLD, _ALLOCATOR_BYTES))
    except (OSError, AttributeError):
        return False


def set_threads(n: int | None = None) -> int:
    """Set torch's intra-op CPU threads (``WORKBENCH_THREADS`` or all cores) and tune the
    allocator; return the thread count."""
    n = n or int(os.environ.get("WORKBENCH_THREADS", "0")) or (os.cpu_count() or 1)
    torch.set_num_threads(n)
    tune_allocator()
    return n

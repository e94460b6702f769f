"""Cached numpy datasets: build once under a config key, then load verified ``.npz`` files."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from workbench.cache import cache_dir, config_key, read_entry, write_entry


def cached_arrays(name: str, config: dict[str, Any],
                  build: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The arrays of dataset ``name`` for ``config``: from the cache when valid, else built
    (with a progress line), stored atomically and returned."""
    path = cache_dir() / "datasets" / f"{name}-{config_key(config)}.npz"
    entry = read_entry(path)
    if entry is not None:
        with np.load(io.BytesIO(entry[0]), allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    with tqdm(total=1, desc=f"building {name}", leave=False) as bar:
        arrays = build()
        bar.update()
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    write_entry(path, buffer.getvalue(), {"dataset": name, "config": config})
    return arrays


def pack_streams(streams: list[np.ndarray]) -> dict[str, np.ndarray]:
    """Ragged event streams as flat field arrays plus offsets (for ``.npz``)."""
    flat = np.concatenate(streams) if streams else np.empty(0)
    offsets = np.cumsum([0] + [len(s) for s in streams])
    return {"x": flat["x"], "y": flat["y"], "t": flat["t"], "p": flat["p"], "offsets": offsets}


def unpack_streams(arrays: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Inverse of :func:`pack_streams`."""
    from workbench.datasets.events import make_events

    events = make_events(arrays["x"], arrays["y"], arrays["t"], arrays["p"])
    o = arrays["offsets"]
    return [events[a:b] for a, b in zip(o[:-1], o[1:], strict=True)]

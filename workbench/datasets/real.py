"""Readers for real event datasets in a user-given folder (nothing is ever downloaded).

The files are read in their published on-disk formats and returned as tonic-structured event
arrays (x, y, t in µs, p), so tonic's transforms apply unchanged. tonic's own dataset classes
insist on downloading or on complete archives; these readers accept any folder laid out as below.
The ATIS reader is tonic's (``tonic.io.read_mnist_file``); AEDAT 2.0 stays ours because tonic's
``read_dvs_128`` neither unpacks its own header reader's result nor decodes jAER's DVS128
addresses as CIFAR10-DVS stores them (x in bits 1–7, mirrored), see ``tests/test_datasets.py``.

| name        | layout under the folder                          | file format                     |
|-------------|--------------------------------------------------|---------------------------------|
| nmnist      | ``Train/<digit>/*.bin``, ``Test/<digit>/*.bin``  | ATIS 40-bit events (Orchard 2015)|
| ncaltech101 | ``Caltech101/<class>/*.bin``                      | ATIS 40-bit events              |
| cifar10dvs  | ``<class>/*.aedat``                               | AEDAT 2.0, DVS128 addresses     |
| dvsgesture  | ``ibmGestureTrain/<user>/<label>.npy`` (and Test) | tonic's preprocessed [N, 4] x,y,p,t (ms) |
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tonic.io

from workbench.datasets.events import EVENT_DTYPE, make_events, validate_events
from workbench.errors import WorkbenchError

LAYOUTS = {
    "nmnist": ("Train/<digit>/*.bin and Test/<digit>/*.bin", (34, 34, 2)),
    "ncaltech101": ("Caltech101/<class>/*.bin", None),
    "cifar10dvs": ("<class>/*.aedat (airplane, automobile, ...)", (128, 128, 2)),
    "dvsgesture": ("ibmGestureTrain/<user>/<label>.npy and ibmGestureTest/...", (128, 128, 2)),
}


@dataclass
class RealEventDataset:
    """Lazily read samples: ``files[i]`` with class ``labels[i]`` (index into ``classes``)."""

    name: str
    files: list[Path]
    labels: np.ndarray
    classes: list[str]
    sensor_size: tuple[int, int, int] | None

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[np.ndarray, int]:
        events = READERS[self.name](self.files[i])
        size = self.sensor_size or (int(events["x"].max(initial=0)) + 1,
                                    int(events["y"].max(initial=0)) + 1, 2)
        try:
            validate_events(events, size)
        except WorkbenchError as exc:
            raise WorkbenchError(f"{self.files[i]}: {exc}") from None
        return events, int(self.labels[i])


def read_atis_bin(path: Path) -> np.ndarray:
    """N-MNIST / N-Caltech101 binary: 5 bytes per event — x, y, then polarity (1 bit) and a
    23-bit timestamp in µs, big-endian; an event with y = 240 marks a timestamp overflow
    (+2¹³ µs from there on). Read by ``tonic.io.read_mnist_file``, which handles the overflow
    markers; the length check comes first because tonic reads a truncated file silently."""
    size = path.stat().st_size
    if size % 5:
        raise WorkbenchError(f"{path}: {size} bytes is not a whole number of 5-byte events "
                             "(truncated or not an ATIS .bin file)")
    return tonic.io.read_mnist_file(str(path), dtype=EVENT_DTYPE)


def read_aedat2(path: Path) -> np.ndarray:
    """AEDAT 2.0 (jAER) from a DVS128: '#' header lines, then big-endian (address, timestamp µs)
    32-bit pairs; x = (a >> 1) & 127 flipped to 127 − x, y = (a >> 8) & 127, p = a & 1."""
    data = path.read_bytes()
    pos = 0
    while data.startswith(b"#", pos):
        end = data.find(b"\n", pos)
        if end < 0:
            raise WorkbenchError(f"{path}: header never ends (not an AEDAT 2.0 file)")
        pos = end + 1
    body = data[pos:]
    if len(body) % 8:
        raise WorkbenchError(f"{path}: {len(body)} bytes of events is not a whole number of "
                             "8-byte records (truncated?)")
    words = np.frombuffer(body, dtype=">u4").reshape(-1, 2).astype(np.int64)
    address, t = words[:, 0], words[:, 1]
    t = t - t.min() if t.size else t
    return make_events(127 - ((address >> 1) & 0x7F), (address >> 8) & 0x7F, t, address & 1)


def read_gesture_npy(path: Path) -> np.ndarray:
    """tonic's preprocessed DVS Gesture sample: an [N, 4] array of x, y, p, t (ms)."""
    try:
        arr = np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise WorkbenchError(f"{path}: not a readable .npy array ({exc})") from None
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise WorkbenchError(f"{path}: expected an [N, 4] array of x, y, p, t, got {arr.shape}")
    arr = arr.astype(np.int64)
    return make_events(arr[:, 0], arr[:, 1], arr[:, 3] * 1000, arr[:, 2])


READERS = {"nmnist": read_atis_bin, "ncaltech101": read_atis_bin,
           "cifar10dvs": read_aedat2, "dvsgesture": read_gesture_npy}


def _listing(name: str, root: Path, train: bool) -> tuple[list[Path], list[str]]:
    if name == "nmnist":
        base, pattern = root / ("Train" if train else "Test"), "*.bin"
    elif name == "ncaltech101":
        base, pattern = root / "Caltech101", "*.bin"
    elif name == "cifar10dvs":
        base, pattern = root, "*.aedat"
    else:
        base, pattern = root / ("ibmGestureTrain" if train else "ibmGestureTest"), "*.npy"
    if not base.is_dir():
        return [], []
    if name == "dvsgesture":
        files = sorted(base.glob(f"*/{pattern}"))
        return files, [f.stem for f in files]
    files = sorted(base.glob(f"*/{pattern}"))
    return files, [f.parent.name for f in files]


def load_real(name: str, root: str | Path, train: bool = True) -> RealEventDataset:
    """Index a real dataset stored under ``root``; clear error naming the expected files."""
    if name not in LAYOUTS:
        raise WorkbenchError(f"unknown real dataset {name!r}; accepted: {', '.join(LAYOUTS)}")
    root = Path(root).expanduser()
    layout, sensor = LAYOUTS[name]
    if not root.is_dir():
        raise WorkbenchError(f"dataset folder {root} does not exist; {name} expects {layout} "
                             "under it (nothing is downloaded: fetch the dataset yourself)")
    files, names = _listing(name, root, train)
    if not files:
        raise WorkbenchError(f"no {name} files found under {root}; expected {layout}")
    classes = sorted(set(names), key=lambda c: (len(c), c) if c.isdigit() else (0, c))
    lookup = {c: i for i, c in enumerate(classes)}
    return RealEventDataset(name, files, np.array([lookup[n] for n in names]), classes, sensor)

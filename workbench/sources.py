"""Model sources: bring your own network and data.

A *model source* names a network — the zoo, a NIR graph, or a Python factory — and a *data
source* the samples to run it on. Strings (``workbench report … --model SOURCE --data DATA``)::

    zoo:NAME | NAME           a zoo model (digits_ann, event_snn, ...); its own data by default
    path/to/net.nir           a NIR graph from Norse, sinabs, snnTorch, ... (needs DATA)
    pkg.module:function       function() -> (model, data): model an nn.Sequential ANN (converted
                              here) or a SpikingNetwork; data a DATA string, a dict of splits
                              {"calibration": (x, y), "test": (x, y)}, or None (then give DATA)

    digits | digits_saccade_events        embedded data sets
    nmnist:FOLDER | dvsgesture:FOLDER | cifar10dvs:FOLDER | ncaltech101:FOLDER[?options]
        real recordings from your folder (train split calibrates, test split is measured),
        streamed as frames of ``window_us`` µs; options ``window_us=…&timesteps=…&spatial=…&limit=…``
        (``spatial``: the downsampling factor, e.g. 0.25 turns 128 px into 32 px).

In a notebook the same sources are Python objects: :func:`load_source` also takes a
``SpikingNetwork``, an ``nn.Sequential`` or a ``nir.NIRGraph``. Calibration data never include
the test split.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl

import nir
import torch
from torch import Tensor, nn

from workbench.convert import QCFS, convert
from workbench.device import default_device
from workbench.errors import WorkbenchError, check_timesteps
from workbench.network import SpikingNetwork
from workbench.nir import from_nir
from workbench.stream import Batches
from workbench.zoo import SPECS, load_model, task_data

FACTORY = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
EMBEDDED_DATA = ("digits", "digits_saccade_events")
REAL_DATA = ("nmnist", "dvsgesture", "cifar10dvs", "ncaltech101")
# one timestep = window_us; the run covers timesteps·window_us of each recording
FRAME_DEFAULTS = {"nmnist": (10_000, 30, 1.0), "dvsgesture": (50_000, 30, 0.25),
                  "cifar10dvs": (25_000, 40, 0.25), "ncaltech101": (10_000, 30, 0.25)}
STATIC_T = 32  # timesteps for static (direct-encoded) inputs
ZOO_EVENT_BINS = 10  # the zoo's event SNNs are trained on 10 bins of 30 ms
BATCH = 256


@dataclass
class DataSource:
    """Calibration and test batches ``(x, y)``: static x [B, *input_shape] (then ``T`` steps of
    direct encoding) or time-major events [T, B, *input_shape]. Batches are re-iterable (lists
    or ``DataLoader``s), read again on every pass."""

    name: str
    calibration: Batches
    test: Batches
    input_shape: tuple[int, ...]
    T: int
    static: bool

    def calibration_inputs(self) -> Tensor:
        """Every calibration input, static [N, ...] (conversion's threshold balancing)."""
        return torch.cat([x for x, _ in self.calibration])


@dataclass
class ModelSource:
    """A spiking network to explore, the ANN it was converted from (if any) and its data."""

    name: str
    snn: SpikingNetwork
    data: DataSource
    ann: nn.Sequential | None = None
    notes: list[str] = field(default_factory=list)
    runs: dict = field(default_factory=dict, repr=False)  # simulated splits and what
    # is derived from them (workbench.source_report), filled on demand


def _chunks(x: Tensor, y: Tensor, static: bool, size: int = BATCH) -> list[tuple[Tensor, Tensor]]:
    n = len(y)
    return [((x[i:i + size] if static else x[:, i:i + size]), y[i:i + size])
            for i in range(0, n, size)]


def _tensor_data(name: str, calibration, test, T: int | None, input_shape=None) -> DataSource:
    (xc, yc), (xt, yt) = calibration, test
    xc, xt = torch.as_tensor(xc).float(), torch.as_tensor(xt).float()
    yc, yt = torch.as_tensor(yc).long(), torch.as_tensor(yt).long()
    shape = tuple(input_shape) if input_shape is not None else None
    # [N, F] or [N, C, H, W] is a static sample set unless the model says events [T, N, ...]
    static = tuple(xt.shape[1:]) == shape or (tuple(xt.shape[2:]) != shape and xt.dim() in (2, 4))
    shape = tuple(xt.shape[1:] if static else xt.shape[2:])
    T = check_timesteps(T or (STATIC_T if static else xt.shape[0]))
    return DataSource(name, _chunks(xc, yc, static), _chunks(xt, yt, static), shape, T, static)


def _zoo_data(task: str, T: int | None, bins: int = ZOO_EVENT_BINS) -> DataSource:
    """The data a zoo task trains on (events: ``T`` or ``bins`` frames; rates: the mean of
    ``bins`` frames); calibration = its training split."""
    splits, _ = task_data(task, T if task == "saccade_events" and T else bins)
    (xc, yc), (xt, yt) = splits["train"], splits["test"]
    if task == "saccade_events":  # the zoo trains batch-first; simulate is time-major
        xc, xt = xc.transpose(0, 1), xt.transpose(0, 1)
        return _tensor_data(task, (xc, yc), (xt, yt), xt.shape[0], xt.shape[2:])
    return _tensor_data(task, (xc, yc), (xt, yt), T, xt.shape[1:])


def _real_data(name: str, spec: str) -> DataSource:
    from workbench.datasets import load_real
    from workbench.datasets.frames import FrameConfig, FrameDataset, frame_loader
    from workbench.datasets.real import LAYOUTS

    folder, _, query = spec.partition("?")
    window, steps, spatial = FRAME_DEFAULTS[name]
    options = dict(parse_qsl(query))
    unknown = set(options) - {"window_us", "timesteps", "spatial", "limit", "width", "height"}
    if unknown:
        raise WorkbenchError(f"unknown data option(s) {sorted(unknown)}; accepted: window_us, "
                             "timesteps, spatial, limit (and width, height for ncaltech101)")
    try:
        config = FrameConfig(int(options.get("window_us", window)),
                             int(options.get("timesteps", steps)),
                             float(options.get("spatial", spatial)))
        limit = int(options["limit"]) if "limit" in options else None
        sensor = LAYOUTS[name][1] or (int(options["width"]), int(options["height"]), 2)
    except (ValueError, KeyError) as exc:
        raise WorkbenchError(f"bad data options {query!r} ({exc}); e.g. "
                             f"{name}:FOLDER?window_us={window}&timesteps={steps}") from None
    splits = {}
    for split, train in (("calibration", True), ("test", False)):
        frames = FrameDataset(load_real(name, folder, train=train), sensor, config)
        splits[split] = frame_loader(frames, batch_size=64, limit=limit)
    return DataSource(f"{name}:{folder}", splits["calibration"], splits["test"],
                      frames.input_shape, config.timesteps, static=False)


def load_data(spec: str | dict | DataSource, T: int | None = None,
              input_shape: tuple[int, ...] | None = None) -> DataSource:
    """A :class:`DataSource` from a DATA string, a dict of splits, or itself."""
    if isinstance(spec, DataSource):
        return spec
    if isinstance(spec, dict):
        calibration = spec.get("calibration", spec.get("train", spec.get("val")))
        if calibration is None or "test" not in spec:
            raise WorkbenchError("a data dict needs 'test' and 'calibration' (or 'train'/'val') "
                                 f"splits of (x, y); got keys {sorted(spec)}")
        return _tensor_data("data", calibration, spec["test"], T, input_shape)
    if not isinstance(spec, str):
        raise WorkbenchError(f"data must be a DATA string or a dict of splits, got "
                             f"{type(spec).__name__}")
    name, _, rest = spec.partition(":")
    if spec == "digits":
        return _zoo_data("digits", T)
    if spec == "digits_saccade_events":
        return _zoo_data("saccade_events", T)
    if name in REAL_DATA and rest:
        return _real_data(name, rest)
    raise WorkbenchError(f"unknown data source {spec!r}; accepted: {', '.join(EMBEDDED_DATA)}, "
                         f"or NAME:FOLDER with NAME one of {', '.join(REAL_DATA)}")


def _is_spiking(model) -> bool:
    return isinstance(model, SpikingNetwork)


def _from_factory(spec: str) -> tuple[object, object]:
    module_name, function_name = spec.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise WorkbenchError(f"cannot import {module_name!r} for model source {spec!r}: "
                             f"{exc}") from None
    factory: Callable | None = getattr(module, function_name, None)
    if not callable(factory):
        raise WorkbenchError(f"{module_name} has no function {function_name!r}")
    result = factory()
    if not (isinstance(result, tuple) and len(result) == 2):
        raise WorkbenchError(f"{spec} must return (model, data), got {type(result).__name__}")
    return result


def _zoo(name: str, data, T: int | None) -> ModelSource:
    if name not in SPECS:
        raise WorkbenchError(f"unknown zoo model {name!r}; available: {', '.join(SPECS)}")
    model, _ = load_model(name, progress=True)
    task = SPECS[name].task
    if data is None:
        data = _zoo_data("digits" if task == "noisy_digits" else task, T, SPECS[name].timesteps)
    return _build(f"zoo:{name}", model, data, T)


def _build(name: str, model, data, T: int | None) -> ModelSource:
    notes = []
    if isinstance(model, nir.NIRGraph):
        model = from_nir(model)
        notes.append("imported from NIR (see workbench.nir for the neuron mapping and reset "
                     "caveat)")
    if data is None:
        raise WorkbenchError(f"model source {name!r} carries no data: give a data source "
                             f"({', '.join(EMBEDDED_DATA)}, or NAME:FOLDER)")
    shape = model.input_shape if _is_spiking(model) else None
    data = load_data(data, T, shape)
    if T is not None:
        data.T = check_timesteps(T)
    device = default_device()
    ann = None
    if _is_spiking(model):
        snn = model
    elif isinstance(model, nn.Module):
        ann = model.to(device).eval()
        if not data.static:
            raise WorkbenchError("an ANN converts for static (direct-encoded) inputs; event data "
                                 "need a SpikingNetwork (or a NIR graph)")
        initial = "half" if any(isinstance(m, QCFS) for m in ann.modules()) else "zero"
        snn = convert(ann, data.calibration_inputs().to(device), initial=initial)
        notes.append(f"converted from the ANN (max balancing on calibration data, "
                     f"v₀ = {'θ/2' if initial == 'half' else '0'})")
    else:
        raise WorkbenchError(f"a model must be a SpikingNetwork, an nn.Sequential ANN or a NIR "
                             f"graph; got {type(model).__name__}")
    if tuple(snn.input_shape) != tuple(data.input_shape):
        raise WorkbenchError(f"the model takes inputs {tuple(snn.input_shape)} per step, the data "
                             f"{data.name!r} gives {tuple(data.input_shape)}")
    return ModelSource(name, snn.to(device).eval(), data, ann, notes)


def load_source(model, data=None, T: int | None = None) -> ModelSource:
    """A :class:`ModelSource` from a SOURCE string (see the module docstring) or a Python model
    (``SpikingNetwork``, ``nn.Sequential`` ANN, ``nir.NIRGraph``); ``data`` overrides the
    source's own data; ``T`` the number of timesteps (static inputs: 32; events: the frames)."""
    if T is not None:
        T = check_timesteps(T)
    if not isinstance(model, str):
        return _build(type(model).__name__, model, data, T)
    if model.startswith("zoo:"):
        return _zoo(model[4:], data, T)
    path = Path(model).expanduser()
    if path.suffix == ".nir" or path.is_file():
        return _build(str(path), from_nir(path), data, T)
    if FACTORY.match(model):
        made, made_data = _from_factory(model)
        return _build(model, made, data if data is not None else made_data, T)
    if model in SPECS:
        return _zoo(model, data, T)
    raise WorkbenchError(f"unknown model source {model!r}; accepted: zoo:NAME (zoo: "
                         f"{', '.join(SPECS)}), a .nir file, or pkg.module:function")

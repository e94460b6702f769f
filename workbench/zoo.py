"""Default trained models: trained on first use (with progress), cached with their metrics,
seed and the command that made them. ``workbench prepare`` builds them all.

Only ANNs are stored; their SNNs come from :func:`workbench.convert.convert` in milliseconds.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from workbench.cache import cache_dir, config_key, read_entry, write_entry
from workbench.convert import convert
from workbench.datasets.digits import load_digits_split
from workbench.device import default_device, set_threads
from workbench.errors import WorkbenchError
from workbench.models import digits_cnn
from workbench.network import SpikingNetwork
from workbench.train import evaluate, fit

COMMAND = "workbench prepare"


@dataclass(frozen=True)
class ModelSpec:
    """How one default model is built: architecture kwargs and training settings."""

    name: str
    description: str
    architecture: Callable[..., nn.Module]
    arch_kwargs: dict[str, Any] = field(default_factory=dict)
    epochs: int = 40
    lr: float = 1e-3
    seed: int = 0

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "architecture": self.architecture.__name__,
                "arch_kwargs": self.arch_kwargs, "epochs": self.epochs, "lr": self.lr,
                "seed": self.seed, "torch": torch.__version__.split("+")[0]}


SPECS = {s.name: s for s in [
    ModelSpec("digits_ann", "ReLU CNN on the 8×8 digits (converted for 'Spiking basics')",
              digits_cnn, {"activation": "relu"}),
    ModelSpec("digits_qcfs_ann", "QCFS (L=4) CNN on the digits, for low-latency conversion",
              digits_cnn, {"activation": "qcfs", "levels": 4}),
]}


def _train(spec: ModelSpec, progress: bool) -> tuple[nn.Module, dict[str, Any]]:
    data = load_digits_split()
    torch.manual_seed(spec.seed)
    model = spec.architecture(**spec.arch_kwargs).to(default_device())
    start = time.perf_counter()
    history = fit(model, (data["train"].x, data["train"].y), val=(data["val"].x, data["val"].y),
                  epochs=spec.epochs, lr=spec.lr, seed=spec.seed, progress=progress,
                  desc=f"training {spec.name}")
    model.eval()
    metrics = {"val_accuracy": max(history["val_accuracy"]),
               "test_accuracy": evaluate(model, data["test"].x, data["test"].y),
               "train_seconds": round(time.perf_counter() - start, 1)}
    return model, metrics


def _path(spec: ModelSpec):
    return cache_dir() / "models" / f"{spec.name}-{config_key(spec.config())}.pt"


def load_model(name: str, progress: bool = True) -> tuple[nn.Module, dict[str, Any]]:
    """The trained model ``name`` and its metadata; trains and caches it if needed."""
    if name not in SPECS:
        raise WorkbenchError(f"unknown model {name!r}; available: {', '.join(SPECS)}")
    spec = SPECS[name]
    path = _path(spec)
    entry = read_entry(path)
    model = spec.architecture(**spec.arch_kwargs)
    if entry is not None:
        model.load_state_dict(torch.load(io.BytesIO(entry[0]), weights_only=True))
        return model.eval().to(default_device()), entry[1]
    set_threads()
    model, metrics = _train(spec, progress)
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    meta = {"model": name, "description": spec.description, "metrics": metrics,
            "config": spec.config(), "seed": spec.seed, "command": COMMAND}
    write_entry(path, buffer.getvalue(), meta)
    return model, meta


def prepare(progress: bool = True) -> list[dict[str, Any]]:
    """Build every default dataset and model that is not cached yet; return their metadata."""
    from workbench.datasets.saccade import digits_saccade_events

    digits_saccade_events()
    return [load_model(name, progress)[1] for name in SPECS]


def basics_snn(balance: str = "max", initial: str = "zero") -> tuple[SpikingNetwork, nn.Module]:
    """The 'Spiking basics' SNN: the digits ANN converted with IF neurons, calibrated on the
    training split. Returns (snn, ann)."""
    ann, _ = load_model("digits_ann")
    x_calib = load_digits_split()["train"].x.to(default_device())
    return convert(ann, x_calib, balance=balance, initial=initial).to(default_device()), ann

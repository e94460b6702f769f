"""Default trained models: shipped prebuilt with the package (verified by hash), else trained on
first use (with progress) into the user cache, each with its provenance record (metrics, seed,
versions, the command that rebuilds it). ``workbench prepare`` makes sure they all exist.

Only ANNs are stored; their SNNs come from :func:`workbench.convert.convert` in milliseconds.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import nn

from workbench.cache import load_or_build
from workbench.convert import convert
from workbench.datasets.digits import load_digits_split, shifted_digits
from workbench.device import default_device, set_threads
from workbench.errors import WorkbenchError
from workbench.models import deep_digits_cnn, digits_cnn, event_snn
from workbench.network import SpikingNetwork, output
from workbench.study import BUDGETS, check_budget
from workbench.train import evaluate, fit, plain_forward


@dataclass(frozen=True)
class ModelSpec:
    """How one default model is built and trained.

    ``task``: ``"digits"`` (static 8×8 images, cross-entropy on the output) or
    ``"noisy_digits"`` (the same with fixed Gaussian pixel noise), ``"shifted_noisy_digits"``
    (each digit upsampled to 12×12 at a fixed random place on a 16×16 canvas, then the same
    noise), ``"saccade_events"``
    (event frames over ``timesteps`` bins, surrogate-gradient BPTT with the
    TET loss and, when ``rcs_alpha`` > 0, AOI's RCS regulariser) or ``"saccade_rates"`` (an ANN
    on the mean of ``timesteps`` event frames: the rates its converted SNN receives per step).
    """

    name: str
    description: str
    architecture: Callable[..., nn.Module]
    arch_kwargs: dict[str, Any] = field(default_factory=dict)
    task: str = "digits"
    epochs: int = 40
    lr: float = 1e-3
    timesteps: int = 10
    rcs_alpha: float = 0.0
    seed: int = 0

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "architecture": self.architecture.__name__,
                "arch_kwargs": self.arch_kwargs, "task": self.task, "epochs": self.epochs,
                "lr": self.lr, "timesteps": self.timesteps, "rcs_alpha": self.rcs_alpha,
                "seed": self.seed, "torch": torch.__version__.split("+")[0]}


SPECS = {s.name: s for s in [
    ModelSpec("digits_ann", "ReLU CNN on the 8×8 digits (converted for 'Spiking basics')",
              digits_cnn, {"activation": "relu"}),
    ModelSpec("digits_qcfs_ann", "QCFS (L=4) CNN on the digits, for low-latency conversion",
              digits_cnn, {"activation": "qcfs", "levels": 4}),
    ModelSpec("deep_digits_ann", "deeper ReLU CNN without BN on the digits (IIR's starting point)",
              deep_digits_cnn, epochs=30),
    ModelSpec("deep_noisy_digits_ann", "the same CNN on digits with Gaussian pixel noise σ = 0.5",
              deep_digits_cnn, task="noisy_digits", epochs=30),
    ModelSpec("event_ann", "ReLU CNN on saccade-digit event rates (mean of 64 bins), for conversion",
              digits_cnn, {"in_channels": 2, "size": 16}, task="saccade_rates", timesteps=64),
    ModelSpec("event_snn", "LIF conv SNN trained directly on saccade-digit events (TET loss)",
              event_snn, task="saccade_events", lr=2e-3),
    ModelSpec("event_snn_rcs", "the same SNN trained with AOI's RCS regulariser (α = 0.05)",
              event_snn, task="saccade_events", lr=2e-3, rcs_alpha=0.05),
]}


NOISE_SIGMA = 0.5


def task_data(task: str, timesteps: int = 10):
    """(splits {name: (x, y)} batch-first, forward) of a training task."""
    if task in ("digits", "noisy_digits", "shifted_noisy_digits"):
        data = load_digits_split()
        splits = {k: (v.x, v.y) for k, v in data.items()}
        if task == "shifted_noisy_digits":  # fixed, seeded offsets before the noise
            placement = torch.Generator().manual_seed(2)
            splits = {k: (shifted_digits(x, generator=placement), y)
                      for k, (x, y) in splits.items()}
        if task != "digits":  # fixed, seeded noise: the same noisy images every time
            generator = torch.Generator().manual_seed(1)
            splits = {k: (x + NOISE_SIGMA * torch.randn(x.shape, generator=generator), y)
                      for k, (x, y) in splits.items()}
        return splits, plain_forward
    from workbench.datasets.saccade import digits_saccade_events

    events = digits_saccade_events()
    splits = {}
    for name in ("train", "val", "test"):
        x, y = events.frames(name, timesteps)
        splits[name] = (x.mean(0) if task == "saccade_rates" else x.transpose(0, 1).contiguous(), y)
    if task == "saccade_rates":
        return splits, plain_forward
    return splits, lambda model, x: output(model, x.transpose(0, 1), timesteps)


def _train(spec: ModelSpec, progress: bool) -> tuple[nn.Module, dict[str, Any]]:
    splits, forward = task_data(spec.task, spec.timesteps)
    objective = None
    if spec.task == "saccade_events":
        from workbench.methods.rcs import tet_rcs_objective  # the zoo serves the methods

        objective = tet_rcs_objective(spec.timesteps, spec.rcs_alpha)
    torch.manual_seed(spec.seed)
    model = spec.architecture(**spec.arch_kwargs).to(default_device())
    start = time.perf_counter()
    history = fit(model, splits["train"], val=splits["val"], forward=forward,
                  objective=objective, epochs=spec.epochs, lr=spec.lr, seed=spec.seed,
                  progress=progress, desc=f"training {spec.name}")
    model.eval()
    metrics = {"val_accuracy": max(history["val_accuracy"]),
               "test_accuracy": evaluate(model, *splits["test"], forward=forward),
               "train_seconds": round(time.perf_counter() - start, 1)}
    return model, metrics


def model_spec(name: str, seed: int = 0, budget: str = "full") -> ModelSpec:
    """The spec of default model ``name`` trained with ``seed`` on ``budget`` (a key of
    :data:`workbench.study.BUDGETS`: "tiny" trains one epoch). Seed 0 on the full budget is the
    shipped model; any other is a different cache entry."""
    if name not in SPECS:
        raise WorkbenchError(f"unknown model {name!r}; available: {', '.join(SPECS)}")
    return budgeted(SPECS[name], seed, budget)


def budgeted(spec: ModelSpec, seed: int = 0, budget: str = "full") -> ModelSpec:
    """``spec`` trained with ``seed`` on ``budget`` (its own epochs on the full budget)."""
    return replace(spec, seed=seed, epochs=BUDGETS[check_budget(budget)] or spec.epochs)


def rcs_spec(alpha: float, seed: int = 0, budget: str = "full") -> ModelSpec:
    """The event SNN trained with RCS weight ``alpha`` (α ≥ 0; 0: TET alone), ``seed`` and
    ``budget``: the zoo's own spec where one has this α (``event_snn``, ``event_snn_rcs``: the
    same cache entries, nothing trained twice), else ``event_snn_rcs`` with α replaced."""
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 <= alpha < math.inf:
        raise WorkbenchError(f"RCS weight α must be a finite number >= 0, got {alpha!r}")
    for name in ("event_snn", "event_snn_rcs"):
        if SPECS[name].rcs_alpha == alpha:
            return model_spec(name, seed, budget)
    return replace(model_spec("event_snn_rcs", seed, budget), rcs_alpha=float(alpha),
                   description=f"the event SNN trained with AOI's RCS regulariser (α = {alpha:g})")


def load_model(name: str, progress: bool = True, seed: int = 0, budget: str = "full"
               ) -> tuple[nn.Module, dict[str, Any]]:
    """The trained model ``name`` (training ``seed``, ``budget``) and its provenance record;
    trained and cached if needed."""
    return load_spec(model_spec(name, seed, budget), progress)


def load_spec(spec: ModelSpec, progress: bool = True) -> tuple[nn.Module, dict[str, Any]]:
    """The model of ``spec`` (a default one, or a study's own outside :data:`SPECS`) and its
    provenance record; trained and cached if needed (the cache key is ``spec.config()``)."""
    def build() -> tuple[dict, dict[str, Any]]:
        set_threads()
        model, metrics = _train(spec, progress)
        return model.state_dict(), metrics

    state, record = load_or_build(spec.name, spec.config(), build, seed=spec.seed,
                                  meta={"model": spec.name, "description": spec.description})
    model = spec.architecture(**spec.arch_kwargs)
    model.load_state_dict(state)
    return model.eval().to(default_device()), record


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

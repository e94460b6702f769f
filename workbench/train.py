"""One training loop for ANNs and surrogate-gradient SNNs, with tqdm progress and seeds."""

from __future__ import annotations

import copy
import math
import random
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from workbench.errors import WorkbenchError

Forward = Callable[[nn.Module, Tensor], Tensor]
Objective = Callable[[nn.Module, Tensor, Tensor], Tensor]


def seed_everything(seed: int) -> torch.Generator:
    """Seed python, numpy and torch; return a torch generator for data order."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def plain_forward(model: nn.Module, x: Tensor) -> Tensor:
    """The model applied to x: the forward pass of an ANN."""
    return model(x)


@torch.no_grad()
def evaluate(model: nn.Module, x: Tensor, y: Tensor, forward: Forward = plain_forward,
             batch_size: int = 512) -> float:
    """Accuracy of ``forward(model, x)`` against labels ``y``."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    correct = 0
    for i in range(0, len(x), batch_size):
        logits = forward(model, x[i:i + batch_size].to(device))
        correct += int((logits.argmax(-1).cpu() == y[i:i + batch_size]).sum())
    model.train(was_training)
    return correct / max(len(x), 1)


# a model built on first use may be asked for inside an inference block (torch.no_grad)
@torch.enable_grad()
def fit(
    model: nn.Module,
    train: tuple[Tensor, Tensor],
    *,
    val: tuple[Tensor, Tensor] | None = None,
    forward: Forward = plain_forward,
    loss_fn: Callable[[Tensor, Tensor], Tensor] = F.cross_entropy,
    objective: Objective | None = None,
    epochs: int = 30,
    lr: float = 1e-3,
    lr_decay: bool = False,
    weight_decay: float = 0.0,
    batch_size: int = 64,
    seed: int = 0,
    progress: bool = True,
    desc: str = "training",
    on_epoch: Callable[[int, dict], bool | None] | None = None,
) -> dict[str, list[float]]:
    """Train ``model`` with Adam on ``train = (x, y)`` (batch-first tensors); keep the weights of
    the best validation epoch when ``val`` is given; ``lr_decay`` anneals the learning rate from
    ``lr`` to 0 along a cosine over every batch of every epoch. The loss is
    ``loss_fn(forward(model, x), y)``, or ``objective(model, x, y)`` when given (losses that
    read more than the output). After every step, modules with ``constrain_`` (trainable θ/λ)
    are projected back into range. Returns the
    per-epoch history; validation accuracy is measured with ``forward``. ``on_epoch(epoch,
    history)`` is called after every epoch; returning False stops training at once (the
    history then has ``"cancelled": True`` and the weights are those of the last epoch)."""
    if epochs < 1 or batch_size < 1:
        raise WorkbenchError(f"epochs and batch_size must be >= 1, got {epochs}, {batch_size}")
    x, y = train
    if len(x) != len(y) or len(x) == 0:
        raise WorkbenchError(f"training inputs ({len(x)}) and labels ({len(y)}) must match and "
                             "not be empty")
    generator = seed_everything(seed)
    device = next(model.parameters()).device
    optimiser = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    schedule = (torch.optim.lr_scheduler.CosineAnnealingLR(
        optimiser, T_max=epochs * math.ceil(len(x) / batch_size)) if lr_decay else None)
    constrained = [m for m in model.modules() if hasattr(m, "constrain_") and m is not model]
    history: dict[str, list[float]] = {"loss": [], "val_accuracy": []}
    best, best_state = -1.0, None
    bar = tqdm(range(epochs), desc=desc, disable=not progress, leave=False)
    for _ in bar:
        model.train()
        order = torch.randperm(len(x), generator=generator)
        total, n = 0.0, 0
        for i in range(0, len(x), batch_size):
            idx = order[i:i + batch_size]
            xb, yb = x[idx].to(device), y[idx].to(device)
            loss = (objective(model, xb, yb) if objective is not None
                    else loss_fn(forward(model, xb), yb))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            if schedule is not None:
                schedule.step()
            for module in constrained:
                module.constrain_()
            total += float(loss.detach()) * len(idx)
            n += len(idx)
        history["loss"].append(total / n)
        if val is not None:
            acc = evaluate(model, *val, forward=forward)
            history["val_accuracy"].append(acc)
            if acc > best:
                best, best_state = acc, copy.deepcopy(model.state_dict())
            bar.set_postfix(loss=f"{total / n:.3f}", val=f"{acc:.3f}")
        else:
            bar.set_postfix(loss=f"{total / n:.3f}")
        if on_epoch is not None and on_epoch(len(history["loss"]), history) is False:
            history["cancelled"] = True
            return history
    if best_state is not None:
        model.load_state_dict(best_state)
    return history

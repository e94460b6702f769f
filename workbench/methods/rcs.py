"""Direct training of event SNNs for early exit: the TET loss and AOI's RCS regulariser.

TET (Deng et al., ICLR 2022): the cross-entropy of every step's output y_t (not only of the
sum), plus a small pull of y_t towards a constant φ. RCS, "regularising cosine similarity"
(Wu et al., AOI-SNN, arXiv 2301.09522, in the authors' later code): for every spiking layer,
r_t = s_t + ReLU(v_t/θ) (spikes plus the positive post-reset potential); the cosine similarity
of r_t with its mean over the last ⌈β·T⌉ steps (detached), averaged over t, is pushed up through
R = 1 / (cs + 1e-5); the largest R over layers counts, only for samples classified correctly in
each of those last steps. Early representations then resemble late ones and outputs settle
sooner.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from workbench.network import SpikingNetwork, simulate


def step_outputs(readout: Tensor) -> Tensor:
    """Per-step outputs y_t [T, B, K] from the accumulated readout O_t (λ_out = 1)."""
    return torch.cat([readout[:1], readout[1:] - readout[:-1]])


def tet_loss(outputs: Tensor, labels: Tensor, lam: float = 1e-3, phi: float = 1.0) -> Tensor:
    """(1 − λ)·mean_t CE(y_t, y) + λ·MSE(y_t, φ); ``outputs`` [T, B, K]."""
    T = outputs.shape[0]
    ce = F.cross_entropy(outputs.flatten(0, 1), labels.repeat(T))
    return (1 - lam) * ce + lam * F.mse_loss(outputs, torch.full_like(outputs, phi))


def rcs_penalty(layers: dict[str, list[tuple[Tensor, Tensor]]], thresholds: dict[str, Tensor],
                readout: Tensor, labels: Tensor, beta: float = 0.3) -> Tensor:
    """R(n) per sample [B]: max over layers of 1/(mean_t cos(r_t, r̄) + 1e-5), zero for samples
    not classified correctly at each of the last ⌈β·T⌉ steps.

    ``layers[cell]`` holds the (spikes, post-reset membrane) of every step, as observed live.
    """
    T = readout.shape[0]
    k = max(1, math.ceil(beta * T))
    per_layer = []
    for name, steps in layers.items():
        theta = thresholds[name]
        r = torch.stack([z + torch.relu(v / theta) for z, v in steps]).flatten(2)  # [T, B, N]
        reference = r[-k:].mean(0).detach()
        similarity = F.cosine_similarity(r, reference.expand_as(r), dim=-1, eps=1e-8).mean(0)
        per_layer.append(1.0 / (similarity + 1e-5))
    correct = (readout[-k:].argmax(-1) == labels).all(0).to(readout.dtype)
    return torch.stack(per_layer).amax(0) * correct


def tet_rcs_objective(T: int, alpha: float = 0.0, beta: float = 0.3):
    """A training objective for :func:`workbench.train.fit`: TET, plus α·mean R when α > 0.
    Inputs are batch-first event frames [B, T, 2, H, W]."""
    def objective(net: SpikingNetwork, x: Tensor, y: Tensor) -> Tensor:
        layers: dict[str, list[tuple[Tensor, Tensor]]] = {}

        def observe(t, name, spikes, state):
            layers.setdefault(name, []).append((spikes, state.v))

        trajectory = simulate(net, x.transpose(0, 1), T, grad=True,
                              observe=observe if alpha > 0 else None)
        loss = tet_loss(step_outputs(trajectory.readout), y)
        if alpha > 0:
            thresholds = {n: c.base_threshold() for n, c in net.cells().items()}
            loss = loss + alpha * rcs_penalty(layers, thresholds, trajectory.readout, y,
                                              beta).mean()
        return loss
    return objective

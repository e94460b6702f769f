"""Simulate a dataset batch by batch and join the trajectories: a dataset larger than memory
(real event recordings through a ``DataLoader``) still gives one :class:`Trajectory`.

Only the per-step readout and counts are kept per sample ([T, B, K] and [T, B] per layer): a
few MB for thousands of samples. Rasters and membranes come from re-simulating the samples
shown (:func:`simulate` with ``record=``), as the pages do.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor

from workbench.device import default_device
from workbench.errors import WorkbenchError
from workbench.network import SpikingNetwork, simulate
from workbench.trajectory import Trajectory

Batches = Iterable[tuple[Tensor, Tensor]]


def concat(trajectories: list[Trajectory]) -> Trajectory:
    """Trajectories of disjoint sample batches (same network, same T) joined along B."""
    if not trajectories:
        raise WorkbenchError("no batches to join: the data split is empty")
    first = trajectories[0]

    def joined(field: str) -> dict[str, Tensor]:
        return {k: torch.cat([getattr(t, field)[k] for t in trajectories], 1)
                for k in getattr(first, field)}

    return Trajectory(
        readout=torch.cat([t.readout for t in trajectories], 1),
        active=torch.cat([t.active for t in trajectories], 1),
        spike_counts=joined("spike_counts"), synaptic_ops=joined("synaptic_ops"),
        analog_stages=first.analog_stages, dense_macs=first.dense_macs, neurons=first.neurons,
        spikes=joined("spikes"), membrane=joined("membrane"),
        thresholds={k: torch.cat([t.thresholds[k] for t in trajectories], 1) if v.dim() == 3
                    else v for k, v in first.thresholds.items()},
        recorded_neurons=first.recorded_neurons)


@torch.no_grad()
def simulate_batches(net: SpikingNetwork, batches: Batches, T: int | None = None
                     ) -> tuple[Trajectory, Tensor]:
    """Simulate every batch ``(x, y)`` of ``batches`` (static [B, ...] or events [T, B, ...]) on
    the default device; return the joined trajectory (on the CPU) and the labels [N]."""
    device = default_device()
    net = net.to(device)
    parts, labels = [], []
    for x, y in batches:
        parts.append(_to_cpu(simulate(net, x.to(device), T)))
        labels.append(torch.as_tensor(y).cpu())
    trajectory = concat(parts)
    return trajectory, torch.cat(labels)


def _to_cpu(trajectory: Trajectory) -> Trajectory:
    def moved(d: dict[str, Tensor]) -> dict[str, Tensor]:
        return {k: v.cpu() for k, v in d.items()}

    t = trajectory
    return Trajectory(t.readout.cpu(), t.active.cpu(), moved(t.spike_counts),
                      moved(t.synaptic_ops), t.analog_stages, t.dense_macs, t.neurons,
                      moved(t.spikes), moved(t.membrane), moved(t.thresholds),
                      t.recorded_neurons)

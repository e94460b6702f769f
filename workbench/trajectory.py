"""A recorded SNN run: everything the workbench shows is a cheap function of one trajectory.

Shapes: T timesteps, B samples, K classes, N recorded neurons of a layer.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch
from torch import Tensor

from workbench.errors import WorkbenchError


@dataclass
class Trajectory:
    """One simulation of B samples for T timesteps.

    Attributes:
        readout: accumulated output ``O[t, b, k]`` after step t+1, [T, B, K]. After a sample
            stops, its readout stays frozen at the value of its last simulated step.
        active: [T, B] bool, True where the sample was simulated at that step.
        spike_counts: cell name -> spikes emitted per sample per step, [T, B].
        synaptic_ops: stage name -> accumulates caused by the stage's binary/event input
            (Σ input spikes × fan-out, exact), [T, B]. Only stages fed by spikes or events.
        analog_stages: names of stages fed by analog values (charged dense MACs each step).
        dense_macs: stage name -> MACs of one dense pass of its synaptic layers, per sample.
        neurons: cell name -> neurons per sample.
        spikes, membrane: cell name -> recorded spikes / post-reset membrane of the selected
            neurons, [T, B, N] (only for the layers asked for).
        thresholds: cell name -> the threshold of the recorded neurons: [T, B, N] under an
            adaptive policy, else the constant θ broadcastable to [N].
        recorded_neurons: cell name -> flat indices of the recorded neurons, [N].
    """

    readout: Tensor
    active: Tensor
    spike_counts: dict[str, Tensor]
    synaptic_ops: dict[str, Tensor]
    analog_stages: tuple[str, ...]
    dense_macs: dict[str, int]
    neurons: dict[str, int]
    spikes: dict[str, Tensor] = field(default_factory=dict)
    membrane: dict[str, Tensor] = field(default_factory=dict)
    thresholds: dict[str, Tensor] = field(default_factory=dict)
    recorded_neurons: dict[str, Tensor] = field(default_factory=dict)

    @property
    def T(self) -> int:
        return self.readout.shape[0]

    @property
    def B(self) -> int:
        return self.readout.shape[1]

    @property
    def stop_steps(self) -> Tensor:
        """Timesteps simulated per sample, [B] (T for samples that never stopped)."""
        return self.active.sum(0)

    def predictions(self) -> Tensor:
        """Predicted class after every step, [T, B]."""
        return self.readout.argmax(-1)

    def accuracy_curve(self, labels: Tensor) -> Tensor:
        """Accuracy after t = 1..T steps, [T], from this one run."""
        labels = torch.as_tensor(labels, device=self.readout.device)
        if labels.shape != (self.B,):
            raise WorkbenchError(f"labels must have shape ({self.B},), got {tuple(labels.shape)}")
        return (self.predictions() == labels).float().mean(1)

    def macs(self) -> dict[str, Tensor]:
        """Stage name -> MACs spent per sample per step, [T, B] (analog-fed stages only)."""
        return {s: self.active.float() * self.dense_macs[s] for s in self.analog_stages}

    def neuron_updates(self) -> dict[str, Tensor]:
        """Cell name -> neuron updates per sample per step, [T, B]."""
        return {c: self.active.float() * n for c, n in self.neurons.items()}

    def firing_rates(self) -> dict[str, Tensor]:
        """Cell name -> mean spikes per neuron per simulated step, [T] (over active samples)."""
        n_active = self.active.float().sum(1).clamp(min=1)
        return {c: counts.sum(1) / n_active / self.neurons[c]
                for c, counts in self.spike_counts.items()}

    def cumulative_spikes(self) -> Tensor:
        """Spikes of all cells per sample up to and including step t, [T, B]."""
        return torch.cumsum(sum(self.spike_counts.values()), 0)

    def spikes_per_sample(self) -> Tensor:
        """Total spikes of all cells per sample over the simulated steps, [B]."""
        return sum(c.sum(0) for c in self.spike_counts.values())

    def select(self, index: Tensor | slice) -> Trajectory:
        """The trajectory of a subset of samples (batch index or slice)."""
        return self._slice((slice(None), index))

    def until(self, t: int) -> Trajectory:
        """The first ``t`` timesteps: what a run with T = t would have recorded."""
        if not 1 <= t <= self.T:
            raise WorkbenchError(f"t must be in 1..{self.T}, got {t}")
        return self._slice((slice(0, t),))

    def stopped_at(self, stop_steps: Tensor) -> Trajectory:
        """This run replayed with sample b stopping after ``stop_steps[b]`` steps (1..T): what a
        live run with those stops records — readout frozen, counts and recordings zero after."""
        stop_steps = torch.as_tensor(stop_steps, device=self.readout.device)
        if stop_steps.shape != (self.B,) or (stop_steps < 1).any() or (stop_steps > self.T).any():
            raise WorkbenchError(f"stop steps must have shape ({self.B},) and lie in 1..{self.T}")
        steps = torch.arange(1, self.T + 1, device=stop_steps.device)[:, None]
        running = (steps <= stop_steps) & self.active  # [T, B]
        frozen = self.readout.gather(0, (stop_steps - 1).view(1, -1, 1).expand(1, -1,
                                                                            self.readout.shape[2]))
        readout = torch.where(running[..., None], self.readout, frozen)

        def masked(d: dict[str, Tensor]) -> dict[str, Tensor]:
            return {k: v * running.view(*running.shape, *([1] * (v.dim() - 2))).to(v.dtype)
                    for k, v in d.items()}

        return replace(
            self, readout=readout, active=running, spike_counts=masked(self.spike_counts),
            synaptic_ops=masked(self.synaptic_ops), spikes=masked(self.spikes),
            membrane=masked(self.membrane),
            thresholds={k: masked({k: v})[k] if v.dim() == 3 else v
                        for k, v in self.thresholds.items()})

    def _slice(self, key: tuple) -> Trajectory:
        """Index every [T, B, ...] tensor with ``key`` (time, then batch)."""
        def sliced(d: dict[str, Tensor]) -> dict[str, Tensor]:
            return {k: v[key] for k, v in d.items()}

        return replace(
            self,
            readout=self.readout[key],
            active=self.active[key],
            spike_counts=sliced(self.spike_counts),
            synaptic_ops=sliced(self.synaptic_ops),
            spikes=sliced(self.spikes),
            membrane=sliced(self.membrane),
            thresholds={k: v[key] if v.dim() == 3 else v for k, v in self.thresholds.items()},
        )

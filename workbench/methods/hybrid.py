"""Hybrid ANN-SNN: a low-rate ANN sets the SNN's state; the SNN predicts at a high rate between.

Aydin, Gehrig, Gehrig & Scaramuzza, "A Hybrid ANN-SNN Architecture for Low-Power and
Low-Latency Visual Perception" (arXiv 2303.14176, CVPR workshops 2024). At the start of every
window an ANN reads the events *before* the window and predicts joint heatmaps; per-layer state
heads map its features to the initial membrane potential of every SNN layer. The SNN (LIF,
``v ← v + (x − v)/τ``, soft reset) then runs on one event frame per step, and its leaky readout
``y_t = λ_out·y_{t−1} + head(s_t)`` starts from the ANN's heatmaps. Training adds a
state-consistency loss: the SNN's membranes at the end of a window should match what the frozen
ANN's heads would set for the next window.

Three ways to start a window (``init``): ``"state"`` (heads set every membrane, the ANN sets the
readout: the hybrid), ``"readout"`` (membranes start at zero, the ANN sets the readout: the
ablation without state init) and ``"zero"`` (everything starts at zero: the SNN alone).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from workbench.errors import WorkbenchError, check_choice
from workbench.methods.hybrid_data import ANN_HISTORY_BINS, PoseSequences, Timing, heatmaps
from workbench.network import SpikingNetwork, simulate
from workbench.neurons import LIFBoxLayer
from workbench.train import fit
from workbench.trajectory import Trajectory

INITS = ("state", "readout", "zero")
JOINT_COUNT = 13


def _small_head(c_in: int, joints: int) -> nn.Conv2d:
    """A 1×1 conv to heatmaps that starts near zero (weights scaled by 0.1, no bias): training
    then starts from empty maps, not from noise the size of the targets."""
    head = nn.Conv2d(c_in, joints, 1)
    with torch.no_grad():
        head.weight.mul_(0.1)
        head.bias.zero_()
    return head


def _conv(c_in: int, c_out: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]


class PoseANN(nn.Module):
    """A U-Net-lite on the 20-channel event histogram: an encoder at 32×32 and 16×16, a decoder
    back to 32×32 with a skip connection, and a 1×1 conv to 13 joint heatmaps.

    :meth:`features` exposes the maps the state heads read: ``enc1`` [B, w, 32, 32],
    ``enc2`` [B, 2w, 16, 16] and ``dec`` [B, w, 32, 32]."""

    def __init__(self, width: int = 16, joints: int = JOINT_COUNT) -> None:
        super().__init__()
        self.enc1 = nn.Sequential(*_conv(2 * ANN_HISTORY_BINS, width))
        self.enc2 = nn.Sequential(nn.AvgPool2d(2), *_conv(width, 2 * width),
                                  *_conv(2 * width, 2 * width))
        self.up = nn.Sequential(nn.Upsample(scale_factor=2), *_conv(2 * width, width))
        self.dec = nn.Sequential(*_conv(2 * width, width))
        self.head = _small_head(width, joints)

    def features(self, x: Tensor) -> dict[str, Tensor]:
        enc1 = self.enc1(x)
        enc2 = self.enc2(enc1)
        dec = self.dec(torch.cat([self.up(enc2), enc1], 1))
        return {"enc1": enc1, "enc2": enc2, "dec": dec}

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x)["dec"])


def pose_snn(timing: Timing = Timing(), channels: tuple[int, int] = (32, 32),
             joints: int = JOINT_COUNT, surrogate: tuple[str, float] = ("atan", 2.0)
             ) -> SpikingNetwork:
    """The SNN on 2-polarity event frames: four conv → BN → LIF layers (32×32, stride-2 down to
    16×16, 16×16, nearest ×2 up to 32×32), a 1×1 conv head and a leaky readout; τ and λ_out
    follow the SNN rate; ``surrogate`` is (method, α) of the spikes' gradient."""
    narrow, wide = channels
    method, alpha = surrogate

    def lif() -> LIFBoxLayer:
        return LIFBoxLayer(tau=timing.tau, threshold=1.0, surrogate=method, alpha=alpha)

    return SpikingNetwork([
        ("conv1", nn.Conv2d(2, narrow, 3, padding=1, bias=False)), ("bn1", nn.BatchNorm2d(narrow)),
        ("lif1", lif()),
        ("conv2", nn.Conv2d(narrow, wide, 3, 2, 1, bias=False)), ("bn2", nn.BatchNorm2d(wide)),
        ("lif2", lif()),
        ("conv3", nn.Conv2d(wide, wide, 3, padding=1, bias=False)), ("bn3", nn.BatchNorm2d(wide)),
        ("lif3", lif()),
        ("up4", nn.Upsample(scale_factor=2)),
        ("conv4", nn.Conv2d(wide, narrow, 3, padding=1, bias=False)), ("bn4", nn.BatchNorm2d(narrow)),
        ("lif4", lif()),
        ("head", _small_head(narrow, joints)),
    ], (2, 32, 32), readout_leak=timing.readout_leak)


# which ANN feature map initializes which SNN layer (same resolution)
PAIRING = {"lif1": "enc1", "lif2": "enc2", "lif3": "enc2", "lif4": "dec"}


def state_head(c_in: int, c_out: int) -> nn.Sequential:
    """Maps an ANN feature map to a membrane-potential map (in threshold units):
    conv1×1 → BN → LeakyReLU(0.1) → conv1×1 → BN."""
    return nn.Sequential(nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out),
                         nn.LeakyReLU(0.1), nn.Conv2d(c_out, c_out, 1, bias=False),
                         nn.BatchNorm2d(c_out))


class HybridPose(nn.Module):
    """A frozen :class:`PoseANN`, an SNN from :func:`pose_snn` and one state head per SNN layer.

    ``init`` picks how each window starts (see the module docstring)."""

    def __init__(self, ann: PoseANN, timing: Timing = Timing(), init: str = "state",
                 channels: tuple[int, int] = (32, 32),
                 surrogate: tuple[str, float] = ("atan", 2.0)) -> None:
        super().__init__()
        self.init = check_choice(init, INITS, "window initialization")
        self.timing = timing
        self.ann = ann.eval()
        for p in self.ann.parameters():
            p.requires_grad_(False)
        self.snn = pose_snn(timing, channels, surrogate=surrogate)
        with torch.no_grad():
            feats = self.ann.features(torch.zeros(1, 2 * ANN_HISTORY_BINS, 32, 32))
            shapes = _cell_shapes(self.snn)
        self.heads = nn.ModuleDict({cell: state_head(feats[PAIRING[cell]].shape[1], shape[0])
                                    for cell, shape in shapes.items()})

    def train(self, mode: bool = True) -> HybridPose:
        super().train(mode)
        self.ann.eval()  # frozen: its BN statistics never move
        return self

    def states(self, ann_input: Tensor) -> tuple[dict[str, Tensor], Tensor]:
        """(membranes {cell: [B, C, H, W]} from the state heads, ANN heatmaps [B, 13, 32, 32]).
        The ANN runs without gradients; the heads keep theirs."""
        with torch.no_grad():
            feats = self.ann.features(ann_input)
            maps = self.ann.head(feats["dec"])
        return {cell: head(feats[PAIRING[cell]]) for cell, head in self.heads.items()}, maps

    def initial_state(self, ann_input: Tensor) -> dict[str, Tensor]:
        """``simulate``'s ``init_state`` for windows whose ANN input is ``ann_input``."""
        if self.init == "zero":
            return {}
        membranes, maps = self.states(ann_input)
        return {"readout": maps, **(membranes if self.init == "state" else {})}

    def window(self, frames: Tensor, ann_input: Tensor, grad: bool = False,
               record: dict | list | None = None,
               observe: Callable | None = None) -> Trajectory:
        """Run one window: ``frames`` [N, B, 2, 32, 32] event counts per SNN step, ``ann_input``
        [B, 20, 32, 32] the events before the window. The trajectory's readout [N, B, 13, 32,
        32] is the heatmap after every step."""
        if frames.dim() != 5 or ann_input.dim() != 4 or frames.shape[1] != ann_input.shape[0]:
            raise WorkbenchError(f"a window needs frames [N, B, 2, 32, 32] and an ANN input "
                                 f"[B, 20, 32, 32]; got {tuple(frames.shape)} and "
                                 f"{tuple(ann_input.shape)}")
        return simulate(self.snn, frames, init_state=self.initial_state(ann_input), grad=grad,
                        record=record, observe=observe)


@torch.no_grad()
def _cell_shapes(net: SpikingNetwork) -> dict[str, tuple[int, ...]]:
    shapes, h = {}, torch.zeros(1, *net.input_shape)
    was_training = net.training
    net.eval()
    for stage in net.stages:
        h = stage.ops(h)
        if stage.cell is not None:
            shapes[stage.name] = tuple(h.shape[1:])
    net.train(was_training)
    return shapes


def heatmap_loss(predicted: Tensor, joints: Tensor) -> Tensor:
    """Squared error between heatmaps [..., J, H, W] and the Gaussian heatmaps of ``joints``
    [..., J, 2], summed over each map's pixels and averaged over maps."""
    return F.mse_loss(predicted, heatmaps(joints), reduction="sum") / predicted[..., 0, 0].numel()


def _windows(seqs: PoseSequences, steps: int, stride: int) -> Tensor:
    """(sequence, start boundary) pairs [n, 2] of the training windows: starts every ``stride``
    bins, each with its next window's ANN input available for the consistency target."""
    history = seqs.timing.history_bins
    starts = torch.arange(history, seqs.bins - steps, stride)
    seq = torch.arange(len(seqs.frames))
    return torch.cartesian_prod(seq, starts)


def window_batch(seqs: PoseSequences, pairs: Tensor, steps: int) -> tuple[Tensor, Tensor, Tensor]:
    """(frames [N, B, 2, 32, 32], ANN input [B, 20, 32, 32], joints [B, N, 13, 2] at the end of
    each step) of the windows ``pairs`` [B, 2] (sequence, start)."""
    seq, start = pairs[:, 0].cpu(), pairs[:, 1].cpu()
    span = start[:, None] + torch.arange(steps)
    frames = seqs.frames[seq[:, None], span].transpose(0, 1)
    return frames, seqs.ann_input(seq, start), seqs.joints2d[seq[:, None], span + 1]


def final_membranes(steps: int) -> tuple[dict[str, Tensor], Callable]:
    """({cell: membrane after the last of ``steps`` steps}, filled by the returned ``observe``
    hook of :func:`workbench.network.simulate`; the tensors keep their autograd graph)."""
    final: dict[str, Tensor] = {}

    def keep_last(t: int, cell: str, spikes: Tensor, state) -> None:
        if t == steps - 1:
            final[cell] = state.v

    return final, keep_last


def hybrid_objective(seqs: PoseSequences, steps: int, rho: float) -> Callable:
    """``fit`` objective over window indices: (1 − ρ)·mean-over-steps heatmap loss + ρ·mean over
    layers of MSE(end-of-window membrane, what the heads set from the next window's ANN input)."""
    if not 0.0 <= rho < 1.0:
        raise WorkbenchError(f"the consistency weight ρ must lie in [0, 1), got {rho}")

    def objective(model: HybridPose, pairs: Tensor, _: Tensor) -> Tensor:
        device = next(model.parameters()).device
        frames, ann_input, joints = (t.to(device) for t in window_batch(seqs, pairs, steps))
        final, keep_last = final_membranes(steps)
        trajectory = model.window(frames, ann_input, grad=True,
                                  observe=keep_last if rho > 0 else None)
        loss = heatmap_loss(trajectory.readout.transpose(0, 1), joints)
        if rho == 0:
            return loss
        next_input = seqs.ann_input(pairs[:, 0].cpu(), pairs[:, 1].cpu() + steps).to(device)
        with torch.no_grad():
            targets, _ = model.states(next_input)
        consistency = torch.stack([F.mse_loss(final[c], targets[c]) for c in targets]).mean()
        return (1 - rho) * loss + rho * consistency

    return objective


def train_ann(ann: PoseANN, seqs: PoseSequences, epochs: int, lr: float = 2e-3, stride: int = 2,
              seed: int = 0, progress: bool = True, on_epoch: Callable | None = None) -> dict:
    """Train the ANN to predict the pose at a boundary from the 100 ms of events before it
    (boundaries every ``stride`` bins of every sequence)."""
    history = seqs.timing.history_bins
    pairs = torch.cartesian_prod(torch.arange(len(seqs.frames)),
                                 torch.arange(history, seqs.bins, stride))

    def objective(model: PoseANN, batch: Tensor, _: Tensor) -> Tensor:
        device = next(model.parameters()).device
        seq, boundary = batch[:, 0].cpu(), batch[:, 1].cpu()
        x = seqs.ann_input(seq, boundary).to(device)
        return heatmap_loss(model(x), seqs.joints2d[seq, boundary].to(device))

    return fit(ann, (pairs, pairs), objective=objective, epochs=epochs, lr=lr, seed=seed,
               progress=progress, desc="training the pose ANN", on_epoch=on_epoch)


def train_hybrid(model: HybridPose, seqs: PoseSequences, epochs: int, rho: float = 0.05,
                 lr: float = 2e-3, stride: int | None = None, seed: int = 0,
                 progress: bool = True, on_epoch: Callable | None = None) -> dict:
    """Train the SNN and the state heads with BPTT over windows of ``steps_per_window`` steps
    (the ANN stays frozen; the learning rate annealed from ``lr`` along a cosine); windows
    start every ``stride`` bins (default: one window, so they do not overlap)."""
    steps = model.timing.steps_per_window
    pairs = _windows(seqs, steps, stride or steps)
    return fit(model, (pairs, pairs), objective=hybrid_objective(seqs, steps, rho), epochs=epochs,
               lr=lr, lr_decay=True, seed=seed, progress=progress,
               desc=f"training the SNN ({model.init} init)", on_epoch=on_epoch)


"""The hybrid study: the pose models (trained once, cached), six ways of predicting the pose on
the same test sequences (error per step inside the window, 2D per view and 3D triangulated), and
energy per second of sequence on every target.

The six predictors (``KINDS``): the ANN re-run at every SNN step, the ANN at the initialization
rate with its prediction held, the SNN alone from a zero state, the hybrid, and two ablations
(no state init: the ANN sets only the readout; no consistency loss: ρ = 0).

The ``seed`` knob is the training seed of every pose model (seed 0: the shipped ones).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from functools import cached_property, lru_cache

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from workbench.cache import load_or_build
from workbench.datasets.stick_figure import StickFigureConfig, stick_figure_events, triangulate
from workbench.device import default_device, set_threads
from workbench.energy import LayerOps, Profiles, layer_joules, load_profiles, pass_ops, snn_ops
from workbench.errors import WorkbenchError, check_choice
from workbench.methods.hybrid import (
    HybridPose,
    PoseANN,
    final_membranes,
    train_ann,
    train_hybrid,
    window_batch,
)
from workbench.methods.hybrid_data import (
    SNN_RATES,
    PoseSequences,
    Timing,
    decode_heatmaps,
    mpjpe,
    pose_sequences,
)
from workbench.network import simulate
from workbench.study import BUDGETS, SEED_LIMIT, Study, check_budget, knob, setting
from workbench.trajectory import Trajectory

# SNN variants: (how each window starts, trained with the consistency loss)
VARIANTS = {"hybrid": ("state", True), "no_state_init": ("readout", False),
            "no_consistency": ("state", False), "snn_alone": ("zero", False)}
KINDS = ("ann_high_rate", "ann_held", "snn_alone", "hybrid", "no_state_init", "no_consistency")
LABELS = {"ann_high_rate": "ANN at the SNN rate", "ann_held": "ANN at the init rate, held",
          "snn_alone": "SNN alone (zero state)", "hybrid": "hybrid ANN-SNN",
          "no_state_init": "hybrid without state init", "no_consistency": "hybrid, ρ = 0"}
# what `workbench prepare` and the report train: every variant at 100 Hz, the main two at 200 Hz
BASE_RATE = 100
BASE_INIT_RATE = 10.0  # Hz: the paper's ANN rate, one window of 100 ms
PREPARED = {BASE_RATE: tuple(VARIANTS), 200: ("hybrid", "snn_alone")}


TINY_TRAINING_CLIPS = 4


@dataclass(frozen=True)
class HybridConfig:
    """Training budget and design of the pose models (seeded); ρ weighs the state-consistency
    loss. SNN variants at 100 Hz train from scratch for ``snn_epochs`` (Adam, the learning rate
    annealed along a cosine); at 200 Hz they start from the 100 Hz weights (τ and λ_out follow
    the rate) and train ``snn_finetune_epochs`` more. Training windows (100 ms) start every
    ``window_stride_ms``, so they overlap; ``channels`` are the SNN's (narrow, wide) widths and
    ``surrogate`` its spike gradient (method, α): arctan α = 2, as the paper's SpikingJelly
    ``ATan``.

    32 channels, not 16: in a one-seed design check with this recipe, 16 channels closed
    clearly less of the held ANN's staleness gap than the paper's hybrid does, 32 channels
    about as much, for 1.9× the training time."""

    ann_epochs: int = 6
    ann_stride: int = 2
    snn_epochs: int = 4
    snn_finetune_epochs: int = 1
    window_stride_ms: int = 50
    channels: tuple[int, int] = (32, 32)
    surrogate: tuple[str, float] = ("atan", 2.0)
    ann_lr: float = 2e-3
    snn_lr: float = 5e-3
    rho: float = 0.05
    seed: int = 0
    data: StickFigureConfig = field(default_factory=StickFigureConfig)

    def __post_init__(self) -> None:
        for rate in SNN_RATES:  # a whole number of SNN bins between window starts
            if self.window_stride_ms <= 0 or self.window_stride_ms * rate % 1000:
                raise WorkbenchError(f"window_stride_ms must be a whole number of SNN bins at "
                                     f"{', '.join(map(str, SNN_RATES))} Hz, got "
                                     f"{self.window_stride_ms!r}")

    def window_stride(self, snn_rate_hz: int) -> int:
        """SNN bins between two training windows' starts at ``snn_rate_hz``."""
        return self.window_stride_ms * snn_rate_hz // 1000


def training_config(seed: int = 0, budget: str = "full") -> HybridConfig:
    """The pose models' training config with ``seed`` on ``budget`` (tiny: one epoch each on
    :data:`TINY_TRAINING_CLIPS` training clips; the test clips stay the same)."""
    epochs = BUDGETS[check_budget(budget)]
    config = HybridConfig(seed=seed)
    return config if epochs is None else replace(
        config, ann_epochs=epochs, snn_epochs=epochs, snn_finetune_epochs=epochs,
        data=replace(config.data, n_train=TINY_TRAINING_CLIPS))


@lru_cache(maxsize=6)
def sequences(split: str, snn_rate_hz: int = 100, data: StickFigureConfig = StickFigureConfig()
              ) -> PoseSequences:
    """The stick-figure ``split`` binned at ``snn_rate_hz`` (shared read-only)."""
    return pose_sequences(stick_figure_events(data, split), Timing(snn_rate_hz))


def _load_or_train(name: str, key: dict, build: Callable[[], nn.Module],
                   train: Callable[[nn.Module], dict]) -> tuple[nn.Module, dict]:
    """Module ``name`` from the artifact store, trained (seeded) with ``train`` if missing."""

    def train_new() -> tuple[dict, dict]:
        set_threads()
        torch.manual_seed(key["config"]["seed"])
        module = build().to(default_device())
        start = time.perf_counter()
        history = train(module)
        return module.state_dict(), {"final_loss": history["loss"][-1],
                                     "train_seconds": round(time.perf_counter() - start, 1)}

    state, record = load_or_build(f"pose-{name}", key, train_new, seed=key["config"]["seed"],
                                  meta={"model": name})
    module = build()
    module.load_state_dict(state)
    return module.to(default_device()).eval(), record


def load_ann(config: HybridConfig = HybridConfig(), progress: bool = True
             ) -> tuple[PoseANN, dict]:
    """The pose ANN (trained on the 100 Hz binning; its input is rate-independent) and its
    metadata."""
    ann_config = {k: v for k, v in asdict(config).items()
                  if k.startswith(("ann_", "seed", "data"))}
    key = {"config": ann_config, "torch": torch.__version__.split("+")[0]}
    return _load_or_train("ann", key, PoseANN, lambda m: train_ann(
        m, sequences("train", 100, config.data), config.ann_epochs, config.ann_lr,
        config.ann_stride, config.seed, progress))


def load_variant(variant: str, snn_rate_hz: int = 100, config: HybridConfig = HybridConfig(),
                 progress: bool = True) -> tuple[HybridPose, dict]:
    """A trained SNN variant (``VARIANTS``) at ``snn_rate_hz``, with its metadata."""
    check_choice(variant, tuple(VARIANTS), "hybrid variant")
    init, consistent = VARIANTS[variant]
    rho = config.rho if consistent else 0.0
    ann, _ = load_ann(config, progress)
    timing = Timing(snn_rate_hz)
    key = {"config": asdict(config), "variant": variant, "snn_rate_hz": snn_rate_hz,
           "torch": torch.__version__.split("+")[0]}

    def train_variant(model: HybridPose) -> dict:
        epochs = config.snn_epochs
        if snn_rate_hz != BASE_RATE:
            model.load_state_dict(load_variant(variant, BASE_RATE, config, progress)[0].state_dict())
            epochs = config.snn_finetune_epochs
        return train_hybrid(model, sequences("train", snn_rate_hz, config.data), epochs, rho,
                            config.snn_lr, stride=config.window_stride(snn_rate_hz),
                            seed=config.seed, progress=progress)

    return _load_or_train(f"{variant}-{snn_rate_hz}hz", key,
                          lambda: HybridPose(ann.cpu(), timing, init, config.channels,
                                             config.surrogate), train_variant)


def prepare(progress: bool = True, config: HybridConfig = HybridConfig()) -> list[dict]:
    """Train every model the report and the page use by default; return their metadata."""
    return [load_ann(config, progress)[1]] + [load_variant(v, rate, config, progress)[1]
                                             for rate, variants in PREPARED.items() for v in variants]


# ---------------------------------------------------------------- energy per second of sequence


def init_ops(ann: PoseANN, model: HybridPose | None = None) -> dict[str, LayerOps]:
    """Ops of one initialization: the ANN's pass (features and heatmaps, ``"ann"``) and the
    state heads of ``model`` on its features (``"heads"``; none without a model)."""
    x = torch.zeros(1, 20, 32, 32, device=next(ann.parameters()).device)
    heads = (pass_ops(model.heads, lambda: model.states(x)) if model is not None
             else LayerOps(0.0, 0.0, 0.0, 0.0))
    return {"ann": pass_ops(ann, lambda: ann(x)), "heads": heads}


def joules_per_second(kind: str, timing: Timing, init: dict[str, LayerOps],
                      snn_window: dict[str, LayerOps] | None = None,
                      profiles: Profiles | None = None) -> dict[str, dict[str, float]]:
    """Energy per second of sequence (W) on every target, split into the ANN's calls
    (``"ann"``), the state heads' (``"heads"``) and the SNN's windows (``"snn"``).

    The ANN runs ``snn_rate`` times a second for ``"ann_high_rate"`` and ``init_rate`` times for
    the others that use it; every SNN variant runs ``init_rate`` windows a second, each charged
    the per-window ops ``snn_window`` measured in a run. ANN and heads are charged on the
    target's ``ann_on`` profile (a neuromorphic chip pairs with a conventional one)."""
    check_choice(kind, KINDS, "model")
    profiles = profiles or load_profiles()
    snn_kind = kind not in ("ann_high_rate", "ann_held")
    if snn_kind and snn_window is None:
        raise WorkbenchError(f"{kind!r} needs the SNN's per-window op counts")
    ann_calls = {"ann_high_rate": timing.snn_rate_hz, "snn_alone": 0.0}.get(kind, timing.init_rate_hz)
    head_calls = timing.init_rate_hz if VARIANTS.get(kind, ("",))[0] == "state" else 0.0
    windows = timing.init_rate_hz if snn_kind else 0.0
    energy = {}
    for device in profiles.devices.values():
        ann_device = profiles.devices[device.ann_on]
        snn = (sum(sum(layer_joules(ops, device, "snn").values()) for ops in snn_window.values())
               if snn_kind else 0.0)
        energy[device.name] = {
            "ann": ann_calls * sum(layer_joules(init["ann"], ann_device, "ann").values()),
            "heads": head_calls * sum(layer_joules(init["heads"], ann_device, "ann").values()),
            "snn": windows * snn}
    return energy


# ---------------------------------------------------------------- predictions on test sequences


@dataclass
class PoseRun:
    """One predictor on S test sequences, windows of W steps starting at ``starts`` [nW].

    ``uv``/``true_uv`` [S, nW, W, 13, 2] pixels at the end of every step; ``xyz``/``true_xyz``
    [clips, nW, W, 13, 3] metres (the views triangulated); ``energy`` from
    :func:`joules_per_second`; ``state_jumps``: per layer, the membrane jump at an
    initialization, mean |v set by the heads − v the SNN reached at the end of the window
    before| over the layer's neurons (None without state init); ``trajectory`` (when kept) has
    batch index ``s·nW + window``."""

    kind: str
    timing: Timing
    starts: Tensor
    uv: Tensor
    true_uv: Tensor
    xyz: Tensor
    true_xyz: Tensor
    energy: dict[str, dict[str, float]]
    state_jumps: dict[str, float] | None = None
    trajectory: Trajectory | None = None

    @property
    def state_jump(self) -> float | None:
        """The membrane jump at an initialization, averaged over the layers."""
        return None if self.state_jumps is None else float(np.mean(list(self.state_jumps.values())))

    @cached_property
    def errors_2d(self) -> Tensor:
        """MPJPE in pixels, [S, nW, W] (computed once: the page's player reads it every step)."""
        return mpjpe(self.uv, self.true_uv)

    @cached_property
    def errors_3d(self) -> Tensor:
        """MPJPE in metres, [clips, nW, W]."""
        return mpjpe(self.xyz, self.true_xyz)

    @property
    def times_ms(self) -> Tensor:
        """Time of every prediction (end of its step) in ms, [nW, W]."""
        W = self.uv.shape[2]
        return (self.starts[:, None] + torch.arange(1, W + 1)) * self.timing.bin_us / 1000


def _triangulated(uv: Tensor, seqs: PoseSequences) -> Tensor:
    """3D joints [clips, ...] from per-view joints [S, ...] (sequences clip-major, view-minor)."""
    V = len(seqs.projection)
    if len(seqs.clip) % V or (seqs.view != np.tile(np.arange(V), len(seqs.clip) // V)).any():
        raise WorkbenchError("3D needs every view of each clip, in order (clip-major, view-minor)")
    per_view = uv.reshape(-1, V, *uv.shape[1:]).transpose(0, 1).double().numpy()
    return torch.from_numpy(triangulate(per_view, seqs.projection)).float()


@torch.no_grad()
def _ann_uv(ann: PoseANN, seqs: PoseSequences, seq: Tensor, boundary: Tensor,
            batch: int = 512) -> Tensor:
    """The ANN's joints for boundaries ``boundary`` [n] of sequences ``seq`` [n]: [n, 13, 2]."""
    device = next(ann.parameters()).device
    return torch.cat([decode_heatmaps(ann(seqs.ann_input(seq[i:i + batch], boundary[i:i + batch])
                                          .to(device))).cpu()
                      for i in range(0, len(seq), batch)])


EVAL_WINDOWS = 32  # windows simulated together when predicting the test sequences


def _pooled(parts: list[tuple[int, dict[str, LayerOps]]]) -> dict[str, LayerOps]:
    """Per-sample mean op counts of a run made in chunks: the chunks' means [(windows,
    {layer: ops})] weighted by their window counts."""
    total = sum(n for n, _ in parts)

    def mean(layer: str, field: str) -> float | None:
        values = [(n, getattr(ops[layer], field)) for n, ops in parts]
        if any(v is None for _, v in values):
            return None
        return sum(n * v for n, v in values) / total

    return {layer: LayerOps(**{f.name: mean(layer, f.name) for f in fields(LayerOps)})
            for layer in parts[0][1]}


@torch.no_grad()
def run(kind: str, seqs: PoseSequences, timing: Timing, ann: PoseANN,
        model: HybridPose | None = None, record: dict | list | None = None,
        keep_trajectory: bool = False, profiles: Profiles | None = None) -> PoseRun:
    """Predict the pose of every sequence with ``kind`` (``model`` for the SNN kinds), windows of
    ``timing.steps_per_window`` steps, one initialization each."""
    check_choice(kind, KINDS, "model")
    if seqs.timing.snn_rate_hz != timing.snn_rate_hz:
        raise WorkbenchError(f"sequences binned at {seqs.timing.snn_rate_hz} Hz cannot be run at "
                             f"an SNN rate of {timing.snn_rate_hz} Hz")
    W = timing.steps_per_window
    starts = seqs.window_starts(W)
    S, nW = len(seqs.frames), len(starts)
    pairs = torch.cartesian_prod(torch.arange(S), starts)
    boundaries = pairs[:, 1:2] + torch.arange(1, W + 1)  # [B, W] end of every step
    true_uv = seqs.joints2d[pairs[:, :1], boundaries]
    true_xyz = seqs.joints3d[pairs[:, :1], boundaries]
    trajectory, snn_window, state_jumps = None, None, None
    if kind == "ann_high_rate":
        uv = _ann_uv(ann, seqs, pairs[:, 0].repeat_interleave(W), boundaries.flatten())
    elif kind == "ann_held":
        uv = _ann_uv(ann, seqs, pairs[:, 0], pairs[:, 1]).unsqueeze(1).expand(-1, W, -1, -1)
    else:
        if model is None or VARIANTS[kind][0] != model.init:
            raise WorkbenchError(f"{kind!r} needs its trained SNN variant")
        device = next(model.parameters()).device
        # whole sequences per chunk of about EVAL_WINDOWS windows: their activations stay in
        # cache (1.8× less CPU time than one batch of every window here), and every membrane
        # jump between two windows of a sequence falls inside one chunk
        per_chunk = S if keep_trajectory else max(1, EVAL_WINDOWS // nW)
        uvs, parts, jumps = [], [], {}
        for first in range(0, S, per_chunk):
            part = pairs[first * nW:(first + per_chunk) * nW]
            frames, ann_input, _ = window_batch(seqs, part, W)
            initial = model.initial_state(ann_input.to(device))  # computed once: run and jump
            final, keep_last = final_membranes(W)
            trajectory = simulate(model.snn, frames.to(device), init_state=initial,
                                  record=record, observe=keep_last)
            if model.init == "state" and nW > 1:
                for c in final:  # Σ |v set at an initialization − v reached before it|, count
                    gap = (initial[c].reshape(-1, nW, initial[c][0].numel())[:, 1:]
                           - final[c].reshape(-1, nW, final[c][0].numel())[:, :-1]).abs()
                    total, count = jumps.get(c, (0.0, 0))
                    jumps[c] = (total + float(gap.sum()), count + gap.numel())
            uvs.append(decode_heatmaps(trajectory.readout.transpose(0, 1)).cpu())
            parts.append((len(part), snn_ops(trajectory)))
        state_jumps = {c: total / count for c, (total, count) in jumps.items()} or None
        uv = torch.cat(uvs)
        snn_window = _pooled(parts)
        trajectory = trajectory if keep_trajectory else None
    shape = (S, nW, W, *true_uv.shape[-2:])
    uv, true_uv = uv.reshape(shape), true_uv.reshape(shape)
    xyz = _triangulated(uv, seqs)
    true_xyz = true_xyz.reshape(S, nW, W, -1, 3)[::len(seqs.projection)]
    init = init_ops(ann, model)
    return PoseRun(kind, timing, starts, uv, true_uv, xyz, true_xyz,
                   joules_per_second(kind, timing, init, snn_window, profiles), state_jumps,
                   trajectory)


SHOWN_CLIPS = 8
"""Test clips that the dashboard page, the notebook and the test suite predict (the first 8 of
30: a rate change then takes seconds, not a minute); the study and its claims use all."""


def test_sequences(snn_rate_hz: int = 100, data: StickFigureConfig = StickFigureConfig(),
                   clips: int | None = None) -> PoseSequences:
    """The test sequences binned at ``snn_rate_hz``: every clip, or the first ``clips``
    (shared read-only)."""
    return _test_sequences(snn_rate_hz, data, clips)  # one cache key however it is called


@lru_cache(maxsize=8)
def _test_sequences(snn_rate_hz: int, data: StickFigureConfig, clips: int | None
                    ) -> PoseSequences:
    seqs = sequences("test", snn_rate_hz, data)
    if clips is None:
        return seqs
    return seqs.select(np.flatnonzero(seqs.clip < clips))


def study_run(kind: str, snn_rate_hz: int = BASE_RATE, init_rate_hz: float = BASE_INIT_RATE,
              config: HybridConfig = HybridConfig(), clips: int | None = None) -> PoseRun:
    """``run`` of ``kind`` on the test sequences (every clip, or the first ``clips``) with the
    default models (cached per setting)."""
    return _study_run(kind, snn_rate_hz, float(init_rate_hz), config, clips)  # one cache key


@lru_cache(maxsize=48)
def _study_run(kind: str, snn_rate_hz: int, init_rate_hz: float, config: HybridConfig,
               clips: int | None) -> PoseRun:
    timing = Timing(snn_rate_hz, init_rate_hz)
    model = (load_variant(kind, snn_rate_hz, config, progress=False)[0] if kind in VARIANTS
             else None)
    return run(kind, test_sequences(snn_rate_hz, config.data, clips), timing,
               load_ann(config, False)[0], model)


def summary_row(result: PoseRun) -> dict:
    """One row of the comparison: mean and per-step errors, energy per second per target."""
    per_step = result.errors_2d.mean((0, 1))
    return {"snn_rate_hz": result.timing.snn_rate_hz, "init_rate_hz": result.timing.init_rate_hz,
            "kind": result.kind, "model": LABELS[result.kind],
            "mpjpe_2d": round(float(per_step.mean()), 4),
            "mpjpe_3d": round(float(result.errors_3d.mean()), 5),
            "mpjpe_2d_first_step": round(float(per_step[0]), 4),
            "mpjpe_2d_last_step": round(float(per_step[-1]), 4),
            "mpjpe_2d_per_step": [round(float(e), 4) for e in per_step],
            "state_jump": None if result.state_jump is None else round(result.state_jump, 4),
            "energy": {d: float(sum(parts.values())) for d, parts in result.energy.items()}}


def gap_recovered(error: float, held: float, fast: float) -> float:
    """The share of the held ANN's staleness gap a predictor closes: (held − error) /
    (held − fast), 1 at the ANN re-run at the SNN rate (``fast``), 0 at the held ANN (NaN when
    the held ANN is no worse than the fast one: there is no gap)."""
    gap = held - fast
    return (held - error) / gap if gap > 0 else math.nan


def rows(result: HybridResult) -> pd.DataFrame:
    """Every predictor of one setting, each SNN variant with the share of the staleness gap
    it recovers (``gap_recovered``; the paper's DHP19 figures give ≈ 0.82, see ``PAPER``)."""
    table = pd.DataFrame([summary_row(r) for r in result.runs])
    errors = table.set_index("kind").mpjpe_2d
    shares = [gap_recovered(e, errors["ann_held"], errors["ann_high_rate"])
              if kind in VARIANTS else math.nan
              for kind, e in zip(table.kind, table.mpjpe_2d, strict=True)]
    # no share where there is no gap (or no SNN): an empty cell, never a NaN in a table
    table["gap_recovered"] = [round(g, 4) if math.isfinite(g) else None for g in shares]
    return table


# ---------------------------------------------------------------- the study contract

@setting
class HybridSetting:
    """The hybrid study's knobs: the SNN's rate and how often the ANN initializes its state."""

    snn_rate_hz: int = knob(BASE_RATE, "SNN timestep rate", unit="Hz", choices=tuple(PREPARED))
    init_rate_hz: float = knob(BASE_INIT_RATE, "ANN initialization rate (must divide the SNN rate)",
                               unit="Hz", choices=(2.0, 5.0, 10.0, 20.0))
    seed: int = knob(0, "training seed of every pose model (0: the shipped ones)", low=0,
                     high=SEED_LIMIT, integer=True)
    budget: str = knob("full", "training budget of models that are not shipped",
                       choices=tuple(BUDGETS))


@dataclass(frozen=True)
class HybridResult:
    """Every predictor of one setting on the test sequences."""

    setting: HybridSetting
    runs: tuple[PoseRun, ...]


def run_setting(setting: HybridSetting) -> HybridResult:
    """The ANN at both rates and every variant trained at this SNN rate."""
    kinds = ("ann_high_rate", "ann_held", *PREPARED[setting.snn_rate_hz])
    config = training_config(setting.seed, setting.budget)
    return HybridResult(setting, tuple(study_run(kind, setting.snn_rate_hz, setting.init_rate_hz,
                                                 config) for kind in kinds))


def _prepare_lines(progress: bool) -> list[str]:
    return [f"pose {m['model']:<22} final loss {m['metrics']['final_loss']:.3f}"
            + (f"  (trained in {m['metrics']['train_seconds']} s)"
               if "train_seconds" in m["metrics"] else "") for m in prepare(progress)]


# the paper's DHP19 figures (camera 3, 2D), from the authors' result files (methods.md §1.3)
PAPER = {100: "hybrid 5.19 px vs ANN 5.03 px, 0.424 vs 3.718 W",
         200: "hybrid 5.17 px, 0.432 W vs ANN 7.436 W"}
# the held ANN rises from 5.08 to 6.73 px through the window; taken as linear, its mean is
# 5.905 px, and the hybrid's 5.19 px closes (5.905 − 5.19) / (5.905 − 5.03) ≈ 0.82 of the gap
PAPER_GAP_RECOVERED = gap_recovered(5.19, (5.08 + 6.73) / 2, 5.03)
DRIFT_INIT_RATE = 5.0  # one initialization per 200 ms at 100 Hz: 20 steps, twice the trained window


def notes(table: pd.DataFrame) -> list[str]:
    """The paper's figures beside ours, the ablations and the 200 ms drift test."""
    lines = []
    windows = table[table.init_rate_hz == BASE_INIT_RATE]
    for rate, group in windows.groupby("snn_rate_hz", sort=False):
        by = group.set_index("kind")
        hyb, ann = by.loc["hybrid"], by.loc["ann_high_rate"]
        lines.append(f"{rate} Hz: the paper on DHP19 2D: {PAPER[rate]}; measured hybrid "
                     f"{hyb.mpjpe_2d:.3f} vs ANN {ann.mpjpe_2d:.3f} px (held ANN "
                     f"{by.loc['ann_held'].mpjpe_2d:.3f}: {hyb.gap_recovered:.0%} of the "
                     f"staleness gap recovered, the paper's figures ≈ {PAPER_GAP_RECOVERED:.0%}), "
                     "energy saved " + ", ".join(
                         f"{1 - hyb.energy[d] / ann.energy[d]:.0%} on {d}" for d in ann.energy))
    by = windows[windows.snn_rate_hz == BASE_RATE].set_index("kind")
    lines.append(
        "ablations ({} Hz): hybrid {:.3f} px; without state init (ANN sets only the readout) "
        "{:.3f} px, first -> last step {:.3f} -> {:.3f}; without the consistency loss {:.3f} px, "
        "mean membrane jump at an initialization {:.3f} vs {:.3f} with it. Per-step errors are in "
        "mpjpe_2d_per_step.".format(
            BASE_RATE, by.loc["hybrid"].mpjpe_2d, by.loc["no_state_init"].mpjpe_2d,
            by.loc["no_state_init"].mpjpe_2d_first_step, by.loc["no_state_init"].mpjpe_2d_last_step,
            by.loc["no_consistency"].mpjpe_2d, by.loc["no_consistency"].state_jump,
            by.loc["hybrid"].state_jump))
    drift = table[(table.init_rate_hz == DRIFT_INIT_RATE) & (table.snn_rate_hz == BASE_RATE)]
    if len(drift):
        by = drift.set_index("kind")
        window = Timing(BASE_RATE, BASE_INIT_RATE).steps_per_window  # the trained window's end
        lines.append(
            f"drift, 200 ms from one initialization ({BASE_RATE} Hz, trained on 100 ms "
            "windows), error at 100 ms -> 200 ms: " + "; ".join(
                f"{LABELS[k]} {by.loc[k].mpjpe_2d_per_step[window - 1]:.3f} -> "
                f"{by.loc[k].mpjpe_2d_last_step:.3f} px" for k in KINDS if k in by.index))
    lines.append("energy = W (joules per second of sequence): ANN and state heads are charged on "
                 "each target's ann_on profile, the SNN on the target itself (see `workbench "
                 "report energy` for the constants).")
    return lines


STUDY = Study(
    name="hybrid", title="ANN-initialized SNN: pose from events at 100/200 Hz",
    setting=HybridSetting, run=run_setting,
    rows=rows, prepare=_prepare_lines, notes=notes,
    report_settings=lambda: [*(HybridSetting(snn_rate_hz=rate) for rate in PREPARED),
                             HybridSetting(snn_rate_hz=BASE_RATE, init_rate_hz=DRIFT_INIT_RATE)],
    seed_kind="training")

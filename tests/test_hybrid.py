"""Hybrid ANN-SNN: causality of the ANN input, injected states, heatmaps, 3D, energy scaling."""

import numpy as np
import pytest
import torch
from torch import nn

from workbench.datasets.stick_figure import camera_matrices, project, skeleton
from workbench.errors import WorkbenchError
from workbench.methods.hybrid import (
    HybridPose,
    PoseANN,
    _windows,
    hybrid_objective,
    train_hybrid,
    window_batch,
)
from workbench.methods.hybrid_data import (
    PoseSequences,
    Timing,
    decode_heatmaps,
    heatmaps,
    mpjpe,
)
from workbench.methods.hybrid_study import (
    KINDS,
    SHOWN_CLIPS,
    HybridConfig,
    _triangulated,
    gap_recovered,
    init_ops,
    joules_per_second,
    run,
    study_run,
)
from workbench.neurons import LIFBoxLayer

BINS = 60


@pytest.fixture(scope="module")
def seqs():
    """Two clips seen by two cameras: random events, labels from projected skeletons."""
    rng = np.random.default_rng(0)
    P = camera_matrices((-30.0, 40.0))
    world = np.stack([skeleton(rng, np.arange(BINS) * 0.01) for _ in range(2)])  # [2, N, 13, 3]
    uv = np.stack([[project(w, P[v]) for v in range(2)] for w in world])  # [2, V, N, 13, 2]
    frames = torch.from_numpy(rng.poisson(0.05, (4, BINS, 2, 32, 32)).astype(np.float32))
    return PoseSequences(frames, torch.from_numpy(uv.reshape(4, BINS, 13, 2)).float(),
                         torch.from_numpy(np.repeat(world, 2, 0)).float(),
                         np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1]), P, Timing())


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return HybridPose(PoseANN(), Timing()).eval()


def test_ann_never_sees_the_window_it_initializes(seqs, model):
    seq, start = torch.tensor([0, 2]), torch.tensor([20, 30])
    before = seqs.ann_input(seq, start)
    states, maps = model.states(before)
    leaked = seqs.select(np.arange(4))
    leaked.frames = seqs.frames.clone()
    for s, b in zip(seq, start, strict=True):
        leaked.frames[s, b:] += 5.0  # events inside and after the window
    after = leaked.ann_input(seq, start)
    assert torch.equal(before, after)
    states_after, maps_after = model.states(after)
    assert all(torch.equal(states[c], states_after[c]) for c in states)
    assert torch.equal(maps, maps_after)
    for s, b in zip(seq, start, strict=True):
        leaked.frames[s, b - 1] += 1.0  # the last bin before the window is read
    assert not torch.equal(before, leaked.ann_input(seq, start))
    # its 20 channels are the 10 bins before the window, oldest first, ON/OFF per bin
    assert torch.equal(before[0, 18:20], seqs.frames[0, 19])
    assert torch.equal(before[0, 0:2], seqs.frames[0, 10])


def test_injected_membranes_are_the_heads_outputs(seqs, model):
    pairs = torch.tensor([[0, 10], [3, 20]])
    frames, ann_input, _ = window_batch(seqs, pairs, 10)
    expected, maps = model.states(ann_input)
    seen = {}
    hooks = [cell.register_forward_pre_hook(
        lambda m, args, name=name: seen.setdefault(name, args[1].v.clone()))
        for name, cell in model.snn.cells().items()]
    try:
        trajectory = model.window(frames, ann_input, record=["lif4"])
    finally:
        for h in hooks:
            h.remove()
    assert set(seen) == set(expected) == {"lif1", "lif2", "lif3", "lif4"}
    for name in expected:
        assert torch.equal(seen[name], expected[name])
        assert isinstance(model.snn.cells()[name], LIFBoxLayer)
    # the readout starts from the ANN's heatmaps: y_1 = λ_out·y_0 + head(s_1)
    spikes = trajectory.spikes["lif4"][0].float().reshape(2, -1, 32, 32)
    head = model.snn.stages[-1].ops
    assert torch.allclose(trajectory.readout[0], 0.8 * maps + head(spikes), atol=1e-5)


def test_readout_and_zero_inits_differ_only_where_they_should(seqs, model):
    frames, ann_input, _ = window_batch(seqs, torch.tensor([[1, 15]]), 10)
    readout_only = HybridPose(model.ann, Timing(), init="readout").eval()
    readout_only.load_state_dict(model.state_dict())
    init = readout_only.initial_state(ann_input)
    assert set(init) == {"readout"}
    assert torch.equal(init["readout"], model.ann(ann_input))
    assert set(model.initial_state(ann_input)) == {"readout", "lif1", "lif2", "lif3", "lif4"}


def test_consistency_loss_trains_the_heads_only_with_state_init(seqs, model):
    pairs = torch.tensor([[0, 10], [1, 30]])
    for init, heads_get_grad in (("state", True), ("readout", False)):
        net = HybridPose(model.ann, Timing(), init=init).train()
        loss = hybrid_objective(seqs, 10, rho=0.05)(net, pairs, pairs)
        loss.backward()
        grads = [p.grad for p in net.heads.parameters()]
        assert torch.isfinite(loss)
        assert any(g is not None and g.abs().sum() > 0 for g in grads) == heads_get_grad
        assert all(p.grad is None for p in net.ann.parameters())  # the ANN stays frozen
    with pytest.raises(WorkbenchError, match="consistency weight"):
        hybrid_objective(seqs, 10, rho=1.5)


def test_training_lowers_the_loss(seqs):
    torch.manual_seed(0)
    net = HybridPose(PoseANN(), Timing())
    history = train_hybrid(net, seqs, epochs=3, stride=5, progress=False)
    assert history["loss"][-1] < history["loss"][0]


def test_training_windows_overlap(seqs):
    config = HybridConfig()
    stride = config.window_stride(100)  # bins at 100 Hz
    assert 0 < stride < Timing().steps_per_window  # windows of 100 ms every 50 ms: they overlap
    pairs = _windows(seqs, 10, stride)
    starts = pairs[pairs[:, 0] == 0, 1]
    assert starts[0] == 10 and (starts.diff() == stride).all() and starts[-1] + 10 < BINS
    with pytest.raises(WorkbenchError, match="whole number of SNN bins"):
        HybridConfig(window_stride_ms=7)  # 1.4 bins at 200 Hz


@pytest.mark.parametrize("rate", [100, 200])
def test_load_variant_trains_the_configured_snn(rate, monkeypatch):
    """What ``load_variant`` hands to training (nothing is trained here): the arctan surrogate,
    the configured widths, overlapping windows at the rate's stride, the epochs and ρ."""
    from workbench.methods import hybrid_study

    calls = []

    def built(name, key, build, train):
        module = build()
        train(module)
        return module, {}

    def recorded(model, seqs, epochs, rho, lr, stride, seed, progress):
        calls.append({"epochs": epochs, "rho": rho, "lr": lr, "stride": stride,
                      "cells": {(c.surrogate, c.alpha) for c in model.snn.cells().values()},
                      "widths": [next(m for m in s.ops if isinstance(m, nn.Conv2d)).out_channels
                                 for s in model.snn.stages[:-1]]})
        return {"loss": [0.0]}

    monkeypatch.setattr(hybrid_study, "_load_or_train", built)
    monkeypatch.setattr(hybrid_study, "train_ann", lambda *a, **k: {"loss": [0.0]})
    monkeypatch.setattr(hybrid_study, "train_hybrid", recorded)
    monkeypatch.setattr(hybrid_study, "sequences", lambda *a, **k: None)
    config = HybridConfig()
    hybrid_study.load_variant("hybrid", rate, config, progress=False)
    last = calls[-1]  # (at 200 Hz, after the 100 Hz variant it starts from)
    assert last["cells"] == {config.surrogate} == {("atan", 2.0)}
    narrow, wide = config.channels
    assert last["widths"] == [narrow, wide, wide, narrow]
    assert last["stride"] == config.window_stride(rate) == 5 * rate // 100
    assert last["rho"] == config.rho and last["lr"] == config.snn_lr
    assert last["epochs"] == (config.snn_epochs if rate == 100 else config.snn_finetune_epochs)
    assert len(calls) == (1 if rate == 100 else 2)


def test_gap_recovered_reads_between_the_held_and_the_fast_ann():
    assert gap_recovered(5.905, 5.905, 5.03) == 0.0  # no better than the held ANN
    assert gap_recovered(5.03, 5.905, 5.03) == 1.0  # as good as the ANN at the SNN rate
    assert gap_recovered(5.19, 5.905, 5.03) == pytest.approx(0.817, abs=1e-3)  # the paper
    assert gap_recovered(4.5, 5.0, 5.0) != gap_recovered(4.5, 5.0, 5.0)  # no gap: NaN


def test_the_shipped_hybrid_beats_the_held_ann_on_the_test_clips():
    """The method's key property, on the shipped (seed-0) models and the page's test clips: an
    SNN whose state the ANN sets beats the ANN's prediction held until the next
    initialization, at every step after the first, at both SNN rates."""
    for rate in (100, 200):
        hybrid = study_run("hybrid", rate, clips=SHOWN_CLIPS)
        held = study_run("ann_held", rate, clips=SHOWN_CLIPS)
        per_step = hybrid.errors_2d.mean((0, 1)), held.errors_2d.mean((0, 1))
        assert float(hybrid.errors_2d.mean()) < float(held.errors_2d.mean())
        assert (per_step[0][1:] < per_step[1][1:]).all()


def test_heatmaps_decode_to_their_joints():
    joints = torch.tensor([[[5.3, 7.8], [16.0, 16.0], [27.45, 3.2]]])
    maps = heatmaps(joints)
    assert maps.shape == (1, 3, 32, 32)
    assert torch.allclose(decode_heatmaps(maps), joints, atol=0.06)
    assert float(mpjpe(decode_heatmaps(maps), joints).max()) < 0.06


def test_every_predictor_runs_and_triangulates(seqs, model):
    timing = Timing(100, 20.0)
    for kind in KINDS:
        variant = None
        if kind not in ("ann_high_rate", "ann_held"):
            init = {"snn_alone": "zero", "no_state_init": "readout"}.get(kind, "state")
            variant = HybridPose(model.ann, Timing(), init=init).eval()
        result = run(kind, seqs, timing, model.ann, variant)
        nW = (BINS - 1 - 10) // 5
        assert result.uv.shape == (4, nW, 5, 13, 2)
        assert result.xyz.shape == (2, nW, 5, 13, 3)
        assert torch.isfinite(result.errors_2d).all() and torch.isfinite(result.errors_3d).all()
        if kind == "ann_held":  # one prediction held through every window
            assert torch.equal(result.uv[:, :, 0], result.uv[:, :, -1])
    # the true 2D labels triangulate back to the true 3D joints
    assert torch.allclose(_triangulated(result.true_uv, seqs), result.true_xyz, atol=1e-3)
    assert result.times_ms[0, 0] == 110.0


def test_hybrid_energy_scales_with_the_initialization_rate(seqs, model):
    conv_macs = {  # the ANN's convolutions by hand: output elements × fan-in
        "enc1": 16 * 32 * 32 * 20 * 9, "enc2": 32 * 16 * 16 * 16 * 9 + 32 * 16 * 16 * 32 * 9,
        "up": 16 * 32 * 32 * 32 * 9, "dec": 16 * 32 * 32 * 32 * 9, "head": 13 * 32 * 32 * 16}
    ops = init_ops(model.ann, model)
    assert ops["ann"].macs == sum(conv_macs.values())
    energies = {}
    for rate in (5.0, 10.0, 20.0):
        result = run("hybrid", seqs, Timing(100, rate), model.ann, model)
        energies[rate] = result.energy["cmos45_fp32"]
    fp32 = 4.6e-12
    for rate, parts in energies.items():
        assert parts["ann"] == pytest.approx(rate * ops["ann"].macs * fp32)
        assert parts["heads"] == pytest.approx(rate * ops["heads"].macs * fp32)
    assert energies[20.0]["ann"] == pytest.approx(4 * energies[5.0]["ann"])
    totals = [sum(p.values()) for p in energies.values()]
    assert totals[0] < totals[1] < totals[2]
    # the ANN at the SNN rate pays 100 ANN calls a second
    high = joules_per_second("ann_high_rate", Timing(), ops)["cmos45_fp32"]
    assert high["ann"] == pytest.approx(100 * ops["ann"].macs * fp32) and high["snn"] == 0.0


@pytest.mark.parametrize("kwargs, message", [
    ({"snn_rate_hz": 150}, "SNN rate must be one of"),
    ({"init_rate_hz": 3.0}, "whole number of SNN steps"),
    ({"init_rate_hz": 0}, "must be a finite number > 0"),
    ({"init_rate_hz": 400.0}, "whole number of SNN steps"),
])
def test_bad_timing_is_a_clear_error(kwargs, message):
    with pytest.raises(WorkbenchError, match=message):
        Timing(**kwargs)


def test_bad_inputs_are_clear_errors(seqs, model):
    with pytest.raises(WorkbenchError, match="history before its boundary"):
        seqs.ann_input(torch.tensor([0]), torch.tensor([5]))
    with pytest.raises(WorkbenchError, match="a window needs frames"):
        model.window(torch.zeros(10, 2, 32, 32), torch.zeros(2, 20, 32, 32))
    with pytest.raises(WorkbenchError, match="unknown model"):
        run("transformer", seqs, Timing(), model.ann)
    with pytest.raises(WorkbenchError, match="needs its trained SNN variant"):
        run("hybrid", seqs, Timing(), model.ann, None)
    with pytest.raises(WorkbenchError, match="too short"):
        seqs.window_starts(100)
    with pytest.raises(WorkbenchError, match="differ in shape"):
        mpjpe(torch.zeros(3, 13, 2), torch.zeros(3, 13, 3))

"""IIR-SNN: cells, threshold initialisation, the chain hand-off, cancellation."""

import copy

import numpy as np
import pytest
import torch
from torch import nn

from workbench.cache import cache_dir
from workbench.methods import iir
from workbench.methods.iir import (
    Cancelled,
    IIRConfig,
    build_chain,
    cached_chain,
    init_thresholds,
    spiking_from_ann,
)
from workbench.network import TimeSharedDropout, output, simulate
from workbench.train import fit


def tiny_ann(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Dropout(0.2),
                         nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 10))


def tiny_data(digits, n=240):
    return {"train": (digits["train"].x[:n], digits["train"].y[:n]),
            "val": (digits["val"].x[:80], digits["val"].y[:80]),
            "test": (digits["test"].x[:80], digits["test"].y[:80])}


def test_ann_maps_to_iir_cells_and_time_shared_dropout():
    net = spiking_from_ann(tiny_ann(), (1, 8, 8))
    cells = net.cells()
    assert list(cells) == ["spike1", "spike2"]
    assert all(c.surrogate == "triangle" and c.alpha == 0.3 and c.reset == "subtract"
               for c in cells.values())
    assert any(isinstance(m, TimeSharedDropout) for m in net.modules())


def test_gradients_reach_threshold_and_leak_and_leak_stays_at_most_one(digits):
    net = spiking_from_ann(tiny_ann(), (1, 8, 8))
    init_thresholds(net, digits["train"].x[:64], T=3)
    loss = nn.functional.cross_entropy(output(net, digits["train"].x[:32], 3),
                                       digits["train"].y[:32])
    loss.backward()
    for cell in net.cells().values():
        assert cell.threshold.grad is not None and cell.threshold.grad.abs() > 0
        assert cell.leak.grad is not None and cell.leak.grad.abs() > 0
    fit(net, (digits["train"].x[:64], digits["train"].y[:64]),
        forward=lambda m, x: output(m, x, 3), epochs=2, lr=0.5, progress=False)
    assert all(c.leak.item() <= 1.0 and c.threshold.item() > 0 for c in net.cells().values())


def test_thresholds_come_from_the_spiking_networks_own_currents(digits):
    ann = tiny_ann()
    net = spiking_from_ann(ann, (1, 8, 8))
    x = digits["train"].x[:128]
    theta1, theta2 = init_thresholds(net, x, T=4, percentile=90)
    # by hand: layer 2's input current is W2·(layer-1 spikes) + b2 at every step
    run = simulate(net, x, 4, record=["spike1"])
    fc2 = net.layers[4]
    currents = [fc2(run.spikes["spike1"][t].float()) for t in range(4)]
    expected = max(float(np.percentile(c.detach().numpy(), 90)) for c in currents)
    assert theta2 == pytest.approx(expected, rel=1e-5)
    # the ANN's own pre-activations of layer 2 give a different threshold
    with torch.no_grad():
        ann_current = ann[4](ann[2](ann[1](ann[0](x))))
    assert abs(float(np.percentile(ann_current.numpy(), 90)) - theta2) > 0.05 * theta2
    first = ann[1](ann[0](x)).detach().numpy()
    assert theta1 == pytest.approx(float(np.percentile(first, 90)), rel=1e-5)


def test_each_stage_starts_from_its_predecessor(digits, monkeypatch):
    entries = {}
    original = iir._train_stage

    def spy(net, T, epochs, data, config, progress, on_epoch, label, *rest):
        entries[label] = copy.deepcopy(net.state_dict())
        return original(net, T, epochs, data, config, progress, on_epoch, label, *rest)

    monkeypatch.setattr(iir, "_train_stage", spy)
    results = build_chain(tiny_ann(), tiny_data(digits),
                          IIRConfig(first_epochs=1, stage_epochs=1), progress=False)
    for previous, nxt in ((5, 4), (4, 3), (3, 2), (2, 1)):
        finished = results[f"T{previous}"][0].state_dict()
        started = entries[f"IIR T={nxt}"]
        assert all(torch.equal(finished[k], started[k]) for k in finished)
    assert results["T1"][1]["T"] == 1 and results["converted_T1"][1]["epochs"] == 0
    assert results["ann_init_T1"][1]["epochs"] == IIRConfig(1, 1).total_epochs


def test_cancelled_retraining_leaves_the_cache_untouched(digits):
    ann, data = tiny_ann(), tiny_data(digits, 120)
    config = IIRConfig(first_epochs=1, stage_epochs=1, seed=3)
    cached_chain(ann, {"config": "tiny"}, data, config, progress=False)
    before = {p: p.read_bytes() for p in (cache_dir() / "models").glob("iir-*")}
    calls = []

    def cancel_after_two(label):
        calls.append(label)
        return len(calls) < 2

    with pytest.raises(Cancelled):
        cached_chain(ann, {"config": "tiny"}, data, config, progress=False,
                     on_epoch=cancel_after_two, retrain=True)
    after = {p: p.read_bytes() for p in (cache_dir() / "models").glob("iir-*")}
    assert before == after
    reloaded = cached_chain(ann, {"config": "tiny"}, data, config, progress=False)
    assert set(reloaded) == set(iir.SETTINGS)

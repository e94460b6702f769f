"""Conversion and training on the embedded digits."""

import math

import pytest
import torch
from torch import nn

from workbench.convert import QCFS, convert, fold_batchnorm, layer_scales, scale_thresholds
from workbench.errors import WorkbenchError
from workbench.network import output, simulate
from workbench.neurons import SpikingCell
from workbench.train import evaluate, fit


def test_converted_snn_within_one_point_of_ann_at_T64(digits, digits_ann):
    ann, meta = digits_ann
    ann_acc = evaluate(ann, digits["test"].x, digits["test"].y)
    assert ann_acc == pytest.approx(meta["metrics"]["test_accuracy"])
    assert ann_acc > 0.9
    snn = convert(ann, digits["train"].x, balance="max")
    curve = simulate(snn, digits["test"].x, 64).accuracy_curve(digits["test"].y)
    assert abs(curve[-1].item() - ann_acc) <= 0.01
    assert curve[0] < curve[-1]  # latency: one step is not enough


def test_batchnorm_folding_preserves_function():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(),
                        nn.Linear(3 * 4 * 4, 2), nn.BatchNorm1d(2))
    net.train()
    for _ in range(3):
        net(torch.randn(16, 1, 6, 6))  # non-trivial running statistics
    net.eval()
    x = torch.randn(4, 1, 6, 6)
    folded = fold_batchnorm(net)
    assert not any(isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d) for m in folded)
    assert torch.allclose(net(x), folded(x), atol=1e-5)


def test_percentile_scale_below_max():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 50), nn.ReLU(), nn.Linear(50, 2))
    x = torch.randn(200, 4)
    (mx,) = layer_scales(net, x, "max")
    (pc,) = layer_scales(net, x, "percentile", 90.0)
    assert 0 < pc < mx


def test_qcfs_quantises_and_trains():
    q = QCFS(levels=4, scale=2.0)
    y = q(torch.tensor([-1.0, 0.2, 0.26, 1.0, 5.0]))
    assert y.tolist() == pytest.approx([0.0, 0.0, 0.5, 1.0, 2.0])
    y.sum().backward()
    assert q.scale.grad is not None


def test_threshold_scale_copies():
    net = convert(nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)), torch.rand(10, 3))
    scaled = scale_thresholds(net, 2.0)
    assert scaled.cells()["spike1"].threshold.item() == 2.0
    assert net.cells()["spike1"].threshold.item() == 1.0
    with pytest.raises(WorkbenchError, match="threshold scale must be > 0"):
        scale_thresholds(net, 0.0)


def test_convert_rejects_max_pooling():
    with pytest.raises(WorkbenchError, match="MaxPool2d"):
        convert(nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                              nn.Linear(2, 2)), torch.rand(2, 1, 6, 6))


def test_surrogate_training_learns_and_keeps_leak_in_range(digits):
    """BPTT through the same simulate(): a tiny LIF net learns digits above chance."""
    from workbench.network import SpikingNetwork

    torch.manual_seed(0)
    net = SpikingNetwork([
        ("flatten", nn.Flatten()), ("fc1", nn.Linear(64, 64)),
        ("spike1", SpikingCell(1.0, 0.9, trainable_threshold=True, trainable_leak=True)),
        ("fc2", nn.Linear(64, 10)),
    ], (1, 8, 8))
    train = (digits["train"].x[:400], digits["train"].y[:400])
    fit(net, train, forward=lambda m, x: output(m, x, 4), epochs=3, lr=5e-3, progress=False)
    acc = evaluate(net, digits["val"].x, digits["val"].y, forward=lambda m, x: output(m, x, 4))
    assert acc > 0.5
    assert net.cells()["spike1"].leak.item() <= 1.0


def test_training_inside_an_inference_block(digits):
    """A model built on first use may be requested under torch.no_grad: training still learns."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    before = model[1].weight.detach().clone()
    with torch.no_grad():
        fit(model, (digits["train"].x[:100], digits["train"].y[:100]), epochs=1, progress=False)
    assert not torch.equal(model[1].weight, before)


def test_training_is_seeded(digits):
    def run():
        torch.manual_seed(1)
        model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
        fit(model, (digits["train"].x[:100], digits["train"].y[:100]), epochs=2, seed=3,
            progress=False)
        return model[1].weight.detach().clone()

    assert torch.equal(run(), run())


def test_lr_decay_anneals_the_learning_rate_to_zero_along_a_cosine(digits, monkeypatch):
    seen = []
    step = torch.optim.Adam.step

    def recorded(self, *args, **kwargs):
        seen.append(self.param_groups[0]["lr"])
        return step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", recorded)
    x, y = digits["train"].x[:100], digits["train"].y[:100]  # 2 batches of 64 per epoch
    fit(nn.Sequential(nn.Flatten(), nn.Linear(64, 10)), (x, y), epochs=3, lr=0.1,
        lr_decay=True, progress=False)
    expected = [0.05 * (1 + math.cos(math.pi * i / 6)) for i in range(6)]
    assert seen == pytest.approx(expected)  # 0.1 at the first batch, near 0 at the last
    seen.clear()
    fit(nn.Sequential(nn.Flatten(), nn.Linear(64, 10)), (x, y), epochs=3, lr=0.1, progress=False)
    assert seen == [0.1] * 6  # without it: constant


class CustomBlock(nn.Module):
    def forward(self, x):
        return x.flatten(1)


class Wrapper(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(x)


@pytest.mark.parametrize("ann, message", [
    (nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), CustomBlock(), nn.Linear(32, 2)),
     r"cannot convert layer '2' \(CustomBlock\)"),
    (nn.Sequential(nn.Sequential(nn.Linear(36, 4), nn.ReLU()), nn.Sequential(nn.GELU())),
     r"layer '1\.0' \(GELU\)"),
    (Wrapper(), "takes an nn.Sequential .* got Wrapper"),
    (nn.Sequential(nn.ReLU(), nn.Linear(36, 2)), "activation '0' must follow"),
    (nn.Sequential(nn.Linear(36, 4), nn.ReLU(), nn.ReLU(), nn.Linear(4, 2)), "two activations"),
    (nn.Sequential(nn.Linear(36, 4), nn.ReLU()), "must end with a Conv2d or Linear readout"),
])
def test_convert_names_the_first_unsupported_module_before_running(ann, message):
    calib = torch.rand(4, 36)
    with pytest.raises(WorkbenchError, match=message):
        convert(ann, calib)


def test_convert_accepts_any_nested_sequential_and_checks_calibration_shape():
    torch.manual_seed(0)
    ann = nn.Sequential(nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU()),
                        nn.Identity(), nn.AvgPool2d(2),
                        nn.Sequential(nn.Flatten(), nn.Linear(64, 8), nn.ReLU(), nn.Linear(8, 3)))
    ann.eval()
    x = torch.rand(16, 2, 8, 8)
    snn = convert(ann, x)
    assert list(snn.cells()) == ["spike1", "spike2"]
    curve = simulate(snn, x, 128).readout[-1] / 128
    assert torch.allclose(curve, ann(x), atol=0.1)  # rate coding approaches the ANN's logits
    assert not ann.training, "conversion leaves the user's model in its mode"
    with pytest.raises(WorkbenchError, match=r"inputs of shape \(4, 3, 8, 8\) do not fit"):
        convert(ann, torch.rand(4, 3, 8, 8))


@pytest.mark.parametrize("name, epochs", [("digits_qcfs_ann", 2), ("deep_noisy_digits_ann", 6),
                                          ("event_ann", 4), ("event_snn_rcs", 2)])
def test_zoo_training_path_with_a_small_budget(name, epochs):
    """Each zoo task (static, noisy, event rates, events with TET + RCS) trains end to end on a
    few epochs; the full-size models ship with the package (``workbench prepare --retrain``
    rebuilds them)."""
    from dataclasses import replace

    from workbench.zoo import SPECS, _train

    model, metrics = _train(replace(SPECS[name], epochs=epochs), progress=False)
    assert {"val_accuracy", "test_accuracy", "train_seconds"} <= set(metrics)
    assert metrics["test_accuracy"] > 0.3, "a few epochs lift every task well above chance (0.1)"

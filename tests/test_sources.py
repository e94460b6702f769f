"""Bring your own network and data: NIR files, Python factories (ANN or SNN) and real event
folders through the model-agnostic reports, from the command line."""

import json
import textwrap

import nir
import numpy as np
import pytest
import torch
from test_datasets import atis_bytes
from torch import nn

from workbench.cli import main
from workbench.errors import WorkbenchError
from workbench.network import SpikingNetwork
from workbench.neurons import SpikingCell
from workbench.nir import to_nir
from workbench.reports import on_source
from workbench.sources import load_source


def report(capsys, *args):
    assert main(["report", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def digits_snn():
    torch.manual_seed(0)
    return SpikingNetwork([("conv", nn.Conv2d(1, 4, 3, padding=1)), ("spike1", SpikingCell(0.5)),
                           ("flatten", nn.Flatten()), ("fc", nn.Linear(256, 10))], (1, 8, 8))


def test_nir_file_on_digits_from_the_command_line(tmp_path, capsys):
    path = tmp_path / "mine.nir"
    nir.write(path, to_nir(digits_snn()))
    rows = report(capsys, "basics", "--model", str(path), "--data", "digits")
    assert [r["T"] for r in rows] == [1, 2, 4, 8, 16, 32]
    assert all(0 <= r["accuracy"] <= 1 and 0 <= r["activation_sparsity"] <= 1 for r in rows)
    assert rows[-1]["spikes_per_sample"] > rows[0]["spikes_per_sample"] > 0
    assert rows[0]["ann_accuracy"] is None  # no ANN behind a NIR graph


FACTORY = '''
import torch
from torch import nn


def toy_data():
    """label = which of the first two inputs is larger."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(300, 4, generator=g)
    y = (x[:, 1] > x[:, 0]).long()
    return {"calibration": (x[:200], y[:200]), "test": (x[200:], y[200:])}


def ann():
    net = nn.Sequential(nn.Linear(4, 2), nn.ReLU(), nn.Linear(2, 2))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, -1, 0, 0], [-1, 1, 0, 0]]))
        net[0].bias.zero_()
        net[2].weight.copy_(torch.eye(2))
        net[2].bias.zero_()
    return net, toy_data()


def broken():
    return nn.Linear(2, 2)
'''


@pytest.fixture
def factory(tmp_path, monkeypatch):
    (tmp_path / "my_models.py").write_text(textwrap.dedent(FACTORY))
    monkeypatch.syspath_prepend(str(tmp_path))
    return "my_models"


def test_factory_ann_is_converted_and_runs_every_view(factory):
    table = on_source("basics", f"{factory}:ann")
    assert table.ann_accuracy.iloc[0] == 1.0
    assert table.accuracy.iloc[-1] >= 0.95, "the converted SNN approaches its ANN by T = 32"
    source = load_source(f"{factory}:ann")
    assert source.ann is not None and "converted from the ANN" in source.notes[0]
    costs = on_source("energy", f"{factory}:ann")
    assert set(costs.device) >= {"loihi", "cpu"}
    assert costs.Effective_MACs.iloc[0] > 0 and costs.Effective_ACs.iloc[0] > 0
    assert np.isfinite(costs.joules_per_inference).all()
    policies = on_source("early-exit", f"{factory}:ann")
    assert policies.policy.tolist()[:3] == ["fixed T=32", "Dynamic Confidence",
                                           "AOI Top-K cutoff (ε=0.01)"]
    assert policies.settings.iloc[1].startswith("c*="), "the calibrated c* is shown"
    assert (policies.mean_steps <= 32).all()


def test_msat_runs_on_a_factory_ann_from_the_command_line(factory, capsys):
    rows = report(capsys, "msat", "--model", f"{factory}:ann")
    modes = ["constant (θ = 1)", "constant (searched)", "DTT (searched)", "DET (searched)",
             "MSAT (searched)", "MSAT + spike confidence"]
    assert list(dict.fromkeys(r["mode"] for r in rows)) == modes
    final = {r["mode"]: r["accuracy"] for r in rows if r["T"] == 32}
    assert final["constant (θ = 1)"] >= 0.95 and all(0 <= a <= 1 for a in final.values())


def test_bad_sources_are_clear_errors(factory, tmp_path, capsys):
    with pytest.raises(WorkbenchError, match="must return \\(model, data\\)"):
        load_source(f"{factory}:broken")
    with pytest.raises(WorkbenchError, match="has no function 'absent'"):
        load_source(f"{factory}:absent")
    with pytest.raises(WorkbenchError, match="unknown model source 'resnet'"):
        load_source("resnet")
    path = tmp_path / "net.nir"
    nir.write(path, to_nir(digits_snn()))
    with pytest.raises(WorkbenchError, match="carries no data"):
        load_source(str(path))
    with pytest.raises(WorkbenchError, match=r"takes inputs \(1, 8, 8\) .* gives \(4,\)"):
        load_source(str(path), {"calibration": (torch.rand(3, 4), torch.zeros(3)),
                                "test": (torch.rand(3, 4), torch.zeros(3))})
    assert main(["report", "iir", "--model", str(path)]) == 2
    assert "needs its method-specific models" in capsys.readouterr().err
    assert main(["report", "msat", "--model", str(path), "--data", "digits"]) == 2
    assert "has no ANN" in capsys.readouterr().err
    assert main(["report", "basics", "--data", "digits"]) == 2
    assert "--data goes with --model" in capsys.readouterr().err
    assert main(["report", "basics", "--model", str(path), "--data", "nmnist:/absent"]) == 2
    assert "does not exist; nmnist expects Train/<digit>" in capsys.readouterr().err


EVENT_FACTORY = '''
import torch
from torch import nn

from workbench.network import SpikingNetwork
from workbench.neurons import SpikingCell


def snn(size, classes):
    torch.manual_seed(0)
    net = SpikingNetwork([("conv", nn.Conv2d(2, 4, 5, stride=4)), ("spike1", SpikingCell(0.3)),
                          ("flatten", nn.Flatten()),
                          ("fc", nn.Linear(4 * ((size - 5) // 4 + 1) ** 2, classes))],
                         (2, size, size))
    with torch.no_grad():
        net.layers.conv.weight.abs_()
    return net, None


def nmnist():
    return snn(34, 3)


def gesture():
    return snn(32, 2)
'''


def fake_nmnist(root, per_class=4):
    rng = np.random.default_rng(0)
    for split in ("Train", "Test"):
        for digit in "012":
            folder = root / split / digit
            folder.mkdir(parents=True)
            for i in range(per_class):
                t = np.sort(rng.integers(0, 5000, 60))
                events = [(int(rng.integers(0, 34)), int(rng.integers(0, 34)), int(tt),
                           int(rng.integers(0, 2))) for tt in t]
                (folder / f"{i:05d}.bin").write_bytes(atis_bytes(events))


def fake_gesture(root):
    rng = np.random.default_rng(1)
    for split in ("ibmGestureTrain", "ibmGestureTest"):
        folder = root / split / "user01_led"
        folder.mkdir(parents=True)
        for label in (1, 2):
            n = 200
            arr = np.stack([rng.integers(0, 128, n), rng.integers(0, 128, n),
                            rng.integers(0, 2, n), np.sort(rng.integers(0, 1500, n))], 1)
            np.save(folder / f"{label}.npy", arr)


@pytest.mark.parametrize("dataset", ["nmnist", "dvsgesture"])
def test_real_event_folders_run_end_to_end(dataset, tmp_path, monkeypatch, capsys):
    (tmp_path / "ev_models.py").write_text(textwrap.dedent(EVENT_FACTORY))
    monkeypatch.syspath_prepend(str(tmp_path))
    root = tmp_path / dataset
    if dataset == "nmnist":
        fake_nmnist(root)
        model, options = "ev_models:nmnist", "window_us=1000&timesteps=5"
    else:
        fake_gesture(root)
        model, options = "ev_models:gesture", "window_us=300000&timesteps=5"  # 128 → 32 px
    data = f"{dataset}:{root}?{options}"
    rows = report(capsys, "basics", "--model", model, "--data", data)
    assert [r["T"] for r in rows] == [1, 2, 4, 5]
    assert rows[-1]["spikes_per_sample"] > 0
    policies = report(capsys, "early-exit", "--model", model, "--data", data)
    assert policies[0]["policy"] == "fixed T=5" and len(policies) == 5
    assert all(1 <= p["mean_steps"] <= 5 for p in policies)
    source = load_source(model, data)
    assert source.data.input_shape == ((2, 34, 34) if dataset == "nmnist" else (2, 32, 32))
    x, y = next(iter(source.data.test))
    assert x.shape[0] == 5 and x.sum() > 0

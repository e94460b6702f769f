"""The artifact store: keyed by the setting, provenance, shipped artifacts verified by hash,
rebuild and export; and the shipped set covers the default zoo and IIR models (no training of
those in the suite; the pose models are not shipped yet)."""

import json
import warnings
from dataclasses import dataclass

import pytest
import torch

from workbench import cache
from workbench.cache import JSON, load_or_build, rebuilding, sidecar_path


@dataclass(frozen=True)
class Knobs:
    width: int = 4
    seed: int = 0


@pytest.fixture
def store(tmp_path, monkeypatch):
    """An empty user cache and an empty shipped folder."""
    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path / "user"))
    monkeypatch.setattr(cache, "shipped_dir", lambda: tmp_path / "shipped")
    monkeypatch.setattr(cache, "_RESOLVED", {})  # what this process resolved: this test only
    return tmp_path


def counting_build(calls, width=4):
    def build():
        calls.append(width)
        return {"w": torch.full((width,), float(len(calls)))}, {"accuracy": 0.5}
    return build


def test_built_once_then_loaded_with_its_provenance(store):
    calls = []
    value, record = load_or_build("toy", Knobs(), counting_build(calls), seed=0, meta={"model": "toy"})
    again, record_again = load_or_build("toy", Knobs(), counting_build(calls))
    assert calls == [4], "the second request must load, not build"
    assert torch.equal(value["w"], again["w"]) and record_again == record
    assert record["config"] == {"width": 4, "seed": 0} and record["metrics"] == {"accuracy": 0.5}
    assert {"sha256", "bytes", "versions", "git_commit", "command", "argv", "created"} <= set(record)
    assert record["versions"]["torch"].startswith("2.") and record["model"] == "toy"
    # another setting is another artifact
    load_or_build("toy", Knobs(width=8), counting_build(calls, 8))
    assert calls == [4, 8]


def test_json_artifacts_round_trip(store):
    value, _ = load_or_build("consts", {"dataset": "d"}, lambda: ({"alpha": 1.5}, {}), JSON)
    assert value == {"alpha": 1.5}
    (path,) = [p for p in (store / "user" / "models").glob("consts-*") if p.suffixes == [".json"]]
    assert json.loads(path.read_text()) == {"alpha": 1.5}


def test_a_failed_build_writes_nothing(store):
    def broken():
        raise RuntimeError("cancelled")

    with pytest.raises(RuntimeError):
        load_or_build("toy", Knobs(), broken)
    assert not list((store / "user").rglob("toy-*"))


def ship(store, calls):
    """Build one artifact, then move it from the user cache into the shipped folder."""
    load_or_build("toy", Knobs(), counting_build(calls))
    (payload,) = (store / "user" / "models").glob("toy-*.pt")
    target = store / "shipped" / "models" / payload.name
    target.parent.mkdir(parents=True)
    payload.rename(target)
    sidecar_path(payload).rename(sidecar_path(target))
    return target


def test_shipped_artifact_is_used_without_building(store):
    calls = []
    shipped = ship(store, calls)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value, record = load_or_build("toy", Knobs(), counting_build(calls))
    assert calls == [4] and float(value["w"][0]) == 1.0
    assert record["sha256"] == json.loads(sidecar_path(shipped).read_text())["sha256"]


def test_shipped_artifact_failing_its_hash_is_never_used(store):
    calls = []
    shipped = ship(store, calls)
    original = shipped.read_bytes()
    shipped.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))  # one flipped bit
    tampered = shipped.read_bytes()
    with pytest.warns(UserWarning, match="fails its recorded SHA-256"):
        value, _ = load_or_build("toy", Knobs(), counting_build(calls))
    assert calls == [4, 4] and float(value["w"][0]) == 2.0, "rebuilt, not the tampered file"
    assert list((store / "user" / "models").glob("toy-*.pt")), "rebuilt into the user cache"
    assert shipped.read_bytes() == tampered, "the package's files are never touched"


def test_rebuilding_rebuilds_each_artifact_once_and_export_copies_them(store):
    calls = []
    ship(store, calls)
    with rebuilding():
        load_or_build("toy", Knobs(), counting_build(calls))
        load_or_build("toy", Knobs(), counting_build(calls))  # reused within the rebuild
    assert calls == [4, 4]
    written = cache.export(store / "out")
    (payload,) = [p for p in written if p.name.startswith("toy-")]
    assert payload.read_bytes() == next((store / "user" / "models").glob("toy-*.pt")).read_bytes()
    assert cache.read_entry(payload) is not None


def test_user_cache_defaults_to_the_platform_cache_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("WORKBENCH_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache.cache_dir() == tmp_path / "snn-latency-workbench"
    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path / "mine"))
    assert cache.cache_dir() == tmp_path / "mine"


def refuse(*args, **kwargs):
    raise AssertionError("a default model was trained: it should come from the shipped set")


def test_default_zoo_and_iir_models_are_shipped(monkeypatch, tmp_path):
    """The zoo and the IIR chains load from the package: nothing trains."""
    from workbench import zoo
    from workbench.methods import iir, iir_study

    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path))  # an empty user cache
    for module, name in ((zoo, "_train"), (iir, "build_chain")):
        monkeypatch.setattr(module, name, refuse)
    for name in zoo.SPECS:
        assert zoo.load_model(name, progress=False)[1]["metrics"]["test_accuracy"] > 0.5
    for dataset in iir_study.DATASETS:
        chain = iir_study.study.__wrapped__(dataset)[2]
        assert set(chain) == set(iir.SETTINGS)
    shipped = sorted(p for p in cache.shipped_dir().rglob("*") if p.is_file())
    assert all(p.stat().st_size < 5 * 2**20 for p in shipped), "no shipped file over 5 MB"

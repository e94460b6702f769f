"""Fuzzing what the workbench reads from disk: energy-profile TOML (missing, negative,
non-numeric, huge or unknown keys), cache entries (truncated, bit-flipped, foreign or garbled
sidecars) and NIR graphs and files (any node parameters and shapes, broken files). Each gives a
correct result or a WorkbenchError naming the bad value; a broken cache entry is rebuilt."""

from __future__ import annotations

import json
import math
import tempfile
import tomllib
import warnings
from pathlib import Path

import nir
import numpy as np
import pytest
import torch
from fuzzing import outcome
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from workbench.cache import config_key, load_or_build, read_entry, sidecar_path
from workbench.energy import PROFILES_FILE, energy_report, load_profiles
from workbench.network import SpikingNetwork, simulate
from workbench.neurons import SpikingCell
from workbench.nir import from_nir

# ------------------------------------------------------------------ energy profiles

SHIPPED = tomllib.loads(PROFILES_FILE.read_text())
FIELDS = sorted({k for entry in SHIPPED.values() for k in entry})
odd_values = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10, 10**12),
                       st.booleans(), st.text(max_size=8), st.lists(st.integers(), max_size=2),
                       st.sampled_from(["cpu", "loihi", "nowhere", "", "dense", "event"]))


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, list):
        return "[" + ", ".join(map(toml_value, value)) + "]"
    return json.dumps(value)  # ints, floats and strings: JSON's forms are TOML's too


def toml(table: dict) -> str:
    return "".join(f"[{name}]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in entry.items())
                   for name, entry in table.items())


@st.composite
def profile_files(draw) -> str:
    """The shipped profiles with a few entries dropped, replaced or added (or no TOML at all)."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.text(max_size=40))
    table = {name: dict(entry) for name, entry in SHIPPED.items()}
    for _ in range(draw(st.sampled_from([0, 0, 1, 1, 2, 3]))):
        name = draw(st.sampled_from(sorted(table)))
        action = draw(st.sampled_from(["drop", "set", "add", "drop-profile"]))
        if action == "drop-profile" and len(table) > 1:
            del table[name]
        elif action == "drop":
            table[name].pop(draw(st.sampled_from(sorted(table[name]))))
        else:
            key = draw(st.sampled_from(FIELDS)) if action == "set" else draw(
                st.sampled_from(["mac_pJ", "ann_0n", "notes", "kind"]))
            table[name][key] = draw(odd_values)
    return toml(table)


def small_run():
    torch.manual_seed(0)
    net = SpikingNetwork([("fc1", nn.Linear(6, 5)), ("spike1", SpikingCell(0.5)),
                          ("fc2", nn.Linear(5, 3))], (6,)).eval()
    return net, simulate(net, torch.rand(4, 6), 5)


NET, TRAJECTORY = small_run()


@settings(max_examples=150)
@given(text=profile_files())
def test_energy_profiles_load_and_give_finite_joules_or_name_the_field(text):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "profiles.toml"
        path.write_text(text)

        def report():
            summary = energy_report(TRAJECTORY, NET, load_profiles(path)).summary()
            assert (summary["joules_per_inference"] >= 0).all()
            return summary

        outcome("load_profiles(file) + energy_report", report, str(path))


# ------------------------------------------------------------------ cache entries

VALUE = {"weight": torch.arange(12.0).reshape(3, 4), "bias": torch.ones(3)}


def damage(path: Path, how: str, where: int, bit: int, junk: bytes) -> None:
    """Break the entry at ``path`` the way a crash, a disk or a person might."""
    side = sidecar_path(path)
    payload = path.read_bytes()
    if how == "truncate":
        path.write_bytes(payload[:where % max(1, len(payload))])
    elif how == "flip":
        data = bytearray(payload)
        data[where % len(data)] ^= 1 << bit
        path.write_bytes(bytes(data))
    elif how == "flip-sidecar":
        data = bytearray(side.read_bytes())
        data[where % len(data)] ^= 1 << bit
        side.write_bytes(bytes(data))
    elif how == "foreign-sidecar":  # another entry's sidecar, valid JSON, wrong hash
        side.write_text(json.dumps({"sha256": "0" * 64, "bytes": len(payload), "kind": "other"}))
    elif how == "garbled-sidecar":
        side.write_bytes(junk)
    elif how == "sidecar-types":
        side.write_text(json.dumps({"sha256": where, "bytes": str(len(payload))}))
    elif how == "no-sidecar":
        side.unlink()
    elif how == "no-payload":
        path.unlink()
    elif how == "swap":  # the payload replaced by junk, the sidecar kept
        path.write_bytes(junk)


@settings(max_examples=150)
@given(how=st.sampled_from(["none", "truncate", "flip", "flip-sidecar", "foreign-sidecar",
                            "garbled-sidecar", "sidecar-types", "no-sidecar", "no-payload",
                            "swap"]),
       where=st.integers(0, 10**6), bit=st.integers(0, 7), junk=st.binary(max_size=64))
def test_a_damaged_cache_entry_is_never_used_and_is_rebuilt(how, where, bit, junk):
    built = []

    def build():
        built.append(1)
        return VALUE, {"test": 1}

    with tempfile.TemporaryDirectory() as folder, pytest.MonkeyPatch.context() as mp:
        mp.setenv("WORKBENCH_CACHE", folder)
        path = Path(folder) / "models" / f"fuzz-{config_key({'a': 1})}.pt"
        load_or_build("fuzz", {"a": 1}, build)
        damage(path, how, where, bit, junk)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the store warns that it rebuilds
            intact = read_entry(path, remove_invalid=False) is not None

            def load():
                return load_or_build("fuzz", {"a": 1}, build)[0]

            value = outcome("load_or_build(damaged entry)", load)
        assert set(value) == set(VALUE) and all(torch.equal(value[k], VALUE[k]) for k in VALUE)
        assert len(built) == (1 if intact else 2), "an entry failing its hash was used"
        assert read_entry(path) is not None, "the rebuilt entry validates"


# ------------------------------------------------------------------ NIR graphs and files

sizes = st.integers(1, 4)
params = st.one_of(st.floats(1.0, 3.0), st.floats(0.1, 3.0), st.sampled_from(
    [0.0, -1.0, 0.5, float("nan"), float("inf"), 1e30]))


@st.composite
def graphs(draw) -> tuple[nir.NIRGraph, int]:
    """Input → (Affine → IF/LIF)×k → Affine → Output with any sizes (matching or not) and any
    neuron parameters; the input size is returned for the run."""
    n_in = draw(sizes)
    nodes, width = [nir.Input(np.array([n_in]))], n_in
    for _ in range(draw(st.integers(1, 2))):
        out = draw(sizes)
        fan_in = width if draw(st.integers(0, 4)) else draw(sizes)  # mostly chained sizes
        nodes.append(nir.Affine(draw(st.sampled_from([np.float32(0.7), np.float32(-0.3)]))
                                * np.ones((out, fan_in), np.float32), np.zeros(out, np.float32)))
        n = out if draw(st.integers(0, 4)) else draw(sizes)
        value = draw(params)

        def arr(v, n=n):
            return np.full(n, v, np.float32)

        if draw(st.booleans()):
            nodes.append(nir.IF(arr(draw(params)), arr(value), arr(0.0)))
        else:
            nodes.append(nir.LIF(arr(draw(params)), arr(1.0), arr(0.0), arr(value), arr(0.0)))
        width = out
    k = draw(sizes)
    nodes += [nir.Affine(np.ones((k, width), np.float32), np.zeros(k, np.float32)),
              nir.Output(np.array([k]))]
    return nir.NIRGraph.from_list(*nodes, type_check=False), n_in


@settings(max_examples=150)
@given(case=graphs(), T=st.integers(1, 4))
def test_nir_graphs_import_and_run_or_name_the_node(case, T):
    graph, n_in = case

    def run():
        net = from_nir(graph)
        return simulate(net, torch.rand(2, n_in), T).readout

    # a network whose values overflow is named by simulate (NonFiniteError: "non-finite")
    outcome("from_nir(graph) + simulate", run, *graph.nodes, "non-finite")


def nir_file(folder: Path) -> Path:
    path = folder / "net.nir"
    nir.write(path, nir.NIRGraph.from_list(
        nir.Input(np.array([3])), nir.Affine(np.ones((2, 3), np.float32), np.zeros(2, np.float32)),
        nir.IF(np.ones(2, np.float32), np.ones(2, np.float32), np.zeros(2, np.float32)),
        nir.Affine(np.ones((2, 2), np.float32), np.zeros(2, np.float32)),
        nir.Output(np.array([2]))))
    return path


@settings(max_examples=60)
@given(how=st.sampled_from(["none", "truncate", "flip", "junk"]), where=st.integers(0, 10**5),
       junk=st.binary(max_size=64))
def test_broken_nir_files_are_named(how, where, junk):
    with tempfile.TemporaryDirectory() as folder:
        path = nir_file(Path(folder))
        data = bytearray(path.read_bytes())
        if how == "truncate":
            data = data[:where % len(data)]
        elif how == "flip":
            data[where % len(data)] ^= 0xFF
        elif how == "junk":
            data = bytearray(junk)
        path.write_bytes(bytes(data))
        net = outcome("from_nir(file)", lambda: from_nir(path), str(path))
        if how == "none":
            assert isinstance(net, SpikingNetwork)



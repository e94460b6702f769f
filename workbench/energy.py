"""Energy per inference = operation counts × energy per operation of a device profile.

Counting rules (``../shared/energy.md``), per layer and per inference:

- MACs for layers fed by analog values (the direct-encoded first layer, every ANN layer);
- synaptic operations from the *actual* input spikes × their fan-out (exact, recorded by
  ``simulate``); the usual approximation, firing rate × dense MACs, is given beside it;
- neuron updates: neurons × simulated timesteps, so early-exited samples stop counting;
- dense devices (CPU, GPU) simulating an SNN clock-driven pay every synapse every step
  (T × dense MACs) whether or not a spike arrived; event devices pay per synaptic event;
- optional memory traffic (off by default, always labelled): one access per weight read, two per
  SNN neuron update (membrane read + write), one per ANN activation written.

Profiles live in ``workbench/data/energy_profiles.toml`` (package data); a user adds one
without touching code.
"""

from __future__ import annotations

import math
import tomllib
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from torch import Tensor, nn

from workbench.errors import WorkbenchError
from workbench.network import SpikingNetwork, dense_macs, layer_macs
from workbench.trajectory import Trajectory

PROFILES_FILE = Path(__file__).resolve().parent / "data" / "energy_profiles.toml"
DEVICE_CONSTANTS = ("mac_pj", "synop_pj", "neuron_update_pj")
TEXT_FIELDS = ("label", "grade", "source", "scope")
KINDS = ("dense", "event")
DEVICE_KEYS = (*DEVICE_CONSTANTS, *TEXT_FIELDS, "kind", "ann_on")
MEMORY_KEYS = ("pj_per_access", *TEXT_FIELDS)
MAX_PJ = 1e9  # 1 mJ per operation: beyond any device, so a larger value is a mistake
PJ = 1e-12


@dataclass(frozen=True)
class DeviceProfile:
    """Energy per operation (pJ) of one target, with its published source and scope."""

    name: str
    label: str
    kind: str
    mac_pj: float
    synop_pj: float
    neuron_update_pj: float
    grade: str
    source: str
    scope: str
    ann_on: str


@dataclass(frozen=True)
class MemoryProfile:
    """Energy per memory access (pJ) for the optional memory-traffic estimate."""

    label: str
    pj_per_access: float
    grade: str
    source: str
    scope: str


@dataclass(frozen=True)
class Profiles:
    devices: dict[str, DeviceProfile]
    memory: MemoryProfile | None


def _number(path: Path, name: str, entry: dict, field: str) -> float:
    value = entry.get(field)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise WorkbenchError(f"{path}: profile {name!r} needs a number {field} (pJ), got {value!r}")
    if not math.isfinite(value) or not 0 <= value <= MAX_PJ:
        raise WorkbenchError(f"{path}: profile {name!r} has {field} = {value}; energies must be "
                             f"finite and >= 0 (at most {MAX_PJ:g} pJ)")
    return float(value)


def _known(path: Path, name: str, entry: dict, accepted: tuple[str, ...]) -> None:
    """A misspelt key would otherwise be ignored silently (an ``ann_on`` typo changes results)."""
    unknown = sorted(set(entry) - set(accepted))
    if unknown:
        raise WorkbenchError(f"{path}: profile {name!r} has unknown key(s) {unknown}; accepted: "
                             f"{', '.join(accepted)}")


def _text(path: Path, name: str, entry: dict) -> dict[str, str]:
    for field in TEXT_FIELDS:
        if not isinstance(entry.get(field), str) or not entry[field].strip():
            raise WorkbenchError(f"{path}: profile {name!r} needs a non-empty text {field}")
    return {field: entry[field] for field in TEXT_FIELDS}


def load_profiles(path: str | Path = PROFILES_FILE) -> Profiles:
    """Device and memory profiles from a TOML file; missing, negative or non-numeric constants,
    unknown kinds, missing sources and dangling ``ann_on`` names are rejected with a message
    naming the profile and the field."""
    path = Path(path)
    try:
        table = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise WorkbenchError(f"cannot read energy profiles {path}: {exc}") from None
    devices, memory = {}, None
    for name, entry in table.items():
        if not isinstance(entry, dict):
            raise WorkbenchError(f"{path}: {name!r} must be a table of constants")
        _known(path, name, entry, MEMORY_KEYS if name == "memory" else DEVICE_KEYS)
        if name == "memory":
            memory = MemoryProfile(pj_per_access=_number(path, name, entry, "pj_per_access"),
                                   **_text(path, name, entry))
            continue
        if not isinstance(entry.get("ann_on", name), str):
            raise WorkbenchError(f"{path}: profile {name!r} has ann_on = {entry['ann_on']!r}; "
                                 "it must name a profile of the file")
        if entry.get("kind") not in KINDS:
            raise WorkbenchError(f"{path}: profile {name!r} has kind {entry.get('kind')!r}; "
                                 f"accepted: {', '.join(KINDS)}")
        devices[name] = DeviceProfile(
            name=name, kind=entry["kind"], ann_on=entry.get("ann_on", name),
            **{f: _number(path, name, entry, f) for f in DEVICE_CONSTANTS},
            **_text(path, name, entry))
    if not devices:
        raise WorkbenchError(f"{path} defines no device profile")
    for profile in devices.values():
        if profile.ann_on not in devices:
            raise WorkbenchError(f"{path}: profile {profile.name!r} has ann_on = "
                                 f"{profile.ann_on!r}, which is not a profile in the file")
    return Profiles(devices, memory)


@dataclass(frozen=True)
class LayerOps:
    """Mean operations per inference of one layer (stage) of a network.

    ``macs``: MACs computed on analog inputs; ``synaptic_ops``: Σ input spikes × fan-out;
    ``dense_macs``: what a clock-driven device computes (dense MACs × simulated steps);
    ``neuron_updates``: neurons × simulated steps; ``rate_synops``: the firing-rate × dense-MAC
    approximation of ``synaptic_ops`` (None where the input is not a recorded spike layer).
    """

    macs: float
    synaptic_ops: float
    dense_macs: float
    neuron_updates: float
    rate_synops: float | None = None


def snn_ops(trajectory: Trajectory) -> dict[str, LayerOps]:
    """Per-layer mean op counts per sample of a recorded run."""
    steps = trajectory.active.float().sum(0).mean().item()
    macs = {k: v.sum(0).mean().item() for k, v in trajectory.macs().items()}
    updates = {k: v.sum(0).mean().item() for k, v in trajectory.neuron_updates().items()}
    cells = list(trajectory.neurons)
    layers = {}
    for index, (name, per_step) in enumerate(trajectory.dense_macs.items()):
        synops = trajectory.synaptic_ops.get(name)
        rate = None
        if synops is not None and index > 0:  # stage k+1 is fed by the spikes of cell k
            source = cells[index - 1]
            spikes = trajectory.spike_counts[source].sum(0).mean().item()
            rate = spikes / trajectory.neurons[source] * per_step
        layers[name] = LayerOps(
            macs=macs.get(name, 0.0),
            synaptic_ops=0.0 if synops is None else synops.sum(0).mean().item(),
            dense_macs=per_step * steps, neuron_updates=updates.get(name, 0.0), rate_synops=rate)
    return layers


_ANN_OPS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def ann_ops(net: SpikingNetwork) -> dict[str, LayerOps]:
    """Per-layer op counts of the same layers run once as an ANN: dense MACs, one activation
    per neuron (counted once per network: they depend on its layers' shapes only)."""
    if net not in _ANN_OPS:
        _ANN_OPS[net] = _count_ann_ops(net)
    return dict(_ANN_OPS[net])


@torch.no_grad()
def _count_ann_ops(net: SpikingNetwork) -> dict[str, LayerOps]:
    layers, shape = {}, net.input_shape
    device = next(net.parameters()).device
    for stage in net.stages:
        macs = float(dense_macs(stage.ops, shape, device))
        shape = tuple(stage.ops(torch.zeros((1, *shape), device=device)).shape[1:])
        neurons = float(math.prod(shape)) if stage.cell is not None else 0.0
        layers[stage.name] = LayerOps(macs=macs, synaptic_ops=0.0, dense_macs=macs,
                                      neuron_updates=neurons)
    return layers


def pass_ops(modules: nn.Module, run: Callable[[], object]) -> LayerOps:
    """Dense MACs (Conv2d, Linear: :func:`~workbench.network.layer_macs`) and activations
    (ReLU, LeakyReLU outputs) of the submodules of ``modules`` during ``run()``: the ops of a
    plain (non-spiking) pass, counted by forward hooks removed afterwards."""
    counts = {"macs": 0.0, "activations": 0.0}

    def hook(layer: nn.Module, _, out: Tensor) -> None:
        counts["macs"] += layer_macs(layer, out)
        if isinstance(layer, nn.ReLU | nn.LeakyReLU):
            counts["activations"] += out.numel()

    handles = [m.register_forward_hook(hook) for m in modules.modules()]
    try:
        with torch.no_grad():
            run()
    finally:
        for h in handles:
            h.remove()
    return LayerOps(macs=counts["macs"], synaptic_ops=0.0, dense_macs=counts["macs"],
                    neuron_updates=counts["activations"])


def layer_joules(ops: LayerOps, device: DeviceProfile, model: str,
                 memory: MemoryProfile | None = None) -> dict[str, float]:
    """Joules of one layer per inference by op kind (``mac``, ``synop``, ``neuron``,
    ``memory``). ``model``: "snn" or "ann" (an ANN is always charged dense MACs)."""
    dense = model == "ann" or device.kind == "dense"
    macs = ops.dense_macs if dense else ops.macs
    synops = 0.0 if dense else ops.synaptic_ops
    energy = {"mac": macs * device.mac_pj * PJ, "synop": synops * device.synop_pj * PJ,
              "neuron": ops.neuron_updates * device.neuron_update_pj * PJ, "memory": 0.0}
    if memory is not None:
        per_neuron = 1 if model == "ann" else 2
        accesses = macs + synops + per_neuron * ops.neuron_updates
        energy["memory"] = accesses * memory.pj_per_access * PJ
    return energy


@dataclass
class EnergyReport:
    """Energy per inference of an SNN run and of its ANN on every device.

    ``layers`` has one row per device, model ("snn"/"ann"), layer and op kind with ``joules``;
    :meth:`summary` totals them per device and model.
    """

    layers: pd.DataFrame
    counts: pd.DataFrame
    timesteps: float
    include_memory: bool
    profiles: Profiles

    @property
    def assumptions(self) -> str:
        memory = (f"memory traffic included ({self.profiles.memory.label})" if self.include_memory
                  else "memory traffic excluded")
        return (f"Arithmetic {'and memory ' if self.include_memory else ''}estimate; {memory}. "
                "CPU/GPU simulate the SNN clock-driven: every synapse every timestep. Neuromorphic "
                "targets pay per synaptic event and neuron update; their analog input layer and "
                "their ANN comparison are charged on the 45 nm CMOS model.")

    def summary(self) -> pd.DataFrame:
        """Rows per device and model: joules per inference, split by op kind, the op counts
        charged, T, and on SNN rows the SNN/ANN energy ratio (profile order kept)."""
        split = (self.layers.groupby(["device", "model", "op"], sort=False)["joules"].sum()
                 .unstack("op").reset_index())
        table = split.merge(self.counts, on=["device", "model"])
        table["joules_per_inference"] = table[["mac", "synop", "neuron", "memory"]].sum(axis=1)
        ann = table[table.model == "ann"].set_index("device")["joules_per_inference"]
        table["snn_to_ann"] = [row.joules_per_inference / ann[row.device]
                               if row.model == "snn" else None for row in table.itertuples()]
        return table.rename(columns={"mac": "mac_joules", "synop": "synop_joules",
                                     "neuron": "neuron_joules", "memory": "memory_joules"})

    def joules_per_device(self, model: str = "snn") -> dict[str, float]:
        """Joules per inference of ``model`` ("snn" or "ann") on every device, profile order."""
        summary = self.summary()
        rows = summary[summary.model == model]
        return dict(zip(rows.device, rows.joules_per_inference, strict=True))


def energy_report(trajectory: Trajectory, net: SpikingNetwork, profiles: Profiles | None = None,
                  include_memory: bool = False) -> EnergyReport:
    """The :class:`EnergyReport` of a recorded run of ``net`` (and of ``net`` as an ANN)."""
    profiles = profiles or load_profiles()
    if include_memory and profiles.memory is None:
        raise WorkbenchError("memory traffic was asked for, but the profiles define no [memory]")
    memory = profiles.memory if include_memory else None
    counted = {"snn": snn_ops(trajectory), "ann": ann_ops(net)}
    rows, counts = [], []
    for device in profiles.devices.values():
        for model, layers in counted.items():
            charged_on = device if model == "snn" else profiles.devices[device.ann_on]
            dense = model == "ann" or charged_on.kind == "dense"
            for layer, ops in layers.items():
                for op, joules in layer_joules(ops, charged_on, model, memory).items():
                    rows.append({"device": device.name, "model": model, "layer": layer,
                                 "op": op, "joules": joules})
            counts.append({
                "device": device.name, "model": model, "charged_on": charged_on.name,
                "T": round(trajectory.active.float().sum(0).mean().item(), 2)
                if model == "snn" else 1.0,
                "macs": sum(o.dense_macs if dense else o.macs for o in layers.values()),
                "synaptic_ops": 0.0 if dense else sum(o.synaptic_ops for o in layers.values()),
                "neuron_updates": sum(o.neuron_updates for o in layers.values())})
    return EnergyReport(pd.DataFrame(rows), pd.DataFrame(counts),
                        trajectory.active.float().sum(0).mean().item(), include_memory, profiles)

"""Simulation throughput on several networks: the workbench SNN vs the same layers as a plain
ANN, and vs snnTorch, SpikingJelly and Norse where installed (``pip install -e .[peers]``).

Per network and batch size: ``simulate`` in sample·timesteps/s (op counts and the full
trajectory, no rasters), the ANN forward in samples/s, their ratio, the SNN run's peak memory,
and each installed peer's sample·timesteps/s with our ratio to the fastest. All candidates run
interleaved in one process; the figures are medians. The device comes from
``workbench.device.default_device`` (CUDA when present: batches up to 4096).

    python benchmarks/simulate.py [--threads 2] [--T 32] [--repeats 7] [--batches 32 256]
                                  [--networks digits event VGG MLP] [--block-mb 256]

``--block-mb`` sets the budget of ``simulate``'s time-blocked evaluation on the device (the
activations of one block of timesteps; 0: step by step), to tune ``BLOCK_BYTES``.
"""

from __future__ import annotations

import argparse
import ctypes
import statistics
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import torch
from peers import BUILDERS  # benchmarks/peers.py, beside this script
from torch import nn

from workbench.convert import convert, fold_batchnorm
from workbench.device import default_device, set_threads
from workbench.models import event_snn, vgg_cnn
from workbench.network import BLOCK_BYTES, SpikingNetwork, TimeSharedDropout, simulate
from workbench.neurons import SpikingCell

Run = Callable[[], object]


@dataclass
class Benchmark:
    """One network: its SNN, the same layers as an ANN, and an input maker ``batch -> x``
    (static [B, ...] or events [T, B, ...]); the ANN gets one static sample or event frame."""

    name: str
    snn: SpikingNetwork
    ann: nn.Module
    inputs: Callable[[int], torch.Tensor]


def mlp_ann(hidden: int = 1024) -> nn.Sequential:
    """MLP on the 8×8 digits: two hidden layers of ``hidden`` ReLU units."""
    return nn.Sequential(OrderedDict([
        ("flatten", nn.Flatten()), ("fc1", nn.Linear(64, hidden)), ("act1", nn.ReLU()),
        ("fc2", nn.Linear(hidden, hidden)), ("act2", nn.ReLU()), ("fc3", nn.Linear(hidden, 10))]))


def ann_of(snn: SpikingNetwork) -> nn.Sequential:
    """The same layers with every cell replaced by a ReLU (and no dropout)."""
    layers = [(name, nn.ReLU() if isinstance(m, SpikingCell) else m)
              for name, m in snn.layers.named_children() if not isinstance(m, TimeSharedDropout)]
    return nn.Sequential(OrderedDict(layers)).eval()


def benchmarks(device: torch.device, T: int) -> list[Benchmark]:
    """The zoo's digits SNN (trained, converted) and event SNN architecture, a VGG-style net
    and an MLP (random weights: a dense pass costs the same whatever the weights)."""
    from workbench.datasets.digits import load_digits_split
    from workbench.zoo import load_model

    digits = load_digits_split()["train"].x.to(device)
    digits_ann, _ = load_model("digits_ann", progress=False)

    def pick(x: torch.Tensor) -> Callable[[int], torch.Tensor]:
        return lambda b: x[torch.arange(b, device=device) % x.shape[0]]

    torch.manual_seed(0)
    vgg, mlp = vgg_cnn().eval(), mlp_ann().eval()  # VGG-6 on 32×32×3
    pictures = torch.rand(512, 3, 32, 32, device=device)
    events = event_snn().eval().to(device)
    frames = (torch.rand(T, 512, 2, 16, 16, device=device) < 0.05).float()
    return [
        Benchmark("digits CNN (zoo)", convert(digits_ann.cpu(), digits.cpu()).to(device),
                  fold_batchnorm(digits_ann).to(device).eval(), pick(digits)),
        Benchmark("event SNN (zoo arch.)", events, ann_of(events).to(device),
                  lambda b: frames[:, :b]),
        Benchmark("VGG-6 32×32×3", convert(vgg, pictures[:64].cpu()).to(device), vgg.to(device),
                  pick(pictures)),
        Benchmark("MLP 64-1024-1024-10", convert(mlp, digits.cpu()).to(device), mlp.to(device),
                  pick(digits)),
    ]


def peer_runs(bench: Benchmark, x: torch.Tensor, T: int) -> dict[str, Run | None]:
    """A run of ``T`` steps of the same network in each peer simulator (None: not installed)."""
    return {name: build(bench.snn, x, T) for name, build in BUILDERS.items()}


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_times(runs: dict[str, Run], device: torch.device, repeats: int) -> dict[str, float]:
    """Median wall time of each run, interleaved so that machine noise hits all alike."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for run in runs.values():
        run()  # warm-up
    for _ in range(repeats):
        for name, run in runs.items():
            synchronize(device)
            start = time.perf_counter()
            run()
            synchronize(device)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def peak_memory_mb(run: Run, device: torch.device) -> float:
    """Peak memory of one run above the level before it: CUDA's allocator peak, or on the CPU
    the process's resident high-water mark (reset through ``/proc/self/clear_refs``)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        run()
        return (torch.cuda.max_memory_allocated(device) - base) / 2**20
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)  # return cached free blocks: measure this run
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return float("nan")
    base = _status_kb("VmRSS")
    run()
    return (_status_kb("VmHWM") - base) / 1024


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--T", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--batches", type=int, nargs="+", default=None,
                        help="default: 32 256 on the CPU, 32 256 1024 4096 on CUDA")
    parser.add_argument("--networks", nargs="+", default=None, metavar="WORD",
                        help="only the networks whose name contains one of these words")
    parser.add_argument("--block-mb", type=float, default=None,
                        help="budget of a block of timesteps in MB (default: BLOCK_BYTES)")
    args = parser.parse_args()
    threads = set_threads(args.threads)
    device = default_device()
    if args.block_mb is not None:
        BLOCK_BYTES[device.type] = max(1, int(args.block_mb * 2**20))
    budget = BLOCK_BYTES.get(device.type, BLOCK_BYTES["cpu"]) / 2**20
    batches = args.batches or ([32, 256, 1024, 4096] if device.type == "cuda" else [32, 256])
    T = args.T
    print(f"device {device}, {threads} threads, T={T}, median of {args.repeats} interleaved runs, "
          f"blocks of timesteps up to {budget:g} MB")
    print(f"{'network':<22} {'B':>5} {'SNN sample·steps/s':>19} {'ANN samples/s':>14} "
          f"{'SNN/ANN':>8} {'SNN peak MB':>12}  peers (sample·steps/s); ours / fastest peer")
    with torch.no_grad():
        for bench in benchmarks(device, T):
            if args.networks and not any(w.lower() in bench.name.lower() for w in args.networks):
                continue
            for batch in batches:
                x = bench.inputs(batch)
                frame = x if x.shape[1:] == bench.snn.input_shape else x[0]
                runs: dict[str, Run] = {"SNN": lambda: simulate(bench.snn, x, T),  # noqa: B023
                                        "ANN": lambda: bench.ann(frame)}  # noqa: B023
                peers = peer_runs(bench, x, T)
                runs.update({name: run for name, run in peers.items() if run is not None})
                seconds = median_times(runs, device, args.repeats)
                snn, ann = batch * T / seconds["SNN"], batch / seconds["ANN"]
                peak = peak_memory_mb(runs["SNN"], device)
                rates = {name: batch * T / seconds[name] for name in peers if name in seconds}
                shown = ", ".join(f"{n} {rates[n]:,.0f}" if n in rates else f"{n} not installed"
                                  for n in peers)
                if rates:
                    shown += f"; {snn / max(rates.values()):.2f}×"
                print(f"{bench.name:<22} {batch:>5} {snn:>19,.0f} {ann:>14,.0f} {snn / ann:>8.2f} "
                      f"{peak:>12,.0f}  {shown}", flush=True)


if __name__ == "__main__":
    main()

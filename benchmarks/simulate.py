"""Simulation throughput of the default digits SNN vs the same layers as a plain ANN.

Prints sample·timesteps per second of ``simulate`` (counts on, no rasters) and samples per
second of the ANN forward pass (BN folded, ReLU), in the same process and thread count, at a
few batch sizes; their ratio; and the peak memory of recording a B=512, T=64 trajectory.

    python benchmarks/simulate.py [--threads 2] [--T 32]
"""

from __future__ import annotations

import argparse
import resource
import time

import torch

from workbench.convert import convert, fold_batchnorm
from workbench.device import default_device, set_threads
from workbench.models import digits_cnn
from workbench.network import simulate


def best_times(fns, repeats: int = 7) -> list[float]:
    """Best wall time of each function, run interleaved so that machine noise hits all alike."""
    for fn in fns:
        fn()  # warm-up
    best = [float("inf")] * len(fns)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            start = time.perf_counter()
            fn()
            best[i] = min(best[i], time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--T", type=int, default=32)
    args = parser.parse_args()
    set_threads(args.threads)
    device = default_device()
    torch.manual_seed(0)
    ann = digits_cnn().eval()  # weights do not change the cost of a dense pass
    snn = convert(ann, torch.rand(256, 1, 8, 8)).to(device)
    plain = fold_batchnorm(ann).to(device).eval()
    print(f"device {device}, {args.threads} threads, T={args.T}")
    print(f"{'batch':>6} {'SNN sample·steps/s':>20} {'ANN samples/s':>15} {'SNN/ANN':>8}")
    with torch.no_grad():
        for batch in (32, 128, 256, 512):
            x = torch.rand(batch, 1, 8, 8, device=device)
            t_snn, t_ann = best_times([lambda: simulate(snn, x, args.T),  # noqa: B023
                                       lambda: plain(x)])  # noqa: B023
            snn_rate, ann_rate = batch * args.T / t_snn, batch / t_ann
            print(f"{batch:>6} {snn_rate:>20,.0f} {ann_rate:>15,.0f} {snn_rate / ann_rate:>8.2f}")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    trajectory = simulate(snn, torch.rand(512, 1, 8, 8, device=device), 64)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"B=512, T=64 trajectory without rasters: process peak RSS {peak / 1024:.0f} MB "
          f"(+{(peak - before) / 1024:.0f} MB for this run), readout {tuple(trajectory.readout.shape)}")


if __name__ == "__main__":
    main()

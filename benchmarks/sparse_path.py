"""Paired check of the sparse Linear path: ``simulate`` with it (``SPARSE_DENSITY`` as shipped)
and without (``SPARSE_DENSITY = 0``: every Linear dense), interleaved in one process.

Prints, per thread count, network and batch, the median time of each and their ratio
(dense / sparse: above 1, the path pays). The MLP has 1024-wide Linear layers fed spikes; the
event SNN's only Linear is its 512 → 10 readout, which the path leaves dense
(``SPARSE_MIN_OUT``), so its ratio shows the machine's noise.

    python benchmarks/sparse_path.py [--repeats 9] [--threads 1 2]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from simulate import benchmarks  # benchmarks/simulate.py, beside this script

import workbench.network as network


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--T", type=int, default=32)
    args = parser.parse_args()
    shipped = network.SPARSE_DENSITY
    nets = [b for b in benchmarks(torch.device("cpu"), args.T)
            if b.name.startswith(("MLP", "event"))]
    print(f"T={args.T}, median of {args.repeats} interleaved runs; dense / sparse > 1: the path "
          "pays")
    for threads in args.threads:
        torch.set_num_threads(threads)
        for bench in nets:
            for batch in (32, 256):
                x = bench.inputs(batch)
                times: dict[float, list[float]] = {shipped: [], 0.0: []}
                for _ in range(args.repeats + 1):  # the first round warms up
                    for density, spent in times.items():
                        network.SPARSE_DENSITY = density
                        start = time.perf_counter()
                        network.simulate(bench.snn, x, args.T)
                        spent.append(time.perf_counter() - start)
                network.SPARSE_DENSITY = shipped
                sparse, dense = (statistics.median(times[d][1:]) for d in (shipped, 0.0))
                print(f"{threads} thread(s)  {bench.name:24s} B={batch:4d}  sparse "
                      f"{sparse * 1e3:7.1f} ms  dense {dense * 1e3:7.1f} ms  "
                      f"dense/sparse {dense / sparse:.2f}", flush=True)


if __name__ == "__main__":
    main()

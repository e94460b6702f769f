"""Exploration throughput and memory: trials per minute of one session on a Dask LocalCluster of
1 and 2 single-threaded workers (the ratio; goal >= 1.7x on 2 cores), and the peak memory (driver
plus workers, resident) of a 200-trial session.

    python benchmarks/explore.py [--trials 24] [--big 200]

Trials are the ``energy`` study (the digits SNN simulated at T in 8..32 on the 397 test digits):
cheap enough to measure the scheduling, expensive enough (≈1 s) to be real work. The rate is
trials / (last finish − first start), so the cluster's start-up is not counted.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time

import psutil

# Dask logs every worker start and stop at INFO; the figures are what this prints
os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")

from workbench import explore  # noqa: E402 — after the logging level
from workbench.explore.spec import Dimension, SessionSpec  # noqa: E402


def session(store: str, name: str, trials: int, workers: int, high: int) -> float:
    """Run a random session of ``trials`` energy trials; trials per minute."""
    spec = SessionSpec(name, "energy", (Dimension("T", 8, high, integer=True),),
                       sampler="random", budget=trials, sampler_seed=1)
    explore.create(spec, explore.open_storage(store))
    counts = explore.run(name, store, workers=workers, progress=False)
    assert counts.complete == trials, counts
    _, study = explore.load(name, explore.open_storage(store))
    done = study.get_trials(deepcopy=False)
    span = max(t.datetime_complete for t in done) - min(t.datetime_start for t in done)
    return trials / span.total_seconds() * 60


class PeakMemory:
    """Peak resident memory of this process and its children, sampled every 0.2 s."""

    def __init__(self) -> None:
        self.peak, self._stop = 0, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for p in [me, *me.children(recursive=True)]:
                try:
                    total += p.memory_info().rss
                except psutil.NoSuchProcess:
                    pass
            self.peak = max(self.peak, total)
            time.sleep(0.2)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=24, help="trials per throughput run")
    parser.add_argument("--big", type=int, default=200, help="trials of the memory run")
    args = parser.parse_args()
    store = f"sqlite:///{tempfile.mkdtemp(prefix='explore-bench-')}/sessions.db"
    rates = {w: session(store, f"w{w}", args.trials, w, 32) for w in (1, 2)}
    for w, rate in rates.items():
        print(f"{w} worker(s): {rate:.1f} trials/min ({args.trials} energy trials, T in 8..32)")
    print(f"speed-up 2 vs 1 workers: {rates[2] / rates[1]:.2f}x  (cores: {os.cpu_count()})")
    with PeakMemory() as memory:
        start = time.perf_counter()
        rate = session(store, "big", args.big, 2, 16)
    print(f"{args.big}-trial session (2 workers, T in 8..16): {time.perf_counter() - start:.0f} s "
          f"wall, {rate:.1f} trials/min, peak memory (driver + workers, resident) "
          f"{memory.peak / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()

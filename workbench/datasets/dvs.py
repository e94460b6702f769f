"""An emulated DVS pixel array: per-pixel log-intensity change detection.

Each pixel keeps a reference log intensity; when ``log(I + ε)`` moves ``n`` contrast steps C
away from it, the pixel emits ``n`` events of that polarity (ON up, OFF down), moves its
reference by ``n·C``, and is blind for the refractory period. Background activity adds
Poisson events of random polarity. A numpy kernel behind a frozen config (tonic's style).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from workbench.datasets.events import make_events
from workbench.errors import check_positive


@dataclass(frozen=True)
class DVSConfig:
    """Contrast threshold C (log units), refractory period (µs), background noise (Hz per
    pixel) and the offset ε of the log."""

    contrast: float = 0.2
    refractory_us: int = 1000
    noise_hz: float = 0.2
    log_eps: float = 0.1

    def __post_init__(self) -> None:
        check_positive(self.contrast, "contrast threshold")
        check_positive(self.log_eps, "log offset")
        if self.refractory_us < 0 or self.noise_hz < 0:
            raise ValueError("refractory_us and noise_hz must be >= 0")


def emulate(frames: np.ndarray, dt_us: int, config: DVSConfig, rng: np.random.Generator
            ) -> list[np.ndarray]:
    """Events of S intensity videos ``frames`` [S, F, H, W] (values >= 0) sampled every
    ``dt_us`` µs; one structured event array per video, sorted by time."""
    S, F, H, W = frames.shape
    log_i = np.log(frames + config.log_eps)
    reference = log_i[:, 0].copy()
    blind_until = np.full((S, H, W), -1, dtype=np.int64)
    chunks = []
    for f in range(1, F):
        t = f * dt_us
        diff = log_i[:, f] - reference
        steps = np.trunc(diff / config.contrast).astype(np.int64)
        fire = (steps != 0) & (blind_until <= t)
        if not fire.any():
            continue
        s, y, x = np.nonzero(fire)
        n = steps[s, y, x]
        reference[s, y, x] += n * config.contrast
        blind_until[s, y, x] = t + config.refractory_us
        count = np.abs(n)
        chunks.append((np.repeat(s, count), np.repeat(x, count), np.repeat(y, count),
                       np.full(count.sum(), t), np.repeat((n > 0).astype(np.int8), count)))
    duration = F * dt_us
    noise_n = rng.poisson(config.noise_hz * H * W * duration * 1e-6, size=S)
    ns = np.repeat(np.arange(S), noise_n)
    total = noise_n.sum()
    chunks.append((ns, rng.integers(0, W, total), rng.integers(0, H, total),
                   rng.integers(0, duration, total), rng.integers(0, 2, total).astype(np.int8)))
    s, x, y, t, p = (np.concatenate(parts) for parts in zip(*chunks, strict=True))
    order = np.lexsort((t, s))
    s, x, y, t, p = s[order], x[order], y[order], t[order], p[order]
    bounds = np.searchsorted(s, np.arange(S + 1))
    return [make_events(x[a:b], y[a:b], t[a:b], p[a:b]) for a, b in zip(bounds[:-1], bounds[1:],
                                                                        strict=True)]

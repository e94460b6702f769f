"""``stick_figure_events``: a 13-joint figure moving in 3D, seen by two event cameras.

The joints follow DHP19's 13 (head, shoulders, elbows, hands, hips, knees, feet). Limb angles
are sums of sinusoids (0.3–2 Hz, random phases), the body turns and drifts slowly; the
skeleton is projected by two pinhole cameras (known 3×4 projection matrices, so 3D joints can
be triangulated), drawn as anti-aliased ~1.5 px lines on a 32×32 canvas at 1 kHz, and turned
into events by the emulated DVS. Labels every 10 ms: 2D joints per view (pixels) and 3D joints
(scene units, metres).

Each split is generated from its own random stream (seed, split), so the test clips are built
without the training clips (a page that only evaluates shipped models waits for 30 clips, not
180) and the training set can grow without changing the test set.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from workbench.datasets.arrays import cached_arrays, pack_streams, unpack_streams
from workbench.datasets.dvs import DVSConfig, emulate
from workbench.errors import WorkbenchError

JOINTS = ("head", "shoulder_l", "shoulder_r", "elbow_l", "elbow_r", "hand_l", "hand_r",
          "hip_l", "hip_r", "knee_l", "knee_r", "foot_l", "foot_r")
BONES = ((0, 1), (0, 2), (1, 2), (1, 3), (3, 5), (2, 4), (4, 6), (1, 7), (2, 8), (7, 8),
         (7, 9), (9, 11), (8, 10), (10, 12))
CANVAS = 32
SENSOR_SIZE = (CANVAS, CANVAS, 2)
LABEL_EVERY_US = 10_000


@dataclass(frozen=True)
class StickFigureConfig:
    """Clips of ``duration_ms`` at ``dt_us`` resolution; camera azimuths in degrees. 150 + 30
    clips of 2 s, as methods.md §1.5 suggests."""

    n_train: int = 150
    n_test: int = 30
    duration_ms: int = 2000
    dt_us: int = 1000
    azimuths: tuple[float, float] = (-30.0, 40.0)
    dvs: DVSConfig = field(default_factory=lambda: DVSConfig(noise_hz=0.2))
    seed: int = 0


def camera_matrices(azimuths: tuple[float, ...], distance: float = 4.5,
                    focal_px: float = 40.0) -> np.ndarray:
    """Projection matrices [V, 3, 4] of cameras on a circle around the origin at chest height,
    looking at (0, 1, 0)."""
    mats = []
    K = np.array([[focal_px, 0, CANVAS / 2], [0, -focal_px, CANVAS / 2], [0, 0, 1.0]])
    for az in np.deg2rad(azimuths):
        centre = np.array([distance * np.sin(az), 1.0, distance * np.cos(az)])
        forward = -centre + np.array([0, 1.0, 0])
        forward /= np.linalg.norm(forward)
        right = np.cross(forward, [0, 1.0, 0])
        right /= np.linalg.norm(right)
        up = np.cross(right, forward)
        R = np.stack([right, up, forward])  # camera axes: x right, y up, z forward
        mats.append(K @ np.hstack([R, -R @ centre[:, None]]))
    return np.stack(mats)


def project(points: np.ndarray, P: np.ndarray) -> np.ndarray:
    """Pixel coordinates (u, v) [..., 2] of 3D points [..., 3] under projection ``P`` [3, 4]."""
    h = points @ P[:, :3].T + P[:, 3]
    return h[..., :2] / h[..., 2:3]


def triangulate(uv: np.ndarray, P: np.ndarray) -> np.ndarray:
    """3D points [..., 3] from their pixels in V views ``uv`` [V, ..., 2] and ``P`` [V, 3, 4]
    (linear least squares, DLT)."""
    V = uv.shape[0]
    flat = uv.reshape(V, -1, 2)
    rows = []
    for v in range(V):
        u_, w_ = flat[v, :, 0:1], flat[v, :, 1:2]
        rows += [u_ * P[v, 2] - P[v, 0], w_ * P[v, 2] - P[v, 1]]
    A = np.stack(rows, 1)  # [N, 2V, 4]
    _, _, vt = np.linalg.svd(A)
    X = vt[:, -1]
    return (X[:, :3] / X[:, 3:4]).reshape(*uv.shape[1:-1], 3)


def _sines(rng: np.random.Generator, t: np.ndarray, amp: float) -> np.ndarray:
    freq = rng.uniform(0.3, 2.0, 3)
    phase = rng.uniform(0, 2 * np.pi, 3)
    weights = rng.uniform(0.3, 1.0, 3) * amp / 3
    return (weights[:, None] * np.sin(2 * np.pi * freq[:, None] * t + phase[:, None])).sum(0)


def _rot_x(angle: np.ndarray, vec: np.ndarray) -> np.ndarray:
    """Rotate ``vec`` [3] about the x axis by ``angle`` [F] → [F, 3] (forward/back swing)."""
    c, s = np.cos(angle), np.sin(angle)
    return np.stack([np.full_like(angle, vec[0]), c * vec[1] - s * vec[2],
                     s * vec[1] + c * vec[2]], -1)


def skeleton(rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
    """World joint positions [F, 13, 3] over times ``t`` (s)."""
    F = len(t)
    joints = np.zeros((F, 13, 3))
    pelvis = np.array([0.0, 0.95, 0.0])
    down_leg, down_arm = np.array([0, -0.45, 0.0]), np.array([0, -0.3, 0.0])
    joints[:, 0] = pelvis + [0, 0.8, 0]
    for side, sign in ((0, 1.0), (1, -1.0)):
        shoulder = pelvis + [sign * 0.2, 0.55, 0]
        hip = pelvis + [sign * 0.12, 0, 0]
        sh, el = _sines(rng, t, 1.2), -np.abs(_sines(rng, t, 1.0))
        hp, kn = _sines(rng, t, 0.8), np.abs(_sines(rng, t, 0.9))
        joints[:, 1 + side] = shoulder
        joints[:, 3 + side] = shoulder + _rot_x(sh, down_arm)
        joints[:, 5 + side] = joints[:, 3 + side] + _rot_x(sh + el, down_arm)
        joints[:, 7 + side] = hip
        joints[:, 9 + side] = hip + _rot_x(hp, down_leg)
        joints[:, 11 + side] = joints[:, 9 + side] + _rot_x(hp + kn, down_leg)
    yaw = _sines(rng, t, 0.6)
    c, s = np.cos(yaw)[:, None], np.sin(yaw)[:, None]
    x, z = joints[..., 0].copy(), joints[..., 2].copy()
    joints[..., 0], joints[..., 2] = c * x + s * z, -s * x + c * z
    joints[..., 0] += _sines(rng, t, 0.25)[:, None]
    joints[..., 2] += _sines(rng, t, 0.25)[:, None]
    return joints


def render(uv: np.ndarray, width: float = 1.5) -> np.ndarray:
    """Anti-aliased bones of 2D skeletons ``uv`` [F, 13, 2] on the canvas, [F, 32, 32] in [0, 1]."""
    ys, xs = (np.mgrid[0:CANVAS, 0:CANVAS].reshape(2, 1, 1, -1) + 0.5).astype(np.float32)
    uv = uv.astype(np.float32)
    a = uv[:, [b[0] for b in BONES]][..., None]  # [F, bones, 2, 1]
    b = uv[:, [b[1] for b in BONES]][..., None]
    abx, aby = b[:, :, 0] - a[:, :, 0], b[:, :, 1] - a[:, :, 1]
    px, py = xs - a[:, :, 0], ys - a[:, :, 1]  # [F, bones, N]
    frac = np.clip((px * abx + py * aby) / np.maximum(abx * abx + aby * aby, 1e-9), 0, 1)
    dist = np.sqrt((px - frac * abx) ** 2 + (py - frac * aby) ** 2).min(1)
    return np.clip(width / 2 + 0.5 - dist, 0, 1).reshape(-1, CANVAS, CANVAS)


SPLITS = ("train", "test")


def _build(config: StickFigureConfig, split: str) -> dict[str, np.ndarray]:
    rng = np.random.default_rng([config.seed, SPLITS.index(split)])
    P = camera_matrices(config.azimuths)
    n_clips = config.n_train if split == "train" else config.n_test
    frames_per_clip = config.duration_ms * 1000 // config.dt_us
    t = np.arange(frames_per_clip) * config.dt_us * 1e-6
    every = LABEL_EVERY_US // config.dt_us
    streams, joints3d, joints2d = [], [], []
    for start in range(0, n_clips, 8):  # bounded memory: 8 clips per emulator batch
        videos = []
        for _ in range(min(8, n_clips - start)):
            world = skeleton(rng, t)
            uv = np.stack([project(world, P[v]) for v in range(len(P))])  # [V, F, 13, 2]
            videos += [render(uv[v]) for v in range(len(P))]
            joints3d.append(world[::every])
            joints2d.append(uv[:, ::every].transpose(1, 0, 2, 3))
        streams += emulate(np.stack(videos), config.dt_us, config.dvs, rng)
    return {**pack_streams(streams), "joints3d": np.stack(joints3d), "joints2d": np.stack(joints2d),
            "projection": P}


@dataclass
class PoseDataset:
    """One split: per clip and view an event stream (``streams[clip * V + view]``); labels
    every 10 ms: ``joints2d`` [clips, L, V, 13, 2] pixels, ``joints3d`` [clips, L, 13, 3]
    metres."""

    streams: list[np.ndarray]
    joints2d: np.ndarray
    joints3d: np.ndarray
    projection: np.ndarray
    sensor_size: tuple[int, int, int]
    split: str

    @property
    def views(self) -> int:
        return len(self.projection)

    @property
    def clips(self) -> int:
        return len(self.joints3d)

    def stream(self, clip: int, view: int) -> np.ndarray:
        return self.streams[clip * self.views + view]


def stick_figure_events(config: StickFigureConfig | None = None, split: str = "train"
                        ) -> PoseDataset:
    """The ``split`` ("train" or "test") of the synthetic pose dataset (generated on first
    use, then cached)."""
    config = config or StickFigureConfig()
    if split not in SPLITS:
        raise WorkbenchError(f"unknown split {split!r}; available: {', '.join(SPLITS)}")
    other = "n_test" if split == "train" else "n_train"  # the other split's size is no input
    key = {k: v for k, v in asdict(config).items() if k != other} | {"split": split}
    arrays = cached_arrays("stick_figure_events", key, lambda: _build(config, split))
    return PoseDataset(unpack_streams(arrays), arrays["joints2d"], arrays["joints3d"],
                       arrays["projection"], SENSOR_SIZE, split)

"""Invariants of the embedded data generators, the cache, and the real-dataset readers."""

import json
import struct
import warnings
from dataclasses import replace

import numpy as np
import pytest
import torch

from workbench.cache import read_entry, sidecar_path, write_entry
from workbench.datasets import load, load_real
from workbench.datasets.digits import load_digits_split
from workbench.datasets.dvs import DVSConfig, emulate
from workbench.datasets.events import make_events, to_frames, validate_events
from workbench.datasets.saccade import SaccadeConfig, digits_saccade_events, render_videos
from workbench.datasets.stick_figure import (
    CANVAS,
    StickFigureConfig,
    camera_matrices,
    project,
    stick_figure_events,
    triangulate,
)
from workbench.errors import WorkbenchError

SMALL = SaccadeConfig(limit=24)


def test_digits_split_is_fixed_and_stratified():
    a, b = load_digits_split(), load_digits_split()
    assert [len(a[k]) for k in ("train", "val", "test")] == [1200, 200, 397]
    assert np.array_equal(a["test"].index, b["test"].index)
    assert not set(a["train"].index) & set(a["test"].index)
    assert np.bincount(a["val"].y.numpy()).min() >= 18  # every class present in val
    assert a["train"].x.min() >= 0 and a["train"].x.max() <= 1


def test_saccade_events_deterministic_and_valid():
    first, second = digits_saccade_events(SMALL), digits_saccade_events(SMALL)
    assert len(first.streams) == 24
    for s1, s2 in zip(first.streams, second.streams, strict=True):
        assert np.array_equal(s1, s2), "same seed must give the same events"
        validate_events(s1, first.sensor_size)
        assert set(np.unique(s1["p"])) == {0, 1}, "both polarities present"
        assert np.all(np.diff(s1["t"]) >= 0), "events sorted by time"
        assert s1["t"].max() < first.duration_us


def test_event_count_falls_as_contrast_threshold_rises():
    images = load_digits_split()["train"].x[:6, 0].numpy()
    videos = render_videos(images, SaccadeConfig())
    counts = []
    for contrast in (0.1, 0.2, 0.4):
        streams = emulate(videos, 1000, DVSConfig(contrast=contrast, noise_hz=0.0),
                          np.random.default_rng(0))
        counts.append(sum(len(s) for s in streams))
    assert counts[0] > counts[1] > counts[2] > 0


def test_frames_conserve_events():
    ds = digits_saccade_events(SMALL)
    frames = to_frames(ds.streams[0], ds.sensor_size, 10, ds.duration_us)
    assert frames.shape == (10, 2, 16, 16)
    assert frames.sum() == len(ds.streams[0])


def test_stick_figure_labels_inside_frame_and_triangulate():
    config = StickFigureConfig(n_train=2, n_test=1, duration_ms=300)
    ds = stick_figure_events(config, "train")
    assert ds.joints2d.shape == (2, 30, 2, 13, 2) and ds.joints3d.shape == (2, 30, 13, 3)
    assert ds.joints2d.min() >= 0 and ds.joints2d.max() < CANVAS
    for clip in range(2):
        for view in range(2):
            events = ds.stream(clip, view)
            validate_events(events, ds.sensor_size)
            assert set(np.unique(events["p"])) == {0, 1}
    recovered = triangulate(ds.joints2d[0].transpose(1, 0, 2, 3), ds.projection)
    assert np.allclose(recovered, ds.joints3d[0], atol=1e-6)
    # each split has its own random stream: the test clips do not depend on the training set
    test = stick_figure_events(config, "test")
    bigger = stick_figure_events(replace(config, n_train=3), "test")
    assert test.clips == 1 and np.array_equal(test.joints3d, bigger.joints3d)
    assert not np.array_equal(test.joints3d[0], ds.joints3d[0])
    with pytest.raises(WorkbenchError, match="unknown split 'val'"):
        stick_figure_events(config, "val")


def test_triangulation_recovers_known_points():
    P = camera_matrices((-30.0, 40.0))
    points = np.random.default_rng(0).uniform(-0.5, 1.5, (20, 3))
    uv = np.stack([project(points, P[v]) for v in range(2)])
    assert np.allclose(triangulate(uv, P), points, atol=1e-8)


def test_half_written_cache_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path))
    config = SaccadeConfig(limit=5)
    original = digits_saccade_events(config)
    (payload,) = list((tmp_path / "datasets").glob("*.npz"))
    payload.write_bytes(payload.read_bytes()[: payload.stat().st_size // 2])  # truncate
    with pytest.warns(UserWarning, match="corrupt or half-written"):
        rebuilt = digits_saccade_events(config)
    assert all(np.array_equal(a, b) for a, b in zip(original.streams, rebuilt.streams,
                                                     strict=True))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the rebuilt entry is valid again
        digits_saccade_events(config)


def test_json_payload_entry_round_trips(tmp_path):
    path = tmp_path / "constants.json"  # a payload whose own suffix is the sidecar's
    write_entry(path, b'{"a": 1}', {"kind": "test"})
    assert read_entry(path)[0] == b'{"a": 1}'


def test_tampered_cache_entry_is_rejected(tmp_path):
    path = tmp_path / "x.bin"
    write_entry(path, b"hello", {"kind": "test"})
    assert read_entry(path)[0] == b"hello"
    path.write_bytes(b"hellO")
    with pytest.warns(UserWarning):
        assert read_entry(path) is None
    assert not path.exists()
    write_entry(path, b"abc", {})
    sidecar = sidecar_path(path)
    sidecar.write_text(json.dumps({"sha256": "0" * 64, "bytes": 3}))
    with pytest.warns(UserWarning):
        assert read_entry(path) is None


@pytest.mark.parametrize("events, message", [
    (np.zeros(3, dtype=[("x", int), ("y", int), ("t", int)]), r"lacks field\(s\) \['p'\]"),
    (make_events([1], [1], [-5], [1]), "timestamps must be >= 0"),
    (make_events([40], [1], [5], [1]), "x must lie in 0..15"),
    (make_events([1], [1], [5], [3]), "polarity must be in 0..1"),
])
def test_corrupt_event_arrays(events, message):
    with pytest.raises(WorkbenchError, match=message):
        validate_events(events, (16, 16, 2))


def test_unknown_dataset_and_missing_folder(tmp_path):
    with pytest.raises(WorkbenchError, match="unknown dataset 'mnist'"):
        load("mnist")
    with pytest.raises(WorkbenchError, match="does not exist; nmnist expects Train/<digit>"):
        load_real("nmnist", tmp_path / "absent")
    with pytest.raises(WorkbenchError, match="no dvsgesture files found"):
        load_real("dvsgesture", tmp_path)
    with pytest.raises(WorkbenchError, match="unknown real dataset"):
        load_real("imagenet", tmp_path)


def atis_bytes(events):
    out = bytearray()
    for x, y, t, p in events:
        out += bytes([x, y, (p << 7) | (t >> 16) & 0x7F, (t >> 8) & 0xFF, t & 0xFF])
    return bytes(out)


def test_nmnist_reader_on_real_format(tmp_path):
    written = [(3, 4, 100, 1), (33, 0, 70000, 0), (10, 20, 300000, 1)]
    for split, digit in (("Train", "0"), ("Train", "7"), ("Test", "7")):
        folder = tmp_path / split / digit
        folder.mkdir(parents=True)
        (folder / "00001.bin").write_bytes(atis_bytes(written))
    ds = load_real("nmnist", tmp_path)
    assert len(ds) == 2 and ds.classes == ["0", "7"]
    events, label = ds[1]
    assert label == 1
    assert [tuple(int(v) for v in e) for e in events[["x", "y", "t", "p"]]] == written
    (tmp_path / "Test" / "7" / "00002.bin").write_bytes(atis_bytes(written)[:-2])
    test = load_real("nmnist", tmp_path, train=False)
    with pytest.raises(WorkbenchError, match="not a whole number of 5-byte events"):
        test[1]


def test_cifar10dvs_reader_on_aedat2(tmp_path):
    folder = tmp_path / "airplane"
    folder.mkdir()
    records = [((5 << 8) | (9 << 1) | 1, 1000), ((7 << 8) | (2 << 1) | 0, 1500)]
    body = b"".join(struct.pack(">II", a, t) for a, t in records)
    (folder / "cifar10_airplane_0.aedat").write_bytes(b"#!AER-DAT2.0\r\n# made by test\r\n" + body)
    events, label = load_real("cifar10dvs", tmp_path)[0]
    assert label == 0
    assert events["x"].tolist() == [127 - 9, 127 - 2] and events["y"].tolist() == [5, 7]
    assert events["p"].tolist() == [1, 0] and events["t"].tolist() == [0, 500]


def test_dvsgesture_reader_on_npy(tmp_path):
    folder = tmp_path / "ibmGestureTrain" / "user01_fluorescent"
    folder.mkdir(parents=True)
    np.save(folder / "3.npy", np.array([[1, 2, 1, 5], [100, 120, 0, 9]]))
    events, label = load_real("dvsgesture", tmp_path)[0]
    assert events["t"].tolist() == [5000, 9000] and events["x"].tolist() == [1, 100]
    np.save(folder / "4.npy", np.zeros((3, 3)))
    with pytest.raises(WorkbenchError, match=r"expected an \[N, 4\] array"):
        load_real("dvsgesture", tmp_path)[1]


def test_atis_reader_handles_timestamp_overflow_markers(tmp_path):
    """tonic's N-MNIST reader (which we use) adds 2¹³ µs after every y = 240 marker event."""
    folder = tmp_path / "Train" / "3"
    folder.mkdir(parents=True)
    (folder / "a.bin").write_bytes(atis_bytes([(1, 2, 100, 1), (0, 240, 0, 0), (5, 6, 50, 0)]))
    events, _ = load_real("nmnist", tmp_path)[0]
    assert events["t"].tolist() == [100, 8192 + 50] and events["y"].tolist() == [2, 6]
    (folder / "b.bin").write_bytes(atis_bytes([(40, 2, 100, 1)]))  # x beyond the 34-px sensor
    with pytest.raises(WorkbenchError, match=r"b\.bin: event x must lie in 0\.\.33"):
        load_real("nmnist", tmp_path)[1]


def test_aedat2_reader_cross_checked_against_tonic_io(tmp_path):
    """tonic reads the same header and records; its ``read_dvs_128`` decodes the address
    differently (x from bits 8–14, unmirrored), so the decoding stays ours."""
    import tonic.io

    folder = tmp_path / "cat"
    folder.mkdir()
    records = [((5 << 8) | (9 << 1) | 1, 2000), ((127 << 8) | (0 << 1) | 0, 2600),
               ((0 << 8) | (127 << 1) | 1, 9000)]
    body = b"".join(struct.pack(">II", a, t) for a, t in records)
    path = folder / "cifar10_cat_0.aedat"
    path.write_bytes(b"#!AER-DAT2.0\r\n# This is a raw AE data file\r\n" + body)
    version, start, _ = tonic.io.read_aedat_header_from_file(str(path))
    raw = tonic.io.get_aer_events_from_file(str(path), version, start)
    events, _ = load_real("cifar10dvs", tmp_path)[0]
    address = raw["address"].astype(np.int64)
    assert version == 2.0 and len(raw) == len(events) == 3
    assert events["t"].tolist() == (raw["timeStamp"] - raw["timeStamp"].min()).tolist()
    assert events["x"].tolist() == (127 - ((address >> 1) & 0x7F)).tolist() == [118, 127, 0]
    assert events["y"].tolist() == ((address >> 8) & 0x7F).tolist() == [5, 127, 0]


def test_frames_use_one_time_window_per_step_whatever_the_recording_length():
    from workbench.datasets.frames import FrameConfig, event_frames

    config = FrameConfig(time_window_us=1000, timesteps=4)
    short = make_events([0, 1, 2], [0, 0, 0], [10, 1500, 2999], [1, 1, 0])
    long = make_events([0, 1, 2, 3], [0, 0, 0, 0], [10, 1500, 2999, 60_000], [1, 1, 0, 1])
    a, b = event_frames(short, (4, 2, 2), config), event_frames(long, (4, 2, 2), config)
    assert a.shape == (4, 2, 2, 4) and a.dtype == np.float32
    assert a.sum(axis=(1, 2, 3)).tolist() == [1, 1, 1, 0]  # [0, 1 ms), [1, 2 ms), [2, 3 ms)
    assert np.array_equal(a, b), "an event after T·window changes nothing before it"
    assert a[2, 0, 0, 2] == 1 and a[0, 1, 0, 0] == 1
    # what n_time_bins would do instead: each recording's own span split in 4
    assert to_frames(long, (4, 2, 2), 4).sum(axis=(1, 2, 3)).tolist() == [3, 0, 0, 1]
    small = event_frames(make_events([127, 64], [0, 127], [5, 5], [1, 0]), (128, 128, 2),
                         FrameConfig(1000, 2, spatial_factor=0.25))
    assert small.shape == (2, 2, 32, 32) and small[0, 1, 0, 31] == 1 and small[0, 0, 31, 16] == 1


def test_real_recordings_stream_through_a_dataloader(tmp_path):
    from workbench.datasets.frames import FrameConfig, FrameDataset, frame_loader

    for i, digit in enumerate("01234"):
        folder = tmp_path / "Test" / digit
        folder.mkdir(parents=True)
        (folder / "s.bin").write_bytes(atis_bytes([(i, 3, 200 * i, 1), (33, 33, 5000, 0)]))
    data = FrameDataset(load_real("nmnist", tmp_path, train=False), (34, 34, 2),
                        FrameConfig(time_window_us=1000, timesteps=3))
    assert data.input_shape == (2, 34, 34)
    batches = list(frame_loader(data, batch_size=2))
    assert [tuple(x.shape) for x, _ in batches] == [(3, 2, 2, 34, 34)] * 2 + [(3, 1, 2, 34, 34)]
    assert torch.cat([y for _, y in batches]).tolist() == [0, 1, 2, 3, 4]
    x, _ = batches[0]
    assert x[0, 1, 1, 3, 1] == 1 and x.sum() == 2, "events at 5 ms lie beyond 3 × 1 ms"
    with pytest.raises(WorkbenchError, match="no fixed sensor size"):
        FrameDataset(load_real("nmnist", tmp_path, train=False), None, FrameConfig())

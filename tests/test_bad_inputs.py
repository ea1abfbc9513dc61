"""Bad inputs at every public entry point: each must give a clear error naming what was wrong.

Every case is one pytest param with an id ``<entry point>/<what is wrong>``. A case passes when

- the call raises the expected error class (a user mistake, never a raw ``TypeError`` /
  ``IndexError`` / ``RuntimeError`` from torch, numpy, decord or PyAV),
- the message contains the given words: the field name or the file path, and what was expected,
- the error was raised by adafocus code (the last traceback frame is inside ``adafocus/``), so
  the user sees a validation message, not a failure deep inside a dependency,
- nothing was left behind: cases that write (export, CLI) leave their target folder as it was.

CLI cases run ``python -m adafocus`` in a subprocess and require a non-zero exit status, a one-line
``error: ...`` on stderr and no ``Traceback``.

``python tests/test_bad_inputs.py`` prints how many cases each entry point has. Cases already
covered elsewhere are not repeated here: tests/test_config.py (out-of-range fields of the small
preset), tests/test_video.py (malformed annotation lines, read_frames / video_num_frames on broken
files, export_clips' dtype and label checks), tests/test_models.py ((B, C, T, H, W) input, 4-D
input, wrong H/W, unknown modes) and tests/test_synthetic.py (bad DataConfig knobs).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable

import numpy as np
import pytest
import torch

import adafocus
from adafocus.config import ConfigError, get_config
from adafocus.data.export import export_clips, write_mp4
from adafocus.data.synthetic import ClipSet, generate_clip, generate_clips, load_split
from adafocus.data.video import (VideoError, VideoFolderDataset, check_video, read_frames, resize_frames)

REPO = Path(__file__).resolve().parents[1]
PACKAGE = Path(adafocus.__file__).resolve().parent
HAS_DECORD = importlib.util.find_spec("decord") is not None
BACKENDS = ["av", "auto"] + (["decord"] if HAS_DECORD else [])
TINY = get_config("tiny")
T, C, S = TINY.data.num_frames, TINY.data.channels, TINY.data.frame_size  # 8, 3, 32

torch.set_num_threads(1)


def case(case_id: str, call: Callable[[SimpleNamespace], Any], error: type | tuple[type, ...], *words: str):
    """One bad input: ``call(env)`` must raise ``error`` whose message contains every word.

    ``{name}`` in a word is replaced by ``env.paths[name]`` (a file the case uses)."""
    return pytest.param(call, error, words, id=case_id)


def write_lines(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def zero_bytes(path: Path) -> Path:
    path.write_bytes(b"")
    return path


def tree(root: Path) -> set[str]:
    """Every file and folder under ``root`` (relative paths)."""
    return {str(p.relative_to(root)) for p in root.rglob("*")} if root.exists() else set()


def expect_clear_error(env: SimpleNamespace, call, error, words) -> BaseException:
    with pytest.raises(error) as info:
        call(env)
    message = str(info.value)
    for word in words:
        for name, path in env.paths.items():
            word = word.replace("{" + name + "}", str(path))
        assert word in message, f"{word!r} is not in the message {message!r}"
    origin = Path(info.traceback[-1].path).resolve()
    assert PACKAGE in origin.parents, (f"raised from {origin}, not by adafocus' own validation: "
                                       f"{type(info.value).__name__}: {message}")
    return info.value


# ------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """One good exported clip and broken files next to it."""
    root = tmp_path_factory.mktemp("bad_inputs")
    y, x = np.mgrid[0:32, 0:32]
    clip = np.stack([np.stack([(x * 7 + 9 * t) % 256, (y * 5) % 256, (x + y + 20 * t) % 256]) for t in range(6)])
    clips = clip.astype(np.uint8)[None]  # (1, 6, 3, 32, 32)
    ann = export_clips(clips, [0], root / "good", class_names=["cat", "dog"])
    good = root / "good" / "videos" / "clip_000000.mp4"
    bad = root / "bad"
    bad.mkdir()
    (bad / "empty.mp4").write_bytes(b"")
    (bad / "text.mp4").write_text("this is not a video\n")
    data = good.read_bytes()
    (bad / "truncated.mp4").write_bytes(data[: len(data) // 2])
    (bad / "directory.mp4").mkdir()
    (bad / "empty_folder").mkdir()
    (bad / "a_file").write_text("a file, not a folder\n")
    return {"good": good, "good_ann": ann, "empty": bad / "empty.mp4", "text": bad / "text.mp4",
            "truncated": bad / "truncated.mp4", "directory": bad / "directory.mp4",
            "missing": bad / "missing.mp4", "empty_folder": bad / "empty_folder", "a_file": bad / "a_file",
            "missing_folder": bad / "missing_folder"}


@pytest.fixture(scope="module")
def model():
    from adafocus.models.registry import create_model

    torch.manual_seed(0)
    return create_model("uni_adafocus", TINY).eval()


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Any]:
    """A real finished checkpoint (no epochs: the trainer just saves the initial weights) and broken ones."""
    from adafocus.data.synthetic import SyntheticVideoDataset
    from adafocus.train import train

    root = tmp_path_factory.mktemp("checkpoints")
    cfg = get_config("tiny", **{"train.pretrain_epochs": 0, "train.phase1_epochs": 0, "train.phase2_epochs": 0})
    train_split = SyntheticVideoDataset(generate_clips(cfg.data, "train", range(2), progress=False), cfg.data, "train")
    key = "badinputs0"
    good = train("glance_only", cfg, {"train": train_split}, progress=False, checkpoint_dir=root, key=key).checkpoint
    data = good.read_bytes()
    broken = root / "broken"
    broken.mkdir()
    (broken / "zero.pt").write_bytes(b"")
    (broken / "text.pt").write_text("not a checkpoint\n")
    (broken / "truncated.pt").write_bytes(data[: len(data) // 2])
    (broken / "directory.pt").mkdir()
    torch.save([1, 2, 3], broken / "list.pt")
    return {"cfg": cfg, "key": key, "ckpt_good": good, "ckpt_zero": broken / "zero.pt",
            "ckpt_text": broken / "text.pt", "ckpt_truncated": broken / "truncated.pt",
            "ckpt_directory": broken / "directory.pt", "ckpt_list": broken / "list.pt"}


@pytest.fixture()
def env(files, tmp_path) -> SimpleNamespace:
    paths = {**files, "tmp": tmp_path}
    return SimpleNamespace(paths=paths, **paths)


# ------------------------------------------------------------------------------------------- config


def cfg_with(**overrides):
    return lambda e: get_config("tiny", **overrides)


CONFIG_CASES = [
    case("get_config/preset-not-a-string", lambda e: get_config(["tiny"]), ConfigError, "preset", "expected one of"),
    case("get_config/preset-none", lambda e: get_config(None), ConfigError, "preset", "got None"),
    case("get_config/override-not-dotted", cfg_with(patch_size=32), ConfigError, "'patch_size'", "expected 'data."),
    case("get_config/override-unknown-section", cfg_with(**{"optim.lr": 1.0}), ConfigError, "'optim.lr'",
         "expected 'data."),
    # wrong types
    case("model.patch_size/str", cfg_with(**{"model.patch_size": "big"}), ConfigError, "model.patch_size",
         "expected an int", "'big'"),
    case("model.patch_size/float", cfg_with(**{"model.patch_size": 3.5}), ConfigError, "model.patch_size",
         "expected an int", "3.5"),
    case("model.patch_size/float-in-range", cfg_with(**{"model.patch_size": 16.5}), ConfigError,
         "model.patch_size", "expected an int", "16.5"),
    case("model.patch_size/bool", cfg_with(**{"model.patch_size": True}), ConfigError, "model.patch_size",
         "expected an int", "True"),
    case("model.patch_size/none", cfg_with(**{"model.patch_size": None}), ConfigError, "model.patch_size",
         "expected an int", "None"),
    case("data.num_frames/str", cfg_with(**{"data.num_frames": "8"}), ConfigError, "data.num_frames",
         "expected an int", "'8'"),
    case("train.lr/str", cfg_with(**{"train.lr": "fast"}), ConfigError, "train.lr", "expected a finite number",
         "'fast'"),
    case("train.lr/nan", cfg_with(**{"train.lr": float("nan")}), ConfigError, "train.lr",
         "expected a finite number", "nan"),
    case("train.lr/inf", cfg_with(**{"train.lr": float("inf")}), ConfigError, "train.lr",
         "expected a finite number", "inf"),
    case("data.clutter/nan", cfg_with(**{"data.clutter": float("nan")}), ConfigError, "data.clutter",
         "expected a finite number", "nan"),
    case("train.max_minutes/inf", cfg_with(**{"train.max_minutes": float("inf")}), ConfigError,
         "train.max_minutes", "expected a finite number"),
    case("model.square_boxes/str", cfg_with(**{"model.square_boxes": "yes"}), ConfigError, "model.square_boxes",
         "expected True or False", "'yes'"),
    case("model.exits/int", cfg_with(**{"model.exits": 1}), ConfigError, "model.exits", "expected True or False"),
    case("model.focus_block/int", cfg_with(**{"model.focus_block": 18}), ConfigError, "model.focus_block",
         "expected a string", "18"),
    case("model.focus_layers/str", cfg_with(**{"model.focus_layers": "1111"}), ConfigError, "model.focus_layers",
         "expected a tuple of ints", "'1111'"),
    case("model.focus_widths/floats", cfg_with(**{"model.focus_widths": [8.5, 16, 16, 32]}), ConfigError,
         "model.focus_widths", "expected a tuple of ints"),
    case("data.object_scale/scalar", cfg_with(**{"data.object_scale": 0.3}), ConfigError, "data.object_scale",
         "expected a tuple of finite numbers", "0.3"),
    case("data.object_scale/one-value", cfg_with(**{"data.object_scale": [0.3]}), ConfigError,
         "data.object_scale", "(lo, hi)", "(0.3,)"),
    case("train.optimizer/unknown", cfg_with(**{"train.optimizer": "adam"}), ConfigError, "train.optimizer",
         "'adamw' or 'sgd'", "'adam'"),
    case("model.patch_mode/unknown", cfg_with(**{"model.patch_mode": "everywhere"}), ConfigError,
         "model.patch_mode", "expected one of", "'everywhere'"),
    # zero and negative values
    case("model.patch_size/zero", cfg_with(**{"model.patch_size": 0}), ConfigError, "model.patch_size", ">= 8"),
    case("model.num_focus/zero", cfg_with(**{"model.num_focus": 0}), ConfigError, "model.num_focus", ">= 1"),
    case("model.box_min/zero", cfg_with(**{"model.box_min": 0}), ConfigError, "model.box_min", "[1, box_max"),
    case("model.glance_frames/zero", cfg_with(**{"model.glance_frames": 0}), ConfigError, "model.glance_frames",
         ">= 1"),
    case("model.focus_layers/zero-blocks", cfg_with(**{"model.focus_layers": (1, 0, 1, 1)}), ConfigError,
         "model.focus_layers", ">= 1", "(1, 0, 1, 1)"),
    case("model.focus_widths/negative", cfg_with(**{"model.focus_widths": (8, -16, 16, 32)}), ConfigError,
         "model.focus_widths", ">= 1", "-16"),
    case("model.policy_channels/zero", cfg_with(**{"model.policy_channels": 0}), ConfigError,
         "model.policy_channels", ">= 1"),
    case("model.temporal_channels/negative", cfg_with(**{"model.temporal_channels": -4}), ConfigError,
         "model.temporal_channels", ">= 1"),
    case("model.hidden_dim/zero", cfg_with(**{"model.hidden_dim": 0}), ConfigError, "model.hidden_dim", ">= 1"),
    case("data.frame_size/zero", cfg_with(**{"data.frame_size": 0}), ConfigError, "data.frame_size", ">= 16"),
    case("data.num_train/negative", cfg_with(**{"data.num_train": -5}), ConfigError, "data.num_train",
         "non-negative"),
    case("data.seed/negative", cfg_with(**{"data.seed": -1}), ConfigError, "data.seed", "non-negative"),
    case("data.speed/negative", cfg_with(**{"data.speed": -1.0}), ConfigError, "data.speed", "[0, frame_size/4"),
    case("train.batch_size/negative", cfg_with(**{"train.batch_size": -1}), ConfigError, "train.batch_size",
         ">= 1"),
    case("train.pretrain_epochs/negative", cfg_with(**{"train.pretrain_epochs": -1}), ConfigError,
         "train.pretrain_epochs", "non-negative"),
    case("train.num_threads/zero", cfg_with(**{"train.num_threads": 0}), ConfigError, "train.num_threads", ">= 1"),
    case("train.weight_decay/negative", cfg_with(**{"train.weight_decay": -0.1}), ConfigError,
         "train.weight_decay", "non-negative"),
    # out of range against the clip geometry (tiny: T = 8 frames of 32x32)
    case("model.patch_size/larger-than-frame", cfg_with(**{"model.patch_size": 33}), ConfigError,
         "model.patch_size", "32x32 frame"),
    case("model.num_focus/more-than-frames", cfg_with(**{"model.num_focus": 9}), ConfigError, "model.num_focus",
         "T = 8"),
    case("model.box_min/above-box_max", cfg_with(**{"model.box_min": 25}), ConfigError, "model.box_min",
         "box_max=20"),
    case("model.glance_frames/more-than-frames", cfg_with(**{"model.glance_frames": 9}), ConfigError,
         "model.glance_frames", "T = 8"),
    case("model.glance_size/larger-than-frame", cfg_with(**{"model.glance_size": 64}), ConfigError,
         "model.glance_size", "frame_size = 32"),
    case("model.full_frame_frames/more-than-frames", cfg_with(**{"model.full_frame_frames": 12}), ConfigError,
         "model.full_frame_frames", "T = 8"),
    case("model.num_classes/not-the-data's", cfg_with(**{"model.num_classes": 5}), ConfigError,
         "model.num_classes", "(4)"),
    case("config.replace/str", lambda e: TINY.replace(**{"model.box_max": "20"}), ConfigError, "model.box_max",
         "expected an int"),
]


@pytest.mark.parametrize("call, error, words", CONFIG_CASES)
def test_config(env, call, error, words):
    expect_clear_error(env, call, error, words)


# ------------------------------------------------------------------------------------------- synthetic data

SPLIT = "val"  # tiny: 64 clips

SYNTHETIC_CASES = [
    case("load_split/unknown-split", lambda e: load_split(TINY.data, "training", cache=False, progress=False),
         ConfigError, "split", "expected one of", "'training'"),
    case("load_split/split-none", lambda e: load_split(TINY.data, None, cache=False, progress=False),
         ConfigError, "split", "got None"),
    case("load_split/config-is-a-string", lambda e: load_split("tiny", "val", cache=False, progress=False),
         ConfigError, "cfg", "DataConfig", "str"),
    case("generate_clips/negative-index", lambda e: generate_clips(TINY.data, SPLIT, [0, -1], progress=False),
         ConfigError, "indices", "[0, 64)", "-1"),
    case("generate_clips/index-too-large", lambda e: generate_clips(TINY.data, SPLIT, [64], progress=False),
         ConfigError, "indices", "[0, 64)", "64"),
    case("generate_clips/index-str", lambda e: generate_clips(TINY.data, SPLIT, ["a"], progress=False),
         ConfigError, "indices", "ints", "'a'"),
    case("generate_clips/index-float", lambda e: generate_clips(TINY.data, SPLIT, [1.5], progress=False),
         ConfigError, "indices", "ints", "1.5"),
    case("generate_clips/indices-none", lambda e: generate_clips(TINY.data, SPLIT, None, progress=False),
         ConfigError, "indices", "a sequence of ints", "None"),
    case("generate_clips/indices-nested", lambda e: generate_clips(TINY.data, SPLIT, [[0, 1]], progress=False),
         ConfigError, "indices", "ints", "[0, 1]"),
    case("generate_clips/unknown-split", lambda e: generate_clips(TINY.data, "dev", [0], progress=False),
         ConfigError, "split", "'dev'"),
    case("generate_clip/label-str", lambda e: generate_clip(TINY.data, np.random.default_rng(0), "1"),
         ConfigError, "label", "an int in [0, 4)", "'1'"),
    case("generate_clip/label-float", lambda e: generate_clip(TINY.data, np.random.default_rng(0), 1.5),
         ConfigError, "label", "an int in [0, 4)", "1.5"),
    case("generate_clip/label-negative", lambda e: generate_clip(TINY.data, np.random.default_rng(0), -1),
         ConfigError, "label", "an int in [0, 4)", "-1"),
    case("generate_clip/rng-is-a-seed", lambda e: generate_clip(TINY.data, 0, 1), ConfigError, "rng",
         "numpy Generator", "int"),
    case("ClipSet/float-videos", lambda e: ClipSet(torch.zeros(2, 8, 3, 32, 32), torch.zeros(2, dtype=torch.long),
                                                   torch.zeros(2, 8, 4), torch.zeros(2, 8, dtype=torch.bool)),
         ValueError, "ClipSet.videos", "expected torch.uint8"),
]


@pytest.mark.parametrize("call, error, words", SYNTHETIC_CASES)
def test_synthetic(env, call, error, words):
    expect_clear_error(env, call, error, words)


# ------------------------------------------------------------------------------------------- real videos


def dataset(e, lines: list[str], name: str = "ann.csv", classes_txt: list[str] | None = None,
            **kwargs) -> VideoFolderDataset:
    """A dataset of the annotation ``lines`` written to ``tmp/name`` (with a classes.txt beside it)."""
    ann = write_lines(e.tmp / name, lines)
    if classes_txt is not None:
        write_lines(ann.parent / "classes.txt", classes_txt)
    return VideoFolderDataset(ann, num_frames=4, frame_size=16, **kwargs)


def dataset_of(kind: str, backend: str, **kwargs):
    return lambda e: dataset(e, ["path,label", f"{e.paths[kind]},0"], backend=backend, **kwargs)


def skip_all(e, backend: str):
    """on_error="skip" with nothing readable: a warning listing the three, then an error."""
    with pytest.warns(UserWarning, match="skipped 3 of 3 videos"):
        dataset(e, ["path,label", f"{e.text},0", f"{e.truncated},0", f"{e.empty},1"], backend=backend,
                on_error="skip")


VIDEO_FILE_CASES = []
for _b in BACKENDS:
    VIDEO_FILE_CASES += [
        case(f"check_video[{_b}]/zero-byte-mp4", lambda e, b=_b: check_video(e.empty, b), VideoError,
             "{empty}", "empty (0 bytes)", "expected an encoded video"),
        case(f"check_video[{_b}]/text-file-named-mp4", lambda e, b=_b: check_video(e.text, b), VideoError,
             "{text}", "cannot read video file", "expected a complete, readable video"),
        case(f"check_video[{_b}]/truncated-mp4", lambda e, b=_b: check_video(e.truncated, b), VideoError,
             "{truncated}", "cannot read video file", "expected a complete, readable video"),
        case(f"check_video[{_b}]/directory", lambda e, b=_b: check_video(e.directory, b), VideoError,
             "{directory}", "not a regular file", "expected a video file"),
        case(f"check_video[{_b}]/missing-file", lambda e, b=_b: check_video(e.missing, b), VideoError,
             "{missing}", "not found", "expected an existing video file"),
        case(f"dataset-item[{_b}]/text-file-named-mp4", lambda e, b=_b: dataset_of("text", b)(e)[0], VideoError,
             "{text}", "cannot read video file"),
        case(f"dataset-item[{_b}]/truncated-mp4", lambda e, b=_b: dataset_of("truncated", b)(e)[0], VideoError,
             "{truncated}", "cannot read video file"),
        case(f"dataset-skip[{_b}]/only-broken-videos", lambda e, b=_b: skip_all(e, b), VideoError,
             "no readable videos", "{tmp}/ann.csv", "all 3 were skipped"),
    ]

VIDEO_CASES = VIDEO_FILE_CASES + [
    # the annotation file
    case("dataset/zero-byte-video-listed", dataset_of("empty", "auto"), VideoError, "{empty}", "empty (0 bytes)"),
    case("dataset/label-file-names-missing-video", dataset_of("missing", "auto"), VideoError, "{missing}",
         "not found", "1 of 1 videos listed in {tmp}/ann.csv"),
    case("dataset/missing-annotation-file", lambda e: VideoFolderDataset(e.tmp / "nope.csv"), VideoError,
         "{tmp}/nope.csv", "annotation file not found", "expected a CSV"),
    case("dataset/annotation-path-in-missing-folder",
         lambda e: VideoFolderDataset(e.missing_folder / "annotations.csv"), VideoError,
         "{missing_folder}/annotations.csv", "not found"),
    case("dataset/annotation-path-is-a-folder", lambda e: VideoFolderDataset(e.empty_folder), VideoError,
         "{empty_folder}", "is a directory", "expected an annotation file"),
    case("dataset/annotation-file-is-a-video", lambda e: VideoFolderDataset(e.good), VideoError, "{good}",
         "not a text file", "expected"),
    case("dataset/zero-byte-annotation-file", lambda e: VideoFolderDataset(zero_bytes(e.tmp / "ann.csv")),
         VideoError, "{tmp}/ann.csv", "no annotation entries found", "expected a CSV"),
    case("dataset/header-only-annotation-file", lambda e: dataset(e, ["path,label"]), VideoError,
         "{tmp}/ann.csv", "no annotation entries found"),
    case("dataset/annotation-path-none", lambda e: VideoFolderDataset(None), VideoError, "annotation_file",
         "expected a path", "None"),
    case("dataset/video_root-is-a-file",
         lambda e: VideoFolderDataset(e.good_ann, video_root=e.a_file), VideoError, "{a_file}",
         "not a directory"),
    case("dataset/video_root-empty-folder",
         lambda e: VideoFolderDataset(e.good_ann, video_root=e.empty_folder), VideoError,
         "{empty_folder}/videos/clip_000000.mp4", "not found"),
    case("dataset/csv-video-without-label", lambda e: dataset(e, ["path,label", f"{e.good},"]), VideoError,
         "{tmp}/ann.csv:2", "empty path or label"),
    case("dataset/list-video-without-label", lambda e: dataset(e, [f"{e.good}"], name="ann.txt"), VideoError,
         "{tmp}/ann.txt:1", "1 fields", "expected 'path label'"),
    case("dataset/unknown-label-vs-classes-argument",
         lambda e: dataset(e, ["path,label", f"{e.good},cow"], classes=["cat", "dog"]), VideoError,
         "{tmp}/ann.csv:2", "unknown label 'cow'", "['cat', 'dog']"),
    case("dataset/unknown-label-vs-classes.txt",
         lambda e: dataset(e, ["path,label", f"{e.good},cow"], name="labelled/ann.csv",
                           classes_txt=["cat", "dog"]), VideoError,
         "{tmp}/labelled/ann.csv:2", "unknown label 'cow'", "classes.txt"),
    case("dataset/label-index-out-of-range", lambda e: dataset(e, ["path,label", f"{e.good},5"],
                                                               classes=["cat", "dog"]),
         VideoError, "unknown label '5'", "integer in [0, 1]"),
    case("dataset/empty-classes.txt",
         lambda e: dataset(e, ["path,label", f"{e.good},cat"], name="nocls/ann.csv", classes_txt=[""]), VideoError,
         "{tmp}/nocls/classes.txt", "is empty", "one class name per line"),
    case("dataset/classes-is-a-string", lambda e: dataset(e, ["path,label", f"{e.good},cat"], classes="cat,dog"),
         VideoError, "classes", "a list of class names", "'cat,dog'"),
    # arguments
    case("dataset/frame_size-zero", lambda e: VideoFolderDataset(e.good_ann, frame_size=0), VideoError,
         "frame_size", "an int >= 1", "0"),
    case("dataset/num_frames-str", lambda e: VideoFolderDataset(e.good_ann, num_frames="8"), VideoError,
         "num_frames", "an int >= 1", "'8'"),
    case("dataset/num_frames-bool", lambda e: VideoFolderDataset(e.good_ann, num_frames=True), VideoError,
         "num_frames", "an int >= 1", "True"),
    case("dataset/seed-negative", lambda e: VideoFolderDataset(e.good_ann, seed=-1), VideoError, "seed",
         "a non-negative int", "-1"),
    case("dataset/backend-none", lambda e: VideoFolderDataset(e.good_ann, backend=None), VideoError, "backend",
         "expected one of", "None"),
    case("dataset/index-float", lambda e: VideoFolderDataset(e.good_ann, num_frames=4)[0.5], TypeError, "index",
         "expected an int", "0.5"),
    case("dataset/index-str", lambda e: VideoFolderDataset(e.good_ann, num_frames=4)["0"], TypeError, "index",
         "expected an int", "'0'"),
    case("dataset/index-out-of-range", lambda e: VideoFolderDataset(e.good_ann, num_frames=4)[1], IndexError,
         "index 1 out of range", "1 videos"),
    case("dataset/video-shorter-than-num_frames", lambda e: VideoFolderDataset(e.good_ann, num_frames=16)[0],
         VideoError, "{good}", "6 frames, fewer than the 16 requested"),
    case("read_frames/negative-index", lambda e: read_frames(e.good, [0, -1]), VideoError, "{good}",
         "out of range", "[0, 5]"),
    case("read_frames/str-indices", lambda e: read_frames(e.good, ["a"]), VideoError, "indices",
         "expected integer frame indices", "'a'"),
    case("read_frames/path-none", lambda e: read_frames(None, [0]), VideoError, "path", "expected a path", "None"),
    case("resize_frames/size-zero", lambda e: resize_frames(np.zeros((2, 8, 8, 3), np.uint8), 0), VideoError,
         "size", "an int >= 1", "0"),
    case("resize_frames/channels-two", lambda e: resize_frames(np.zeros((2, 8, 8, 3), np.uint8), 8, channels=2),
         VideoError, "channels", "1 or 3", "2"),
]


@pytest.mark.parametrize("call, error, words", VIDEO_CASES)
def test_video(env, call, error, words):
    expect_clear_error(env, call, error, words)


# ------------------------------------------------------------------------------------------- export

CLIPS = np.zeros((2, 3, 3, 16, 16), np.uint8)  # (N, T, C, H, W)


def export_to(out: str | None = None, **kwargs):
    """``export_clips`` of ``CLIPS`` into ``tmp/out`` (or the fixture file ``out``), with ``kwargs`` changed."""
    def call(e):
        out_dir = e.tmp / "out" if out is None else e.paths[out]
        return export_clips(**{"videos": CLIPS, "labels": [0, 1], "out_dir": out_dir, **kwargs})
    return call


EXPORT_CASES = [
    case("export/unknown-codec", export_to(codec="h265"), ValueError, "codec", "expected one of", "'h265'"),
    case("export/crf-negative", export_to(crf=-1), ValueError, "crf", "an int in [0, 51]", "-1"),
    case("export/crf-str", export_to(crf="high"), ValueError, "crf", "an int in [0, 51]", "'high'"),
    case("export/fps-zero", export_to(fps=0), ValueError, "fps", "an int >= 1", "0"),
    case("export/class-name-with-comma", export_to(class_names=["a,b", "c"]), ValueError, "class_names",
         "without commas", "'a,b'"),
    case("export/class_names-is-a-string", export_to(class_names="ab"), ValueError, "class_names",
         "a list of class names", "'ab'"),
    case("export/no-clips", export_to(videos=CLIPS[:0], labels=[]), ValueError, "videos", "at least one clip"),
    case("export/zero-frames", export_to(videos=CLIPS[:, :0]), ValueError, "videos", "at least one frame"),
    case("export/mpeg4-odd-size", export_to(videos=CLIPS[..., :15], codec="mpeg4"), ValueError, "mpeg4",
         "even frame sizes", "16x15"),
    case("export/negative-label", export_to(labels=[0, -1]), ValueError, "labels", ">= 0"),
    case("export/videos-not-an-array", export_to(videos="clips"), ValueError, "videos", "expected uint8"),
    case("export/channels-last", export_to(videos=CLIPS.transpose(0, 1, 3, 4, 2)), ValueError, "videos",
         "(N, T, C, H, W)"),
    case("export/out_dir-is-a-file", export_to(out="a_file"), ValueError, "{a_file}", "not a directory"),
    case("write_mp4/4-d-frames-last", lambda e: write_mp4(CLIPS[0].transpose(0, 2, 3, 1), e.tmp / "out" / "x.mp4"),
         ValueError, "clip", "expected uint8 (T, C, H, W)", "(3, 16, 16, 3)"),
    case("write_mp4/float-clip", lambda e: write_mp4(CLIPS[0].astype(np.float32), e.tmp / "out" / "x.mp4"),
         ValueError, "clip", "expected uint8 (T, C, H, W)", "float32"),
]


@pytest.mark.parametrize("call, error, words", EXPORT_CASES)
def test_export_leaves_nothing_behind(env, call, error, words):
    before, a_file = tree(env.tmp), env.a_file.read_bytes()
    expect_clear_error(env, call, error, words)
    assert tree(env.tmp) == before, f"left behind: {sorted(tree(env.tmp) - before)}"
    assert env.a_file.read_bytes() == a_file


def test_export_failing_midway_leaves_nothing_behind(env, monkeypatch):
    """An encoder failing on the second clip: the first clip's file and the folders are removed; the
    same export then succeeds and leaves exactly its files (no temporary folder)."""
    import adafocus.data.export as E

    real = E.write_mp4
    calls = []

    def flaky(clip, path, **kwargs):
        calls.append(path)
        if len(calls) == 2:
            Path(path).with_name(".partial.tmp").write_bytes(b"half")  # as if the encoder died mid-file
            raise OSError(f"{path}: simulated disk full")
        return real(clip, path, **kwargs)

    monkeypatch.setattr(E, "write_mp4", flaky)
    (env.tmp / "out").mkdir()
    (env.tmp / "out" / "keep.txt").write_text("the user's own file\n")
    before = tree(env.tmp)
    with pytest.raises(OSError, match="simulated disk full"):
        export_to()(env)
    assert tree(env.tmp) == before, f"left behind: {sorted(tree(env.tmp) - before)}"
    monkeypatch.undo()
    assert export_to()(env) == env.tmp / "out" / "annotations.csv"
    assert tree(env.tmp / "out") == {"keep.txt", "videos", "videos/clip_000000.mp4", "videos/clip_000001.mp4",
                                     "annotations.csv"}


def test_write_mp4_failing_midway_leaves_no_partial_file(env, monkeypatch):
    """The encoder dies on the third frame, after two frames were written (MPEG-4 muxes every frame at
    once; x264 would still be buffering them): no partial mp4 is left."""
    import av

    real_from_ndarray = av.VideoFrame.from_ndarray
    count = []

    def failing(*args, **kwargs):
        count.append(1)
        if len(count) == 3:
            raise RuntimeError("simulated encoder crash")
        return real_from_ndarray(*args, **kwargs)

    monkeypatch.setattr(av.VideoFrame, "from_ndarray", failing)
    (env.tmp / "out").mkdir()
    with pytest.raises(RuntimeError, match="simulated encoder crash"):
        write_mp4(CLIPS[0], env.tmp / "out" / "x.mp4", codec="mpeg4")
    assert tree(env.tmp / "out") == set()


# ------------------------------------------------------------------------------------------- model forward


def video(b: int = 2, t: int = T, c: int = C, h: int = S, w: int = S, dtype=torch.float32) -> torch.Tensor:
    return torch.rand(b, t, c, h, w, generator=torch.Generator().manual_seed(0)).to(dtype)


def with_value(value: float, where=(0, 3, 1, 5, 7)) -> torch.Tensor:
    x = video()
    x[where] = value
    return x


def forward(x, **kwargs):
    return lambda e: e.model(x() if callable(x) else x, **kwargs)


MODEL_CASES = [
    case("forward/uint8-video", forward(lambda: (video() * 255).to(torch.uint8)), ValueError, "video",
         "float", "torch.uint8"),
    case("forward/float64-video", forward(lambda: video(dtype=torch.float64)), ValueError, "video",
         "torch.float32", "torch.float64"),
    case("forward/nan-in-video", forward(lambda: with_value(float("nan"))), ValueError, "video",
         "finite", "1 NaN"),
    case("forward/inf-in-video", forward(lambda: with_value(float("inf"))), ValueError, "video", "finite",
         "1 inf"),
    case("forward/minus-inf-in-video", forward(lambda: with_value(-float("inf"))), ValueError, "video",
         "finite", "1 inf"),
    case("forward/wrong-number-of-frames", forward(lambda: video(t=4)), ValueError, "(B, 8, 3, 32, 32)",
         "expected", "(2, 4, 3, 32, 32)"),
    case("forward/gray-video-for-rgb-model", forward(lambda: video(c=1)), ValueError, "(B, 8, 3, 32, 32)",
         "(2, 8, 1, 32, 32)"),
    case("forward/non-square-frames", forward(lambda: video(w=48)), ValueError, "(B, 8, 3, 32, 32)",
         "(2, 8, 3, 32, 48)"),
    case("forward/empty-batch", forward(lambda: video(b=0)), ValueError, "video", "at least one clip",
         "(0, 8, 3, 32, 32)"),
    case("forward/numpy-array", forward(lambda: video().numpy()), ValueError, "5-D tensor", "ndarray"),
    case("forward/6-d-video", forward(lambda: video()[None]), ValueError, "5-D tensor", "(1, 2, 8, 3, 32, 32)"),
    case("forward/oracle-frames-without-mask", forward(lambda: video(), frame_mode="oracle"), ValueError,
         "gt_mask", "(B, T) = (2, 8)", "None"),
    case("forward/oracle-mask-wrong-shape",
         forward(lambda: video(), frame_mode="oracle", gt_mask=torch.ones(2, 4, dtype=torch.bool)), ValueError,
         "gt_mask", "(2, 4)"),
    case("forward/unknown-frame-mode", forward(lambda: video(), frame_mode="every"), ValueError, "frame_mode",
         "one of", "'every'"),
    case("create_model/config-is-a-string", lambda e: _create("uni_adafocus", "tiny"), ConfigError, "cfg",
         "adafocus.config.Config", "str"),
    case("create_model/config-is-a-ModelConfig", lambda e: _create("uni_adafocus", TINY.model), ConfigError,
         "cfg", "adafocus.config.Config", "ModelConfig"),
    case("create_model/unknown-model", lambda e: _create("resnet", TINY), ConfigError, "model",
         "registered models", "'resnet'"),
    case("create_model/name-none", lambda e: _create(None, TINY), ConfigError, "model", "registered models",
         "None"),
]


def _create(name, cfg):
    from adafocus.models.registry import create_model

    return create_model(name, cfg)


@pytest.mark.parametrize("call, error, words", MODEL_CASES)
def test_model(env, model, call, error, words):
    env.model = model
    expect_clear_error(env, call, error, words)


# ------------------------------------------------------------------------------------------- cost, evaluation


def _model_cost(name, cfg):
    from adafocus.flops import model_cost

    return model_cost(name, cfg)


def _evaluate(name, cfg, splits, **kwargs):
    from adafocus.evaluate import evaluate_model

    return evaluate_model(name, cfg, splits, progress=False, **kwargs)


EVAL_CASES = [
    case("model_cost/unknown-model", lambda e: _model_cost("resnet", TINY), ConfigError, "'resnet'",
         "registered models"),
    case("model_cost/config-is-a-string", lambda e: _model_cost("uni_adafocus", "tiny"), ConfigError, "cfg",
         "adafocus.config.Config"),
    case("evaluate_model/unknown-model", lambda e: _evaluate("resnet", TINY, {"train": [], "test": []}),
         ConfigError, "'resnet'", "registered models"),
    case("evaluate_model/unknown-split", lambda e: _evaluate("glance_only", TINY, {"train": [], "test": []},
                                                             split="testing"),
         ConfigError, "split", "'testing'", "['train', 'test']"),
    case("evaluate_model/config-is-a-string", lambda e: _evaluate("glance_only", "tiny", {"test": []}),
         ConfigError, "cfg", "adafocus.config.Config"),
]


@pytest.mark.parametrize("call, error, words", EVAL_CASES)
def test_cost_and_evaluation(env, call, error, words):
    before = tree(env.tmp)
    expect_clear_error(env, call, error, words)
    assert tree(env.tmp) == before


# ------------------------------------------------------------------------------------------- checkpoints


def _load(name: str, model_name: str = "glance_only", key: str | None = None):
    def call(e):
        from adafocus.train import load_checkpoint

        return load_checkpoint(e.paths[name], model_name, key or e.paths["key"])
    return call


def _checkpoint_error():
    from adafocus.train import CheckpointError

    return CheckpointError


CHECKPOINT_CASES = [
    case("load_checkpoint/zero-byte-file", _load("ckpt_zero"), None, "{ckpt_zero}"),
    case("load_checkpoint/text-file", _load("ckpt_text"), None, "{ckpt_text}"),
    case("load_checkpoint/truncated", _load("ckpt_truncated"), None, "{ckpt_truncated}"),
    case("load_checkpoint/directory", _load("ckpt_directory"), None, "{ckpt_directory}"),
    case("load_checkpoint/not-a-dict", _load("ckpt_list"), None, "{ckpt_list}"),
    case("load_checkpoint/another-model", _load("ckpt_good", model_name="oracle"), None,
         "{ckpt_good}", "'glance_only'", "expected model 'oracle'"),
    case("load_checkpoint/another-config", _load("ckpt_good", key="0123456789ab"), None,
         "{ckpt_good}", "expected model 'glance_only' with config hash '0123456789ab'"),
]


@pytest.mark.parametrize("call, error, words", CHECKPOINT_CASES)
def test_checkpoint(env, checkpoints, call, error, words):
    env.paths.update(checkpoints)  # every case must raise CheckpointError naming the file
    expect_clear_error(env, call, _checkpoint_error(), words)


# ------------------------------------------------------------------------------------------- CLI


@dataclass(frozen=True)
class CliCase:
    args: tuple[str, ...]
    words: tuple[str, ...]
    cache_is_a_file: bool = False


def cli(case_id: str, *args: str, words: tuple[str, ...], cache_is_a_file: bool = False):
    return pytest.param(CliCase(args, words, cache_is_a_file), id=case_id)


CLI_CASES = [
    cli("cli/unknown-command", "frobnicate", words=("invalid choice: 'frobnicate'", "train")),
    cli("cli/no-command", words=("command",)),
    cli("cli/unknown-option", "flops", "--preset", "tiny", "--fast", words=("unrecognized arguments: --fast",)),
    cli("cli/unknown-preset", "evaluate", "--preset", "huge", words=("preset", "'huge'", "tiny")),
    cli("cli/set-wrong-type", "flops", "--preset", "tiny", "--set", "model.patch_size=big",
        words=("model.patch_size", "expected an int", "'big'")),
    cli("cli/set-nan", "data", "generate", "--preset", "tiny", "--set", "train.lr=nan",
        words=("train.lr", "expected a finite number", "'nan'")),
    cli("cli/set-out-of-range", "evaluate", "--preset", "tiny", "--set", "model.num_focus=99",
        words=("model.num_focus", "T = 8", "99")),
    cli("cli/set-unknown-field", "flops", "--set", "model.patchsize=32", words=("model has no field 'patchsize'",)),
    cli("cli/set-without-section", "flops", "--set", "patch_size=32", words=("'patch_size'", "expected 'data.")),
    cli("cli/set-without-value", "flops", "--set", "model.patch_size", words=("--set", "SECTION.FIELD=VALUE")),
    cli("cli/patch-size-not-an-int", "flops", "--patch-size", "big", words=("--patch-size", "'big'")),
    cli("cli/unknown-model-flops", "flops", "--preset", "tiny", "--model", "resnet",
        words=("'resnet'", "registered models")),
    cli("cli/unknown-model-train", "train", "--preset", "tiny", "--model", "resnet",
        words=("'resnet'", "registered models")),
    cli("cli/preview-out-is-a-file", "data", "preview", "--preset", "tiny", "--out", "a_file",
        words=("a_file", "not a directory")),
    cli("cli/cache-is-a-file", "data", "generate", "--preset", "tiny", words=("cache", "Not a directory"),
        cache_is_a_file=True),
]


@pytest.mark.parametrize("c", CLI_CASES)
def test_cli(env, c: CliCase):
    (env.tmp / "a_file").write_text("a file, not a folder\n")
    cache = env.tmp / "cache"
    if c.cache_is_a_file:
        cache.write_text("not a folder\n")
    before = tree(env.tmp)
    environ = {**os.environ, "ADAFOCUS_CACHE": str(cache), "OMP_NUM_THREADS": "1",
               "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-m", "adafocus", *c.args], cwd=env.tmp, env=environ,
                          capture_output=True, text=True, timeout=120)
    err = proc.stderr.strip()
    assert proc.returncode != 0, f"exit status 0 for {c.args}: {proc.stdout}"
    assert "Traceback" not in err, err
    assert len(err.splitlines()) == 1, f"expected a one-line error, got:\n{err}"
    assert "error:" in err
    for word in c.words:
        assert word in err, f"{word!r} is not in {err!r}"
    assert tree(env.tmp) == before, f"left behind: {sorted(tree(env.tmp) - before)}"


# ------------------------------------------------------------------------------------------- totals

GROUPS = {"config": CONFIG_CASES, "synthetic": SYNTHETIC_CASES, "video": VIDEO_CASES, "export": EXPORT_CASES,
          "model": MODEL_CASES, "cost/evaluate": EVAL_CASES, "checkpoint": CHECKPOINT_CASES, "cli": CLI_CASES}


def case_counts() -> dict[str, int]:
    """Bad-input cases per entry-point group (each is one pytest param)."""
    return {name: len(cases) for name, cases in GROUPS.items()}


if __name__ == "__main__":
    counts = case_counts()
    for name, n in counts.items():
        print(f"{name:>14s}: {n}")
    print(f"{'total':>14s}: {sum(counts.values())}  (+2 tests of failures midway through an export)")

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

Inputs that real users bring and that must *work* sit beside the errors: annotation files as
editors and spreadsheets save them (byte-order marks, CRLF, headers, quoting), frames with a little
resampling overshoot, and two property tests (hypothesis): whatever ``export_clips`` accepts,
``read_annotations`` reads back as written, and any CSV quoted by Python's csv module reads back.
A checkpoint carrying a pickled payload (with a correct checksum) is refused and its code never runs.

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
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import adafocus
from adafocus.config import ConfigError, get_config
from adafocus.data.export import export_clips, write_mp4
from adafocus.data.synthetic import ClipSet, generate_clip, generate_clips, load_split
from adafocus.data.video import (VideoError, VideoFolderDataset, check_video, read_annotations, read_frames,
                                  resize_frames)
from adafocus.paths import checked_torch_load, checked_torch_save

REPO = Path(__file__).resolve().parents[1]
PACKAGE = Path(adafocus.__file__).resolve().parent
HAS_DECORD = importlib.util.find_spec("decord") is not None
BACKENDS = ["av", "auto"] + (["decord"] if HAS_DECORD else [])
TINY = get_config("tiny")
T, C, S = TINY.data.num_frames, TINY.data.channels, TINY.data.frame_size  # 8, 3, 32
SECTIONS_MSG = "expected one of 'data.<field>', 'model.<field>', 'train.<field>', 'pretrain.<field>'"

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


def write_bytes(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def symlink_loop(path: Path) -> Path:
    """``path`` as a symbolic link to itself."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(path.name, path)
    return path


def broken_link(path: Path) -> Path:
    """``path`` as a symbolic link to a file that does not exist."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(path.parent / "nowhere", path)
    return path


def no_training():
    """The tiny preset with every ``*epochs`` field of its training sections at 0: the trainer only
    saves the initial weights."""
    import dataclasses

    zeros = {f"{section}.{f.name}": 0 for section in ("train", "pretrain") if hasattr(TINY, section)
             for f in dataclasses.fields(getattr(TINY, section)) if f.name.endswith("epochs")}
    return get_config("tiny", **zeros)


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
    cfg = no_training()
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
    marker = root / "payload-ran"
    state = checked_torch_load(good)
    plant_checkpoint(broken / "payload.pt", {**state, "history": [Payload(marker)]})
    plant_checkpoint(broken / "payload_outer.pt", state, outer_extra=Payload(marker))
    plant_checkpoint(broken / "payload_numpy.pt", {**state, "history": [{"val_acc": np.float64(0.5)}]})
    checked_torch_save({k: v for k, v in state.items() if k != "model"}, broken / "no_model.pt")
    checked_torch_save({**state, "done": "yes"}, broken / "done_str.pt")
    symlink_loop(broken / "loop.pt")
    forged = root / "forged"  # a finished glance_only checkpoint saved under uni_adafocus's name
    checked_torch_save({**state, "model_name": "uni_adafocus"}, forged / f"uni_adafocus-tiny-{key}.pt")
    return {"cfg": cfg, "key": key, "ckpt_good": good, "ckpt_zero": broken / "zero.pt",
            "ckpt_text": broken / "text.pt", "ckpt_truncated": broken / "truncated.pt",
            "ckpt_directory": broken / "directory.pt", "ckpt_list": broken / "list.pt",
            "ckpt_payload": broken / "payload.pt", "ckpt_payload_outer": broken / "payload_outer.pt",
            "ckpt_payload_numpy": broken / "payload_numpy.pt", "ckpt_no_model": broken / "no_model.pt",
            "ckpt_done_str": broken / "done_str.pt", "ckpt_loop": broken / "loop.pt", "ckpt_forged_dir": forged,
            "marker": marker, "train_split": train_split}


class Payload:
    """Unpickling this object writes ``marker``: what an attacker's checkpoint would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "arbitrary code ran while loading a checkpoint\n"))


def plant_checkpoint(path: Path, payload_obj: object, outer_extra: object = None) -> None:
    """A checkpoint in the checked format with a *correct* SHA-256, built by hand (checked_torch_save
    refuses such objects): the checksum is no defence, anyone can write a matching one."""
    import hashlib
    import io

    from adafocus.paths import CHECKED_FORMAT

    buf = io.BytesIO()
    torch.save(payload_obj, buf)
    payload = buf.getvalue()
    wrapper = {"format": CHECKED_FORMAT, "sha256": hashlib.sha256(payload).hexdigest(), "payload": payload}
    if outer_extra is not None:
        wrapper["note"] = outer_extra
    torch.save(wrapper, path)


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
    case("get_config/override-not-dotted", cfg_with(patch_size=32), ConfigError, "'patch_size'", SECTIONS_MSG),
    case("get_config/override-unknown-section", cfg_with(**{"optim.lr": 1.0}), ConfigError, "'optim.lr'",
         SECTIONS_MSG),
    case("get_config/override-removed-field", cfg_with(**{"train.pretrain_epochs": 1}), ConfigError,
         "train has no field 'pretrain_epochs'", "'epochs'"),
    case("get_config/override-removed-phase", cfg_with(**{"train.phase2_epochs": 6}), ConfigError,
         "train has no field 'phase2_epochs'", "'epochs'"),
    # the training signal: one switch, three names
    case("train.recipe/unknown", cfg_with(**{"train.recipe": "nope"}), ConfigError, "train.recipe",
         "expected one of ['cpu', 'hinted', 'paper']", "'nope'"),
    case("train.recipe/case", cfg_with(**{"train.recipe": "Paper"}), ConfigError, "train.recipe",
         "['cpu', 'hinted', 'paper']", "'Paper'"),
    case("train.recipe/none", cfg_with(**{"train.recipe": None}), ConfigError, "train.recipe",
         "['cpu', 'hinted', 'paper']", "None"),
    case("config.replace/unknown-recipe", lambda e: TINY.replace(**{"train.recipe": "ablation"}), ConfigError,
         "train.recipe", "['cpu', 'hinted', 'paper']", "'ablation'"),
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
    case("train.epochs/negative", cfg_with(**{"train.epochs": -1}), ConfigError, "train.epochs", "non-negative"),
    case("pretrain.epochs/negative", cfg_with(**{"pretrain.epochs": -1}), ConfigError, "pretrain.epochs",
         "non-negative"),
    case("pretrain.images/negative", cfg_with(**{"pretrain.images": -10}), ConfigError, "pretrain.images",
         "[0, 1000000]"),
    case("pretrain.image_size/str", cfg_with(**{"pretrain.image_size": "32"}), ConfigError, "pretrain.image_size",
         "expected an int", "'32'"),
    case("pretrain.lr/nan", cfg_with(**{"pretrain.lr": float("nan")}), ConfigError, "pretrain.lr",
         "expected a finite number", "nan"),
    case("train.temporal_draws/zero", cfg_with(**{"train.temporal_draws": 0}), ConfigError, "train.temporal_draws",
         "[1, 1024]"),
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
    # beyond a sane range, or beyond what this machine can allocate (issue 13)
    case("train.lr/1e30", cfg_with(**{"train.lr": 1e30}), ConfigError, "train.lr", "<= 10", "1e+30"),
    case("train.lr/1e300", cfg_with(**{"train.lr": 1e300}), ConfigError, "train.lr", "<= 10", "1e+300"),
    case("train.lr_classifier/huge", cfg_with(**{"train.lr_classifier": 1e6}), ConfigError, "train.lr_classifier",
         "<= 1000"),
    case("train.weight_decay/huge", cfg_with(**{"train.weight_decay": 5.0}), ConfigError, "train.weight_decay",
         "<= 1"),
    case("train.center_supervision/huge", cfg_with(**{"train.center_supervision": 1e300}), ConfigError,
         "train.center_supervision", "<= 1e6"),
    case("train.grad_clip/negative", cfg_with(**{"train.grad_clip": -1.0}), ConfigError, "train.grad_clip",
         "non-negative"),
    case("train.seed/too-large", cfg_with(**{"train.seed": 2**40}), ConfigError, "train.seed", "below 2**32"),
    case("train.batch_size/huge", cfg_with(**{"train.batch_size": 10**7}), ConfigError, "train.batch_size",
         "<= 65536"),
    case("train.num_threads/huge", cfg_with(**{"train.num_threads": 10**6}), ConfigError, "train.num_threads",
         "<= 1024"),
    case("data.num_frames/a-billion", cfg_with(**{"data.num_frames": 10**9}), ConfigError, "data.num_frames",
         "machine's memory", "1000000000"),
    case("data.frame_size/100000", cfg_with(**{"data.frame_size": 100_000}), ConfigError, "data.frame_size",
         "machine's memory", "100000²"),
    case("data.num_train/a-billion-clips", cfg_with(**{"data.num_train": 10**9}), ConfigError, "data.num_train",
         "machine's memory"),
    case("model.hidden_dim/huge", cfg_with(**{"model.hidden_dim": 10**7}), ConfigError, "model.hidden_dim",
         "<= 65536"),
    case("model.focus_widths/huge", cfg_with(**{"model.focus_widths": (8, 16, 16, 10**7)}), ConfigError,
         "model.focus_widths", "<= 65536"),
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
            classes_bytes: bytes | None = None, **kwargs) -> VideoFolderDataset:
    """A dataset of the annotation ``lines`` written to ``tmp/name`` (with a classes.txt beside it)."""
    ann = write_lines(e.tmp / name, lines)
    if classes_txt is not None:
        write_lines(ann.parent / "classes.txt", classes_txt)
    if classes_bytes is not None:
        write_bytes(ann.parent / "classes.txt", classes_bytes)
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
    # annotation files as users write them (issue 13)
    case("dataset/csv-unbalanced-quote",
         lambda e: dataset(e, ["path,label", f'"{e.good},cat', f"{e.good},dog"], classes=["cat", "dog"]),
         VideoError, "{tmp}/ann.csv:2", "unbalanced quote"),
    case("dataset/csv-unbalanced-quote-in-label",
         lambda e: dataset(e, ["path,label", f'{e.good},"cat', f"{e.good},dog"], classes=["cat", "dog"]),
         VideoError, "{tmp}/ann.csv:2", "unbalanced quote", "never closed"),
    case("dataset/csv-text-after-closing-quote",
         lambda e: dataset(e, ["path,label", f'{e.good},"ca"t'], classes=["cat", "dog"]), VideoError,
         "{tmp}/ann.csv:2", "after the closing quote"),
    case("dataset/conflicting-labels-csv",
         lambda e: dataset(e, ["path,label", f"{e.good},cat", f"{e.good},dog"]), VideoError,
         "{tmp}/ann.csv:3", "'dog' here but 'cat' at line 2", "one label per video"),
    case("dataset/conflicting-labels-same-file-two-spellings",
         lambda e: dataset(e, ["clip.mp4 0", "./clip.mp4 1"], name="ann.txt"), VideoError,
         "{tmp}/ann.txt:2", "'1' here but '0' at line 1"),
    case("dataset/integer-label-a-billion",
         lambda e: dataset(e, [f"{e.good} 3", f"{e.good} 1000000000"], name="ann.txt"), VideoError,
         "{tmp}/ann.txt:2", "far beyond the 2 entries", "expected labels below 1000", "classes.txt"),
    case("dataset/integer-label-5000-digits",
         lambda e: dataset(e, [f"{e.good} {'9' * 5000}"], name="ann.txt"), VideoError, "{tmp}/ann.txt:1",
         "far beyond"),
    case("dataset/num_frames-5000-digits-then-huge-label",
         lambda e: dataset(e, [f"{e.good} {'7' * 5000} 10000000"], name="ann.txt"), VideoError,
         "{tmp}/ann.txt:1", "far beyond"),
    case("dataset/utf16-annotation-file",
         lambda e: VideoFolderDataset(write_bytes(e.tmp / "ann.csv", "path,label\nx.mp4,cat\n".encode("utf-16"))),
         VideoError, "{tmp}/ann.csv", "UTF-16", "expected UTF-8"),
    case("dataset/classes.txt-not-utf8",
         lambda e: dataset(e, ["path,label", f"{e.good},cat"], name="latin/ann.csv",
                           classes_bytes="caf\xe9\nthé\n".encode("latin-1")),
         VideoError, "{tmp}/latin/classes.txt", "not a text file"),
    case("dataset/classes.txt-duplicates",
         lambda e: dataset(e, ["path,label", f"{e.good},cat"], name="dup/ann.csv", classes_txt=["cat", "dog", "cat"]),
         VideoError, "{tmp}/dup/classes.txt", "duplicates ['cat']"),
    # paths that exist as links but cannot be opened (issue 13)
    case("dataset/annotation-file-is-a-symlink-loop", lambda e: VideoFolderDataset(symlink_loop(e.tmp / "ann.csv")),
         VideoError, "{tmp}/ann.csv", "symbolic link loop"),
    case("dataset/annotation-file-is-a-broken-link",
         lambda e: VideoFolderDataset(broken_link(e.tmp / "ann.csv")), VideoError, "{tmp}/ann.csv",
         "broken symbolic link"),
    case("dataset/video_root-is-a-symlink-loop",
         lambda e: VideoFolderDataset(e.good_ann, video_root=symlink_loop(e.tmp / "root")), VideoError,
         "{tmp}/root", "symbolic link loop"),
    case("dataset/listed-video-is-a-symlink-loop",
         lambda e: dataset(e, ["path,label", f"{symlink_loop(e.tmp / 'v.mp4')},0"]), VideoError, "{tmp}/v.mp4",
         "symbolic link loop"),
    case("check_video/symlink-loop", lambda e: check_video(symlink_loop(e.tmp / "v.mp4")), VideoError,
         "{tmp}/v.mp4", "symbolic link loop", "expected an existing video file"),
    case("dataset/annotation-path-empty-string", lambda e: VideoFolderDataset(""), VideoError, "annotation_file",
         "expected a path", "''"),
    case("dataset/annotation-path-unknown-user", lambda e: VideoFolderDataset("~no_such_user_13/ann.csv"),
         VideoError, "annotation_file", "cannot expand", "~no_such_user_13"),
]


@pytest.mark.parametrize("call, error, words", VIDEO_CASES)
def test_video(env, call, error, words):
    expect_clear_error(env, call, error, words)


# Annotation files as editors and spreadsheets save them: each must read as the plain file does.
# (files: name -> bytes; expected: [(relative path, class index)], class names)
BOM = b"\xef\xbb\xbf"
ANNOTATION_RESULTS = [
    pytest.param({"a.csv": BOM + b"path,label\na.mp4,cat\nb.mp4,dog\n"}, [("a.mp4", 0), ("b.mp4", 1)],
                 ["cat", "dog"], id="csv-with-byte-order-mark"),
    pytest.param({"a.csv": b"path,label\r\na.mp4,cat\r\nb.mp4,dog\r\n"}, [("a.mp4", 0), ("b.mp4", 1)],
                 ["cat", "dog"], id="csv-with-crlf"),
    pytest.param({"a.csv": BOM + b"path,label\r\na.mp4,cat\r\nb.mp4,dog"}, [("a.mp4", 0), ("b.mp4", 1)],
                 ["cat", "dog"], id="csv-excel-bom-crlf-no-final-newline"),
    pytest.param({"a.csv": b"path,label\ra.mp4,cat\rb.mp4,dog\r"}, [("a.mp4", 0), ("b.mp4", 1)],
                 ["cat", "dog"], id="csv-with-old-mac-line-ends"),
    pytest.param({"a.txt": BOM + b"a.mp4 1\r\nb.mp4 0\r\n"}, [("a.mp4", 1), ("b.mp4", 0)], ["0", "1"],
                 id="list-with-bom-and-crlf"),
    pytest.param({"a.txt": b"path label\na.mp4 cat\nb.mp4 dog\n"}, [("a.mp4", 0), ("b.mp4", 1)], ["cat", "dog"],
                 id="list-with-header-path-label"),
    pytest.param({"a.txt": b"# my videos\nvideo num_frames class\na.mp4 30 2\n"}, [("a.mp4", 2)], ["0", "1", "2"],
                 id="list-with-comment-and-header-video-num_frames-class"),
    pytest.param({"a.txt": b"a.mp4 cat\n", "classes.txt": BOM + b"dog\r\ncat\r\n"}, [("a.mp4", 1)],
                 ["dog", "cat"], id="classes.txt-with-bom-and-crlf"),
    pytest.param({"a.csv": b"path , label\n a.mp4 , cat \nb.mp4, \"dog\"\n"}, [("a.mp4", 0), ("b.mp4", 1)],
                 ["cat", "dog"], id="csv-spaces-around-fields"),
    pytest.param({"a.csv": b'path,label\n"a.mp4" ,"cat" \n'}, [("a.mp4", 0)], ["cat"],
                 id="csv-spaces-after-closing-quotes"),
    pytest.param({"a.csv": b'path,label\n"#1.mp4",cat\n#2.mp4,dog\n'}, [("#1.mp4", 0)], ["cat"],
                 id="csv-quoted-path-starting-with-hash-is-a-path"),
    pytest.param({"a.csv": b'path,label\n"a, b.mp4","big ""cat"""\n'}, [("a, b.mp4", 0)], ['big "cat"'],
                 id="csv-quoted-comma-and-quotes"),
    pytest.param({"a.csv": b"# exported 2024\n\npath,label\na.mp4,cat\n"}, [("a.mp4", 0)], ["cat"],
                 id="csv-comment-before-header"),
    pytest.param({"a.csv": b"path,label\na.mp4,cat\n./a.mp4,cat\n"}, [("a.mp4", 0), ("a.mp4", 0)], ["cat"],
                 id="same-video-twice-with-the-same-label"),
    pytest.param({"a.csv": "path,label\nvidéo ☃.mp4,chat noir\n".encode()}, [("vidéo ☃.mp4", 0)], ["chat noir"],
                 id="csv-unicode-path-and-label"),
    pytest.param({"a.txt": b"a.mp4 0\nb.mp4 999\n"}, [("a.mp4", 0), ("b.mp4", 999)], [str(i) for i in range(1000)],
                 id="list-sparse-integer-labels-within-the-limit"),
]


@pytest.mark.parametrize("files, expected, names", ANNOTATION_RESULTS)
def test_annotation_files_read_correctly(tmp_path, files, expected, names):
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    ann = next(name for name in files if name != "classes.txt")
    items, got_names = read_annotations(tmp_path / ann)
    assert [(os.path.normpath(p.relative_to(tmp_path)), k) for p, k in items] == expected
    assert got_names == names


# Whatever export_clips accepts, read_annotations reads back as written; whatever it refuses, it
# refuses before writing anything. Names and folder names over all of unicode (control characters,
# line and paragraph separators, quotes, commas, '#', digits, byte-order marks included).
NAME = st.text(st.characters(blacklist_categories=("Cs",)), max_size=8) | st.sampled_from(
    ["cat", "1", "0", "#x", '"q"', "a,b", " a", "a\nb", "a\u2028b", "\ufeffa", "é", "path", "label", "a b", "-1"])
FOLDER = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="/\x00"), min_size=1,
                 max_size=12).filter(lambda n: n not in (".", ".."))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(names=st.lists(NAME, min_size=1, max_size=4), fmt=st.sampled_from(["csv", "list"]),
       picks=st.lists(st.integers(0, 3), min_size=1, max_size=3), folder=FOLDER, named=st.booleans())
def test_export_then_read_gives_back_the_same_names_and_labels(names, fmt, picks, folder, named):
    import tempfile

    import adafocus.data.export as E
    from adafocus.data.video import class_name_problem

    labels = [k % len(names) for k in picks]
    clips = np.zeros((len(labels), 1, 3, 2, 2), np.uint8)
    with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as mp:
        mp.setattr(E, "write_mp4", lambda clip, path, **kw: Path(path).write_bytes(b"stub"))  # names, not codecs
        out = Path(tmp) / folder / "export"
        kwargs = {"class_names": names} if named else {}
        ok = not named or (all(class_name_problem(n, fmt) is None for n in names) and len(set(names)) == len(names))
        if not ok:
            with pytest.raises(ValueError, match="class_names"):
                export_clips(clips, labels, out, fmt=fmt, **kwargs)
            assert not out.exists()
            return
        ann = export_clips(clips, labels, out, fmt=fmt, **kwargs)
        items, got = read_annotations(ann)
        assert [k for _, k in items] == labels
        assert [p for p, _ in items] == [out / f"videos/clip_{i:06d}.mp4" for i in range(len(labels))]
        assert all(p.exists() for p, _ in items)
        if named:
            assert got == names
        else:
            assert got == [str(i) for i in range(max(labels) + 1)]


SEGMENT = st.text(st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="/"), min_size=1,
                  max_size=8).filter(lambda n: n not in (".", ".."))


@settings(max_examples=150, deadline=None)
@given(paths=st.lists(st.lists(SEGMENT, min_size=1, max_size=3).map("/".join), min_size=1, max_size=4, unique=True)
       .filter(lambda ps: all(p == p.strip() for p in ps)),
       names=st.lists(NAME, min_size=1, max_size=3, unique=True), data=st.data())
def test_a_csv_written_by_the_csv_module_reads_back(paths, names, data):
    """Any paths and class names, quoted by Python's csv module (QUOTE_ALL, so a path may start with
    '#'), with the names passed as ``classes``: read_annotations gives them back exactly."""
    import csv
    import io
    import tempfile

    from adafocus.data.video import class_name_problem

    names = [n for n in names if class_name_problem(n) is None]
    if not names:
        return
    labels = [data.draw(st.integers(0, len(names) - 1)) for _ in paths]
    text = io.StringIO()
    writer = csv.writer(text, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    writer.writerow(["path", "label"])
    writer.writerows([p, names[k]] for p, k in zip(paths, labels))
    with tempfile.TemporaryDirectory() as tmp:
        ann = Path(tmp) / "a.csv"
        ann.write_bytes(BOM + text.getvalue().encode())
        items, got = read_annotations(ann, classes=names)
    assert got == names
    assert items == [(Path(tmp) / p, k) for p, k in zip(paths, labels)]


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
    case("export/class-name-with-newline", export_to(class_names=["a\nb", "c"]), ValueError, "class_names",
         "'a\\nb'", "control character"),
    case("export/class-name-with-tab", export_to(class_names=["a\tb", "c"]), ValueError, "class_names",
         "'a\\tb'", "control character"),
    case("export/class-name-with-byte-order-mark", export_to(class_names=["\ufeffcat", "dog"]), ValueError,
         "class_names", "control character"),
    case("export/class-name-with-surrounding-space", export_to(class_names=[" cat", "dog"]), ValueError,
         "class_names", "' cat'", "leading or trailing whitespace"),
    case("export/class-name-empty", export_to(class_names=["", "dog"]), ValueError, "class_names", "empty"),
    case("export/class-name-with-space-list-format", export_to(class_names=["big cat", "dog"], fmt="list"),
         ValueError, "class_names", "'big cat'", "fmt='csv'"),
    case("export/class-names-duplicates", export_to(class_names=["cat", "cat"]), ValueError, "class_names",
         "unique", "['cat']"),
    case("export/class-names-empty-list", export_to(class_names=[], labels=[0, 0]), ValueError, "class_names",
         "at least one"),
    case("export/label-a-billion-without-names", export_to(labels=[0, 10**9]), ValueError, "labels",
         "below 1000", "class_names"),
    case("export/out_dir-empty-string", lambda e: export_clips(CLIPS, [0, 1], ""), ValueError, "out_dir",
         "expected a path", "''"),
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


EXPORT_LINK_CASES = [  # (what the link is, the out_dir under tmp; its first part is the link)
    pytest.param("loop", "out", "symbolic link loop", id="export/out_dir-is-a-symlink-loop"),
    pytest.param("loop", "loop/clips", "symbolic link loop", id="export/out_dir-under-a-symlink-loop"),
    pytest.param("broken", "out", "broken symbolic link", id="export/out_dir-is-a-broken-link"),
    pytest.param("broken", "out/clips", "broken symbolic link", id="export/out_dir-under-a-broken-link"),
]


@pytest.mark.parametrize("kind, out, words", EXPORT_LINK_CASES)
def test_export_into_a_link_that_leads_nowhere(env, kind, out, words):
    """A self-referencing (or dangling) output folder: its own message, not a raw FileExistsError."""
    link = env.tmp / out.split("/")[0]
    symlink_loop(link) if kind == "loop" else broken_link(link)
    before = tree(env.tmp)
    expect_clear_error(env, lambda e: export_clips(CLIPS, [0, 1], e.tmp / out), ValueError,
                       (f"{link} is a {words}", "expected a folder to write into"))
    assert tree(env.tmp) == before


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
    # values outside [0, 1] (issue 13): one aminmax per call, a message naming both usual causes
    case("forward/0-255-pixels-as-float", forward(lambda: video() * 255), ValueError, "video",
         "expected values in [0, 1]", "looks like 0-255 pixels", "ImageNet-normalised"),
    case("forward/imagenet-normalised", forward(lambda: (video() - 0.45) / 0.225), ValueError, "video",
         "expected values in [0, 1]", "looks like normalised frames", "0-255 pixels"),
    case("forward/minus-one-to-one", forward(lambda: video() * 2 - 1), ValueError, "video", "[0, 1]",
         "normalised"),
    case("forward/one-bright-pixel", forward(lambda: with_value(3.0)), ValueError, "video", "[0, 1]", "3]"),
    case("exiting_forward/0-255-pixels", lambda e: _exiting(e.model, video() * 255), ValueError, "video",
         "0-255 pixels"),
]


def _exiting(model, x):
    from adafocus.models.exits import exiting_forward

    return exiting_forward(model, x, torch.full((model.classifier.num_exits,), 2.0))


def _create(name, cfg):
    from adafocus.models.registry import create_model

    return create_model(name, cfg)


@pytest.mark.parametrize("call, error, words", MODEL_CASES)
def test_model(env, model, call, error, words):
    env.model = model
    expect_clear_error(env, call, error, words)


@pytest.mark.parametrize("lo, hi", [(0.0, 1.0), (-0.02, 1.03), (0.0, 0.0), (1.0, 1.0)],
                         ids=["exactly-0-and-1", "resampling-overshoot", "all-black", "all-white"])
def test_model_accepts_frames_in_range(model, lo, hi):
    """[0, 1], and the small overshoot of bicubic or antialiased resampling, are accepted."""
    x = video()
    x[0, 0, 0, 0, 0], x[1, -1, -1, -1, -1] = lo, hi
    x = x.clamp(lo, hi) if lo == hi else x
    with torch.no_grad():
        assert model(x).logits.shape == (2, TINY.model.num_classes)


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
    # files that need arbitrary unpickling are refused, whatever their checksum (issue 13)
    case("load_checkpoint/pickled-object-in-payload", _load("ckpt_payload"), None, "{ckpt_payload}",
         "refused to load", "pickled Python objects", "can run code", "weights_only=True"),
    case("load_checkpoint/pickled-object-in-wrapper", _load("ckpt_payload_outer"), None, "{ckpt_payload_outer}",
         "refused to load", "Unsupported global"),
    case("load_checkpoint/numpy-scalar-in-metadata", _load("ckpt_payload_numpy"), None, "{ckpt_payload_numpy}",
         "refused to load", "numpy"),
    case("load_checkpoint/no-weights", _load("ckpt_no_model"), None, "{ckpt_no_model}", "malformed fields",
         "model (NoneType)"),
    case("load_checkpoint/done-is-a-string", _load("ckpt_done_str"), None, "{ckpt_done_str}", "done (str)"),
    case("load_checkpoint/symlink-loop", _load("ckpt_loop"), None, "{ckpt_loop}", "symbolic link loop"),
    case("train/another-model's-weights-under-its-name",
         lambda e: _train("uni_adafocus", e.cfg, {"train": e.train_split}, e.ckpt_forged_dir, e.key), None,
         "{ckpt_forged_dir}/uni_adafocus-tiny-badinputs0.pt", "weights do not fit model 'uni_adafocus'", "delete it"),
]


def _train(model_name, cfg, splits, checkpoint_dir, key=None):
    from adafocus.train import train

    return train(model_name, cfg, splits, progress=False, checkpoint_dir=checkpoint_dir, key=key)


@pytest.mark.parametrize("call, error, words", CHECKPOINT_CASES)
def test_checkpoint(env, checkpoints, call, error, words):
    env.paths.update(checkpoints)  # every case must raise CheckpointError naming the file
    vars(env).update(checkpoints)
    expect_clear_error(env, call, _checkpoint_error(), words)
    assert not checkpoints["marker"].exists(), "the checkpoint's payload ran"


@pytest.mark.parametrize("name", ["ckpt_payload", "ckpt_payload_outer"])
def test_a_planted_payload_never_runs_but_would_with_weights_only_false(checkpoints, name):
    """The payload is live (plain ``torch.load`` runs it); the package refuses the file before it can."""
    import io

    from adafocus.paths import CorruptFileError

    marker = checkpoints["marker"]
    for _ in range(2):
        with pytest.raises(CorruptFileError, match="refused to load"):
            checked_torch_load(checkpoints[name])
    assert not marker.exists()
    try:  # the control: what torch.load(weights_only=False), the old code, did with the same file
        wrapper = torch.load(checkpoints[name], weights_only=False)
        torch.load(io.BytesIO(wrapper["payload"]), weights_only=False)
        assert marker.exists(), "the test's payload is not live"
    finally:
        marker.unlink(missing_ok=True)


def test_a_checkpoint_that_would_need_unpickling_is_never_written(tmp_path):
    with pytest.raises(TypeError, match=r"checkpoint\['history'\]\[0\]: a numpy.float64 cannot be stored"):
        checked_torch_save({"history": [np.float64(1.0)]}, tmp_path / "x.pt")
    with pytest.raises(TypeError, match="Payload cannot be stored"):
        checked_torch_save({"w": torch.zeros(2), "meta": {"x": Payload(tmp_path / "m")}}, tmp_path / "x.pt")
    assert not list(tmp_path.iterdir())
    state = {"w": torch.zeros(2), "meta": {"lr": 1e-3, "shape": (2, 3), "name": "x", "none": None, "nan": float("nan")},
             "rng": [torch.get_rng_state()], "blob": b"\x00"}
    checked_torch_save(state, tmp_path / "ok.pt")
    back = checked_torch_load(tmp_path / "ok.pt")
    assert back["meta"]["shape"] == (2, 3) and torch.equal(back["rng"][0], state["rng"][0])


# ------------------------------------------------------------------------------------------- labels vs the model


def _labelled_split(labels: list[int]):
    from adafocus.data.synthetic import SyntheticVideoDataset

    clips = generate_clips(TINY.data, "train", range(len(labels)), progress=False)
    clips = ClipSet(clips.videos, torch.tensor(labels), clips.boxes, clips.mask)
    return SyntheticVideoDataset(clips, TINY.data, "train")


def _video_split(e, classes: list[str], label: str):
    return dataset(e, ["path,label", f"{e.good},{label}"], classes=classes)


LABEL_CASES = [
    case("train/synthetic-label-beyond-num_classes",
         lambda e: _train("glance_only", no_training(), {"train": _labelled_split([0, 5])}, e.tmp), ConfigError,
         "model.num_classes", "0 .. 3 for 4", "splits['train'] has labels up to 5"),
    case("train/video-dataset-with-more-classes",
         lambda e: _train("glance_only", no_training(), {"train": _video_split(e, list("abcdef"), "b")}, e.tmp),
         ConfigError, "model.num_classes", "splits['train'] has 6 classes"),
    case("train/video-label-beyond-num_classes-in-val",
         lambda e: _train("glance_only", no_training(), {"train": _labelled_split([0, 1]),
                                                     "val": _video_split(e, list("abcdef"), "f")}, e.tmp),
         ConfigError, "model.num_classes", "splits['val'] has labels up to 5"),
    case("train/negative-label", lambda e: _train("glance_only", no_training(), {"train": _labelled_split([0, -1])},
                                                  e.tmp), ConfigError, "model.num_classes", "negative label (-1)"),
]


@pytest.mark.parametrize("call, error, words", LABEL_CASES)
def test_labels_beyond_the_model_are_refused_before_training(env, call, error, words):
    expect_clear_error(env, call, error, words)
    assert not list(env.tmp.glob("*.pt")), "nothing may be trained or written"


def _folder(e):
    """A video folder: labels, no boxes, no frame masks."""
    return {"train": _video_split(e, ["cat", "dog"], "cat")}


SUPERVISION_CASES = [  # ground truth asked of data that has none
    case("train/hinted-recipe-on-a-video-folder",
         lambda e: _train("uni_adafocus", no_training().replace(**{"train.recipe": "hinted"}), _folder(e), e.tmp),
         ConfigError, "train.recipe", "'hinted'", "true boxes", "this data has none", "'cpu' or 'paper'"),
    case("train/center-hint-on-a-video-folder",
         lambda e: _train("uni_adafocus", no_training().replace(**{"train.center_supervision": 1.0}), _folder(e),
                          e.tmp), ConfigError, "train.center_supervision", "this data has none"),
    case("train/oracle-on-a-video-folder",
         lambda e: _train("oracle", no_training(), _folder(e), e.tmp), ConfigError, "model", "'oracle'",
         "this data has none"),
]


@pytest.mark.parametrize("call, error, words", SUPERVISION_CASES)
def test_ground_truth_asked_of_data_without_it_is_refused_before_training(env, call, error, words):
    expect_clear_error(env, call, error, words)
    assert not list(env.tmp.rglob("*.pt")), "nothing may be trained or written"


# ------------------------------------------------------------------------------------------- CLI


@dataclass(frozen=True)
class CliCase:
    args: tuple[str, ...]
    words: tuple[str, ...]
    cache_is_a_file: bool = False
    cache: str | None = None  # ADAFOCUS_CACHE as given (default: tmp/cache)
    loop: str | None = None  # a symbolic link loop made under tmp first


def cli(case_id: str, *args: str, words: tuple[str, ...], **kwargs):
    return pytest.param(CliCase(args, words, **kwargs), id=case_id)


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
    cli("cli/set-without-section", "flops", "--set", "patch_size=32", words=("'patch_size'", SECTIONS_MSG)),
    cli("cli/set-unknown-recipe", "train", "--preset", "tiny", "--set", "train.recipe=nope",
        words=("train.recipe", "['cpu', 'hinted', 'paper']", "'nope'")),
    cli("cli/set-removed-field", "train", "--preset", "tiny", "--set", "train.phase2_epochs=6",
        words=("train has no field 'phase2_epochs'", "'epochs'")),
    cli("cli/set-without-value", "flops", "--set", "model.patch_size", words=("--set", "SECTION.FIELD=VALUE")),
    cli("cli/patch-size-not-an-int", "flops", "--patch-size", "big", words=("--patch-size", "'big'")),
    cli("cli/unknown-model-flops", "flops", "--preset", "tiny", "--model", "resnet",
        words=("'resnet'", "registered models")),
    cli("cli/unknown-model-train", "train", "--preset", "tiny", "--model", "resnet",
        words=("'resnet'", "registered models")),
    cli("cli/preview-out-is-a-file", "data", "preview", "--preset", "tiny", "--out", "a_file",
        words=("a_file", "not a directory")),
    cli("cli/cache-is-a-file", "data", "generate", "--preset", "tiny", words=("cache is not a directory",),
        cache_is_a_file=True),
    # issue 13: numbers beyond a sane range, sizes beyond memory, paths that would write elsewhere
    cli("cli/set-lr-1e30", "train", "--preset", "tiny", "--set", "train.lr=1e30", words=("train.lr", "<= 10")),
    cli("cli/set-lr-1e300", "train", "--preset", "tiny", "--set", "train.lr=1e300", words=("train.lr", "1e+300")),
    cli("cli/set-num-frames-a-billion", "data", "generate", "--preset", "tiny", "--set",
        "data.num_frames=1000000000", words=("data.num_frames", "memory")),
    cli("cli/set-frame-size-100000", "train", "--preset", "tiny", "--set", "data.frame_size=100000",
        words=("data.frame_size", "memory")),
    cli("cli/preview-out-empty", "data", "preview", "--preset", "tiny", "--out", "", words=("--out", "''")),
    cli("cli/preview-out-blank", "data", "preview", "--preset", "tiny", "--out", "  ", words=("--out", "'  '")),
    cli("cli/preview-out-symlink-loop", "data", "preview", "--preset", "tiny", "--out", "loop/preview",
        words=("loop", "symbolic link loop"), loop="loop"),
    cli("cli/preview-out-unknown-user", "data", "preview", "--preset", "tiny", "--out", "~no_such_user_13/x",
        words=("--out", "cannot expand")),
    cli("cli/cache-empty", "data", "generate", "--preset", "tiny", words=("ADAFOCUS_CACHE", "empty string"),
        cache=""),
    cli("cli/cache-blank", "data", "generate", "--preset", "tiny", words=("ADAFOCUS_CACHE", "empty string"),
        cache=" "),
    cli("cli/cache-unknown-user", "data", "generate", "--preset", "tiny",
        words=("ADAFOCUS_CACHE", "cannot expand", "~no_such_user_13"), cache="~no_such_user_13/cache"),
    cli("cli/cache-unset-variable", "data", "generate", "--preset", "tiny",
        words=("ADAFOCUS_CACHE", "$NO_SUCH_VARIABLE_13", "not set"), cache="$NO_SUCH_VARIABLE_13/cache"),
    cli("cli/cache-is-a-symlink-loop", "data", "generate", "--preset", "tiny",
        words=("ADAFOCUS_CACHE", "symbolic link loop"), cache="loop", loop="loop"),
]


@pytest.mark.parametrize("c", CLI_CASES)
def test_cli(env, c: CliCase):
    (env.tmp / "a_file").write_text("a file, not a folder\n")
    cache = env.tmp / "cache"
    if c.cache_is_a_file:
        cache.write_text("not a folder\n")
    if c.loop:
        symlink_loop(env.tmp / c.loop)
    before = tree(env.tmp)
    environ = {**os.environ, "ADAFOCUS_CACHE": str(cache) if c.cache is None else c.cache, "OMP_NUM_THREADS": "1",
               "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    environ.pop("NO_SUCH_VARIABLE_13", None)
    proc = subprocess.run([sys.executable, "-m", "adafocus", *c.args], cwd=env.tmp, env=environ,
                          capture_output=True, text=True, timeout=120)
    err = proc.stderr.strip()
    assert proc.returncode == 2, f"exit status {proc.returncode} (expected 2) for {c.args}: {proc.stdout}"
    assert "Traceback" not in err, err
    assert len(err.splitlines()) == 1, f"expected a one-line error, got:\n{err}"
    assert "error:" in err
    for word in c.words:
        assert word in err, f"{word!r} is not in {err!r}"
    assert tree(env.tmp) == before, f"left behind: {sorted(tree(env.tmp) - before)}"


def _raises(err: BaseException):
    def command(args):
        raise err
    return command


def _error(kind: str, message: str) -> BaseException:
    """The exception ``kind`` (imported only when a test runs), with ``message``."""
    if kind == "CheckpointError":
        from adafocus.train import CheckpointError as cls
    elif kind == "CorruptFileError":
        from adafocus.paths import CorruptFileError as cls
    elif kind == "VideoError":
        cls = VideoError
    else:
        cls = {"FloatingPointError": FloatingPointError, "MemoryError": MemoryError, "RuntimeError": RuntimeError,
               "ConfigError": ConfigError}[kind]
    return cls(message) if message else cls()


CLI_ERRORS = [  # (exception, its message, what the one line must contain)
    pytest.param("FloatingPointError", "loss term 'ce' is not finite (nan); lower train.lr", "'ce' is not finite",
                 id="FloatingPointError"),
    pytest.param("MemoryError", "", "error: out of memory; expected settings that fit",
                 id="MemoryError-without-message"),
    pytest.param("RuntimeError", "[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate "
                 "memory: you tried to allocate 8796093022208 bytes.\nError code 12", "out of memory",
                 id="torch-allocation-failure"),
    pytest.param("CheckpointError", "x.pt: refused to load", "x.pt: refused to load", id="CheckpointError"),
    pytest.param("CorruptFileError", "x.pt: not a checksummed file", "x.pt: not a checksummed",
                 id="CorruptFileError"),
    pytest.param("VideoError", "2 of 2 videos listed in a.csv are missing (on_error='skip' would leave them out):"
                 "\n  a.mp4: not found\n  b.mp4: not found", "leave them out): a.mp4: not found; b.mp4: not found",
                 id="VideoError-listing-files"),
    pytest.param("ConfigError", "model.num_classes: expected 4", "model.num_classes", id="ConfigError"),
]


@pytest.mark.parametrize("kind, message, words", CLI_ERRORS)
def test_cli_turns_user_errors_into_one_line(monkeypatch, capsys, kind, message, words):
    """Whatever a command raises that means a bad setting, file or a run that cannot go on: one
    ``error:`` line on stderr, exit status 2, no traceback."""
    from adafocus import cli as C

    monkeypatch.setattr(C, "cmd_models", _raises(_error(kind, message)))
    assert C.main(["models"]) == 2
    out = capsys.readouterr()
    assert out.err.startswith("error: ") and out.err.count("\n") == 1 and words in out.err, out.err
    assert "Traceback" not in out.err and out.out == ""


def test_cli_lets_a_bug_show_its_traceback(monkeypatch):
    from adafocus import cli as C

    monkeypatch.setattr(C, "cmd_models", _raises(KeyError("a bug")))
    with pytest.raises(KeyError):
        C.main(["models"])


def test_cache_path_expands_the_home_folder(monkeypatch, tmp_path):
    """``ADAFOCUS_CACHE='~/x'`` is the user's home folder, never a literal ``./~/x``."""
    from adafocus.paths import cache_dir

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ADAFOCUS_CACHE", "~/adafocus-cache")
    assert cache_dir("data") == tmp_path / "home" / "adafocus-cache" / "data"
    monkeypatch.setenv("ADAFOCUS_CACHE", "$HOME/other")
    assert cache_dir() == tmp_path / "home" / "other"
    assert not (tmp_path / "~").exists() and not (tmp_path / "$HOME").exists()


# ------------------------------------------------------------------------------------------- totals

GROUPS = {"config": CONFIG_CASES, "synthetic": SYNTHETIC_CASES, "video": VIDEO_CASES, "export": EXPORT_CASES,
          "export links": EXPORT_LINK_CASES, "labels": LABEL_CASES, "supervision": SUPERVISION_CASES,
          "model": MODEL_CASES, "cost/evaluate": EVAL_CASES, "checkpoint": CHECKPOINT_CASES, "cli": CLI_CASES}


def case_counts() -> dict[str, int]:
    """Bad-input cases per entry-point group (each is one pytest param)."""
    return {name: len(cases) for name, cases in GROUPS.items()}


if __name__ == "__main__":
    counts = case_counts()
    for name, n in counts.items():
        print(f"{name:>14s}: {n}")
    print(f"{'total':>14s}: {sum(counts.values())}  (plus correct-result cases, property tests and single tests: "
          "pytest --collect-only counts them all)")

"""The object-centric image set, the stand-in for ImageNet (adafocus.data.images)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from adafocus.config import ConfigError, get_config
from adafocus.data import images as I
from adafocus.data import synthetic
from adafocus.data.images import (ImageSet, generate_images, image_config, image_set_key, images_cache_path,
                                  load_images)

CFG = get_config("tiny", **{"pretrain.images": 48})


@pytest.fixture(scope="module")
def image_set() -> ImageSet:
    return generate_images(CFG, progress=False)


def test_images_have_the_pretraining_geometry_and_only_labels(image_set):
    S, C = CFG.pretrain.image_size, CFG.data.channels
    assert image_set.images.shape == (48, C, S, S) and image_set.images.dtype == torch.uint8
    assert image_set.labels.shape == (48,) and image_set.labels.dtype == torch.int64
    assert {f.name for f in dataclasses.fields(ImageSet)} == {"images", "labels"}  # no boxes, no masks
    assert 0 <= int(image_set.labels.min()) and int(image_set.labels.max()) < CFG.data.num_classes
    assert image_set.images.float().std() > 10  # not blank
    icfg = image_config(CFG.data, CFG.pretrain)  # one still, always visible, object-centric digit
    assert (icfg.frame_size, icfg.object_scale, icfg.informative_fraction, icfg.speed) == (
        CFG.pretrain.image_size, CFG.pretrain.object_scale, 1.0, 0.0)
    assert (icfg.clutter, icfg.channels, icfg.num_classes) == (CFG.data.clutter, CFG.data.channels,
                                                                CFG.data.num_classes)


def test_images_are_deterministic_and_depend_on_the_seed(image_set):
    again = generate_images(CFG, progress=False)
    assert torch.equal(again.images, image_set.images) and torch.equal(again.labels, image_set.labels)
    other = generate_images(CFG.replace(**{"pretrain.seed": 1}), progress=False)
    assert not torch.equal(other.images, image_set.images)


@pytest.mark.parametrize("n, classes", [(48, 4), (50, 4), (7, 3), (1000, 10)])
def test_labels_are_balanced(n, classes):
    labels = torch.from_numpy(I.image_labels(n, classes, seed=0))
    counts = torch.bincount(labels, minlength=classes)
    assert counts.sum() == n and counts.max() - counts.min() <= 1
    assert not torch.equal(labels, torch.arange(n) % classes) or n < 4  # shuffled, not in a cycle


def test_image_set_key_depends_on_what_shapes_the_images_only():
    key = image_set_key(CFG)
    same = {"model.patch_size": 8, "model.glance_size": 32, "train.recipe": "hinted", "train.epochs": 5,
            "pretrain.epochs": 3, "pretrain.lr": 1e-2, "pretrain.batch_size": 8, "pretrain.crop_size": 8,
            "data.num_train": 10, "data.num_frames": 4, "data.speed": 0.5, "data.informative_fraction": 0.3}
    for field, value in same.items():
        assert image_set_key(CFG.replace(**{field: value})) == key, field
    differ = [{"pretrain.images": 49}, {"pretrain.seed": 1}, {"pretrain.image_size": 24},
              {"pretrain.object_scale": (0.5, 0.6)}, {"data.clutter": 0.1}, {"data.channels": 1},
              {"data.num_classes": 3, "model.num_classes": 3}]
    for overrides in differ:
        assert image_set_key(CFG.replace(**overrides)) != key, overrides


class _RecordingTemplates:
    """The digit templates, recording which ones are read (in order)."""

    def __init__(self, templates: np.ndarray, used: list) -> None:
        self.templates, self.used = templates, used

    def __len__(self) -> int:
        return len(self.templates)

    def __getitem__(self, i):
        self.used.append(int(i))
        return self.templates[i]


@pytest.mark.parametrize("clutter", [0.0, 0.6])
def test_only_handwriting_of_the_training_fold_is_drawn(monkeypatch, clutter):
    """No digit instance of the video validation or test split appears as an image's digit.

    Every template read is recorded; the first read of each image is its digit (distractors,
    scrambled quadrants of any digit as in the videos, come after it)."""
    templates, target, fold = synthetic._digits()
    cfg = CFG.replace(**{"pretrain.images": 120, "data.clutter": clutter})
    reference = generate_images(cfg, progress=False, workers=1)
    used: list = []
    starts: list = []
    real_clip = I.generate_clip
    monkeypatch.setattr(synthetic, "_digits", lambda: (_RecordingTemplates(templates, used), target, fold))
    monkeypatch.setattr(I, "generate_clip", lambda *a, **k: starts.append(len(used)) or real_clip(*a, **k))
    recorded = generate_images(cfg, progress=False, workers=1)
    assert torch.equal(recorded.images, reference.images)  # the recording changed nothing
    assert len(starts) == 120
    digits = np.array([used[i] for i in starts])
    assert (fold[digits] == synthetic.SPLITS.index("train")).all()
    assert (target[digits] == recorded.labels.numpy()).all()
    assert len(set(digits.tolist())) > 60  # many instances, not a few
    held_out = np.flatnonzero(fold != synthetic.SPLITS.index("train"))
    assert len(held_out) > 300 and not set(digits.tolist()) & set(held_out.tolist())
    if clutter == 0:
        assert len(used) == 120  # no distractors: the digit is all there is


def test_images_are_cached_and_reloaded(monkeypatch, session_cache):
    cfg = CFG.replace(**{"pretrain.images": 24, "pretrain.seed": 11})
    path = images_cache_path(cfg)
    assert session_cache in path.parents  # the test session's cache, never the user's
    if path.exists():
        path.unlink()
    first = load_images(cfg, progress=False)
    assert path.exists()

    def refuse(*args, **kwargs):
        raise AssertionError("a cached image set must not be generated again")

    monkeypatch.setattr(I, "generate_images", refuse)
    again = load_images(cfg, progress=False)
    assert torch.equal(again.images, first.images) and torch.equal(again.labels, first.labels)
    monkeypatch.undo()
    path.write_bytes(b"not an image set\n")  # a damaged cache file is regenerated, not trusted
    fixed = load_images(cfg, progress=False)
    assert torch.equal(fixed.images, first.images)
    uncached = load_images(cfg.replace(**{"pretrain.seed": 12}), cache=False, progress=False)
    assert not images_cache_path(cfg.replace(**{"pretrain.seed": 12})).exists() and len(uncached) == 24


def test_bad_input_is_refused():
    with pytest.raises(ConfigError, match="cfg: expected an adafocus.config.Config"):
        generate_images(CFG.pretrain, progress=False)
    with pytest.raises(ValueError, match="ImageSet.images: expected uint8"):
        ImageSet(torch.zeros(2, 3, 8, 8), torch.zeros(2, dtype=torch.int64))
    with pytest.raises(ValueError, match="ImageSet.labels"):
        ImageSet(torch.zeros(2, 3, 8, 8, dtype=torch.uint8), torch.zeros(3, dtype=torch.int64))

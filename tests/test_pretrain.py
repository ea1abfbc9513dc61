"""The shared pretraining on the image set, the analogue of ImageNet weights (adafocus.pretrain),
and the test that would have caught a glance that cannot see (issue 19)."""

from __future__ import annotations

import pytest
import torch

from adafocus.config import backbone_fields, get_config
from adafocus.models.registry import create_model, list_models, model_class
from adafocus.pretrain import (SHARED_PREFIXES, BackbonePretrainer, load_shared_backbones, pretrain, pretrain_key,
                               pretrained_backbones)

TINY = get_config("tiny")
QUICK = TINY.replace(**{"pretrain.images": 128, "pretrain.epochs": 1})

# one changed value per backbone field (valid on the tiny preset)
BACKBONE_CHANGES = {"glance_width": 0.5, "glance_size": 32, "glance_stride": 8, "glance_feature_dim": 16,
                    "glance_pool": "avg", "focus_block": "bottleneck", "focus_layers": (1, 1, 1, 2),
                    "focus_widths": (8, 16, 16, 16), "focus_stem_stride": 4, "focus_tsm": True,
                    "num_classes": 3, "channels_last": False}


def _same_state(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ---------------------------------------------------------------------------------------------
# the cache key: one pretraining per backbone geometry
# ---------------------------------------------------------------------------------------------

def test_every_backbone_field_is_covered_here():
    assert set(BACKBONE_CHANGES) == set(backbone_fields())


@pytest.mark.parametrize("field", sorted(BACKBONE_CHANGES))
def test_the_key_depends_on_every_backbone_field(field):
    overrides = {f"model.{field}": BACKBONE_CHANGES[field]}
    if field == "num_classes":
        overrides["data.num_classes"] = 3
    assert pretrain_key(TINY.replace(**overrides)) != pretrain_key(TINY)


@pytest.mark.parametrize("override", [
    {"model.patch_size": 12}, {"model.num_focus": 2}, {"model.glance_frames": 4}, {"model.box_min": 12},
    {"model.box_max": 24}, {"model.location_head": "conv"}, {"model.policy_channels": 4}, {"model.exits": False},
    {"model.glance_jitter": False}, {"model.patch_grad": True}, {"train.recipe": "paper"},
    {"train.recipe": "hinted"}, {"train.epochs": 7}, {"train.lr": 1e-2}, {"train.seed": 3},
    {"train.scale_reg": 0.0}, {"data.num_train": 100}, {"data.informative_fraction": 0.3},
])
def test_the_key_ignores_the_budget_the_policies_and_the_recipe(override):
    """Every method and every budget starts from the same pretrained backbones."""
    assert pretrain_key(TINY.replace(**override)) == pretrain_key(TINY)


@pytest.mark.parametrize("override", [{"pretrain.epochs": 2}, {"pretrain.lr": 1e-2}, {"pretrain.images": 100},
                                      {"pretrain.seed": 1}, {"pretrain.crop_size": 12}, {"data.clutter": 0.2},
                                      {"data.frame_size": 48}])
def test_the_key_depends_on_the_pretraining_and_the_images(override):
    assert pretrain_key(TINY.replace(**override)) != pretrain_key(TINY)


# ---------------------------------------------------------------------------------------------
# the network and the copy into every method
# ---------------------------------------------------------------------------------------------

def test_the_pretrainer_builds_the_backbones_exactly_as_the_model_does():
    net = BackbonePretrainer(TINY)
    model = create_model("uni_adafocus", TINY)
    ours = {k: v.shape for k, v in net.state_dict().items() if k.startswith(SHARED_PREFIXES)}
    theirs = {k: v.shape for k, v in model.state_dict().items() if k.startswith(SHARED_PREFIXES)}
    assert ours == theirs and ours
    g, f = net.eval()(torch.rand(5, 3, TINY.pretrain.image_size, TINY.pretrain.image_size))
    assert g.shape == f.shape == (5, TINY.model.num_classes)
    # the glance sees an image at the pixel scale at which it sees the video frames
    assert net.glance_view == max(8, round(TINY.pretrain.image_size * TINY.model.glance_size / TINY.data.frame_size))


@pytest.fixture(scope="module")
def quick_weights(tmp_path_factory):
    directory = tmp_path_factory.mktemp("pretrain")
    return pretrained_backbones(QUICK, progress=False, checkpoint_dir=directory), directory


# models whose backbones are of another kind have a pretraining of their own (the X3Ds: tests/test_x3d.py)
SHARED_2D = [m for m in list_models() if getattr(model_class(m), "pretraining", None) is None]


@pytest.mark.parametrize("name", SHARED_2D)
def test_the_weights_copied_match_names_and_shapes(quick_weights, name):
    weights, _ = quick_weights
    assert weights and all(k.startswith(SHARED_PREFIXES) for k in weights)
    torch.manual_seed(0)
    model = create_model(name, QUICK)
    own = model.state_dict()
    expected = [k for k in own if k.startswith(SHARED_PREFIXES)]  # every backbone tensor the model has
    assert all(k in weights and weights[k].shape == own[k].shape for k in expected), name
    before = {k: v.clone() for k, v in own.items()}
    n = load_shared_backbones(model, weights)
    after = model.state_dict()
    assert n == len(expected)
    assert all(torch.equal(after[k], weights[k]) for k in expected)
    assert all(torch.equal(after[k], before[k]) for k in after if not k.startswith(SHARED_PREFIXES))


def test_tensors_of_another_shape_or_name_are_not_copied(quick_weights):
    weights, _ = quick_weights
    model = create_model("uni_adafocus", QUICK.replace(**{"model.focus_widths": (8, 16, 16, 16)}))
    own = model.state_dict()
    before = {k: v.clone() for k, v in own.items()}
    n = load_shared_backbones(model, {**weights, "glance.not_a_tensor_of_mine": torch.zeros(3)})
    mismatched = [k for k in weights if k in own and own[k].shape != weights[k].shape]
    assert mismatched and n == len([k for k in weights if k in own]) - len(mismatched)
    after = model.state_dict()
    assert all(torch.equal(after[k], before[k]) for k in mismatched)


# ---------------------------------------------------------------------------------------------
# the run: cached, deterministic, label-only
# ---------------------------------------------------------------------------------------------

def test_pretraining_is_cached_and_deterministic(quick_weights, tmp_path, monkeypatch):
    weights, directory = quick_weights
    assert (directory / f"pretrain-{pretrain_key(QUICK)}.pt").exists()
    again = pretrained_backbones(QUICK, progress=False, checkpoint_dir=tmp_path)  # a fresh run, elsewhere
    assert _same_state(again, weights)

    import adafocus.pretrain as P

    def refuse(*args, **kwargs):
        raise AssertionError("a finished pretraining must be loaded, not run again")

    monkeypatch.setattr(P, "fit", refuse)
    cached = pretrained_backbones(QUICK, progress=False, checkpoint_dir=directory)
    assert _same_state(cached, weights)


def test_the_callers_random_stream_does_not_depend_on_the_cache(quick_weights, tmp_path):
    """Running the pretraining now or loading it from the cache leaves the caller's random stream alone,
    so a model trained from an empty cache gets the numbers of one trained after the pretraining."""
    _, cached_dir = quick_weights
    draws = []
    for directory in (tmp_path, cached_dir):  # an empty folder (trains now), then the cache
        torch.manual_seed(7)
        pretrained_backbones(QUICK, progress=False, checkpoint_dir=directory)
        draws.append(torch.rand(4))
    assert torch.equal(draws[0], draws[1])
    torch.manual_seed(7)
    assert torch.equal(torch.rand(4), draws[0])


def test_pretraining_never_reads_the_video_benchmark(tmp_path, monkeypatch):
    """Label-only images: no clip, no box, no mask of the benchmark is loaded or generated."""
    import adafocus.data.synthetic as synthetic

    def refuse(*args, **kwargs):
        raise AssertionError("the pretraining read the video benchmark")

    for name in ("load_split", "load_splits", "generate_clips", "generate_split"):
        monkeypatch.setattr(synthetic, name, refuse)
    net, history = pretrain(QUICK.replace(**{"pretrain.seed": 5}), progress=False, checkpoint_dir=tmp_path)
    assert len(history) == 1 and {"val_acc", "val_glance_acc", "train_loss"} <= set(history.columns)


@pytest.mark.parametrize("field", ["focus_tsm", "glance_pool", "focus_block"])
def test_pretraining_runs_for_other_backbone_geometries(tmp_path, field):
    cfg = QUICK.replace(**{f"model.{field}": BACKBONE_CHANGES[field]})
    _, history = pretrain(cfg, progress=False, checkpoint_dir=tmp_path)
    assert len(history) == 1
    model = create_model("uni_adafocus", cfg)
    assert load_shared_backbones(model, pretrained_backbones(cfg, progress=False, checkpoint_dir=tmp_path)) > 0


# a pretraining that learns within ~10 s on 2 cores: the fast preset's 2,000 images, a higher learning rate
LEARNS = {"pretrain.epochs": 8, "pretrain.lr": 1e-2}


def test_a_short_pretraining_beats_chance_on_held_out_images(tmp_path):
    cfg = get_config("fast", **LEARNS)
    _, history = pretrain(cfg, progress=False, checkpoint_dir=tmp_path)
    chance = 1 / cfg.data.num_classes  # 0.25; 200 held-out images: one standard deviation is 3 points
    last = history.iloc[-1]
    assert last["val_glance_acc"] > chance + 0.1, history[["epoch", "val_acc", "val_glance_acc"]]
    assert last["val_acc"] > chance + 0.1, history[["epoch", "val_acc", "val_glance_acc"]]
    assert history["train_loss"].iloc[-1] < history["train_loss"].iloc[0]


# ---------------------------------------------------------------------------------------------
# issue 19: a glance that sees
# ---------------------------------------------------------------------------------------------

# The fast preset's clips (512 for training, 128 held out), with the glance at the frames' full
# resolution (as in the paper), after the shared pretraining above, 8 epochs: ~70% (chance 25%).
GLANCE_SEES = {**LEARNS, "model.glance_size": 32, "train.epochs": 8}


@pytest.mark.slow
def test_the_glance_only_model_beats_chance_after_the_shared_pretraining(tmp_path):
    """Would have caught issue 19 (a glance-only model at chance, 10.7% on 10 classes, whatever its
    training): after the shared pretraining and a short training on a few hundred clips, the
    glance alone must recognise held-out clips far above chance. ~30 s on 2 cores."""
    from adafocus.data.synthetic import load_splits
    from adafocus.train import accuracy, train

    cfg = get_config("fast", **GLANCE_SEES)
    splits = load_splits(cfg.data, progress=False)
    result = train("glance_only", cfg, splits, progress=False, checkpoint_dir=tmp_path)
    acc = accuracy(result.model, splits["test"])
    chance = 1 / cfg.data.num_classes  # 128 test clips: one standard deviation is about 4 points
    assert acc >= chance + 0.2, (acc, result.history[["epoch", "train_acc", "val_acc"]])

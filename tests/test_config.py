"""Config dataclasses, presets, recipes and validation messages (adafocus.config)."""

import dataclasses

import pytest

from adafocus.config import (MODEL_TRAIN_OVERRIDES, PRESETS, RECIPES, SECTIONS, Config, ConfigError, ModelConfig,
                             PretrainConfig, TrainConfig, apply_overrides, backbone_fields, get_config,
                             recipe_overrides)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_validates(name):
    cfg = get_config(name)
    assert isinstance(cfg, Config) and cfg.name == name
    assert isinstance(cfg.pretrain, PretrainConfig) and isinstance(cfg.train, TrainConfig)


def test_unknown_preset_names_the_choices():
    with pytest.raises(ConfigError, match=r"preset: expected one of \['fast', 'full', 'small', .*'tiny'\], got 'huge'"):
        get_config("huge")


@pytest.mark.parametrize("override, field, words", [
    ({"model.patch_size": 100}, "model.patch_size", "no larger than the 64x64 frame"),
    ({"model.num_focus": 17}, "model.num_focus", "K <= the clip's T = 16"),
    ({"model.box_min": 40, "model.box_max": 32}, "model.box_min", "box_max=32"),
    ({"model.box_max": 65}, "model.box_max", "no larger than the frame"),
    ({"model.glance_pool": "sum"}, "model.glance_pool", "one of ('max', 'avg')"),
    ({"data.informative_fraction": 0.0}, "data.informative_fraction", "(0, 1]"),
    ({"data.clutter": 1.5}, "data.clutter", "[0, 1]"),
    ({"data.num_classes": 11}, "data.num_classes", "[2, 10]"),
    ({"model.location_head": "mlp"}, "model.location_head", "'softargmax' or 'conv'"),
    ({"train.lr": -1.0}, "train.lr", "positive"),
    ({"train.batch_size": 0}, "train.batch_size", ">= 1"),
    ({"train.epochs": -1}, "train.epochs", "non-negative"),
    ({"train.temporal_draws": 0}, "train.temporal_draws", "[1, 1024]"),
    ({"train.scale_reg": -0.5}, "train.scale_reg", "non-negative"),
    ({"train.spatial_weight": -1.0}, "train.spatial_weight", "non-negative"),
    ({"train.record_policy": 65}, "train.record_policy", "[0, 64]"),
    ({"pretrain.epochs": -1}, "pretrain.epochs", "non-negative"),
    ({"pretrain.images": -1}, "pretrain.images", "[0, 1000000]"),
    ({"pretrain.image_size": 4}, "pretrain.image_size", "[8, 1024]"),
    ({"pretrain.crop_size": 2}, "pretrain.crop_size", "[8, 1024]"),
    ({"pretrain.object_scale": (0.9, 0.4)}, "pretrain.object_scale", "lo <= hi"),
    ({"pretrain.lr": 0.0}, "pretrain.lr", "positive"),
    ({"pretrain.batch_size": 0}, "pretrain.batch_size", "[1, 65536]"),
])
def test_impossible_values_name_the_field(override, field, words):
    with pytest.raises(ConfigError) as err:
        get_config("small", **override)
    assert field in str(err.value) and words in str(err.value)


def test_overrides_apply_and_reject_unknown_fields():
    cfg = get_config("tiny", **{"model.num_focus": 2, "model.focus_widths": [8, 8, 8, 8], "pretrain.epochs": 3})
    assert cfg.model.num_focus == 2 and cfg.model.focus_widths == (8, 8, 8, 8) and cfg.pretrain.epochs == 3
    with pytest.raises(ConfigError, match="model has no field 'patchsize'"):
        get_config("tiny", **{"model.patchsize": 2})
    with pytest.raises(ConfigError) as err:
        get_config("tiny", patch_size=2)
    assert all(f"'{s}.<field>'" in str(err.value) for s in ("data", "model", "train", "pretrain"))
    assert SECTIONS == ("data", "model", "train", "pretrain")


@pytest.mark.parametrize("gone", ["train.pretrain_epochs", "train.phase1_epochs", "train.phase2_epochs"])
def test_the_two_phase_fields_are_gone(gone):
    """One stage of training now: the old schedule fields are refused with the list of fields."""
    with pytest.raises(ConfigError, match=f"train has no field '{gone.split('.')[1]}'.*'epochs'"):
        get_config("tiny", **{gone: 1})


def test_hash_is_stable_and_sensitive():
    a, b = get_config("small"), get_config("small")
    assert a.hash() == b.hash()
    assert a.hash() != a.replace(**{"model.patch_size": 32}).hash()
    assert a.hash() != a.replace(**{"pretrain.epochs": 1}).hash()
    # the data section's hash ignores model changes: the data cache is shared across models
    assert a.hash("data") == a.replace(**{"model.patch_size": 32}).hash("data")


def test_full_preset_has_paper_geometry():
    cfg = get_config("full")
    assert cfg.data.frame_size == 224 and cfg.data.num_frames == 48
    assert (cfg.model.glance_frames, cfg.model.num_focus, cfg.model.num_classes) == (16, 16, 200)
    assert cfg.model.focus_block == "bottleneck" and cfg.model.focus_layers == (3, 4, 6, 3)
    assert cfg.model.glance_size == cfg.data.frame_size  # the paper's glance sees whole frames
    assert cfg.model.location_head == "conv" and not cfg.model.policy_separable
    assert cfg.train.recipe == "paper"


def test_fast_preset_is_the_tiny_geometry_with_a_longer_schedule():
    tiny, fast = get_config("tiny"), get_config("fast")
    # the one geometry change: the glance sees the frames at full resolution (32², not 16²)
    assert dataclasses.replace(fast.model, glance_size=tiny.model.glance_size) == tiny.model
    assert fast.model.glance_size == fast.data.frame_size
    assert dataclasses.replace(fast.data, num_train=tiny.data.num_train, num_test=tiny.data.num_test) == tiny.data
    assert fast.train.epochs > tiny.train.epochs and fast.pretrain.epochs > tiny.pretrain.epochs
    assert fast.data.num_train > tiny.data.num_train and fast.pretrain.images > tiny.pretrain.images


@pytest.mark.parametrize("name", ["tiny", "fast", "small"])
def test_the_cpu_presets_are_label_free_by_default(name):
    cfg = get_config(name)
    assert cfg.train.recipe == "cpu" and not cfg.train.uses_ground_truth
    assert cfg.train.center_supervision == 0 and cfg.train.temporal_supervision == 0


def test_train_config_is_one_stage():
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    assert "epochs" in names and not names & {"pretrain_epochs", "phase1_epochs", "phase2_epochs"}
    assert {f.name for f in dataclasses.fields(PretrainConfig)} >= {"images", "image_size", "epochs", "lr", "seed"}


def test_uses_ground_truth_is_true_exactly_when_a_hint_is_weighted():
    assert not TrainConfig().uses_ground_truth
    assert TrainConfig(center_supervision=1.0).uses_ground_truth
    assert TrainConfig(temporal_supervision=0.1).uses_ground_truth


def test_model_train_overrides_apply_to_registered_models_and_valid_fields():
    from adafocus.models.registry import list_models

    cfg = get_config("tiny")
    for name, overrides in MODEL_TRAIN_OVERRIDES.items():
        assert name in list_models()
        assert not any(k.startswith("train.recipe") for k in overrides)  # never a change of signal
        cfg.replace(**overrides).validate()


# ---------------------------------------------------------------------------------------------
# backbone fields: what the shared pretraining depends on
# ---------------------------------------------------------------------------------------------

def test_backbone_fields_are_the_geometry_of_glance_and_focus():
    fields = set(backbone_fields())
    assert {"glance_width", "glance_size", "glance_stride", "glance_feature_dim", "glance_pool", "focus_block",
            "focus_layers", "focus_widths", "focus_stem_stride", "num_classes"} <= fields
    # the budget, the policies and the training signal are not backbone fields
    assert not fields & {"patch_size", "num_focus", "glance_frames", "box_min", "box_max", "location_head",
                         "policy_channels", "patch_grad", "policy_trains_glance", "glance_jitter", "exits"}
    assert fields <= {f.name for f in dataclasses.fields(ModelConfig)}


# ---------------------------------------------------------------------------------------------
# recipes: one switch for the training signal
# ---------------------------------------------------------------------------------------------

def test_recipes_are_the_three_documented_ones():
    assert set(RECIPES) == {"paper", "cpu", "hinted"}


def test_every_recipe_sets_the_same_fields():
    """Switching from one recipe to another never keeps a leftover of the first."""
    keys = {name: set(r) for name, r in RECIPES.items()}
    assert keys["paper"] == keys["cpu"] == keys["hinted"]
    for key in keys["cpu"]:
        section, _, attr = key.partition(".")
        assert section in SECTIONS and attr in {f.name for f in dataclasses.fields(getattr(Config(), section))}, key


def test_hinted_is_cpu_plus_the_hints():
    cpu, hinted = RECIPES["cpu"], RECIPES["hinted"]
    differ = {k for k in cpu if cpu[k] != hinted[k]}
    assert differ == {"train.center_supervision", "train.temporal_supervision"}
    assert hinted["train.center_supervision"] > 0 and hinted["train.temporal_supervision"] > 0
    assert get_config("tiny", **{"train.recipe": "hinted"}).train.uses_ground_truth


@pytest.mark.parametrize("name", ["paper", "cpu"])
def test_label_free_recipes_give_no_hints(name):
    cfg = get_config("tiny", **{"train.recipe": name})
    assert not cfg.train.uses_ground_truth
    assert not cfg.model.policy_trains_glance  # the surrogate crops the detached glance map, as the paper
    # the paper detaches the real crop; the cpu recipe lets the classifier's gradient through it (a departure)
    assert cfg.model.patch_grad == (name == "cpu")


def test_the_paper_recipe_is_the_official_signal():
    t = get_config("tiny", **{"train.recipe": "paper"}).train
    assert t.optimizer == "sgd"
    assert (t.lr_policy, t.lr_glance, t.lr_focus, t.lr_classifier) == (0.2, 0.5, 1.0, 20.0)
    assert t.spatial_weight == t.temporal_weight == t.scale_reg == 1.0
    assert t.temporal_draws == 128 and t.random_branch
    assert get_config("tiny", **{"train.recipe": "paper"}).model.glance_jitter


@pytest.mark.parametrize("preset", ["tiny", "small"])
@pytest.mark.parametrize("name", sorted(RECIPES))
def test_a_recipe_sets_every_field_it_lists(preset, name):
    cfg = get_config(preset, **{"train.recipe": name})
    assert cfg.train.recipe == name
    for key, value in recipe_overrides(name).items():
        section, _, attr = key.partition(".")
        assert getattr(getattr(cfg, section), attr) == value, key


def test_overrides_after_a_recipe_win_whatever_their_order():
    a = get_config("tiny", **{"train.recipe": "paper", "train.scale_reg": 0.5, "model.glance_jitter": False})
    b = get_config("tiny", **{"train.scale_reg": 0.5, "model.glance_jitter": False, "train.recipe": "paper"})
    assert a == b
    assert a.train.scale_reg == 0.5 and not a.model.glance_jitter and a.train.optimizer == "sgd"
    c = apply_overrides(get_config("tiny"), {"train.center_supervision": 2.0, "train.recipe": "hinted"})
    assert c.train.center_supervision == 2.0 and c.train.temporal_supervision == RECIPES["hinted"][
        "train.temporal_supervision"]


def test_switching_recipes_leaves_nothing_of_the_first():
    hinted = get_config("tiny", **{"train.recipe": "hinted"})
    back = hinted.replace(**{"train.recipe": "cpu"})
    assert back == get_config("tiny") and not back.train.uses_ground_truth
    assert hinted.replace(**{"train.recipe": "paper"}) == get_config("tiny", **{"train.recipe": "paper"})


def test_recipe_changes_the_cache_key():
    cfg = get_config("tiny")
    keys = {cfg.replace(**{"train.recipe": r}).hash() for r in RECIPES}
    assert len(keys) == len(RECIPES)


@pytest.mark.parametrize("bad", ["nope", "Paper", "", None, 1])
def test_an_unknown_recipe_lists_the_valid_names(bad):
    with pytest.raises(ConfigError) as err:
        get_config("tiny", **{"train.recipe": bad})
    message = str(err.value)
    assert "train.recipe" in message and "['cpu', 'hinted', 'paper']" in message and repr(bad) in message
    with pytest.raises(ConfigError, match=r"train.recipe: expected one of \['cpu', 'hinted', 'paper'\]"):
        recipe_overrides(bad)


def test_a_recipe_name_set_directly_on_the_dataclass_is_validated():
    cfg = dataclasses.replace(get_config("tiny"), train=dataclasses.replace(TrainConfig(), recipe="nope"))
    with pytest.raises(ConfigError, match=r"train.recipe: expected one of \['cpu', 'hinted', 'paper'\]"):
        cfg.validate()


def test_recipe_overrides_returns_a_copy():
    r = recipe_overrides("cpu")
    r["train.lr"] = 99.0
    assert RECIPES["cpu"]["train.lr"] != 99.0


def test_fields_that_cannot_change_a_result_are_left_out_of_the_hash():
    """Recording the policy (its own random stream, eval mode) changes no weight: same cache key."""
    cfg = get_config("tiny")
    assert cfg.replace(**{"train.record_policy": 0}).hash() == cfg.hash()
    assert cfg.replace(**{"train.record_policy": 0}).hash("train") == cfg.hash("train")
    assert cfg.replace(**{"train.seed": 1}).hash() != cfg.hash()

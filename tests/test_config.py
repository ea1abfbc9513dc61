"""Config dataclasses, presets and validation messages."""

import pytest

from adafocus.config import PRESETS, Config, ConfigError, get_config


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_validates(name):
    cfg = get_config(name)
    assert isinstance(cfg, Config) and cfg.name == name


def test_unknown_preset_names_the_choices():
    with pytest.raises(ConfigError, match=r"preset: expected one of \['full', 'small', 'tiny'\], got 'huge'"):
        get_config("huge")


@pytest.mark.parametrize("override, field, words", [
    ({"model.patch_size": 100}, "model.patch_size", "no larger than the 64x64 frame"),
    ({"model.num_focus": 17}, "model.num_focus", "K <= the clip's T = 16"),
    ({"model.box_min": 40, "model.box_max": 32}, "model.box_min", "box_max=32"),
    ({"model.box_max": 65}, "model.box_max", "no larger than the frame"),
    ({"data.informative_fraction": 0.0}, "data.informative_fraction", "(0, 1]"),
    ({"data.clutter": 1.5}, "data.clutter", "[0, 1]"),
    ({"data.num_classes": 11}, "data.num_classes", "[2, 10]"),
    ({"model.location_head": "mlp"}, "model.location_head", "'softargmax' or 'conv'"),
    ({"train.lr": -1.0}, "train.lr", "positive"),
    ({"train.batch_size": 0}, "train.batch_size", ">= 1"),
])
def test_impossible_values_name_the_field(override, field, words):
    with pytest.raises(ConfigError) as err:
        get_config("small", **override)
    assert field in str(err.value) and words in str(err.value)


def test_overrides_apply_and_reject_unknown_fields():
    cfg = get_config("tiny", **{"model.num_focus": 2, "model.focus_widths": [8, 8, 8, 8]})
    assert cfg.model.num_focus == 2 and cfg.model.focus_widths == (8, 8, 8, 8)
    with pytest.raises(ConfigError, match="model has no field 'patchsize'"):
        get_config("tiny", **{"model.patchsize": 2})
    with pytest.raises(ConfigError, match="expected 'data.<field>'"):
        get_config("tiny", patch_size=2)


def test_hash_is_stable_and_sensitive():
    a, b = get_config("small"), get_config("small")
    assert a.hash() == b.hash()
    assert a.hash() != a.replace(**{"model.patch_size": 32}).hash()
    # the data section's hash ignores model changes: the data cache is shared across models
    assert a.hash("data") == a.replace(**{"model.patch_size": 32}).hash("data")


def test_full_preset_has_paper_geometry():
    cfg = get_config("full")
    assert cfg.data.frame_size == 224 and cfg.data.num_frames == 48
    assert (cfg.model.glance_frames, cfg.model.num_focus, cfg.model.num_classes) == (16, 16, 200)
    assert cfg.model.focus_block == "bottleneck" and cfg.model.focus_layers == (3, 4, 6, 3)

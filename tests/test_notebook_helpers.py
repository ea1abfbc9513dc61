"""adafocus.notebook: the setup every notebook runs, and the helpers the notebooks share (no training here)."""

from __future__ import annotations

import pytest
import torch

from adafocus.config import MODEL_TRAIN_OVERRIDES, RECIPES, get_config
from adafocus.notebook import (NOTEBOOK_PRESETS, notebook_setup, recipes_table, results_table, supervision_line,
                               training_config)


def test_notebook_setup_picks_the_preset_and_threads(capsys):
    before = torch.get_num_threads()
    try:
        preset, cfg, splits = notebook_setup(True, load_data=False)
        assert (preset, cfg.name, splits) == ("fast", "fast", {})
        assert torch.get_num_threads() == 1
        assert notebook_setup(False, load_data=False).preset == "small" == NOTEBOOK_PRESETS[False]
        assert "recipe 'cpu'" in capsys.readouterr().out
    finally:
        torch.set_num_threads(before)


def test_notebook_setup_refuses_a_fast_that_is_not_a_bool():
    with pytest.raises(TypeError, match="FAST: expected True or False"):
        notebook_setup("yes", load_data=False)


def test_training_config_applies_the_longer_budgets_then_the_overrides():
    cfg = get_config("fast")
    for name, overrides in MODEL_TRAIN_OVERRIDES.items():
        assert training_config(name, cfg).train.epochs == overrides["train.epochs"]
    assert training_config("uni_adafocus", cfg) == cfg
    hinted = training_config("uni_adafocus", cfg, **{"train.recipe": "hinted"})
    assert hinted.train.uses_ground_truth and not cfg.train.uses_ground_truth


def test_recipes_table_lists_every_field_of_every_recipe():
    table = recipes_table()
    assert list(table.columns) == ["paper", "cpu", "hinted"]
    assert set(table.index) == {f for r in RECIPES.values() for f in r}
    assert table.loc["train.center_supervision", "hinted"] > 0 == table.loc["train.center_supervision", "cpu"]


def test_supervision_line_names_the_supervision():
    from adafocus.models.registry import create_model

    cfg = get_config("tiny")
    assert "supervision = none" in supervision_line("uni_adafocus", create_model("uni_adafocus", cfg), cfg)
    assert "supervision = oracle" in supervision_line("oracle", create_model("oracle", cfg), cfg)


def test_results_table_is_none_for_a_missing_or_older_table(capsys):
    assert results_table("no_such_table.csv") is None
    assert "make demo" in capsys.readouterr().out

"""Training: caching by config hash, atomic resumable checkpoints, determinism, clear errors."""

from __future__ import annotations

import pytest
import torch

from adafocus.config import get_config
from adafocus.data.synthetic import load_split
from adafocus.train import (CheckpointError, checkpoint_path, load_checkpoint, pretrain_config, pretrain_key, train)

TWO_EPOCHS = {"train.pretrain_epochs": 1, "train.phase1_epochs": 1, "train.phase2_epochs": 1,
              "data.num_train": 64, "data.num_val": 32, "data.num_test": 32}


@pytest.fixture(scope="module")
def cfg():
    torch.set_num_threads(1)
    return get_config("tiny", **TWO_EPOCHS)


@pytest.fixture(scope="module")
def splits(cfg):
    return {s: load_split(cfg.data, s, cache=False, progress=False) for s in ("train", "val")}


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_train_writes_history_and_loads_from_cache(cfg, splits, tmp_path):
    first = train("uni_adafocus", cfg, splits, progress=False, checkpoint_dir=tmp_path)
    assert not first.from_cache and first.checkpoint.exists()
    assert list(first.history["stage"]) == ["phase1", "phase2"]
    assert {"train_loss", "train_acc", "val_acc", "seconds"} <= set(first.history.columns)
    assert (tmp_path / f"oracle-tiny-{pretrain_key(cfg)}.pt").exists()  # the shared pretraining ran
    again = train("uni_adafocus", cfg, splits, progress=False, checkpoint_dir=tmp_path)
    assert again.from_cache and _same_weights(first.model, again.model)


def test_same_seed_same_numbers(cfg, splits, tmp_path):
    a = train("random_patch", cfg, splits, progress=False, checkpoint_dir=tmp_path / "a")
    b = train("random_patch", cfg, splits, progress=False, checkpoint_dir=tmp_path / "b")
    assert _same_weights(a.model, b.model)
    assert a.history["train_loss"].tolist() == b.history["train_loss"].tolist()
    c = train("random_patch", cfg.replace(**{"train.seed": 1}), splits, progress=False, checkpoint_dir=tmp_path / "c")
    assert not _same_weights(a.model, c.model)


def test_interrupted_training_resumes_to_the_same_weights(cfg, splits, tmp_path):
    full = train("center_patch", cfg, splits, progress=False, checkpoint_dir=tmp_path / "full")
    stop_early = cfg.replace(**{"train.max_minutes": 1e-9})  # stops after its first epoch
    key = cfg.hash()  # the interrupted run must land in the same checkpoint as an uninterrupted one
    part = train("center_patch", stop_early, splits, progress=False, checkpoint_dir=tmp_path / "resume", key=key)
    assert len(part.history) == 1 and not load_checkpoint(part.checkpoint, "center_patch", key)["done"]
    resumed = train("center_patch", cfg, splits, progress=False, checkpoint_dir=tmp_path / "resume")
    assert not resumed.from_cache and len(resumed.history) == 2
    assert _same_weights(full.model, resumed.model)


def test_checkpoint_of_another_config_is_refused(cfg, splits, tmp_path):
    result = train("glance_only", cfg, splits, progress=False, checkpoint_dir=tmp_path)
    other = cfg.replace(**{"model.hidden_dim": 16})
    with pytest.raises(CheckpointError, match="expected model 'glance_only' with config hash"):
        load_checkpoint(result.checkpoint, "glance_only", other.hash())
    with pytest.raises(CheckpointError, match="checkpoint is for model 'glance_only'"):
        load_checkpoint(result.checkpoint, "oracle", cfg.hash())


def test_a_truncated_checkpoint_is_not_read_as_valid(cfg, splits, tmp_path):
    result = train("glance_only", cfg, splits, progress=False, checkpoint_dir=tmp_path)
    data = result.checkpoint.read_bytes()
    result.checkpoint.write_bytes(data[: len(data) // 2])
    with pytest.raises(Exception):
        load_checkpoint(result.checkpoint, "glance_only", cfg.hash())


def test_pretraining_is_shared_across_budgets_and_policies(cfg):
    a = cfg.replace(**{"model.patch_size": 12, "model.num_focus": 2, "train.center_supervision": 0.0})
    assert pretrain_key(a) == pretrain_key(cfg)
    assert pretrain_key(cfg.replace(**{"model.focus_widths": (8, 8, 8, 8)})) != pretrain_key(cfg)
    assert pretrain_config(a).model.patch_size == get_config("tiny").model.patch_size


def test_checkpoint_path_names_model_preset_and_hash(cfg, tmp_path):
    assert checkpoint_path("oracle", cfg, tmp_path).name == f"oracle-tiny-{cfg.hash()}.pt"

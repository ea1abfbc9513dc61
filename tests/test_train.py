"""Training: caching by config hash, atomic resumable checkpoints, determinism, clear errors."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from adafocus.config import ConfigError, get_config
from adafocus.data.synthetic import SyntheticVideoDataset, load_split
from adafocus.train import (CheckpointError, checkpoint_path, data_key, load_checkpoint, pretrain_config,
                            pretrain_key, train)

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


def test_pretraining_is_shared_across_budgets_and_policies(cfg):
    a = cfg.replace(**{"model.patch_size": 12, "model.num_focus": 2, "train.center_supervision": 0.0})
    assert pretrain_key(a) == pretrain_key(cfg)
    assert pretrain_key(cfg.replace(**{"model.focus_widths": (8, 8, 8, 8)})) != pretrain_key(cfg)
    assert pretrain_config(a).model.patch_size == get_config("tiny").model.patch_size


@pytest.mark.parametrize("damage", ["truncate", "flip_a_bit", "empty", "text"])
def test_a_damaged_checkpoint_is_reported_and_never_loaded(cfg, splits, tmp_path, damage):
    result = train("glance_only", cfg, splits, progress=False, checkpoint_dir=tmp_path)
    data = bytearray(result.checkpoint.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "flip_a_bit":  # torch.load alone would read this file without complaint
        data[len(data) // 2] ^= 0x01
    elif damage == "empty":
        data = b""
    else:
        data = b"not a checkpoint\n"
    result.checkpoint.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=str(result.checkpoint.name)):
        load_checkpoint(result.checkpoint, "glance_only", cfg.hash())
    with pytest.raises(CheckpointError, match="delete it"):  # train() refuses it too, and does not overwrite it
        train("glance_only", cfg, splits, progress=False, checkpoint_dir=tmp_path)
    assert result.checkpoint.read_bytes() == bytes(data)


def test_the_oracle_baseline_also_starts_from_the_shared_pretraining(cfg, splits, tmp_path, monkeypatch):
    import adafocus.train as T

    loaded = []
    real = T.load_shared_backbones
    monkeypatch.setattr(T, "load_shared_backbones", lambda model, w: loaded.append(len(w)) or real(model, w))
    train("oracle", cfg, splits, progress=False, checkpoint_dir=tmp_path)
    assert len(loaded) == 1 and loaded[0] > 0  # the baseline loaded it; the pretraining run itself did not


def test_custom_splits_get_their_own_checkpoint_key(cfg, splits):
    assert data_key(cfg, None) == data_key(cfg, splits) == cfg.hash()  # the benchmark itself
    fewer = {"train": SyntheticVideoDataset(splits["train"].clips.subset(range(32)), cfg.data, "train"),
             "val": splits["val"]}
    assert data_key(cfg, fewer) != cfg.hash()
    with pytest.raises(TypeError, match="fingerprint"):
        data_key(cfg, {"train": list(range(3))})


def test_pretraining_on_data_without_boxes_is_refused(cfg, splits, tmp_path):
    class NoBoxes(torch.utils.data.Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            return {"video": torch.zeros(8, 3, 32, 32), "label": torch.tensor(0)}

        def fingerprint(self):
            return "noboxes"

    with pytest.raises(ConfigError, match="train.pretrain_epochs: expected 0"):
        train("uni_adafocus", cfg, {"train": NoBoxes()}, progress=False, checkpoint_dir=tmp_path)


# ---------------------------------------------------------------------------------------------
# separate processes: determinism, and a run killed mid-epoch that resumes
# ---------------------------------------------------------------------------------------------

CLI = [sys.executable, "-m", "adafocus", "train", "--model", "center_patch", "--preset", "tiny",
       "--set", "train.phase1_epochs=0", "--set", "train.phase2_epochs=4", "--set", "data.num_train=320"]


def _env(cache: Path, data: Path) -> dict[str, str]:
    cache.mkdir(exist_ok=True)
    if not (cache / "data").exists():
        (cache / "data").symlink_to(data)
    return {**os.environ, "ADAFOCUS_CACHE": str(cache), "OMP_NUM_THREADS": "1"}


def _final(cache: Path) -> dict:
    [path] = [p for p in (cache / "checkpoints").glob("center_patch-*.pt")]
    state = load_checkpoint(path, "center_patch", path.stem.rsplit("-", 1)[1])
    assert state["done"]
    return state


def _same_run(a: dict, b: dict) -> bool:
    metrics = [{k: v for k, v in h.items() if k != "seconds"} for h in a["history"]]
    return (metrics == [{k: v for k, v in h.items() if k != "seconds"} for h in b["history"]]
            and a["model"].keys() == b["model"].keys() and all(torch.equal(a["model"][k], b["model"][k])
                                                               for k in a["model"]))


@pytest.mark.slow
def test_two_processes_same_seed_same_weights_and_a_sigkilled_run_resumes_to_them(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    runs = {}
    for name in ("first", "second"):
        proc = subprocess.run(CLI, env=_env(tmp_path / name, data), capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        runs[name] = _final(tmp_path / name)
    assert _same_run(runs["first"], runs["second"])  # same seed, same data order, same numbers

    # kill a third run with SIGKILL while it is inside its second epoch
    env = _env(tmp_path / "killed", data)
    ckpt_dir = tmp_path / "killed" / "checkpoints"
    proc = subprocess.Popen(CLI, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while not list(ckpt_dir.glob("center_patch-*.pt")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    [path] = list(ckpt_dir.glob("center_patch-*.pt"))
    partial = load_checkpoint(path, "center_patch", path.stem.rsplit("-", 1)[1])  # intact, not half-written
    assert not partial["done"] and 1 <= len(partial["history"]) < 4

    resumed = subprocess.run(CLI, env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert _same_run(_final(tmp_path / "killed"), runs["first"])
    assert not list(ckpt_dir.glob(".*.tmp"))  # no temporaries left behind


def test_checkpoint_path_names_model_preset_and_hash(cfg, tmp_path):
    assert checkpoint_path("oracle", cfg, tmp_path).name == f"oracle-tiny-{cfg.hash()}.pt"

"""Training: one stage from the shared pretraining, caching by config hash, atomic resumable
checkpoints, determinism, policy recordings, and the proof that no label-free model sees ground truth."""

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
from adafocus.data.batches import ground_truth_kwargs, iterate_batches, num_batches
from adafocus.data.synthetic import ClipSet, SyntheticVideoDataset, load_split, load_splits
from adafocus.models.registry import create_model, list_models
from adafocus.pretrain import pretrain_key, pretrained_backbones
from adafocus.fit import CHECKPOINT_FIELDS
from adafocus.train import (CheckpointError, TrainStep, check_supervision, checkpoint_path, data_key, load_checkpoint,
                            record_policy, train)

TWO_EPOCHS = {"train.epochs": 2, "pretrain.epochs": 1, "data.num_train": 64, "data.num_val": 32,
              "data.num_test": 32}


@pytest.fixture(scope="module")
def cfg():
    torch.set_num_threads(1)
    return get_config("tiny", **TWO_EPOCHS)


@pytest.fixture(scope="module")
def splits(cfg):
    return {s: load_split(cfg.data, s, cache=False, progress=False) for s in ("train", "val")}


def _patch_pretrain(monkeypatch, name: str, fake) -> None:
    """Replace ``adafocus.pretrain.<name>`` wherever the trainer may look it up."""
    import adafocus.pretrain as P
    import adafocus.train as T

    for module in (P, T):
        if hasattr(module, name):
            monkeypatch.setattr(module, name, fake)


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_train_writes_history_and_loads_from_cache(cfg, splits, tmp_path):
    first = train("uni_adafocus", cfg, splits, progress=False, checkpoint_dir=tmp_path)
    assert not first.from_cache and first.checkpoint.exists()
    assert list(first.history["epoch"]) == [1, 2] and "stage" not in first.history  # one stage
    assert {"train_loss", "train_acc", "val_acc", "seconds", "train_exits", "train_spatial", "train_temporal",
            "train_scale", "train_glance_frames", "train_focus_frames"} <= set(first.history.columns)
    assert not {"train_center", "train_temporal_mask"} & set(first.history.columns)  # label-free: no hints
    assert (tmp_path / f"pretrain-{pretrain_key(cfg)}.pt").exists()  # the shared pretraining ran
    state = load_checkpoint(first.checkpoint, "uni_adafocus", data_key(cfg, splits))
    assert state["done"] and set(CHECKPOINT_FIELDS) <= set(state)
    again = train("uni_adafocus", cfg, splits, progress=False, checkpoint_dir=tmp_path)
    assert again.from_cache and _same_weights(first.model, again.model)
    assert again.history.equals(first.history)


def test_same_seed_same_numbers(cfg, splits, tmp_path):
    a = train("random_patch", cfg, splits, progress=False, checkpoint_dir=tmp_path / "a")
    b = train("random_patch", cfg, splits, progress=False, checkpoint_dir=tmp_path / "b")
    assert _same_weights(a.model, b.model)
    assert a.history["train_loss"].tolist() == b.history["train_loss"].tolist()
    c = train("random_patch", cfg.replace(**{"train.seed": 1}), splits, progress=False, checkpoint_dir=tmp_path / "c")
    assert not _same_weights(a.model, c.model)


def test_interrupted_training_resumes_to_the_same_weights(cfg, splits, tmp_path):
    cfg = cfg.replace(**{"train.record_policy": 2})  # the recordings must resume too
    full = train("uni_adafocus", cfg, splits, progress=False, checkpoint_dir=tmp_path / "full")
    stop_early = cfg.replace(**{"train.max_minutes": 1e-9})  # stops after its first epoch
    key = data_key(cfg, splits)  # the interrupted run must land in the same checkpoint as an uninterrupted one
    part = train("uni_adafocus", stop_early, splits, progress=False, checkpoint_dir=tmp_path / "resume", key=key)
    assert len(part.history) == 1 and not load_checkpoint(part.checkpoint, "uni_adafocus", key)["done"]
    resumed = train("uni_adafocus", cfg, splits, progress=False, checkpoint_dir=tmp_path / "resume")
    assert not resumed.from_cache and len(resumed.history) == 2
    assert _same_weights(full.model, resumed.model)
    metrics = [c for c in full.history.columns if c != "seconds"]
    assert full.history[metrics].equals(resumed.history[metrics])
    assert [t["epoch"] for t in resumed.trace] == [0, 1, 2]
    for a, b in zip(full.trace, resumed.trace):
        assert all(torch.equal(a[k], b[k]) for k in a if k != "epoch")


def test_checkpoint_of_another_config_is_refused(cfg, splits, tmp_path):
    result = train("glance_only", cfg, splits, progress=False, checkpoint_dir=tmp_path)
    other = cfg.replace(**{"model.hidden_dim": 16})
    with pytest.raises(CheckpointError, match="expected model 'glance_only' with config hash"):
        load_checkpoint(result.checkpoint, "glance_only", data_key(other, splits))
    with pytest.raises(CheckpointError, match="checkpoint is for model 'glance_only'"):
        load_checkpoint(result.checkpoint, "oracle", data_key(cfg, splits))
    for recipe in ("paper", "hinted"):  # another training signal is another model
        assert data_key(cfg.replace(**{"train.recipe": recipe}), splits) != data_key(cfg, splits)


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
        load_checkpoint(result.checkpoint, "glance_only", data_key(cfg, splits))
    with pytest.raises(CheckpointError, match="delete it"):  # train() refuses it too, and does not overwrite it
        train("glance_only", cfg, splits, progress=False, checkpoint_dir=tmp_path)
    assert result.checkpoint.read_bytes() == bytes(data)


def test_a_checkpoint_without_a_field_of_the_format_is_refused(cfg, splits, tmp_path):
    from adafocus.paths import checked_torch_load, checked_torch_save

    result = train("glance_only", cfg.replace(**{"pretrain.epochs": 0}), splits, progress=False,
                   checkpoint_dir=tmp_path)
    key = data_key(cfg.replace(**{"pretrain.epochs": 0}), splits)
    state = checked_torch_load(result.checkpoint)
    for field in CHECKPOINT_FIELDS:
        broken = tmp_path / f"no_{field}.pt"
        checked_torch_save({k: v for k, v in state.items() if k != field}, broken)
        with pytest.raises(CheckpointError, match=f"malformed fields .*{field}"):
            load_checkpoint(broken, "glance_only", key)


# ---------------------------------------------------------------------------------------------
# the shared pretraining in the trainer
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["oracle", "uni_adafocus", "full_frame", "glance_only"])
def test_every_method_starts_from_the_shared_pretraining(cfg, splits, tmp_path, monkeypatch, name):
    import adafocus.pretrain as P

    loaded = []
    real = P.load_shared_backbones
    _patch_pretrain(monkeypatch, "load_shared_backbones", lambda model, w: loaded.append(real(model, w)) or loaded[-1])
    no_epochs = cfg.replace(**{"train.epochs": 0})  # the finished model is the starting point
    result = train(name, no_epochs, splits, progress=False, checkpoint_dir=tmp_path)
    assert len(loaded) == 1 and loaded[0] > 0
    weights = pretrained_backbones(no_epochs, progress=False, checkpoint_dir=tmp_path)  # (cached: no retraining)
    own = result.model.state_dict()
    copied = [k for k in weights if k in own and own[k].shape == weights[k].shape]
    assert len(copied) == loaded[0]
    assert all(torch.equal(own[k], weights[k]) for k in copied)
    assert {k.split(".")[0] for k in copied} == {p for p in ("glance", "focus") if getattr(result.model, p)}


def test_pretrain_epochs_zero_starts_from_random_weights(cfg, splits, tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("pretrain.epochs = 0 must not pretrain")

    _patch_pretrain(monkeypatch, "pretrained_backbones", refuse)
    scratch = cfg.replace(**{"pretrain.epochs": 0, "train.epochs": 0})
    result = train("uni_adafocus", scratch, splits, progress=False, checkpoint_dir=tmp_path)
    torch.manual_seed(scratch.train.seed)
    assert _same_weights(result.model, create_model("uni_adafocus", scratch).eval())
    assert not list(tmp_path.glob("pretrain-*.pt"))


def test_custom_splits_get_their_own_checkpoint_key(cfg, splits):
    assert data_key(cfg, None) == data_key(cfg, splits)  # the benchmark itself
    fewer = {"train": SyntheticVideoDataset(splits["train"].clips.subset(range(32)), cfg.data, "train"),
             "val": splits["val"]}
    assert data_key(cfg, fewer) != data_key(cfg, None)
    with pytest.raises(TypeError, match="fingerprint"):
        data_key(cfg, {"train": list(range(3))})


# ---------------------------------------------------------------------------------------------
# supervision: what needs ground truth, and data that has none
# ---------------------------------------------------------------------------------------------

class NoBoxes(torch.utils.data.Dataset):
    """Clips with labels only, as a video folder gives them."""

    def __init__(self, n: int = 6) -> None:
        g = torch.Generator().manual_seed(0)
        self.videos = torch.rand(n, 8, 3, 32, 32, generator=g)

    def __len__(self):
        return len(self.videos)

    def __getitem__(self, i):
        return {"video": self.videos[i], "label": torch.tensor(i % 4)}

    def fingerprint(self):
        return "noboxes"


@pytest.mark.parametrize("recipe", ["cpu", "paper"])
def test_label_free_recipes_train_on_data_without_boxes(cfg, tmp_path, recipe):
    c = cfg.replace(**{"train.recipe": recipe, "pretrain.epochs": 0, "train.epochs": 1})
    result = train("uni_adafocus", c, {"train": NoBoxes()}, progress=False, checkpoint_dir=tmp_path)
    assert len(result.history) == 1 and torch.isfinite(torch.tensor(result.history["train_loss"].tolist())).all()


@pytest.mark.parametrize("model, recipe, field", [("uni_adafocus", "hinted", "train.recipe"),
                                                  ("glance_only", "hinted", "train.recipe"),
                                                  ("oracle", "cpu", "model"), ("oracle", "paper", "model")])
def test_ground_truth_on_data_without_it_is_refused_before_training(cfg, tmp_path, model, recipe, field):
    c = cfg.replace(**{"train.recipe": recipe})
    with pytest.raises(ConfigError) as err:
        train(model, c, {"train": NoBoxes()}, progress=False, checkpoint_dir=tmp_path)
    message = str(err.value)
    assert message.startswith(field) and "none" in message
    assert (recipe in message) if field == "train.recipe" else (model in message)
    assert not list(tmp_path.iterdir())  # nothing trained, nothing written (not even the pretraining)
    check_supervision(model, c, {"train": load_split(c.data, "val", cache=False, progress=False)})  # synthetic: fine


class _Recorder:
    def __init__(self):
        self.loss_batches, self.plan_kwargs = [], []


def _record_train_step(model_name: str, cfg, batch, monkeypatch) -> _Recorder:
    import adafocus.train as T

    rec = _Recorder()
    real_loss = T.training_loss
    monkeypatch.setattr(T, "training_loss", lambda m, o, r, b, t: rec.loss_batches.append(set(b)) or real_loss(
        m, o, r, b, t))
    torch.manual_seed(0)
    model = create_model(model_name, cfg).train()
    real_plan = model.plan
    model.plan = lambda video, **kw: rec.plan_kwargs.append(set(kw)) or real_plan(video, **kw)
    TrainStep(model, cfg.train)(batch)
    return rec


@pytest.mark.parametrize("name, recipe, to_model, to_loss", [
    ("uni_adafocus", "cpu", set(), {"label"}),
    ("uni_adafocus", "paper", set(), {"label"}),
    ("uni_adafocus", "hinted", set(), {"label", "boxes", "mask"}),
    ("random_patch", "cpu", set(), {"label"}),
    ("oracle", "cpu", {"gt_boxes", "gt_mask"}, {"label"}),
])
def test_the_train_step_hands_ground_truth_only_to_who_reads_it(cfg, splits, monkeypatch, name, recipe, to_model,
                                                              to_loss):
    batch = next(iterate_batches(splits["train"], 8, shuffle=False))
    assert {"boxes", "mask"} <= set(batch)  # the synthetic batches carry the truth...
    rec = _record_train_step(name, cfg.replace(**{"train.recipe": recipe}), batch, monkeypatch)
    assert rec.plan_kwargs == [to_model] and rec.loss_batches == [to_loss]  # ...but only these see it


def test_ground_truth_kwargs_only_for_the_oracle(cfg):
    batch = {"boxes": torch.zeros(2, 8, 4), "mask": torch.ones(2, 8, dtype=torch.bool)}
    for name in list_models():
        kw = ground_truth_kwargs(create_model(name, cfg), batch)
        assert (kw != {}) == (name == "oracle"), name
        if kw:
            assert kw["gt_boxes"] is batch["boxes"] and kw["gt_mask"] is batch["mask"]


def _corrupt(splits: dict, how: str) -> dict:
    """The same clips with their ground truth replaced: ``nan`` boxes and the inverted mask, or
    ``wrong`` (finite but false) boxes, mirrored left-right, and the inverted mask."""
    out = {}
    for name, ds in splits.items():
        c = ds.clips
        if how == "nan":
            boxes = torch.full_like(c.boxes, float("nan"))
        else:
            S = ds.config.frame_size
            boxes = torch.stack([S - c.boxes[..., 2], c.boxes[..., 1], S - c.boxes[..., 0], c.boxes[..., 3]], -1)
        out[name] = SyntheticVideoDataset(ClipSet(c.videos, c.labels, boxes, ~c.mask), ds.config, ds.split)
    return out


NAN_TEST = {"train.epochs": 1, "pretrain.epochs": 0, "data.num_train": 96, "data.num_val": 16,
            "data.num_test": 16}


@pytest.fixture(scope="module")
def truth_and_lies():
    cfg = get_config("tiny", **NAN_TEST)
    real = {k: v for k, v in load_splits(cfg.data, progress=False).items() if k in ("train", "val")}
    return cfg, real, _corrupt(real, "nan"), _corrupt(real, "wrong")


@pytest.mark.parametrize("recipe", ["cpu", "paper"])
@pytest.mark.parametrize("name", [m for m in list_models() if m != "oracle"])
def test_no_label_free_model_sees_ground_truth(truth_and_lies, tmp_path, name, recipe):
    """Trained with every true box replaced by NaN and every frame mask inverted, each label-free model
    ends with bit-identical weights and metrics: nothing it learned came from the ground truth."""
    base, real, nan, _ = truth_and_lies
    cfg = base.replace(**{"train.recipe": recipe})
    a = train(name, cfg, real, progress=False, checkpoint_dir=tmp_path / "real", key="truth")
    b = train(name, cfg, nan, progress=False, checkpoint_dir=tmp_path / "nan", key="lies")
    assert _same_weights(a.model, b.model)
    metrics = [c for c in a.history.columns if c != "seconds"]
    assert a.history[metrics].equals(b.history[metrics])
    torch.manual_seed(cfg.train.seed)
    assert not _same_weights(a.model, create_model(name, cfg).eval())  # it did train


@pytest.mark.parametrize("name, recipe", [("oracle", "cpu"), ("uni_adafocus", "hinted")])
def test_the_ground_truth_test_would_catch_a_model_that_reads_it(truth_and_lies, tmp_path, name, recipe):
    """The positive controls of the test above: the oracle and the hinted ablation do read the ground
    truth, so false (finite) boxes and masks change their weights (and NaN boxes change them too, or
    stop the training: the hinted box loss is not finite)."""
    base, real, nan, wrong = truth_and_lies
    cfg = base.replace(**{"train.recipe": recipe})
    a = train(name, cfg, real, progress=False, checkpoint_dir=tmp_path / "real", key="truth")
    b = train(name, cfg, wrong, progress=False, checkpoint_dir=tmp_path / "wrong", key="lies")
    assert not _same_weights(a.model, b.model)
    try:
        c = train(name, cfg, nan, progress=False, checkpoint_dir=tmp_path / "nan", key="nan")
    except FloatingPointError as err:
        assert recipe == "hinted" and "loss term 'center' is not finite" in str(err)
    else:
        assert not _same_weights(a.model, c.model)


# ---------------------------------------------------------------------------------------------
# recording the policy: "learning to look"
# ---------------------------------------------------------------------------------------------

def test_record_policy_traces_boxes_and_w_before_and_after_every_epoch(cfg, splits, tmp_path):
    c = cfg.replace(**{"train.record_policy": 3, "pretrain.epochs": 0})
    result = train("uni_adafocus", c, splits, progress=False, checkpoint_dir=tmp_path / "on")
    tg, K = c.model.glance_frames, c.model.num_focus
    assert [t["epoch"] for t in result.trace] == [0, 1, 2]  # the policy before any training, then each epoch
    first = result.trace[0]
    assert first["glance_boxes"].shape == (3, tg, 4) and first["weights"].shape == (3, tg)
    assert first["boxes"].shape == (3, K, 4) and first["frame_idx"].shape == (3, K)
    assert first["glance_idx"].shape == (3, tg) and first["clip_index"].tolist() == [0, 1, 2]
    assert torch.allclose(first["weights"].sum(-1), torch.ones(3), atol=1e-5)
    # the last recording is what the trained model does on those clips (eval mode: no randomness)
    clips = splits["val"].clips.videos[:3].float() / 255
    last = record_policy(result.model, {"video": clips})
    assert torch.allclose(last["glance_boxes"], result.trace[-1]["glance_boxes"], atol=1e-5)
    assert torch.equal(last["frame_idx"], result.trace[-1]["frame_idx"])
    again = train("uni_adafocus", c, splits, progress=False, checkpoint_dir=tmp_path / "on")
    assert again.from_cache and len(again.trace) == 3
    # recording never changes the training: the same weights with it off
    off = train("uni_adafocus", c.replace(**{"train.record_policy": 0}), splits, progress=False,
                checkpoint_dir=tmp_path / "off")
    assert off.trace == [] and _same_weights(off.model, result.model)


@pytest.mark.parametrize("name", ["oracle", "glance_only", "full_frame"])
def test_every_model_trains_with_its_policy_recorded(cfg, splits, tmp_path, name):
    """``train.record_policy`` is on by default: models without a learned policy, and the oracle
    (which needs the true boxes and mask to run at all), must train with it too."""
    c = cfg.replace(**{"train.record_policy": 2, "pretrain.epochs": 0, "train.epochs": 1})
    result = train(name, c, splits, progress=False, checkpoint_dir=tmp_path)
    assert [t["epoch"] for t in result.trace] == [0, 1]
    assert result.trace[-1]["frame_idx"].shape == (2, result.model.num_focus)


def test_record_policy_restores_the_mode_and_skips_what_a_model_lacks(cfg, splits):
    video = torch.rand(2, 8, 3, 32, 32)
    model = create_model("glance_only", cfg).train()
    rec = record_policy(model, {"video": video, "index": torch.tensor([5, 7])})
    assert model.training and rec["clip_index"].tolist() == [5, 7]
    assert "glance_boxes" not in rec and "weights" not in rec and rec["glance_idx"].shape == (2, 8)
    model = create_model("random_patch", cfg).eval()
    torch.manual_seed(0)
    state = torch.get_rng_state()
    rec = record_policy(model, {"video": video})
    assert not model.training and "weights" in rec and "glance_boxes" not in rec and "clip_index" not in rec
    assert torch.equal(torch.get_rng_state(), state)  # its own random stream: training draws are unchanged
    # the oracle records the true boxes it was handed (and needs them)
    batch = next(iterate_batches(splits["val"], 2, shuffle=False))
    oracle = create_model("oracle", cfg)
    rec = record_policy(oracle, batch)
    rows = torch.arange(2)[:, None]
    enough = batch["mask"].sum(1) >= oracle.num_focus
    assert enough.any() and batch["mask"][rows, rec["frame_idx"]][enough].all()  # its frames: informative ones


# ---------------------------------------------------------------------------------------------
# batches
# ---------------------------------------------------------------------------------------------

def test_batches_are_seeded_complete_and_carry_the_index(splits):
    ds = splits["train"]
    a = list(iterate_batches(ds, 24, shuffle=True, seed=3))
    b = list(iterate_batches(ds, 24, shuffle=True, seed=3))
    assert len(a) == num_batches(ds, 24) == 3 and [len(x["label"]) for x in a] == [24, 24, 16]
    assert all(torch.equal(x["index"], y["index"]) for x, y in zip(a, b))
    assert sorted(torch.cat([x["index"] for x in a]).tolist()) == list(range(len(ds)))
    c = list(iterate_batches(ds, 24, shuffle=True, seed=4))
    assert not torch.equal(a[0]["index"], c[0]["index"])
    first = a[0]
    assert first["video"].dtype == torch.float32 and 0 <= first["video"].min() and first["video"].max() <= 1
    assert torch.equal(first["label"], ds.clips.labels[first["index"]])
    plain = list(iterate_batches(ds, 24, shuffle=False))
    assert plain[0]["index"].tolist() == list(range(24))


# ---------------------------------------------------------------------------------------------
# separate processes: determinism, and a run killed mid-epoch that resumes
# ---------------------------------------------------------------------------------------------

CLI = [sys.executable, "-m", "adafocus", "train", "--model", "center_patch", "--preset", "tiny",
       "--set", "train.epochs=4", "--set", "data.num_train=320"]


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
    assert checkpoint_path("oracle", cfg, tmp_path).name == f"oracle-tiny-{data_key(cfg, None)}.pt"


@pytest.mark.parametrize("change", ["generator_version", "render_settings"])
def test_a_new_data_generator_gets_new_checkpoint_keys(cfg, monkeypatch, change):
    """The keys include the synthetic data's cache key, so a change of the generator retrains the
    models (and the shared pretraining) instead of loading ones trained on the old clips."""
    import dataclasses

    import adafocus.data.synthetic as synthetic

    before = (data_key(cfg, None), pretrain_key(cfg), checkpoint_path("oracle", cfg, Path("x")).name)
    if change == "generator_version":
        monkeypatch.setattr(synthetic, "GENERATOR_VERSION", synthetic.GENERATOR_VERSION + 1)
    else:
        monkeypatch.setattr(synthetic, "RENDER", dataclasses.replace(synthetic.RENDER, fade_alpha=0.07))
    after = (data_key(cfg, None), pretrain_key(cfg), checkpoint_path("oracle", cfg, Path("x")).name)
    assert all(a != b for a, b in zip(before, after)), (before, after)
    assert after[0].startswith(cfg.hash()[:6])  # still named by the config too

"""Training: one end-to-end stage from the pretrained backbones, cached, resumable, reproducible.

Every method trains the same way (docs/design.md, "Training"):

0. **Shared pretraining** (:mod:`adafocus.pretrain`, the analogue of ImageNet weights): the glance
   and focus backbones learn the classes from an object-centric *image* set, labels only. Cached
   once per backbone geometry and copied into every method.
1. **One stage, end to end**, ``train.epochs`` epochs. Models with a learned spatial policy average
   a policy-patch branch and a random-patch branch (``train.random_branch``); the policies learn
   through the surrogates of ``train.recipe`` (:mod:`adafocus.losses`). Baselines train their own
   mode; the oracle alone reads the true boxes and frames.

No label-free model sees ground truth: :class:`TrainStep` hands boxes and masks to the model only
when its own modes need them (the oracle), and to the loss only for the ``hinted`` ablation.

Checkpoints live in ``cache_dir("checkpoints")`` under ``<model>-<preset>-<key>.pt``, the key being
the config hash and the data generator's (plus a fingerprint of the data when ``splits`` are not
the synthetic benchmark of the config). They are written atomically after every epoch with a
SHA-256 of their contents and load with ``weights_only=True``; a run that was interrupted (even by
SIGKILL) resumes after its last finished epoch and ends with the same numbers as an uninterrupted
run (RNG states are saved too); a damaged checkpoint is reported, never loaded. A finished
checkpoint is loaded instead of training again.

Under ``torchrun`` the same code trains data-parallel (see :mod:`adafocus.distributed`): each rank
takes a slice of every global batch of ``train.batch_size`` clips, gradients are averaged by
DistributedDataParallel, and only rank 0 writes checkpoints and logs.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import Tensor, nn

from adafocus import distributed
from adafocus.config import Config, ConfigError, TrainConfig
from adafocus.data.batches import ground_truth_kwargs, iterate_batches, num_batches
from adafocus.data.labels import check_labels_fit
from adafocus.distributed import Dist
from adafocus.fit import (CheckpointError, FitJob, TrainResult, accuracy, checkpoint_file, fit, load_checkpoint,
                          resume_state)
from adafocus.losses import training_loss
from adafocus.models.registry import create_model
from adafocus.paths import remove_stale_temporaries
from adafocus.pretrain import load_shared_backbones, pretrained_backbones

__all__ = ["CheckpointError", "TrainResult", "TrainStep", "accuracy", "check_supervision", "checkpoint_path",
           "data_key", "load_checkpoint", "record_policy", "train"]


@torch.no_grad()
def record_policy(model: nn.Module, batch: dict[str, Tensor]) -> dict[str, Tensor]:
    """What the model looks at on fixed clips ``batch["video"]`` ``(N, T, C, H, W)`` (eval mode): the glance
    frames, the policy's boxes there, ``w``, the chosen frames and boxes (and ``clip_index``, the clips'
    indices in their split). Recorded after every epoch with ``train.record_policy`` (the "learning to
    look" figure); the model's mode is restored."""
    was_training = model.training
    with torch.random.fork_rng():  # its own random stream: recording never changes the training
        out = model.eval()(batch["video"], **ground_truth_kwargs(model, batch))
    model.train(was_training)
    rec = {"frame_idx": out.frame_idx, "boxes": out.boxes}
    if batch.get("index") is not None:
        rec["clip_index"] = torch.as_tensor(batch["index"])
    for name, value in (("glance_idx", out.glance_idx), ("glance_boxes", out.glance_boxes),
                        ("weights", out.temporal_weights)):
        if value is not None:
            rec[name] = value.detach().clone()
    return rec


# ---------------------------------------------------------------------------------------------
# one epoch
# ---------------------------------------------------------------------------------------------

def has_learned_spatial_policy(model: nn.Module) -> bool:
    cfg = model.cfg
    return bool(cfg.spatial_policy and cfg.use_glance and cfg.use_focus and cfg.patch_mode == "policy")


class TrainStep(nn.Module):
    """The forward half of one training step: the model's branches and their loss.

    A module of its own so DistributedDataParallel can wrap it: one forward (both branches) per
    backward, and the parameters left unused are found from the loss's graph.
    ``forward(batch)`` returns ``(loss, final-exit logits (B, n), {term: value})``.
    """

    def __init__(self, model: nn.Module, train: TrainConfig) -> None:
        super().__init__()
        self.model, self.train_cfg = model, train

    def forward(self, batch: dict[str, Tensor]):
        model, video = self.model, batch["video"]
        plan = model.plan(video, **ground_truth_kwargs(model, batch))
        out = model.run(video, plan)
        out_random = None
        if self.train_cfg.random_branch and has_learned_spatial_policy(model):
            # the same glance and frames, random patches: a second focus pass (measured faster on a CPU
            # than one pass over both branches' patches stacked, 0.151 vs 0.176 s per step at B = 32)
            out_random = model.run(video, model.random_patch_plan(plan))
        hints = {k: batch[k] for k in ("boxes", "mask") if k in batch} if self.train_cfg.uses_ground_truth else {}
        loss, parts = training_loss(model, out, out_random, {"label": batch["label"], **hints}, self.train_cfg)
        return loss, out.logits, parts


# ---------------------------------------------------------------------------------------------
# checkpoints
# ---------------------------------------------------------------------------------------------

def checkpoint_path(model_name: str, cfg: Config, directory: Path | None = None, key: str | None = None) -> Path:
    """Where ``model_name`` trained under ``cfg`` is cached (``key``: default :func:`data_key` of the benchmark)."""
    return checkpoint_file(model_name, cfg.name, key or data_key(cfg, None), directory)


def data_key(cfg: Config, splits: dict[str, Any] | None) -> str:
    """The checkpoint key: the config hash, plus a fingerprint of the data when ``splits`` are not
    the synthetic benchmark that ``cfg.data`` describes (so a model trained on your own videos never
    loads one trained on the benchmark, or on other videos). For the benchmark itself the data part
    is its cache key (:func:`adafocus.data.synthetic.data_hash`: the generator's version and render
    settings), so a change of the generator retrains instead of loading a model of the old data."""
    from adafocus.data.synthetic import data_hash

    benchmark = cfg.hash()[:6] + data_hash(cfg.data)[:6]
    if splits is None:
        return benchmark
    used = {k: v for k, v in splits.items() if k in ("train", "val")}
    if all(getattr(ds, "is_default_split", lambda c: False)(cfg.data) for ds in used.values()):
        return benchmark
    prints = []
    for name, ds in sorted(used.items()):
        fingerprint = getattr(ds, "fingerprint", None)
        if fingerprint is None:
            raise TypeError(f"splits[{name!r}]: {type(ds).__name__} has no fingerprint() method; expected a "
                            "SyntheticVideoDataset or VideoFolderDataset, or pass key= to name the checkpoint")
        prints.append(f"{name}={fingerprint()}")
    return cfg.hash()[:6] + hashlib.sha256("|".join(prints).encode()).hexdigest()[:6]


def _has_ground_truth(dataset) -> bool:
    clips = getattr(dataset, "clips", None)
    return clips is not None and getattr(clips, "boxes", None) is not None


def check_supervision(model_name: str, cfg: Config, splits: dict[str, Any]) -> None:
    """Refuse a run that needs ground truth (the ``hinted`` recipe, the oracle) on data that has none."""
    if _has_ground_truth(splits["train"]):
        return
    hints = [f"train.{f} = {getattr(cfg.train, f)}" for f in ("center_supervision", "temporal_supervision")
             if getattr(cfg.train, f) > 0]
    if hints:
        origin = (f"train.recipe = {cfg.train.recipe!r} sets " if cfg.train.recipe == "hinted" else "")
        raise ConfigError(f"{origin}{' and '.join(hints)}: these supervise the policies with true boxes and frame "
                          "masks, and this data has none (a video folder); expected 0: use train.recipe='cpu' or "
                          "'paper' (label-free)")
    if create_model(model_name, cfg).needs_ground_truth:
        raise ConfigError(f"model: {model_name!r} reads the true boxes or frames (an oracle), and this data has "
                          "none (a video folder); choose a model that learns its policies")


def backbone_pretraining(model: nn.Module):
    """The function that gives ``model`` its pretrained backbones: the shared 2-D pretraining
    (:func:`adafocus.pretrain.pretrained_backbones`), or the one a family member's class names as
    ``pretraining = "module:function"`` (the X3Ds: :func:`adafocus.pretrain_x3d.pretrained_x3d_backbones`)."""
    own = getattr(model, "pretraining", None)
    if own is None:
        return pretrained_backbones
    import importlib

    module, _, function = own.partition(":")
    return getattr(importlib.import_module(module), function)


# ---------------------------------------------------------------------------------------------
# the entry point
# ---------------------------------------------------------------------------------------------

def train(model_name: str, cfg: Config, splits: dict[str, Any] | None = None, progress: bool = True,
          checkpoint_dir: Path | None = None, retrain: bool = False, key: str | None = None) -> TrainResult:
    """Train ``model_name`` (see :func:`adafocus.models.registry.list_models`) under ``cfg``.

    Loads the finished checkpoint when there is one (unless ``retrain``), resumes a partial one,
    else trains from the shared pretrained backbones (:func:`adafocus.pretrain.pretrained_backbones`;
    ``cfg.pretrain.epochs = 0`` starts from random weights). ``splits``: ``{"train": ds, "val": ds}``;
    by default the synthetic benchmark of ``cfg.data``. ``key`` overrides the checkpoint key
    (:func:`data_key`). Under torchrun it trains data-parallel (see the module docstring).
    """
    cfg.validate()
    torch.set_num_threads(cfg.train.num_threads)
    d = distributed.setup()
    progress = progress and d.is_main
    if splits is None:
        from adafocus.data.synthetic import load_splits
        with distributed.main_first(d):  # rank 0 generates the cache, the others then read it
            splits = load_splits(cfg.data, progress=progress)
    if "train" not in splits or len(splits["train"]) == 0:
        raise ValueError(f"splits: expected a non-empty 'train' dataset, got keys {sorted(splits)}")
    check_labels_fit(splits, cfg.model.num_classes)  # before any training: not an IndexError mid-epoch
    check_supervision(model_name, cfg, splits)
    key = key or data_key(cfg, splits)
    path = checkpoint_path(model_name, cfg, checkpoint_dir, key)
    torch.manual_seed(cfg.train.seed)
    model = create_model(model_name, cfg)
    if model_name == "adafocus_v1":  # reinforcement learning in three stages of its own
        from adafocus.train_v1 import train_v1
        return train_v1(model, cfg, splits, key, checkpoint_dir, retrain, progress)
    if d.enabled:  # every rank built the same weights; now each draws its own random patches
        torch.manual_seed(cfg.train.seed * 1000 + d.rank)

    state = resume_state(path, model_name, key, model, retrain)
    if state is not None and state["done"]:
        return TrainResult(model.eval(), pd.DataFrame(state["history"]), path, True, state["trace"])
    if state is None and cfg.pretrain.epochs > 0:
        load_shared_backbones(model, backbone_pretraining(model)(cfg, progress, checkpoint_dir))
    if d.is_main:
        remove_stale_temporaries(path)  # left by a run killed while writing

    train_set, val_set = splits["train"], splits.get("val")

    def batches(seed: int):
        if hasattr(train_set, "set_epoch"):  # new random frame draws (video folders)
            train_set.set_epoch(seed)
        return iterate_batches(train_set, cfg.train.batch_size, True, seed, d)

    def evaluate() -> dict[str, float]:
        return {"val_acc": accuracy(model, val_set, d=d) if val_set is not None and len(val_set) else float("nan")}

    record = None
    if cfg.train.record_policy > 0 and val_set is not None and len(val_set):
        clips = next(iterate_batches(val_set, cfg.train.record_policy, shuffle=False, pad=False))
        record = (lambda: record_policy(model, clips))

    job = FitJob(model_name, model, TrainStep(model, cfg.train), batches,
                 num_batches(train_set, cfg.train.batch_size), evaluate, cfg.train, path, key, cfg.to_dict(), record)
    history, trace, _ = fit(job, state, progress, d)
    return TrainResult(model.eval(), pd.DataFrame(history), path, False, trace)

"""Training: the two-phase AdaFocus recipe with cached, resumable, reproducible checkpoints.

Stages (DESIGN.md 1 and 3):

0. **Shared pretraining** (the analogue of ImageNet weights). The glance and focus backbones learn
   what the objects look like from object-centric crops (the ``oracle`` model: true boxes, true
   frames). Every method then starts from these weights; no method sees ground truth afterwards.
   Cached once per data and backbone geometry, shared by all models.
1. **Phase 1**: the focus network and classifier on *random* patches (uniform frames), so the focus
   network is useful before the policy is.
2. **Phase 2**: end to end. The loss averages a policy-patch branch and a random-patch branch; the
   policies learn through their surrogates (see :mod:`adafocus.losses`).

Models without a learned spatial policy (baselines) spend phases 1 and 2 in their own mode, so
every method gets the same number of epochs.

Checkpoints live in ``cache_dir("checkpoints")`` under ``<model>-<preset>-<key>.pt``, the key being
the config hash (plus a fingerprint of the data when ``splits`` are not the synthetic benchmark of
the config). They are written atomically after every epoch with a SHA-256 of their contents; a
run that was interrupted (even by SIGKILL) resumes after its last finished epoch and ends with the
same numbers as an uninterrupted run (RNG states are saved too); a damaged checkpoint is reported,
never loaded. A finished checkpoint is loaded instead of training again.

Under ``torchrun`` the same code trains data-parallel (see :mod:`adafocus.distributed`): each rank
takes a slice of every global batch of ``train.batch_size`` clips, gradients are averaged by
DistributedDataParallel, and only rank 0 writes checkpoints and logs.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterator

import pandas as pd
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from adafocus import distributed
from adafocus.config import PRESETS, Config, ConfigError
from adafocus.distributed import Dist
from adafocus.losses import LossWeights, adafocus_loss, two_branch_loss
from adafocus.models.registry import create_model
from adafocus.paths import (CorruptFileError, cache_dir, checked_torch_load, checked_torch_save,
                            remove_stale_temporaries)

PRETRAIN_MODEL = "oracle"  # the pretraining stage trains this model, then shares its backbones
SHARED_PREFIXES = ("glance.", "focus.")  # parameters copied from the pretraining stage


class CheckpointError(ValueError):
    """A checkpoint that does not belong to the requested model and config."""


@dataclass
class TrainResult:
    model: nn.Module
    history: pd.DataFrame  # one row per epoch: stage, epoch, losses, train/val accuracy, seconds
    checkpoint: Path
    from_cache: bool  # True when a finished checkpoint was loaded instead of training


# ---------------------------------------------------------------------------------------------
# batches
# ---------------------------------------------------------------------------------------------

def iterate_batches(dataset, batch_size: int, shuffle: bool, seed: int = 0, d: Dist = Dist(),
                    pad: bool = True) -> Iterator[dict[str, Tensor]]:
    """Batches of ``dict(video (B,T,C,H,W) float in [0,1], label (B,), boxes?, mask?)``.

    Global batches of ``batch_size`` clips in a seeded order; data-parallel, each is cut to this
    rank's share (:func:`adafocus.distributed.shard`; ``pad=False`` for evaluation, so no clip
    counts twice). Synthetic splits (with a ``clips`` attribute, in memory or memory-mapped) are
    sliced directly, much faster than a DataLoader on 2 cores; other datasets use a DataLoader.
    """
    n = len(dataset)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)) if shuffle else torch.arange(n)
    batches = [distributed.shard(order[a:a + batch_size], d, pad) for a in range(0, n, batch_size)]
    batches = [b for b in batches if len(b)]
    clips = getattr(dataset, "clips", None)
    if clips is not None:
        for idx in batches:
            yield {"video": clips.videos[idx].float().div_(255), "label": clips.labels[idx],
                   "boxes": clips.boxes[idx], "mask": clips.mask[idx], "index": idx}
        return
    yield from torch.utils.data.DataLoader(dataset, batch_sampler=[b.tolist() for b in batches])


def num_batches(dataset, batch_size: int) -> int:
    return math.ceil(len(dataset) / batch_size)


# ---------------------------------------------------------------------------------------------
# one epoch
# ---------------------------------------------------------------------------------------------

def has_learned_spatial_policy(model: nn.Module) -> bool:
    cfg = model.cfg
    return bool(cfg.spatial_policy and cfg.use_glance and cfg.patch_mode == "policy")


class TrainStep(nn.Module):
    """The forward half of one training step: the model's branches for ``stage`` and their loss.

    A module of its own so DistributedDataParallel can wrap it: one forward (both branches) per
    backward, and the parameters a stage leaves unused are found from the loss's graph.
    ``forward`` returns ``(loss, final-exit logits (B, n), {term: value})``.
    """

    def __init__(self, model: nn.Module, cfg: Config, stage: str) -> None:
        super().__init__()
        self.model, self.stage = model, stage
        self.weights = LossWeights.from_train(cfg.train)
        self.frame_size = cfg.data.frame_size

    def forward(self, video: Tensor, labels: Tensor, boxes: Tensor | None = None, mask: Tensor | None = None):
        gt = {"gt_boxes": boxes, "gt_mask": mask}
        learned = has_learned_spatial_policy(self.model)
        if self.stage == "phase1" and learned:
            out = self.model(video, **gt, patch_mode="random", frame_mode="uniform")
            loss, parts = adafocus_loss(out, labels, self.weights, self.frame_size)
        elif self.stage == "phase2" and learned:
            out = self.model(video, **gt)
            out_random = self.model(video, **gt, patch_mode="random")
            loss, parts = two_branch_loss(out, out_random, labels, self.weights, self.frame_size, boxes)
        else:
            out = self.model(video, **gt)
            loss, parts = adafocus_loss(out, labels, self.weights, self.frame_size, boxes)
        return loss, out.logits, parts


def run_epoch(model: nn.Module, batches, optimizer, scheduler, cfg: Config, stage: str,
              total: int | None = None, desc: str = "", d: Dist = Dist()) -> dict[str, float]:
    """One training epoch. ``stage``: "pretrain", "phase1" or "phase2". Returns mean metrics
    (over every rank's samples when data-parallel)."""
    model.train()
    step = distributed.wrap(TrainStep(model, cfg, stage), d)
    sums: dict[str, float] = {}
    for batch in tqdm(batches, total=total, desc=desc, leave=False, disable=not desc):
        labels = batch["label"]
        loss, logits, parts = step(batch["video"], labels, batch.get("boxes"), batch.get("mask"))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.train.grad_clip > 0:
            nn.utils.clip_grad_norm_(model.parameters(), cfg.train.grad_clip)
        optimizer.step()
        scheduler.step()
        b = len(labels)
        for k, v in {"loss": float(loss.detach()), **parts}.items():
            sums[k] = sums.get(k, 0.0) + v * b
        sums["correct"] = sums.get("correct", 0.0) + int((logits.argmax(-1) == labels).sum())
        sums["seen"] = sums.get("seen", 0.0) + b
    sums = distributed.sum_all(sums, d)
    seen = max(sums.pop("seen", 0.0), 1.0)
    metrics = {f"train_{k}": v / seen for k, v in sums.items() if k != "correct"}
    metrics["train_acc"] = sums.get("correct", 0.0) / seen
    return metrics


@torch.no_grad()
def accuracy(model: nn.Module, dataset, batch_size: int = 64, d: Dist = Dist()) -> float:
    """Top-1 accuracy of the final exit (eval mode: midpoint frame sampling, no randomness).
    Data-parallel: each rank scores its share of the clips and the counts are summed."""
    model.eval()
    correct = 0
    for batch in iterate_batches(dataset, batch_size, shuffle=False, d=d, pad=False):
        out = model(batch["video"], gt_boxes=batch.get("boxes"), gt_mask=batch.get("mask"))
        correct += int((out.logits.argmax(-1) == batch["label"]).sum())
    return distributed.sum_all({"correct": correct}, d)["correct"] / max(len(dataset), 1)


# ---------------------------------------------------------------------------------------------
# optimisation
# ---------------------------------------------------------------------------------------------

def make_optimizer(model: nn.Module, cfg: Config, steps: int):
    """AdamW (or SGD) with per-part learning rates and a cosine schedule over ``steps``."""
    t = cfg.train
    mult = {"glance": t.lr_glance, "focus": t.lr_focus, "policy": t.lr_policy, "classifier": t.lr_classifier}
    groups = [{"params": params, "lr": t.lr * mult[name], "name": name}
              for name, params in model.param_groups().items() if params]
    if t.optimizer == "sgd":
        opt = torch.optim.SGD(groups, lr=t.lr, momentum=0.9, weight_decay=t.weight_decay, nesterov=True)
    else:
        opt = torch.optim.AdamW(groups, lr=t.lr, weight_decay=t.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda step: 0.5 * (1 + math.cos(math.pi * min(step, steps) / max(steps, 1))))
    return opt, sched


def stages_for(model_name: str, cfg: Config) -> list[tuple[str, int]]:
    """The (stage, epochs) schedule of a model. Pretraining is a separate cached run."""
    t = cfg.train
    return [("phase1", t.phase1_epochs), ("phase2", t.phase2_epochs)]


# ---------------------------------------------------------------------------------------------
# checkpoints
# ---------------------------------------------------------------------------------------------

def checkpoint_path(model_name: str, cfg: Config, directory: Path | None = None, key: str | None = None) -> Path:
    directory = Path(directory) if directory is not None else cache_dir("checkpoints")
    return directory / f"{model_name}-{cfg.name}-{key or cfg.hash()}.pt"


def load_checkpoint(path: Path, model_name: str, key: str) -> dict[str, Any]:
    """Load a checkpoint and check it is intact and belongs to ``model_name`` and the key ``key``.

    Raises :class:`CheckpointError` naming the file when it is empty, truncated, altered (its
    SHA-256 does not match) or for another model or config.
    """
    try:
        state = checked_torch_load(path)
    except FileNotFoundError as e:
        raise CheckpointError(f"{path}: no such checkpoint file") from e
    except CorruptFileError as e:
        raise CheckpointError(f"{e}; delete it (or train with retrain=True) to train again") from e
    if not isinstance(state, dict) or state.get("model_name") != model_name or state.get("config_hash") != key:
        found = state if isinstance(state, dict) else {}
        raise CheckpointError(
            f"{path}: checkpoint is for model {found.get('model_name')!r} with config hash "
            f"{found.get('config_hash')!r}, expected model {model_name!r} with config hash {key!r}")
    return state


def _save(path: Path, model_name: str, key: str, cfg: Config, model, opt, sched, stage_idx: int, epoch: int,
          history: list[dict], done: bool, d: Dist = Dist()) -> None:
    """Write a checkpoint (rank 0 only; every rank must call it: the RNG states are gathered)."""
    rng_states = distributed.gather_objects(torch.get_rng_state(), d)
    if d.is_main:
        checked_torch_save({
            "model_name": model_name, "config_hash": key, "config": cfg.to_dict(),
            "model": model.state_dict(), "optimizer": opt.state_dict() if opt else None,
            "scheduler": sched.state_dict() if sched else None, "stage_idx": stage_idx, "epoch": epoch,
            "history": history, "done": done, "torch_rng": rng_states, "world_size": d.world_size,
        }, path)
    distributed.barrier(d)


def data_key(cfg: Config, splits: dict[str, Any] | None) -> str:
    """The checkpoint key: the config hash, plus a fingerprint of the data when ``splits`` are not
    the synthetic benchmark that ``cfg.data`` describes (so a model trained on your own videos never
    loads one trained on the benchmark, or on other videos)."""
    if splits is None:
        return cfg.hash()
    used = {k: v for k, v in splits.items() if k in ("train", "val")}
    if all(getattr(ds, "is_default_split", lambda c: False)(cfg.data) for ds in used.values()):
        return cfg.hash()
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


# ---------------------------------------------------------------------------------------------
# the entry point
# ---------------------------------------------------------------------------------------------

def train(model_name: str, cfg: Config, splits: dict[str, Any] | None = None, progress: bool = True,
          checkpoint_dir: Path | None = None, retrain: bool = False, key: str | None = None) -> TrainResult:
    """Train ``model_name`` (see :func:`adafocus.models.registry.list_models`) under ``cfg``.

    Loads the finished checkpoint when there is one (unless ``retrain``), resumes a partial one,
    else trains from the shared pretrained backbones. ``splits``: ``{"train": ds, "val": ds}``;
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
    key = key or data_key(cfg, splits)
    path = checkpoint_path(model_name, cfg, checkpoint_dir, key)
    torch.manual_seed(cfg.train.seed)
    model = create_model(model_name, cfg)
    if d.enabled:  # every rank built the same weights; now each draws its own random patches
        torch.manual_seed(cfg.train.seed * 1000 + d.rank)

    state = None
    if path.exists() and not retrain:
        state = load_checkpoint(path, model_name, key)
        model.load_state_dict(state["model"])
        if state["done"]:
            return TrainResult(model.eval(), pd.DataFrame(state["history"]), path, from_cache=True)
    elif cfg.train.pretrain_epochs > 0:  # (0 in the pretraining run itself: see pretrain_config)
        if not _has_ground_truth(splits["train"]):
            raise ConfigError("train.pretrain_epochs: expected 0 for data without ground-truth boxes (the shared "
                              f"pretraining trains the oracle on true boxes), got {cfg.train.pretrain_epochs}")
        load_shared_backbones(model, pretrained_backbones(cfg, splits, progress, checkpoint_dir))
    if d.is_main:
        remove_stale_temporaries(path)  # left by a run killed while writing

    stages = stages_for(model_name, cfg)
    history: list[dict] = list(state["history"]) if state else []
    start_stage, start_epoch = (state["stage_idx"], state["epoch"] + 1) if state else (0, 0)
    if state:
        rng = state["torch_rng"]
        rng = rng if isinstance(rng, list) else [rng]  # one state per rank
        torch.set_rng_state(rng[d.rank] if len(rng) == d.world_size else rng[0])
    t0 = time.time()
    for stage_idx, (stage, epochs) in enumerate(stages):
        if stage_idx < start_stage or epochs == 0:
            continue
        steps = epochs * num_batches(splits["train"], cfg.train.batch_size)
        opt, sched = make_optimizer(model, cfg, steps)
        first = start_epoch if stage_idx == start_stage else 0
        if state and stage_idx == start_stage and state["optimizer"] is not None and first > 0:
            opt.load_state_dict(state["optimizer"])
            sched.load_state_dict(state["scheduler"])
        for epoch in range(first, epochs):
            seed = cfg.train.seed * 1000 + stage_idx * 100 + epoch
            if hasattr(splits["train"], "set_epoch"):  # new random frame draws (video folders)
                splits["train"].set_epoch(seed)
            e0 = time.time()
            metrics = run_epoch(model, iterate_batches(splits["train"], cfg.train.batch_size, True, seed, d),
                                opt, sched, cfg, stage, num_batches(splits["train"], cfg.train.batch_size),
                                desc=f"{model_name} {stage} {epoch + 1}/{epochs}" if progress else "", d=d)
            distributed.broadcast_module(model, d)  # rank 0's BatchNorm statistics everywhere
            val_acc = accuracy(model, splits["val"], d=d) if "val" in splits and len(splits["val"]) else float("nan")
            history.append({"model": model_name, "stage": stage, "epoch": epoch + 1, **metrics,
                            "val_acc": val_acc, "seconds": time.time() - e0})
            if progress:
                tqdm.write(f"{model_name} {stage} epoch {epoch + 1}/{epochs}: "
                           f"loss {metrics['train_loss']:.3f} train acc {metrics['train_acc']:.3f} "
                           f"val acc {val_acc:.3f} ({history[-1]['seconds']:.0f} s)")
            last = stage_idx == len(stages) - 1 and epoch == epochs - 1
            _save(path, model_name, key, cfg, model, opt, sched, stage_idx, epoch, history, done=False, d=d)
            if cfg.train.max_minutes and (time.time() - t0) / 60 > cfg.train.max_minutes and not last:
                if progress:
                    tqdm.write(f"{model_name}: stopped after {cfg.train.max_minutes} min; run again to resume")
                return TrainResult(model.eval(), pd.DataFrame(history), path, from_cache=False)
    if not distributed.parameters_agree(model, d):
        raise RuntimeError(f"{model_name}: data-parallel ranks ended with different weights")
    _save(path, model_name, key, cfg, model, None, None, len(stages), 0, history, done=True, d=d)
    return TrainResult(model.eval(), pd.DataFrame(history), path, from_cache=False)


# ---------------------------------------------------------------------------------------------
# shared pretraining
# ---------------------------------------------------------------------------------------------

# what the shared pretraining depends on; every other field (policies, budgets, modes) is free to vary
BACKBONE_FIELDS = ("glance_width", "glance_size", "glance_stride", "glance_feature_dim", "glance_frames",
                   "focus_block", "focus_layers", "focus_widths", "focus_stem_stride", "focus_tsm",
                   "channels_last", "num_classes", "oracle_jitter", "box_min", "box_max")
PRETRAIN_TRAIN_FIELDS = ("batch_size", "optimizer", "lr", "weight_decay", "grad_clip", "seed", "num_threads")


def pretrain_config(cfg: Config) -> Config:
    """The shared pretraining run's config: the data and backbone geometry of ``cfg``, everything
    else from the preset, ``pretrain_epochs`` epochs in one phase. So every method and budget
    (patch size, K, policy heads, loss options) starts from the same cached backbones."""
    base = PRESETS[cfg.name]() if cfg.name in PRESETS else cfg
    model = replace(base.model, **{f: getattr(cfg.model, f) for f in BACKBONE_FIELDS})
    train = replace(base.train, **{f: getattr(cfg.train, f) for f in PRETRAIN_TRAIN_FIELDS},
                    pretrain_epochs=0, phase1_epochs=0, phase2_epochs=cfg.train.pretrain_epochs, max_minutes=0.0)
    return replace(cfg, model=model, train=train)


def pretrain_key(cfg: Config) -> str:
    """Cache key of the shared pretraining: data, backbone geometry, optimiser settings, epochs."""
    parts = {"data": cfg.to_dict()["data"], "backbone": {f: getattr(cfg.model, f) for f in BACKBONE_FIELDS},
             "train": {f: getattr(cfg.train, f) for f in PRETRAIN_TRAIN_FIELDS},
             "epochs": cfg.train.pretrain_epochs}
    return "pre" + hashlib.sha256(json.dumps(parts, sort_keys=True, default=list).encode()).hexdigest()[:9]


def pretrained_backbones(cfg: Config, splits, progress: bool = True,
                         checkpoint_dir: Path | None = None) -> dict[str, Tensor]:
    """Glance and focus weights from the shared pretraining stage (trained once, then cached)."""
    pcfg = pretrain_config(cfg)
    result = train(PRETRAIN_MODEL, pcfg, splits, progress, checkpoint_dir, key=pretrain_key(cfg))
    return {k: v for k, v in result.model.state_dict().items() if k.startswith(SHARED_PREFIXES)}


def load_shared_backbones(model: nn.Module, weights: dict[str, Tensor]) -> int:
    """Copy pretrained glance/focus tensors whose name and shape match. Returns how many."""
    own = model.state_dict()
    matched = {k: v for k, v in weights.items() if k in own and own[k].shape == v.shape}
    model.load_state_dict(matched, strict=False)
    return len(matched)

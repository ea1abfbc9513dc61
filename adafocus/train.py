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

Checkpoints live in ``cache_dir("checkpoints")`` under ``<model>-<config hash>.pt``. They are
written atomically after every epoch; a run that was interrupted resumes at the next epoch and
ends with the same numbers as an uninterrupted run (RNG states are saved too). A finished
checkpoint is loaded instead of training again.
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

from adafocus.config import PRESETS, Config
from adafocus.losses import LossWeights, adafocus_loss, two_branch_loss
from adafocus.models.registry import create_model
from adafocus.paths import atomic_torch_save, cache_dir

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

def iterate_batches(dataset, batch_size: int, shuffle: bool, seed: int = 0) -> Iterator[dict[str, Tensor]]:
    """Batches of ``dict(video (B,T,C,H,W) float in [0,1], label (B,), boxes?, mask?)``.

    In-memory synthetic splits (with a ``clips`` attribute) are sliced directly, which is much
    faster than a DataLoader on 2 cores; other datasets go through a DataLoader.
    """
    n = len(dataset)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)) if shuffle else torch.arange(n)
    clips = getattr(dataset, "clips", None)
    if clips is not None:
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            yield {"video": clips.videos[idx].float().div_(255), "label": clips.labels[idx],
                   "boxes": clips.boxes[idx], "mask": clips.mask[idx], "index": idx}
        return
    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(dataset, order.tolist()),
                                         batch_size=batch_size, shuffle=False)
    for batch in loader:
        yield batch


def num_batches(dataset, batch_size: int) -> int:
    return math.ceil(len(dataset) / batch_size)


# ---------------------------------------------------------------------------------------------
# one epoch
# ---------------------------------------------------------------------------------------------

def has_learned_spatial_policy(model: nn.Module) -> bool:
    cfg = model.cfg
    return bool(cfg.spatial_policy and cfg.use_glance and cfg.patch_mode == "policy")


def run_epoch(model: nn.Module, batches, optimizer, scheduler, cfg: Config, stage: str,
              total: int | None = None, desc: str = "") -> dict[str, float]:
    """One training epoch. ``stage``: "pretrain", "phase1" or "phase2". Returns mean metrics."""
    model.train()
    weights = LossWeights.from_train(cfg.train)
    frame_size = cfg.data.frame_size
    sums: dict[str, float] = {}
    correct = seen = 0
    for batch in tqdm(batches, total=total, desc=desc, leave=False, disable=not desc):
        video, labels = batch["video"], batch["label"]
        gt = {"gt_boxes": batch.get("boxes"), "gt_mask": batch.get("mask")}
        if stage == "phase1" and has_learned_spatial_policy(model):
            out = model(video, **gt, patch_mode="random", frame_mode="uniform")
            loss, parts = adafocus_loss(out, labels, weights, frame_size)
        elif stage == "phase2" and has_learned_spatial_policy(model):
            out = model(video, **gt)
            out_random = model(video, **gt, patch_mode="random")
            loss, parts = two_branch_loss(out, out_random, labels, weights, frame_size, gt["gt_boxes"])
        else:
            out = model(video, **gt)
            loss, parts = adafocus_loss(out, labels, weights, frame_size, gt["gt_boxes"])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.train.grad_clip > 0:
            nn.utils.clip_grad_norm_(model.parameters(), cfg.train.grad_clip)
        optimizer.step()
        scheduler.step()
        b = len(labels)
        for k, v in {"loss": float(loss.detach()), **parts}.items():
            sums[k] = sums.get(k, 0.0) + v * b
        correct += int((out.logits.argmax(-1) == labels).sum())
        seen += b
    metrics = {f"train_{k}": v / max(seen, 1) for k, v in sums.items()}
    metrics["train_acc"] = correct / max(seen, 1)
    return metrics


@torch.no_grad()
def accuracy(model: nn.Module, dataset, batch_size: int = 64) -> float:
    """Top-1 accuracy of the final exit (eval mode: midpoint frame sampling, no randomness)."""
    model.eval()
    correct = 0
    for batch in iterate_batches(dataset, batch_size, shuffle=False):
        out = model(batch["video"], gt_boxes=batch.get("boxes"), gt_mask=batch.get("mask"))
        correct += int((out.logits.argmax(-1) == batch["label"]).sum())
    return correct / max(len(dataset), 1)


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
    """Load a checkpoint and check it belongs to ``model_name`` and the config hash ``key``."""
    state = torch.load(path, map_location="cpu", weights_only=False)
    if state.get("model_name") != model_name or state.get("config_hash") != key:
        raise CheckpointError(
            f"{path}: checkpoint is for model {state.get('model_name')!r} with config hash "
            f"{state.get('config_hash')!r}, expected model {model_name!r} with config hash {key!r}")
    return state


def _save(path: Path, model_name: str, key: str, cfg: Config, model, opt, sched, stage_idx: int, epoch: int,
          history: list[dict], done: bool) -> None:
    atomic_torch_save({
        "model_name": model_name, "config_hash": key, "config": cfg.to_dict(),
        "model": model.state_dict(), "optimizer": opt.state_dict() if opt else None,
        "scheduler": sched.state_dict() if sched else None, "stage_idx": stage_idx, "epoch": epoch,
        "history": history, "done": done, "torch_rng": torch.get_rng_state(),
    }, path)


# ---------------------------------------------------------------------------------------------
# the entry point
# ---------------------------------------------------------------------------------------------

def train(model_name: str, cfg: Config, splits: dict[str, Any] | None = None, progress: bool = True,
          checkpoint_dir: Path | None = None, retrain: bool = False, key: str | None = None) -> TrainResult:
    """Train ``model_name`` (see :func:`adafocus.models.registry.list_models`) under ``cfg``.

    Loads the finished checkpoint when there is one (unless ``retrain``), resumes a partial one,
    else trains from the shared pretrained backbones. ``splits``: ``{"train": ds, "val": ds}``;
    by default the synthetic benchmark of ``cfg.data``.
    """
    cfg.validate()
    torch.set_num_threads(cfg.train.num_threads)
    if splits is None:
        from adafocus.data.synthetic import load_splits
        splits = load_splits(cfg.data, progress=progress)
    key = key or cfg.hash()
    path = checkpoint_path(model_name, cfg, checkpoint_dir, key)
    torch.manual_seed(cfg.train.seed)
    model = create_model(model_name, cfg)

    state = None
    if path.exists() and not retrain:
        state = load_checkpoint(path, model_name, key)
        model.load_state_dict(state["model"])
        if state["done"]:
            return TrainResult(model.eval(), pd.DataFrame(state["history"]), path, from_cache=True)
    elif model_name != PRETRAIN_MODEL and cfg.train.pretrain_epochs > 0:
        load_shared_backbones(model, pretrained_backbones(cfg, splits, progress, checkpoint_dir))

    stages = stages_for(model_name, cfg)
    history: list[dict] = list(state["history"]) if state else []
    start_stage, start_epoch = (state["stage_idx"], state["epoch"] + 1) if state else (0, 0)
    if state:
        torch.set_rng_state(state["torch_rng"])
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
            e0 = time.time()
            metrics = run_epoch(model, iterate_batches(splits["train"], cfg.train.batch_size, True, seed),
                                opt, sched, cfg, stage, num_batches(splits["train"], cfg.train.batch_size),
                                desc=f"{model_name} {stage} {epoch + 1}/{epochs}" if progress else "")
            val_acc = accuracy(model, splits["val"]) if "val" in splits and len(splits["val"]) else float("nan")
            history.append({"model": model_name, "stage": stage, "epoch": epoch + 1, **metrics,
                            "val_acc": val_acc, "seconds": time.time() - e0})
            if progress:
                tqdm.write(f"{model_name} {stage} epoch {epoch + 1}/{epochs}: "
                           f"loss {metrics['train_loss']:.3f} train acc {metrics['train_acc']:.3f} "
                           f"val acc {val_acc:.3f} ({history[-1]['seconds']:.0f} s)")
            last = stage_idx == len(stages) - 1 and epoch == epochs - 1
            _save(path, model_name, key, cfg, model, opt, sched, stage_idx, epoch, history, done=False)
            if cfg.train.max_minutes and (time.time() - t0) / 60 > cfg.train.max_minutes and not last:
                tqdm.write(f"{model_name}: stopped after {cfg.train.max_minutes} min; run again to resume")
                return TrainResult(model.eval(), pd.DataFrame(history), path, from_cache=False)
    _save(path, model_name, key, cfg, model, None, None, len(stages), 0, history, done=True)
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

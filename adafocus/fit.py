"""The training loop shared by the shared pretraining and every video model: epochs, optimiser, checkpoints.

:func:`fit` runs a :class:`FitJob` (a module, its training step, its batches, an evaluation and a
checkpoint file) for ``train.epochs`` epochs with AdamW or SGD, per-part learning rates and a cosine
schedule (:func:`make_optimizer`). After every epoch it writes a checkpoint atomically, with a
SHA-256 of its contents, holding the weights, the optimiser and RNG states and the history, so a
run interrupted at any moment (even by SIGKILL) resumes after its last finished epoch
(:func:`resume_state`) and ends with the same numbers as an uninterrupted one. Checkpoints load
with ``weights_only=True`` (:func:`load_checkpoint`): a file that would need arbitrary unpickling
is refused, never run.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from adafocus import distributed
from adafocus.config import TrainConfig
from adafocus.data.batches import ground_truth_kwargs, iterate_batches
from adafocus.distributed import Dist
from adafocus.paths import CorruptFileError, cache_dir, checked_torch_load, checked_torch_save


@dataclass
class TrainResult:
    model: nn.Module
    history: pd.DataFrame  # one row per epoch: epoch, losses, train/val accuracy, seconds
    checkpoint: Path
    from_cache: bool  # True when a finished checkpoint was loaded instead of training
    trace: list[dict[str, Any]] = field(default_factory=list)  # policy recordings (train.record_policy)


@torch.no_grad()
def accuracy(model: nn.Module, dataset, batch_size: int = 64, d: Dist = Dist()) -> float:
    """Top-1 accuracy of the final exit (eval mode: midpoint frame sampling, no randomness).
    Data-parallel: each rank scores its share of the clips and the counts are summed."""
    model.eval()
    correct = 0
    for batch in iterate_batches(dataset, batch_size, shuffle=False, d=d, pad=False):
        out = model(batch["video"], **ground_truth_kwargs(model, batch))
        correct += int((out.logits.argmax(-1) == batch["label"]).sum())
    return distributed.sum_all({"correct": correct}, d)["correct"] / max(len(dataset), 1)


class CheckpointError(ValueError):
    """A checkpoint that does not belong to the requested model and config."""


def make_optimizer(model: nn.Module, train: TrainConfig, steps: int):
    """AdamW (or SGD) with per-part learning rates and a cosine schedule over ``steps``."""
    t = train
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


def run_epoch(module: nn.Module, step: nn.Module, batches: Iterable[dict], optimizer, scheduler, grad_clip: float,
              total: int | None = None, desc: str = "", d: Dist = Dist()) -> dict[str, float]:
    """One training epoch of ``step`` (a module whose forward maps a batch to ``(loss, logits, parts)``)
    over ``module``'s parameters. Returns mean metrics (over every rank's samples when data-parallel)."""
    module.train()
    step = distributed.wrap(step, d)
    sums: dict[str, float] = {}
    for batch in tqdm(batches, total=total, desc=desc, leave=False, disable=not desc):
        labels = batch["label"]
        loss, logits, parts = step(batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip > 0:
            nn.utils.clip_grad_norm_(module.parameters(), grad_clip)
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


def checkpoint_file(name: str, preset: str | None, key: str, directory: Path | None = None) -> Path:
    """``<directory or cache_dir("checkpoints")>/<name>-<preset>-<key>.pt`` (``<name>-<key>.pt`` without a preset:
    one file per key, shared by every preset whose config gives that key)."""
    directory = Path(directory) if directory is not None else cache_dir("checkpoints")
    return directory / (f"{name}-{key}.pt" if preset is None else f"{name}-{preset}-{key}.pt")


CHECKPOINT_FIELDS = {"model": dict, "history": list, "done": bool, "epoch": int, "torch_rng": (Tensor, list),
                     "trace": list}


def load_checkpoint(path: Path, model_name: str, key: str) -> dict[str, Any]:
    """Load a checkpoint and check it is intact and belongs to ``model_name`` and the key ``key``.

    Raises :class:`CheckpointError` naming the file when it is empty, truncated, altered (its
    SHA-256 does not match), needs arbitrary unpickling, or is for another model or config.
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
    bad = [f"{k} ({type(state.get(k)).__name__})" for k, t in CHECKPOINT_FIELDS.items()
           if not isinstance(state.get(k), t)]
    if bad or not all(isinstance(v, Tensor) for v in state["model"].values()):
        raise CheckpointError(f"{path}: missing or malformed fields {bad or ['model (not all tensors)']}; expected "
                              "a checkpoint written by adafocus.train; delete it (or train with retrain=True)")
    return state


def _save(path: Path, model_name: str, key: str, cfg_dict: dict, model, opt, sched, epoch: int,
          history: list[dict], trace: list[dict], done: bool, d: Dist = Dist()) -> None:
    """Write a checkpoint (rank 0 only; every rank must call it: the RNG states are gathered)."""
    rng_states = distributed.gather_objects(torch.get_rng_state(), d)
    if d.is_main:
        checked_torch_save({
            "model_name": model_name, "config_hash": key, "config": cfg_dict,
            "model": model.state_dict(), "optimizer": opt.state_dict() if opt else None,
            "scheduler": sched.state_dict() if sched else None, "epoch": epoch,
            "history": history, "trace": trace, "done": done, "torch_rng": rng_states, "world_size": d.world_size,
        }, path)
    distributed.barrier(d)


@dataclass
class FitJob:
    """What :func:`fit` needs: a module and its training step, batches, an evaluation, a checkpoint."""

    name: str  # model name, for the checkpoint and the progress bar
    module: nn.Module  # whose parameters are optimised (must have param_groups())
    step: nn.Module  # batch -> (loss, logits, {term: value})
    batches: Callable[[int], Iterable[dict]]  # epoch seed -> the epoch's batches
    batches_per_epoch: int
    evaluate: Callable[[], dict[str, float]]  # validation metrics after an epoch: {"val_acc": ..., ...}
    train: TrainConfig  # optimiser, epochs, seed, grad_clip, max_minutes
    path: Path
    key: str
    config: dict  # saved with the checkpoint
    record: Callable[[], dict] | None = None  # called after every epoch; its dict goes into the trace


def fit(job: FitJob, state: dict | None, progress: bool, d: Dist = Dist()) -> tuple[list[dict], list[dict], bool]:
    """Train ``job`` for ``job.train.epochs`` epochs from ``state`` (a partial checkpoint) or from the start.

    Writes a checkpoint after every epoch (and a final one). Returns ``(history, trace, finished)``;
    ``finished`` is False when ``train.max_minutes`` stopped it early (run again to resume).
    """
    t = job.train
    history: list[dict] = list(state["history"]) if state else []
    trace: list[dict] = list(state["trace"]) if state else []
    first = state["epoch"] + 1 if state else 0
    if state:
        rng = state["torch_rng"]
        rng = rng if isinstance(rng, list) else [rng]  # one state per rank
        torch.set_rng_state(rng[d.rank] if len(rng) == d.world_size else rng[0])
    opt, sched = make_optimizer(job.module, t, t.epochs * job.batches_per_epoch)
    if state and state["optimizer"] is not None and first > 0:
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
    if job.record is not None and first == 0 and not trace:  # the policy before any training
        trace.append({"epoch": 0, **job.record()})
    t0 = time.time()
    for epoch in range(first, t.epochs):
        seed = t.seed * 1000 + epoch
        e0 = time.time()
        metrics = run_epoch(job.module, job.step, job.batches(seed), opt, sched, t.grad_clip, job.batches_per_epoch,
                            desc=f"{job.name} {epoch + 1}/{t.epochs}" if progress else "", d=d)
        distributed.broadcast_module(job.module, d)  # rank 0's BatchNorm statistics everywhere
        val = job.evaluate()
        val_acc = val["val_acc"]
        history.append({"model": job.name, "epoch": epoch + 1, **metrics, **val, "seconds": time.time() - e0})
        if job.record is not None:
            trace.append({"epoch": epoch + 1, **job.record()})
        if progress:
            tqdm.write(f"{job.name} epoch {epoch + 1}/{t.epochs}: loss {metrics['train_loss']:.3f} "
                       f"train acc {metrics['train_acc']:.3f} val acc {val_acc:.3f} ({history[-1]['seconds']:.0f} s)")
        _save(job.path, job.name, job.key, job.config, job.module, opt, sched, epoch, history, trace, False, d)
        if t.max_minutes and (time.time() - t0) / 60 > t.max_minutes and epoch < t.epochs - 1:
            if progress:
                tqdm.write(f"{job.name}: stopped after {t.max_minutes} min; run again to resume")
            return history, trace, False
    if not distributed.parameters_agree(job.module, d):
        raise RuntimeError(f"{job.name}: data-parallel ranks ended with different weights")
    _save(job.path, job.name, job.key, job.config, job.module, None, None, t.epochs, history, trace, True, d)
    return history, trace, True


def resume_state(path: Path, name: str, key: str, module: nn.Module, retrain: bool) -> dict | None:
    """The checkpoint at ``path`` loaded into ``module`` (None when there is none or ``retrain``)."""
    if retrain or not path.exists():
        return None
    state = load_checkpoint(path, name, key)
    try:
        module.load_state_dict(state["model"])
    except RuntimeError as e:  # missing, unexpected or mis-shaped weights: another model's file
        raise CheckpointError(f"{path}: its weights do not fit model {name!r} under this config "
                              f"({' '.join(str(e).split())[:300]}); delete it (or train with retrain=True)") from None
    return state

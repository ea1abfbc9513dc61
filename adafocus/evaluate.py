"""Evaluation: predictions on a split, accuracy, MACs per video and policy metrics, as tables.

:func:`predict` runs a model over a dataset and stacks what it chose; :func:`evaluate_model`
turns that into one row (a dict) per model: accuracy, MACs per video, and, on the synthetic
benchmark, how well the chosen boxes and frames match the ground truth next to the same
numbers for random boxes of the same size and for the uniform frame grid.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from adafocus.analysis.policy_metrics import chosen_box_iou, frame_recall_precision, policy_summary
from adafocus.config import Config, ConfigError
from adafocus.data.batches import ground_truth_kwargs, iterate_batches, num_batches
from adafocus.flops import count_macs, dummy_input
from adafocus.models.patches import clamp_boxes
from adafocus.models.sampling import uniform_indices
from adafocus.models.surrogates import spatial_surrogate_logits


@dataclass
class Predictions:
    """Everything a model chose on a split, stacked over clips (N = clips)."""

    labels: Tensor  # (N,)
    logits: Tensor  # (N, n) final exit
    exit_logits: Tensor  # (N, S, n)
    boxes: Tensor  # (N, K, 4) chosen boxes, pixels
    frame_idx: Tensor  # (N, K) chosen frames
    temporal_weights: Tensor | None  # (N, T_g)
    gt_boxes: Tensor | None  # (N, T, 4)
    gt_mask: Tensor | None  # (N, T)

    @property
    def accuracy(self) -> float:
        return float((self.logits.argmax(-1) == self.labels).float().mean())


@torch.no_grad()
def predict(model: nn.Module, dataset, batch_size: int = 64, progress: bool = False) -> Predictions:
    """Run ``model`` (eval mode: deterministic frame choice) over ``dataset``; the ground truth reaches the
    model only when its own modes read it (the oracle: :func:`~adafocus.data.batches.ground_truth_kwargs`)."""
    model.eval()
    parts: dict[str, list[Tensor]] = {f.name: [] for f in fields(Predictions)}
    for batch in tqdm(iterate_batches(dataset, batch_size, shuffle=False), total=num_batches(dataset, batch_size),
                      desc="predict", disable=not progress, leave=False):
        out = model(batch["video"], **ground_truth_kwargs(model, batch))
        values = {"labels": batch["label"], "logits": out.logits, "exit_logits": out.exit_logits,
                  "boxes": out.boxes, "frame_idx": out.frame_idx, "temporal_weights": out.temporal_weights,
                  "gt_boxes": batch.get("boxes"), "gt_mask": batch.get("mask")}
        for k, v in values.items():
            if v is not None:
                parts[k].append(v)
    return Predictions(**{k: torch.cat(v) if v else None for k, v in parts.items()})


def supervision(model: nn.Module, cfg: Config) -> str:
    """What ground truth ``model`` was trained with under ``cfg``: ``"oracle"`` (its own modes read the true
    boxes or frames), ``"hinted"`` (its loss did: an ablation) or ``"none"`` (label-free)."""
    if getattr(model, "needs_ground_truth", False):
        return "oracle"
    return "hinted" if cfg.train.uses_ground_truth else "none"


def inference_macs(model: nn.Module, cfg: Config) -> int:
    """MACs of one video through the model's inference path (eval mode, all exits computed), at ``cfg``'s geometry."""
    x = dummy_input(cfg)
    return count_macs(model, x["video"], **ground_truth_kwargs(model, x))


def random_box_iou(preds: Predictions, frame_size: int, seed: int = 0) -> float:
    """Mean IoU with the ground truth of boxes of the *same size* as the chosen ones, placed
    uniformly at random inside the frame: what a policy that ignores the video would get."""
    g = torch.Generator().manual_seed(seed)
    w = preds.boxes[..., 2] - preds.boxes[..., 0]
    h = preds.boxes[..., 3] - preds.boxes[..., 1]
    x0 = torch.rand(w.shape, generator=g) * (frame_size - w)
    y0 = torch.rand(h.shape, generator=g) * (frame_size - h)
    rand = torch.stack([x0, y0, x0 + w, y0 + h], dim=-1)
    return float(chosen_box_iou(rand, preds.frame_idx, preds.gt_boxes, preds.gt_mask).nanmean())


@torch.no_grad()
def spatial_signal(model: nn.Module, dataset, batch_size: int = 100, seed: int = 0) -> dict[str, float]:
    """Does the spatial surrogate carry a signal? Its head's accuracy on glance-map crops at the **true**
    boxes (brought into ``[box_min, box_max]``) against crops at **random** boxes of the same sizes, at
    the glance frames where the object is visible. Equal accuracies mean the surrogate cannot tell
    where the object is, so it cannot teach the policy. ``{}`` for a model without a spatial surrogate
    or data without ground truth."""
    head = getattr(model, "spatial_head", None)
    if head is None or getattr(getattr(dataset, "clips", None), "boxes", None) is None:
        return {}
    model.eval()
    c, S, g = model.cfg, model.frame_size, torch.Generator().manual_seed(seed)
    correct = {"true": 0, "random": 0}
    seen = 0
    for batch in iterate_batches(dataset, batch_size, shuffle=False):
        glance = model.glance_features(batch["video"])
        pos = glance.positions  # (B, T_g)
        true = batch["boxes"].gather(1, pos[..., None].expand(-1, -1, 4))  # (B, T_g, 4)
        true = clamp_boxes(true, S, c.box_min, c.box_max)
        w, h = true[..., 2] - true[..., 0], true[..., 3] - true[..., 1]
        x0, y0 = torch.rand(w.shape, generator=g) * (S - w), torch.rand(h.shape, generator=g) * (S - h)
        rand = torch.stack([x0, y0, x0 + w, y0 + h], dim=-1)
        visible = batch["mask"].gather(1, pos)  # (B, T_g): only frames where the object can be seen
        keep = visible.any(1)
        for name, boxes in (("true", true), ("random", rand)):
            logits = spatial_surrogate_logits(glance.maps[keep], boxes[keep], S, c.surrogate_size, head,
                                              frame_weights=visible[keep])
            correct[name] += int((logits.argmax(-1) == batch["label"][keep]).sum())
        seen += int(keep.sum())
    return {"surrogate_acc_true_boxes": correct["true"] / max(seen, 1),
            "surrogate_acc_random_boxes": correct["random"] / max(seen, 1)}


def policy_report(preds: Predictions, num_frames: int, frame_size: int) -> dict[str, float]:
    """Policy metrics beside their naive references (random boxes, the uniform frame grid)."""
    # nothing to score without ground truth, or without patches (the glance-only model has K = 0)
    if preds.gt_boxes is None or preds.gt_mask is None or preds.frame_idx.shape[1] == 0:
        return {}
    row = policy_summary(preds.boxes, preds.frame_idx, preds.gt_boxes, preds.gt_mask)
    row["random_box_iou"] = random_box_iou(preds, frame_size)
    K = preds.frame_idx.shape[1]
    grid = uniform_indices(num_frames, K).expand(len(preds.labels), K)
    row["uniform_frame_recall"] = float(frame_recall_precision(grid, preds.gt_mask)[0].mean())
    return row


def evaluate_model(model_name: str, cfg: Config, splits: dict[str, Any] | None = None, split: str = "test",
                   progress: bool = True) -> dict[str, Any]:
    """Train (or load) ``model_name`` under ``cfg`` and evaluate it on ``split``: one table row."""
    from adafocus.data.synthetic import SPLITS
    from adafocus.models.registry import model_config
    from adafocus.train import train

    model_config(model_name, cfg)  # an unknown model or a wrong cfg fails here, before any data or training
    available = list(splits) if splits is not None else list(SPLITS)
    if split not in available:
        raise ConfigError(f"split: expected one of the given splits {available}, got {split!r}")
    if splits is None:
        from adafocus.data.synthetic import load_splits
        splits = load_splits(cfg.data, progress=progress)
    result = train(model_name, cfg, splits, progress=progress)
    preds = predict(result.model, splits[split], progress=progress)
    macs = inference_macs(result.model, cfg)
    row: dict[str, Any] = {"method": model_name, "preset": cfg.name, "recipe": cfg.train.recipe,
                           "supervision": supervision(result.model, cfg), "seed": cfg.train.seed,
                           "patch_size": cfg.model.patch_size,
                           "num_focus": cfg.model.num_focus, "accuracy": preds.accuracy,
                           "gmacs": macs / 1e9, "mmacs": macs / 1e6,
                           "params_m": sum(p.numel() for p in result.model.parameters()) / 1e6}
    row.update(policy_report(preds, cfg.data.num_frames, cfg.data.frame_size))
    row.update(spatial_signal(result.model, splits[split]))
    return row

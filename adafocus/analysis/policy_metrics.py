"""How well do the policies find what matters? Metrics against the benchmark's ground truth.

Boxes are ``(x0, y0, x1, y1)`` in pixels. Per clip the spatial policy gives one box per chosen
frame; the benchmark gives the true box of every frame and a mask of informative frames.
"""

from __future__ import annotations

import torch
from torch import Tensor

from adafocus.models.patches import box_centers


def box_iou(a: Tensor, b: Tensor) -> Tensor:
    """Elementwise IoU of two box tensors of the same shape ``(..., 4)``. Returns ``(...)``."""
    if a.shape != b.shape or a.shape[-1] != 4:
        raise ValueError(f"box_iou: expected two (..., 4) tensors of one shape, got {tuple(a.shape)} "
                         f"and {tuple(b.shape)}")
    w = (torch.minimum(a[..., 2], b[..., 2]) - torch.maximum(a[..., 0], b[..., 0])).clamp(min=0)
    h = (torch.minimum(a[..., 3], b[..., 3]) - torch.maximum(a[..., 1], b[..., 1])).clamp(min=0)
    inter = w * h
    area = lambda x: (x[..., 2] - x[..., 0]).clamp(min=0) * (x[..., 3] - x[..., 1]).clamp(min=0)  # noqa: E731
    return inter / (area(a) + area(b) - inter).clamp(min=1e-6)


def gather_frames(per_frame: Tensor, frame_idx: Tensor) -> Tensor:
    """Pick frames: ``per_frame`` (B, T, ...) at ``frame_idx`` (B, K) -> (B, K, ...)."""
    idx = frame_idx.long().view(*frame_idx.shape, *([1] * (per_frame.dim() - 2)))
    return per_frame.gather(1, idx.expand(*frame_idx.shape, *per_frame.shape[2:]))


def chosen_box_iou(boxes: Tensor, frame_idx: Tensor, gt_boxes: Tensor, gt_mask: Tensor | None = None,
                   informative_only: bool = True) -> Tensor:
    """IoU of each chosen box with the true box of its frame: ``(B, K)``; NaN where excluded.

    ``boxes`` (B, K, 4) at ``frame_idx`` (B, K); ``gt_boxes`` (B, T, 4); ``gt_mask`` (B, T).
    With ``informative_only`` the frames where the object is not visible are excluded (NaN).
    """
    iou = box_iou(boxes.float(), gather_frames(gt_boxes.float(), frame_idx))
    if informative_only and gt_mask is not None:
        iou = iou.masked_fill(~gather_frames(gt_mask.bool(), frame_idx), float("nan"))
    return iou


def center_error(boxes: Tensor, frame_idx: Tensor, gt_boxes: Tensor) -> Tensor:
    """Distance in pixels between chosen and true box centers: ``(B, K)``."""
    diff = box_centers(boxes.float()) - box_centers(gather_frames(gt_boxes.float(), frame_idx))
    return diff.norm(dim=-1)


def trajectory_smoothness(boxes: Tensor) -> Tensor:
    """Mean distance in pixels that the box center moves between consecutive boxes: ``(B,)``.

    ``boxes``: (B, N, 4) in time order. Lower is smoother; the true objects move ``speed`` px/frame.
    """
    c = box_centers(boxes.float())
    return (c[:, 1:] - c[:, :-1]).norm(dim=-1).mean(dim=1)


def frame_recall_precision(frame_idx: Tensor, gt_mask: Tensor) -> tuple[Tensor, Tensor]:
    """Per clip: precision = informative frames among the chosen ones;
    recall = chosen informative frames / min(K, number of informative frames) (1 = as good as
    possible with K frames). Returns ``(recall (B,), precision (B,))``."""
    hit = gather_frames(gt_mask.bool(), frame_idx).float()  # (B, K)
    K = frame_idx.shape[1]
    available = gt_mask.bool().sum(dim=1).clamp(max=K).clamp(min=1).float()
    return hit.sum(dim=1) / available, hit.mean(dim=1)


def policy_summary(boxes: Tensor, frame_idx: Tensor, gt_boxes: Tensor, gt_mask: Tensor) -> dict[str, float]:
    """Dataset-level means: ``box_iou`` (informative chosen frames), ``center_error_px``,
    ``smoothness_px``, ``frame_recall``, ``frame_precision``."""
    iou = chosen_box_iou(boxes, frame_idx, gt_boxes, gt_mask)
    recall, precision = frame_recall_precision(frame_idx, gt_mask)
    return {
        "box_iou": float(iou.nanmean()),
        "center_error_px": float(center_error(boxes, frame_idx, gt_boxes).mean()),
        "smoothness_px": float(trajectory_smoothness(boxes).mean()) if boxes.shape[1] > 1 else float("nan"),
        "frame_recall": float(recall.mean()),
        "frame_precision": float(precision.mean()),
    }

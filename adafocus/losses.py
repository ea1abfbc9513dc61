"""The training loss: every term of every recipe in one function (docs/design.md, "Training signal").

:func:`training_loss` takes the model (for its surrogate head), the policy branch's output, the
random-patch branch's output (or None), the batch and the :class:`~adafocus.config.TrainConfig`, and
returns the total and each term's value. The terms, with the weight each recipe gives them:

=================  ==========================================================  ===========================
term               what                                                        weight
=================  ==========================================================  ===========================
``exits``          cross-entropy of every exit (mean over exits)               1, averaged over branches
``glance_frames``  cross-entropy of each glance frame alone                    1
``focus_frames``   cross-entropy of each focus patch alone                     1, averaged over branches
``spatial``        the spatial surrogate's cross-entropy (trains the boxes)    ``train.spatial_weight``
``temporal``       the temporal surrogate's cross-entropy (trains ``w``)       ``train.temporal_weight``
``scale``          ``mean((s - 1)²)`` over the box scales: starts boxes wide    ``train.scale_reg``
``center``         L1 from box centers to the true ones (``hinted`` only)      ``train.center_supervision``
``temporal_mask``  KL from the true informative frames to ``w`` (``hinted``)   ``train.temporal_supervision``
=================  ==========================================================  ===========================

The random-patch branch (same glance, same frames, boxes of side ``P`` at random positions) adds
its own ``exits`` and ``focus_frames``; each of those is the mean of the two branches, as in the
paper, where every term is averaged over the two branches (the glance and surrogate terms are the
same in both). The ground truth is read only for the ``hinted`` terms, and only when their weight is
positive: the label-free recipes never touch ``batch["boxes"]`` or ``batch["mask"]``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from adafocus.config import TrainConfig
from adafocus.models.adafocus import AdaFocusOutput
from adafocus.models.surrogates import spatial_surrogate_logits, temporal_surrogate_logits

TEMPORAL_REMOVAL_FRACTION = 3  # the temporal surrogate removes up to T_g // 3 - 1 frames per draw (the paper)


def exit_cross_entropy(exit_logits: Tensor, labels: Tensor) -> Tensor:
    """Mean cross-entropy over every step (exits, or frames classified alone) against the clip's label.
    ``exit_logits``: (B, S, n); ``labels``: (B,)."""
    B, S, n = exit_logits.shape
    return F.cross_entropy(exit_logits.reshape(B * S, n), labels.repeat_interleave(S))


def scale_regulariser(actions: Tensor) -> Tensor:
    """``mean((s - 1)²)`` over the scale actions ``actions[..., 2:4]`` ``(B, T_g, 4)``: 0 for the largest boxes."""
    return (actions[..., 2:4] - 1.0).pow(2).mean()


def box_center_l1(box_centers: Tensor, gt_boxes: Tensor, positions: Tensor, frame_size: int) -> Tensor:
    """L1 between predicted box centers ``(B, T_g, 2)`` (x, y pixels) and the true ones at the glance
    frames ``positions`` ``(B, T_g)``, in frame units. ``gt_boxes``: (B, T, 4) x0, y0, x1, y1. A hint."""
    gt = gt_boxes.gather(1, positions[..., None].expand(-1, -1, 4))  # (B, T_g, 4)
    gt_centers = torch.stack([(gt[..., 0] + gt[..., 2]) / 2, (gt[..., 1] + gt[..., 3]) / 2], dim=-1)
    return (box_centers - gt_centers).abs().mean() / frame_size


def temporal_mask_kl(weights: Tensor, glance_mask: Tensor) -> Tensor:
    """KL(target || w) between the normalised true mask at the glance frames and the temporal policy's ``w``.

    ``weights``: (B, T_g) the softmax ``w``; ``glance_mask``: (B, T_g) bool, the object visible at
    each glance frame. The target spreads its mass evenly over the informative glance frames; clips
    with no informative glance frame are skipped (0 when there are none at all). A hint.
    """
    m = glance_mask.to(weights.dtype)
    count = m.sum(-1, keepdim=True)
    keep = count.squeeze(-1) > 0
    if not bool(keep.any()):
        return weights.sum() * 0.0
    target = (m / count.clamp(min=1))[keep]
    w = weights[keep].clamp(min=1e-12)
    kl = (target * (target.clamp(min=1e-12).log() - w.log())).sum(-1)
    return kl.mean()


def training_loss(model: nn.Module, out: AdaFocusOutput, out_random: AdaFocusOutput | None, batch: dict,
                  train: TrainConfig) -> tuple[Tensor, dict[str, float]]:
    """The total loss of one training step and each term's value (see the module's table).

    ``out``: the model's output in training mode; ``out_random``: the random-patch branch or None;
    ``batch``: ``label`` (B,), and ``boxes`` (B, T, 4) / ``mask`` (B, T) only for the ``hinted``
    terms. Raises ``FloatingPointError`` naming the term when any term is not finite.
    """
    labels = batch["label"]
    plan, cfg = out.plan, model.cfg
    terms: dict[str, tuple[float, Tensor]] = {}  # name -> (weight, value)
    branches = [out] if out_random is None else [out, out_random]
    terms["exits"] = (1.0, sum(exit_cross_entropy(o.exit_logits, labels) for o in branches) / len(branches))
    if out.glance_frame_logits is not None:
        terms["glance_frames"] = (1.0, exit_cross_entropy(out.glance_frame_logits, labels))
    if out.focus_frame_logits is not None:
        terms["focus_frames"] = (1.0, sum(exit_cross_entropy(o.focus_frame_logits, labels)
                                         for o in branches) / len(branches))
    if plan.patch_mode == "policy" and plan.actions is not None:
        if train.spatial_weight > 0:
            maps = plan.glance.maps if cfg.policy_trains_glance else plan.glance.maps.detach()
            logits = spatial_surrogate_logits(maps, plan.glance_boxes, model.frame_size, cfg.surrogate_size,
                                              model.spatial_head)
            terms["spatial"] = (train.spatial_weight, F.cross_entropy(logits, labels))
        if train.scale_reg > 0:
            terms["scale"] = (train.scale_reg, scale_regulariser(plan.actions))
        if train.center_supervision > 0:
            terms["center"] = (train.center_supervision,
                               box_center_l1(out.box_centers, batch["boxes"], plan.glance.positions,
                                             model.frame_size))
    if plan.frame_mode == "policy" and plan.weights is not None:
        if train.temporal_weight > 0:
            removals = max(1, plan.weights.shape[1] // TEMPORAL_REMOVAL_FRACTION)
            logits = temporal_surrogate_logits(out.glance_frame_logits, plan.weights, train.temporal_draws, removals)
            terms["temporal"] = (train.temporal_weight, F.cross_entropy(logits, labels))
        if train.temporal_supervision > 0:
            glance_mask = batch["mask"].gather(1, plan.glance.positions).bool()
            terms["temporal_mask"] = (train.temporal_supervision, temporal_mask_kl(plan.weights, glance_mask))
    for name, (_, value) in terms.items():
        if not torch.isfinite(value):
            raise FloatingPointError(f"loss term {name!r} is not finite ({value.item()}); "
                                     "lower train.lr or check the input video for NaNs")
    total = sum(weight * value for weight, value in terms.values())
    return total, {name: float(value.detach()) for name, (_, value) in terms.items()}

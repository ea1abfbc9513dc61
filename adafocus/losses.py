"""Training losses of Uni-AdaFocus (DESIGN.md 1, "Training signal").

The real patches are cropped with *detached* boxes and frame indices, so the classifier's
cross-entropy cannot move the policies. They learn through differentiable surrogates instead:

- spatial: the glance *feature map* is cropped with the same (non-detached) box by
  ``grid_sample``, pooled and classified (``out.spatial_logits``);
- temporal: a ``w``-weighted average of glance features over Monte Carlo draws of the frames
  taken is classified (``out.temporal_logits``).

The classifier is trained with cross-entropy on every exit plus glance-only and focus-only heads.
:func:`adafocus_loss` adds these up for one forward pass; :func:`two_branch_loss` averages a
policy-patch branch and a random-patch branch (which keeps the focus network robust while the
policy is young), as the paper does.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from adafocus.config import TrainConfig


@dataclass(frozen=True)
class LossWeights:
    """Weights of the loss terms. Defaults follow the paper (every term weighted 1)."""

    exits: float = 1.0
    glance: float = 1.0
    focus: float = 1.0
    spatial: float = 1.0
    temporal: float = 1.0
    size_penalty: float = 0.0
    center: float = 0.0
    temporal_mask: float = 0.0

    @classmethod
    def from_train(cls, train: TrainConfig) -> "LossWeights":
        return cls(size_penalty=train.size_penalty, center=train.center_supervision,
                   temporal_mask=train.temporal_supervision)


def exit_cross_entropy(exit_logits: Tensor, labels: Tensor) -> Tensor:
    """Mean cross-entropy over every exit. ``exit_logits``: (B, S, n); ``labels``: (B,)."""
    B, S, n = exit_logits.shape
    return F.cross_entropy(exit_logits.reshape(B * S, n), labels.repeat_interleave(S))


def box_center_l1(box_centers: Tensor, gt_boxes: Tensor, glance_idx: Tensor, frame_size: int) -> Tensor:
    """L1 between predicted box centres and true ones at the glance frames, in frame units.

    ``box_centers``: (B, T_g, 2) as (x, y) pixels; ``gt_boxes``: (B, T, 4) x0, y0, x1, y1.
    Only possible on data with ground truth (the synthetic benchmark); off by default.
    """
    gt = gt_boxes[:, glance_idx]  # (B, T_g, 4)
    gt_centers = torch.stack([(gt[..., 0] + gt[..., 2]) / 2, (gt[..., 1] + gt[..., 3]) / 2], dim=-1)
    return (box_centers - gt_centers).abs().mean() / frame_size


def temporal_mask_kl(weights: Tensor, glance_mask: Tensor) -> Tensor:
    """KL(target || w) between the normalised true mask at the glance frames and the temporal policy's ``w``.

    ``weights``: (B, T_g) the softmax ``w``; ``glance_mask``: (B, T_g) bool, the object visible at
    each glance frame. The target spreads its mass evenly over the informative glance frames; clips
    with no informative glance frame are skipped (0 when there are none at all). Equals the
    cross-entropy minus the target's entropy: same gradient, 0 at the optimum. Only possible on
    data with ground truth (the synthetic benchmark); off by default.
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


def adafocus_loss(out, labels: Tensor, weights: LossWeights, frame_size: int,
                  gt_boxes: Tensor | None = None) -> tuple[Tensor, dict[str, float]]:
    """Sum of the loss terms for one forward pass. Returns ``(loss, {term: value})``.

    Terms whose logits are absent (a model without glance, policy or exits) are skipped.
    Raises ``FloatingPointError`` naming the term when any term is not finite.
    """
    terms: dict[str, Tensor] = {"exits": exit_cross_entropy(out.exit_logits, labels)}
    optional = {"glance": out.glance_logits, "focus": out.focus_logits,
                "spatial": out.spatial_logits, "temporal": out.temporal_logits}
    for name, logits in optional.items():
        if logits is not None:
            terms[name] = F.cross_entropy(logits, labels)
    if weights.size_penalty > 0 and out.glance_boxes is not None:
        b = out.glance_boxes  # (B, T_g, 4), carries gradients to the spatial policy
        terms["size_penalty"] = ((b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])).mean() / frame_size**2
    if weights.center > 0 and out.box_centers is not None and gt_boxes is not None:
        terms["center"] = box_center_l1(out.box_centers, gt_boxes, out.glance_idx, frame_size)
    glance_mask = getattr(out, "glance_mask", None)
    if weights.temporal_mask > 0 and out.temporal_weights is not None and glance_mask is not None:
        terms["temporal_mask"] = temporal_mask_kl(out.temporal_weights, glance_mask)
    for name, value in terms.items():
        if not torch.isfinite(value):
            raise FloatingPointError(f"loss term {name!r} is not finite ({value.item()}); "
                                     "lower train.lr or check the input video for NaNs")
    total = sum(getattr(weights, name) * value for name, value in terms.items())
    return total, {name: float(value.detach()) for name, value in terms.items()}


def two_branch_loss(out_policy, out_random, labels: Tensor, weights: LossWeights, frame_size: int,
                    gt_boxes: Tensor | None = None) -> tuple[Tensor, dict[str, float]]:
    """Average of the policy-patch branch and the random-patch branch (each weighted 1/2).

    The surrogate terms (spatial, temporal, size, centre, temporal mask) come from the policy branch only.
    """
    loss_p, parts_p = adafocus_loss(out_policy, labels, weights, frame_size, gt_boxes)
    classifier_only = LossWeights(exits=weights.exits, glance=weights.glance, focus=weights.focus,
                                  spatial=0.0, temporal=0.0)
    loss_r, parts_r = adafocus_loss(out_random, labels, classifier_only, frame_size)
    parts = dict(parts_p)
    parts.update({f"random_{k}": v for k, v in parts_r.items() if k in ("exits", "focus")})
    return 0.5 * (loss_p + loss_r), parts

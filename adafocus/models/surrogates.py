"""The surrogates: how the policies learn from the class label alone (docs/design.md, "Training signal").

The real patches are cropped with *detached* boxes at *integer* frame indices, so the classifier's
loss cannot reach either policy. Uni-AdaFocus gives each policy a differentiable stand-in for the
question "would looking there help to recognise the video?":

- :func:`spatial_surrogate_logits` -- the **spatial** policy's live boxes crop the glance *feature
  map* (detached: the glance is not trained by this signal) by bilinear interpolation; the crops are
  averaged over the glance frames and their grid and classified by a linear head. A box over the
  object crops features that name the class, so the head's cross-entropy pulls the boxes there.
- :func:`temporal_surrogate_logits` -- the **temporal** policy's ``w`` weights the glance's
  per-frame logits. Monte Carlo draws remove ``r = 0, 1, ..., R-1`` frames chosen according to
  ``w`` (without replacement), the remaining logits are averaged with their weights (divided by the
  *detached* sum of those weights) and the draws averaged. Frames whose logits name the class gain
  weight; removing frames at random makes the estimate reward putting mass on *several* useful
  frames, as the ``K`` focus frames will be spread by stratified sampling.

Both work only if the glance features carry class information: a glance that cannot tell the
classes apart gives the surrogates nothing to follow (the reason for the pretraining on images,
:mod:`adafocus.pretrain`).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from adafocus.models.patches import crop_patches


def spatial_surrogate_logits(maps: Tensor, boxes: Tensor, frame_size: int, size: int, head: nn.Module,
                             frame_weights: Tensor | None = None) -> Tensor:
    """Crop ``maps`` ``(B, T_g, C_g, h, w)`` with ``boxes`` ``(B, T_g, 4)`` (pixels of the frame) at ``size``²
    cells, average over frames and grid, classify: ``(B, n)``. Gradients reach ``boxes`` (and ``maps``
    if they are not detached by the caller). ``frame_weights`` ``(B, T_g)``: a weighted average over
    the frames instead (e.g. only the frames where the object is visible, for a diagnostic)."""
    if maps.dim() != 5 or boxes.shape != (*maps.shape[:2], 4):
        raise ValueError(f"spatial_surrogate_logits: expected maps (B, T_g, C, h, w) and boxes (B, T_g, 4), got "
                         f"{tuple(maps.shape)} and {tuple(boxes.shape)}")
    h, w = maps.shape[-2:]
    scale = torch.tensor([w, h, w, h], device=maps.device, dtype=maps.dtype) / frame_size
    crops = crop_patches(maps, boxes * scale, size).mean(dim=(3, 4))  # (B, T_g, C_g)
    if frame_weights is None:
        return head(crops.mean(dim=1))
    w = frame_weights.to(crops.dtype)
    return head((crops * w[..., None]).sum(1) / w.sum(1, keepdim=True).clamp(min=1e-12))


def temporal_surrogate_logits(frame_logits: Tensor, weights: Tensor, draws: int, removals: int,
                              generator: torch.Generator | None = None) -> Tensor:
    """Expected ``w``-weighted average of per-frame logits ``(B, T_g, n)`` under random removals: ``(B, n)``.

    ``removals`` ``R``: draws remove 0, 1, ..., R-1 frames (at least 1 value: no removal); ``draws``:
    Monte Carlo draws per removal count. Removed frames are drawn from ``w`` without replacement (one
    ordered draw of ``R - 1`` frames per Monte Carlo sample: its prefixes are the removals). Gradients
    reach ``weights`` through the weighted averages; the normaliser is detached.
    """
    B, T_g, n = frame_logits.shape
    if weights.shape != (B, T_g):
        raise ValueError(f"temporal_surrogate_logits: weights must be (B, T_g) = ({B}, {T_g}), got "
                         f"{tuple(weights.shape)}")
    R = max(1, min(int(removals), T_g))
    keep = torch.ones(B, draws, R, T_g, dtype=weights.dtype, device=weights.device)  # (B, D, R, T_g)
    if R > 1:
        p = weights.detach().float().clamp(min=0) + 1e-8
        order = torch.multinomial(p.repeat_interleave(draws, 0), R - 1, replacement=False, generator=generator)
        order = order.view(B, draws, R - 1)
        for r in range(1, R):  # removal count r: the first r frames of each ordered draw are gone
            keep[:, :, r].scatter_(-1, order[..., :r], 0.0)
    kept = keep * weights[:, None, None, :]  # (B, D, R, T_g)
    norm = kept.sum(-1, keepdim=True).detach().clamp(min=1e-12)
    mixed = torch.einsum("bdrt,btn->bdrn", kept / norm, frame_logits)  # (B, D, R, n)
    return mixed.mean(dim=(1, 2))

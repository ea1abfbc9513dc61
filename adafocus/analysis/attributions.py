"""Attributions with captum: which pixels, patches and frames does the classifier rely on?

**What is explained.** The policies' choices -- *which* ``K`` frames and *where* the boxes go --
are integer indices and detached boxes: sampling is not differentiable, so no attribution method
can say how a pixel moved the policy. Every function here therefore explains **the classifier given
the chosen patches**: the model runs once (eval mode) to fix its frame indices and boxes
(:func:`fix_policy`), then :class:`FixedPolicy` re-runs glance, focus and classifier on a
perturbed or interpolated video with those choices frozen. A pixel outside every chosen box still
gets credit through the glance network, which sees whole frames; a frame neither glanced at nor
chosen gets exactly zero.

Methods (each returns a tensor shaped like the input it explains):

- :func:`integrated_gradients` -- ``captum.attr.IntegratedGradients`` on the input frames:
  ``(B, T, C, H, W)``; the attributions sum to ``f(video) - f(baseline)`` (completeness).
- :func:`occlusion_time` -- ``captum.attr.Occlusion`` with one whole frame as the window: the drop
  of the target logit when that frame is blanked, broadcast over the frame: ``(B, T, C, H, W)``
  (:func:`frame_scores` reduces it to ``(B, T)``).
- :func:`occlusion_space` -- ``Occlusion`` with a square window sliding over each frame: ``(B, T, C, H, W)``.
- :func:`gradcam_focus` -- ``captum.attr.LayerGradCam`` on the focus network's last convolutional
  stage, upsampled to the patches: ``(B, K, P, P)``; :func:`patch_maps_to_frames` pastes them back
  into frame coordinates through the boxes.
- :func:`gradcam_glance` -- Grad-CAM on the glance network's last conv layer, upsampled to the
  frames: ``(B, T_g, H, W)``.
- :func:`pointing_game` -- the fraction of maps whose maximum falls inside the true box.

The model may also be any callable ``video (B, T, C, H, W) -> logits (B, n)`` (no policy to fix)
for the gradient and occlusion methods. The target defaults to the model's own prediction.
At the CPU presets the last conv maps are small (e.g. 1x1 for the tiny focus network), so
Grad-CAM is coarse there; pass an earlier ``layer`` for a finer map.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from captum.attr import IntegratedGradients, LayerGradCam, Occlusion
from torch import Tensor, nn

from adafocus.analysis.readouts import check_head, is_adafocus, readout
from adafocus.data.batches import ground_truth_kwargs

IG_STEPS = 16  # Riemann steps of integrated gradients
PERTURBATIONS_PER_EVAL = 16  # occluded copies evaluated in one forward pass
Target = int | Tensor | None  # one class for all clips, (B,) classes, or None = the predicted class


# ---------------------------------------------------------------------------------------------
# fixing the policy
# ---------------------------------------------------------------------------------------------

@dataclass
class PolicyChoice:
    """What the model chose on a batch of clips (detached)."""

    frame_idx: Tensor  # (B, K) chosen frames
    boxes: Tensor  # (B, K, 4) chosen boxes, pixels (x0, y0, x1, y1)
    prediction: Tensor  # (B,) predicted class of the final exit


@torch.no_grad()
def fix_policy(model: nn.Module, video: Tensor, gt_boxes: Tensor | None = None,
               gt_mask: Tensor | None = None) -> PolicyChoice:
    """Run ``model`` once in eval mode on ``video (B, T, C, H, W)`` and keep its choices. ``gt_boxes``
    ``(B, T, 4)`` and ``gt_mask`` ``(B, T)`` reach the model only when its modes read them (the oracle)."""
    model.eval()
    out = model(video, **ground_truth_kwargs(model, {"boxes": gt_boxes, "mask": gt_mask}))
    return PolicyChoice(out.frame_idx.detach().clone(), out.boxes.detach().clone(), out.logits.argmax(-1))


class FixedPolicy(nn.Module):
    """A UniAdaFocus with its frames and boxes given: ``forward(video, frame_idx, boxes) -> logits (B, n)``.

    Glance, focus and classifier run as in the model's forward (only the networks ``head`` reads);
    the policies do not run at all. ``head`` picks the logits explained (``final``,
    ``focus`` or ``glance``, see :mod:`adafocus.analysis.readouts`).
    """

    def __init__(self, model: nn.Module, head: str = "final") -> None:
        super().__init__()
        if not is_adafocus(model):
            raise ValueError(f"FixedPolicy: expected a UniAdaFocus model, got {type(model).__name__}")
        check_head(model, head, "FixedPolicy")
        self.model, self.head = model.eval(), head
        self.full = model.resolve_modes()[0] == "full"  # full-frame baselines resize whole frames

    def forward(self, video: Tensor, frame_idx: Tensor, boxes: Tensor) -> Tensor:
        """``video`` ``(B, T, C, H, W)``, ``frame_idx`` ``(B, K)``, ``boxes`` ``(B, K, 4)`` -> logits ``(B, n)``."""
        m, head = self.model, self.head
        glance = m.glance_features(video).feats if m.glance is not None and head != "focus" else None
        focus = None
        if m.focus is not None and head != "glance":
            focus = m.focus_features(video, boxes, frame_idx.long(), full=self.full)  # (B, K, C_f)
        return readout(m, glance, focus, head)


def _prepare(model: nn.Module | Callable[[Tensor], Tensor], video: Tensor, choice: PolicyChoice | None,
             head: str, gt_boxes: Tensor | None, gt_mask: Tensor | None
             ) -> tuple[Callable[..., Tensor], tuple[Tensor, ...], PolicyChoice | None]:
    """The function captum differentiates, its extra arguments and the policy's choices."""
    if video.dim() != 5:
        raise ValueError(f"attributions: video must be (B, T, C, H, W), got shape {tuple(video.shape)}")
    if is_adafocus(model):
        choice = choice or fix_policy(model, video, gt_boxes, gt_mask)
        return FixedPolicy(model, head), (choice.frame_idx, choice.boxes), choice
    if not callable(model):
        raise ValueError(f"attributions: expected a UniAdaFocus model or a function video -> logits, got "
                         f"{type(model).__name__}")
    return model, (), choice


def _target(target: Target, forward: Callable[..., Tensor], video: Tensor, extra: tuple[Tensor, ...],
            choice: PolicyChoice | None) -> Tensor:
    """Target classes ``(B,)``: given, else the explained logits' own argmax."""
    B = video.shape[0]
    if target is None:
        if choice is not None and getattr(forward, "head", "final") == "final":
            return choice.prediction
        with torch.no_grad():
            return forward(video, *extra).argmax(-1)
    t = torch.as_tensor(target, dtype=torch.long)
    t = t.expand(B) if t.dim() == 0 else t
    if t.shape != (B,):
        raise ValueError(f"attributions: target must be an int or (B,) = ({B},) classes, got {tuple(t.shape)}")
    return t


# ---------------------------------------------------------------------------------------------
# integrated gradients and occlusion
# ---------------------------------------------------------------------------------------------

def integrated_gradients(model: nn.Module | Callable[[Tensor], Tensor], video: Tensor, target: Target = None, *,
                         baseline: Tensor | float = 0.0, steps: int = IG_STEPS, choice: PolicyChoice | None = None,
                         head: str = "final", gt_boxes: Tensor | None = None, gt_mask: Tensor | None = None,
                         return_delta: bool = False) -> Tensor | tuple[Tensor, Tensor]:
    """Integrated gradients of the target logit with respect to every input pixel: ``(B, T, C, H, W)``.

    ``baseline``: a tensor like ``video`` or a constant (default black). With ``return_delta``
    also returns captum's convergence delta ``(B,)`` (sum of attributions minus ``f(x) - f(baseline)``).
    ``gt_boxes``/``gt_mask`` are needed only by oracle models (to fix their choices).
    """
    forward, extra, choice = _prepare(model, video, choice, head, gt_boxes, gt_mask)
    tgt = _target(target, forward, video, extra, choice)
    ig = IntegratedGradients(forward)
    out = ig.attribute(video, baselines=baseline, target=tgt, additional_forward_args=extra or None,
                       n_steps=steps, return_convergence_delta=return_delta)
    if return_delta:
        attr, delta = out
        return attr.detach(), delta.detach()
    return out.detach()


def _occlusion(model, video: Tensor, target: Target, window: tuple[int, ...], stride: tuple[int, ...],
               fill: float, choice: PolicyChoice | None, head: str, gt_boxes, gt_mask) -> Tensor:
    forward, extra, choice = _prepare(model, video, choice, head, gt_boxes, gt_mask)
    tgt = _target(target, forward, video, extra, choice)
    with torch.no_grad():
        attr = Occlusion(forward).attribute(video, sliding_window_shapes=window, strides=stride, baselines=fill,
                                            target=tgt, additional_forward_args=extra or None,
                                            perturbations_per_eval=PERTURBATIONS_PER_EVAL)
    return attr.detach()


def occlusion_time(model: nn.Module | Callable[[Tensor], Tensor], video: Tensor, target: Target = None, *,
                   fill: float = 0.0, choice: PolicyChoice | None = None, head: str = "final",
                   gt_boxes: Tensor | None = None, gt_mask: Tensor | None = None) -> Tensor:
    """Occlusion over time: each whole frame replaced by ``fill`` in turn. ``(B, T, C, H, W)``, every
    pixel of frame ``t`` holding the drop of the target logit (``frame_scores(attr, "mean")`` gives ``(B, T)``)."""
    _, _, C, H, W = video.shape
    return _occlusion(model, video, target, (1, C, H, W), (1, C, H, W), fill, choice, head, gt_boxes, gt_mask)


def occlusion_space(model: nn.Module | Callable[[Tensor], Tensor], video: Tensor, target: Target = None, *,
                    window: int = 8, stride: int = 4, fill: float = 0.0, choice: PolicyChoice | None = None,
                    head: str = "final", gt_boxes: Tensor | None = None, gt_mask: Tensor | None = None) -> Tensor:
    """Occlusion over space: a ``window`` x ``window`` square (all channels, one frame) slides by
    ``stride`` pixels over every frame. ``(B, T, C, H, W)``: the mean drop of the target logit over
    the windows covering each pixel (see :func:`pixel_maps`)."""
    _, _, C, H, W = video.shape
    if not (1 <= window <= min(H, W) and 1 <= stride <= window):
        raise ValueError(f"occlusion_space: expected 1 <= window <= {min(H, W)} and 1 <= stride <= window, "
                         f"got window={window}, stride={stride}")
    return _occlusion(model, video, target, (1, C, window, window), (1, C, stride, stride), fill, choice, head,
                      gt_boxes, gt_mask)


def frame_scores(attr: Tensor, reduce: str = "sum") -> Tensor:
    """``(B, T, C, H, W)`` attributions -> one score per frame ``(B, T)``.

    ``reduce="sum"`` over the frame's pixels (integrated gradients: the frame's share of
    ``f(x) - f(baseline)``); ``"mean"`` for :func:`occlusion_time`, whose pixels all hold the frame's drop.
    """
    if attr.dim() != 5:
        raise ValueError(f"frame_scores: expected (B, T, C, H, W) attributions, got {tuple(attr.shape)}")
    if reduce not in ("sum", "mean"):
        raise ValueError(f"frame_scores: reduce: expected 'sum' or 'mean', got {reduce!r}")
    return attr.sum(dim=(2, 3, 4)) if reduce == "sum" else attr.mean(dim=(2, 3, 4))


def pixel_maps(attr: Tensor, absolute: bool = True) -> Tensor:
    """``(B, T, C, H, W)`` attributions -> per-pixel maps ``(B, T, H, W)`` (channels summed).

    ``absolute=True`` sums ``|attr|`` (integrated gradients: a pixel matters whichever way it
    pushes); ``absolute=False`` keeps the sign, e.g. for occlusion, where a positive value is a
    drop of the target logit (evidence) and a negative one a rise -- better for the pointing game.
    """
    if attr.dim() != 5:
        raise ValueError(f"pixel_maps: expected (B, T, C, H, W) attributions, got {tuple(attr.shape)}")
    return (attr.abs() if absolute else attr).sum(dim=2)


# ---------------------------------------------------------------------------------------------
# Grad-CAM
# ---------------------------------------------------------------------------------------------

def _last_conv_stage(net: nn.Module, name: str) -> nn.Module:
    """The module whose output is the net's last feature map (the one that is pooled)."""
    if name == "focus":
        return net.stages[-1]
    return net.features[-1]


def _gradcam(forward: Callable[..., Tensor], layer: nn.Module, inputs: Tensor, target: Tensor,
             extra: tuple[Tensor, ...], groups: tuple[int, int], size: tuple[int, int]) -> Tensor:
    """LayerGradCam on a layer that sees ``B * n`` images; returns ``(B, n, *size)`` maps."""
    cam = LayerGradCam(forward, layer).attribute(inputs, target=target, additional_forward_args=extra or None,
                                                 relu_attributions=True)  # (B * n, 1, h, w)
    cam = F.interpolate(cam.detach().float(), size=size, mode="bilinear", align_corners=False)
    return cam.reshape(*groups, *size)


def gradcam_focus(model: nn.Module, video: Tensor, target: Target = None, *, layer: nn.Module | None = None,
                  choice: PolicyChoice | None = None, head: str = "final", gt_boxes: Tensor | None = None,
                  gt_mask: Tensor | None = None) -> Tensor:
    """Grad-CAM of the focus network on the chosen patches: ``(B, K, P, P)``, non-negative.

    ``layer`` defaults to the focus network's last stage (its output is the pooled map); it sees the
    ``B * K`` patches, so its maps are upsampled to the patch side ``P``.
    """
    if not is_adafocus(model) or model.focus is None:
        raise ValueError(f"gradcam_focus: expected a UniAdaFocus model with a focus network, got "
                         f"{type(model).__name__}")
    fixed, extra, choice = _prepare(model, video, choice, head, gt_boxes, gt_mask)
    tgt = _target(target, fixed, video, extra, choice)
    B, K = choice.frame_idx.shape
    P = model.cfg.patch_size
    return _gradcam(fixed, layer or _last_conv_stage(model.focus, "focus"), video, tgt, extra, (B, K), (P, P))


def gradcam_glance(model: nn.Module, video: Tensor, target: Target = None, *, layer: nn.Module | None = None,
                   choice: PolicyChoice | None = None, head: str = "final", gt_boxes: Tensor | None = None,
                   gt_mask: Tensor | None = None) -> Tensor:
    """Grad-CAM of the glance network on the glance frames, upsampled to frame size: ``(B, T_g, H, W)``.

    ``layer`` defaults to the glance network's last conv layer (its output is the glance map).
    """
    if not is_adafocus(model) or model.glance is None:
        raise ValueError(f"gradcam_glance: expected a UniAdaFocus model with a glance network, got "
                         f"{type(model).__name__}")
    fixed, extra, choice = _prepare(model, video, choice, head, gt_boxes, gt_mask)
    tgt = _target(target, fixed, video, extra, choice)
    B, (H, W) = video.shape[0], video.shape[-2:]
    groups = (B, len(model.glance_idx))  # (B, T_g) glance frames
    return _gradcam(fixed, layer or _last_conv_stage(model.glance, "glance"), video, tgt, extra, groups, (H, W))


def patch_maps_to_frames(maps: Tensor, boxes: Tensor, frame_size: int | tuple[int, int]) -> Tensor:
    """Paste patch maps ``(B, K, P, P)`` back into frame coordinates through their boxes ``(B, K, 4)``.

    Returns ``(B, K, H, W)``: each box's area holds its patch map resampled to the box (bilinear),
    zero elsewhere. Pixel ``(i, j)`` belongs to a box when its center ``(j + 0.5, i + 0.5)`` is inside.
    """
    if maps.dim() != 4 or boxes.shape != (*maps.shape[:2], 4):
        raise ValueError(f"patch_maps_to_frames: expected maps (B, K, P, P) and boxes (B, K, 4), got "
                         f"{tuple(maps.shape)} and {tuple(boxes.shape)}")
    H, W = (frame_size, frame_size) if isinstance(frame_size, int) else frame_size
    B, K, P, Q = maps.shape
    x0, y0, x1, y1 = boxes.reshape(-1, 4).float().unbind(-1)  # (N,)
    xs = torch.arange(W, dtype=torch.float32) + 0.5  # pixel centers
    ys = torch.arange(H, dtype=torch.float32) + 0.5
    # where each frame pixel falls in its box, in grid_sample's normalised [-1, 1] patch coordinates
    u = 2 * (xs[None] - x0[:, None]) / (x1 - x0).clamp(min=1e-6)[:, None] - 1  # (N, W)
    v = 2 * (ys[None] - y0[:, None]) / (y1 - y0).clamp(min=1e-6)[:, None] - 1  # (N, H)
    grid = torch.stack([u[:, None, :].expand(-1, H, -1), v[:, :, None].expand(-1, -1, W)], dim=-1)  # (N, H, W, 2)
    out = F.grid_sample(maps.reshape(-1, 1, P, Q).float(), grid, mode="bilinear", padding_mode="border",
                        align_corners=False)[:, 0]  # (N, H, W)
    inside = (grid.abs() <= 1).all(dim=-1)
    return (out * inside).reshape(B, K, H, W)


# ---------------------------------------------------------------------------------------------
# pointing game
# ---------------------------------------------------------------------------------------------

def pointing_game(attribution_maps: Tensor, gt_boxes: Tensor, tolerance: float = 0.0) -> float:
    """Fraction of maps ``(N, H, W)`` whose maximum lies inside the true box ``(N, 4)``.

    A hit is a pixel center ``(j + 0.5, i + 0.5)`` of the maximum within ``tolerance`` pixels of the
    box ``(x0, y0, x1, y1)``. A flat map (no single maximum: every pixel equal) counts as a miss.
    """
    if attribution_maps.dim() != 3 or gt_boxes.shape != (attribution_maps.shape[0], 4):
        raise ValueError(f"pointing_game: expected maps (N, H, W) and boxes (N, 4), got "
                         f"{tuple(attribution_maps.shape)} and {tuple(gt_boxes.shape)}")
    N, H, W = attribution_maps.shape
    if N == 0:
        raise ValueError("pointing_game: no maps given")
    flat = attribution_maps.reshape(N, -1).float()
    peak = flat.argmax(dim=1)
    y, x = (peak // W).float() + 0.5, (peak % W).float() + 0.5
    b = gt_boxes.float()
    inside = ((x >= b[:, 0] - tolerance) & (x <= b[:, 2] + tolerance) &
              (y >= b[:, 1] - tolerance) & (y <= b[:, 3] + tolerance))
    flat_map = flat.amax(dim=1) == flat.amin(dim=1)
    return float((inside & ~flat_map).float().mean())

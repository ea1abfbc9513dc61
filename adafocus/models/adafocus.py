"""Uni-AdaFocus: glance, decide where and when to look, focus, classify with exits (DESIGN.md 1).

One clip ``(B, T, C, H, W)`` goes through five stages, each a method so that early-exit
inference can run them one step at a time and a cost counter can price each one:

1. :meth:`UniAdaFocus.glance_features` -- the cheap glance network sees ``T_g`` uniformly spaced
   frames, downsampled to ``glance_size``: maps ``(B, T_g, C_g, h, w)`` and pooled features.
2. :meth:`~UniAdaFocus.spatial_actions` -- the spatial policy reads the *detached* maps and gives a
   box per glance frame (:mod:`adafocus.models.policy`); boxes at other frames are linearly
   interpolated in time.
3. :meth:`~UniAdaFocus.select_frames` -- the temporal policy's distribution ``w`` over the glance
   positions is sampled with stratified inverse-CDF sampling: ``K`` frame indices
   (:mod:`adafocus.models.sampling`).
4. :meth:`~UniAdaFocus.focus_features` -- the ``K`` boxes are cropped from the ``K`` frames and
   resampled to ``P x P`` patches (:mod:`adafocus.models.patches`) for the focus network.
5. :meth:`~UniAdaFocus.classify` -- per-step MLPs, running max-pools, an exit after every step
   (:mod:`adafocus.models.heads`).

**How the policies learn.** The patches are cropped with *detached* boxes and the frames are
integer indices, so sampling and cropping are not differentiable with respect to the policies:
the classifier's loss never reaches them. Two differentiable surrogates do:

- spatial (:meth:`~UniAdaFocus.spatial_surrogate`): the glance *feature map* is cropped with the
  same, non-detached boxes by ``grid_sample``, pooled and classified by an auxiliary head; its
  cross-entropy moves the boxes towards regions whose features identify the class.
- temporal (:meth:`~UniAdaFocus.temporal_surrogate`): Monte Carlo draws of ``K`` glance positions
  (without replacement, from ``w``); each draw's glance features are averaged with the live
  weights ``w`` renormalised over the draw, classified, and the logits averaged over draws; its
  cross-entropy moves ``w`` towards informative frames.

**Step by step (real early exit).** In eval mode the stages reproduce :meth:`UniAdaFocus.forward`::

    g = model.glance_features(video)                       # or one glance frame at a time (positions=)
    state = model.classifier.init_state()
    for t in range(T_g):                                   # stop here for samples that are confident
        logits, state = model.classifier.glance_step(g.feats[:, t], state)
    w = model.temporal_weights(g.feats)
    idx = model.select_frames(B, "policy", w)
    boxes = model.select_boxes("policy", idx, model.spatial_actions(g.maps))
    for k in range(K):                                     # one patch per step (not with focus_tsm)
        f = model.focus_features(video, boxes[:, k:k + 1], idx[:, k:k + 1])
        logits, state = model.classifier.focus_step(f[:, 0], state)

Slice ``video``, ``idx``, ``boxes`` and ``state`` (:meth:`ExitState.select`) to the samples still running.

Variants come from :class:`~adafocus.config.ModelConfig` switches and modes (named presets in
:mod:`adafocus.models.registry`): ``patch_mode`` policy / random / center / oracle (the true box
brought into ``[box_min, box_max]``) / full (the whole frame resized to ``P``); ``frame_mode``
policy / uniform / oracle (``K`` informative frames, stratified); ``use_glance`` / ``use_focus``;
``exits``. AdaFocusV2 is the special case with square boxes, uniform frames and no exits.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from adafocus.config import FRAME_MODES, PATCH_MODES, ModelConfig
from adafocus.models.backbones import ConvBNAct, MobileNetV2, ResNet
from adafocus.models.heads import ClassifierOutput, ExitClassifier
from adafocus.models.patches import (boxes_from_actions, box_centers, clamp_boxes, crop_patches,
                                     interpolate_actions, jitter_boxes, random_boxes)
from adafocus.models.policy import SpatialPolicy, TemporalPolicy
from adafocus.models.sampling import sample_frames, sample_without_replacement, uniform_indices

CENTER_ACTION = 0.5  # the centre patch: middle position, middle scale


@dataclass
class AdaFocusOutput:
    logits: Tensor  # (B, n) final prediction (last exit)
    exit_logits: Tensor  # (B, S, n), S = T_g + K exits (K without glance, T_g without focus, 1 without exits)
    glance_logits: Tensor | None  # (B, n) auxiliary head on the glance features alone
    focus_logits: Tensor | None  # (B, n) auxiliary head on the focus features alone (None without focus)
    spatial_logits: Tensor | None  # (B, n) spatial surrogate (gradients reach the spatial policy); training only
    temporal_logits: Tensor | None  # (B, n) temporal surrogate (gradients reach w); training only
    boxes: Tensor  # (B, K, 4) x0, y0, x1, y1 pixels at the chosen frames (detached)
    frame_idx: Tensor  # (B, K) chosen frame indices, sorted
    glance_boxes: Tensor | None  # (B, T_g, 4) policy boxes at the glance frames (with gradients)
    glance_idx: Tensor | None  # (T_g,) glance frame indices
    temporal_weights: Tensor | None  # (B, T_g) the temporal policy's w
    box_centers: Tensor | None  # (B, T_g, 2) policy box centres (x, y) pixels (with gradients)
    # (B, T_g) bool: the true informative mask at the glance frames, when gt_mask was given (a training
    # target for train.temporal_supervision; never used by the model itself)
    glance_mask: Tensor | None = None


@dataclass
class GlanceOutput:
    maps: Tensor  # (B, T_g, C_g, h, w)
    feats: Tensor  # (B, T_g, C_g) spatially average-pooled maps


class Glance(nn.Module):
    """MobileNetV2 up to output stride ``stride``, then an optional 1x1 conv to ``feature_dim``.

    At stride 32 this is the whole MobileNetV2 (its last 1x1 conv has ``feature_dim`` channels, or
    its own 1280·max(1, width) when 0). At stride 8 or 16 the network is cut after the last block
    of that stride, so a 32² frame still gives a 4x4 map for the spatial policy to point into, at
    a fraction of the full network's cost.
    """

    def __init__(self, width: float, in_channels: int, stride: int, feature_dim: int) -> None:
        super().__init__()
        full_stride = 32
        mbv2 = MobileNetV2(width, in_channels, last_channels=feature_dim if stride == full_stride else 0)
        if stride == full_stride:
            self.features, self.feature_dim = mbv2.features, mbv2.feature_dim
        else:
            keep, total = 0, 1
            for i, block in enumerate(mbv2.features):
                total *= _block_stride(block)
                if total > stride:
                    break
                keep = i + 1
            layers = list(mbv2.features[:keep])
            channels = [m for m in layers[-1].modules() if isinstance(m, nn.Conv2d)][-1].out_channels
            if feature_dim > 0:
                layers.append(ConvBNAct(channels, feature_dim, kernel=1))
                channels = feature_dim
            self.features, self.feature_dim = nn.Sequential(*layers), channels
        self.stride = stride

    def map_size(self, size: int) -> int:
        """Side of the feature map for a ``size`` x ``size`` input (every stride-2 conv rounds up)."""
        for block in self.features:
            if _block_stride(block) == 2:
                size = (size + 1) // 2
        return size

    def forward(self, x: Tensor) -> Tensor:
        """``(N, C, H, W) -> (N, feature_dim, h, w)``."""
        return self.features(x)


def _block_stride(block: nn.Module) -> int:
    s = 1
    for m in block.modules():
        if isinstance(m, nn.Conv2d):
            s *= m.stride[0]
    return s


class UniAdaFocus(nn.Module):
    """The whole model. ``cfg``: a :class:`ModelConfig`; clips have ``num_frames`` frames of ``frame_size``²."""

    def __init__(self, cfg: ModelConfig, frame_size: int, num_frames: int, channels: int = 3) -> None:
        super().__init__()
        cfg.validate()
        self.cfg, self.frame_size, self.num_frames, self.channels = cfg, frame_size, num_frames, channels
        self.num_focus = cfg.num_focus if cfg.use_focus else 0
        for name, value, limit in (("patch_size", cfg.patch_size, frame_size), ("box_max", cfg.box_max, frame_size),
                                   ("glance_size", cfg.glance_size, frame_size),
                                   ("num_focus", self.num_focus, num_frames),
                                   ("glance_frames", cfg.glance_frames, num_frames)):
            if value > limit:
                raise ValueError(f"UniAdaFocus: model.{name} = {value} exceeds {limit} "
                                 f"(frames are {num_frames} x {frame_size}²)")
        self.register_buffer("glance_idx", uniform_indices(num_frames, cfg.glance_frames), persistent=False)
        n = cfg.num_classes

        self.glance = self.spatial_policy = self.temporal_policy = self.focus = None
        self.spatial_head = self.temporal_head = None
        glance_dim = focus_dim = None
        if cfg.use_glance:
            self.glance = Glance(cfg.glance_width, channels, cfg.glance_stride, cfg.glance_feature_dim)
            glance_dim = self.glance.feature_dim
            side = self.glance.map_size(cfg.glance_size)
            if cfg.spatial_policy:
                self.spatial_policy = SpatialPolicy(glance_dim, cfg.policy_channels, (side, side), frame_size,
                                                    cfg.box_min, cfg.box_max, cfg.square_boxes, cfg.location_head)
                self.spatial_head = nn.Linear(glance_dim, n)
            if cfg.temporal_policy:
                self.temporal_policy = TemporalPolicy(glance_dim, cfg.temporal_channels)
                self.temporal_head = nn.Linear(glance_dim, n)
        if cfg.use_focus:
            self.focus = ResNet(cfg.focus_block, cfg.focus_layers, cfg.focus_widths, cfg.focus_stem_stride,
                                channels, tsm=cfg.focus_tsm, tsm_segments=cfg.num_focus)
            focus_dim = self.focus.feature_dim
        self.classifier = ExitClassifier(glance_dim, focus_dim, cfg.glance_frames, cfg.num_focus, cfg.hidden_dim,
                                         n, exits=cfg.exits)
        if cfg.channels_last:  # 4-D conv weights only; the policies' 3-D/1-D convs stay as they are
            for net in (self.glance, self.focus):
                if net is not None:
                    net.to(memory_format=torch.channels_last)

    # -- input checks ---------------------------------------------------------------------------
    def check_input(self, video: Tensor) -> None:
        """Raise a clear error unless ``video`` is ``(B, T, C, H, W)`` with this model's geometry."""
        T, C, S = self.num_frames, self.channels, self.frame_size
        if not isinstance(video, Tensor) or video.dim() != 5:
            shape = tuple(video.shape) if isinstance(video, Tensor) else type(video).__name__
            raise ValueError(f"UniAdaFocus: video must be a 5-D tensor (B, T, C, H, W) = (B, {T}, {C}, {S}, {S}), "
                             f"got {shape}")
        _, t, c, h, w = video.shape
        if (t, c, h, w) != (T, C, S, S):
            hint = " (looks like (B, C, T, H, W): use video.transpose(1, 2))" if (t, c) == (C, T) else ""
            raise ValueError(f"UniAdaFocus: (B, T, C, H, W) = (B, {T}, {C}, {S}, {S}) expected, "
                             f"got {tuple(video.shape)}{hint}")
        if not video.is_floating_point():
            raise ValueError(f"UniAdaFocus: video must be float in [0, 1], got dtype {video.dtype}"
                             f"{' (use video.float() / 255)' if video.dtype == torch.uint8 else ''}")
        dtype = next(self.parameters()).dtype
        if video.dtype != dtype:
            raise ValueError(f"UniAdaFocus: video: expected {dtype} (the model's dtype), got {video.dtype}; "
                             f"use video.to({dtype})")
        if video.shape[0] == 0:
            raise ValueError(f"UniAdaFocus: video: expected at least one clip, got {tuple(video.shape)}")
        if not torch.isfinite(video.sum()):  # one cheap pass; any NaN or inf makes the sum non-finite
            finite = torch.isfinite(video)
            nan = int(video.isnan().sum())
            raise ValueError(f"UniAdaFocus: video: expected finite values in [0, 1], got {nan} NaN and "
                             f"{int((~finite).sum()) - nan} inf values")

    def _to_2d_input(self, x: Tensor) -> Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.cfg.channels_last else x

    # -- stage 1: glance ------------------------------------------------------------------------
    def glance_features(self, video: Tensor, positions: Tensor | None = None) -> GlanceOutput:
        """Glance at frames ``glance_idx[positions]`` (default: all ``T_g``) of ``video`` ``(B, T, C, H, W)``."""
        if self.glance is None:
            raise RuntimeError("UniAdaFocus: this model has no glance network (use_glance=False)")
        idx = self.glance_idx if positions is None else self.glance_idx[positions]
        frames = video[:, idx]  # (B, T_g, C, H, W)
        b, tg = frames.shape[:2]
        x = frames.flatten(0, 1)
        if self.cfg.glance_size != self.frame_size:
            x = F.interpolate(x, size=self.cfg.glance_size, mode="bilinear", align_corners=False)
        maps = self.glance(self._to_2d_input(x))  # (B * T_g, C_g, h, w)
        maps = maps.reshape(b, tg, *maps.shape[1:])
        return GlanceOutput(maps, maps.mean(dim=(-2, -1)))

    # -- stage 2 and 3: the policies ------------------------------------------------------------
    def spatial_actions(self, maps: Tensor) -> Tensor:
        """Detached glance maps ``(B, T_g, C_g, h, w)`` -> actions ``(B, T_g, 4)`` in [0, 1]."""
        if self.spatial_policy is None:
            raise RuntimeError("UniAdaFocus: this model has no spatial policy (spatial_policy=False)")
        return self.spatial_policy(maps if self.cfg.policy_trains_glance else maps.detach())

    def temporal_weights(self, feats: Tensor) -> Tensor:
        """Detached pooled glance features ``(B, T_g, C_g)`` -> ``w`` ``(B, T_g)``."""
        if self.temporal_policy is None:
            raise RuntimeError("UniAdaFocus: this model has no temporal policy (temporal_policy=False)")
        return self.temporal_policy(feats.detach())

    def select_frames(self, batch: int, mode: str, weights: Tensor | None = None,
                      gt_mask: Tensor | None = None) -> Tensor:
        """``K`` sorted frame indices ``(B, K)``: from ``w`` (policy), the uniform grid, or the true mask (oracle)."""
        K, T, device = self.num_focus, self.num_frames, self.glance_idx.device
        if mode == "uniform" or K == 0:
            return uniform_indices(T, K, device).expand(batch, K) if K else torch.zeros(batch, 0, dtype=torch.long)
        if mode == "policy":
            return sample_frames(weights, T, K, train=self.training)
        if gt_mask is None or gt_mask.shape != (batch, T):
            raise ValueError(f"UniAdaFocus: frame_mode='oracle' needs gt_mask (B, T) = ({batch}, {T}), got "
                             f"{None if gt_mask is None else tuple(gt_mask.shape)}")
        return sample_frames(gt_mask.float(), T, K, train=False)  # K informative frames, evenly spread

    def select_boxes(self, mode: str, frame_idx: Tensor, actions: Tensor | None = None,
                     gt_boxes: Tensor | None = None) -> Tensor:
        """Boxes ``(B, K, 4)`` (pixels) at the chosen frames, for the given patch mode (not detached)."""
        cfg, S = self.cfg, self.frame_size
        B, K = frame_idx.shape
        rows = torch.arange(B, device=frame_idx.device)[:, None]
        if mode == "policy":
            per_frame = interpolate_actions(actions, self.glance_idx, self.num_frames)  # (B, T, 4)
            return boxes_from_actions(per_frame[rows, frame_idx], S, cfg.box_min, cfg.box_max, cfg.square_boxes)
        if mode == "random":
            return random_boxes(B, K, S, cfg.box_min, cfg.box_max, cfg.square_boxes, device=frame_idx.device)
        if mode == "center":
            mid = torch.full((B, K, 4), CENTER_ACTION, device=frame_idx.device)
            return boxes_from_actions(mid, S, cfg.box_min, cfg.box_max, cfg.square_boxes)
        if mode == "full":
            return torch.tensor([0.0, 0.0, S, S], device=frame_idx.device).expand(B, K, 4).clone()
        if gt_boxes is None or gt_boxes.shape != (B, self.num_frames, 4):
            raise ValueError(f"UniAdaFocus: patch_mode='oracle' needs gt_boxes (B, T, 4) = ({B}, {self.num_frames}, 4)"
                             f", got {None if gt_boxes is None else tuple(gt_boxes.shape)}")
        true = gt_boxes[rows, frame_idx].float()
        if self.training and cfg.oracle_jitter:  # scale and offset augmentation (training only)
            return jitter_boxes(true, S, cfg.box_min, cfg.box_max)
        return clamp_boxes(true, S, cfg.box_min, cfg.box_max)

    # -- stage 4: focus -------------------------------------------------------------------------
    def focus_features(self, video: Tensor, boxes: Tensor, frame_idx: Tensor, full: bool = False) -> Tensor:
        """Crop ``boxes`` ``(B, k, 4)`` from frames ``frame_idx`` ``(B, k)`` -> focus features ``(B, k, C_f)``.

        ``full=True`` resizes the whole frame to ``P`` (same result as the full-frame box, without
        the crop). With a temporal shift (``focus_tsm``) all ``K`` frames must come together.
        """
        if self.focus is None:
            raise RuntimeError("UniAdaFocus: this model has no focus network (use_focus=False)")
        B, k = frame_idx.shape
        frames = video[torch.arange(B, device=video.device)[:, None], frame_idx]  # (B, k, C, H, W)
        P = self.cfg.patch_size
        if full:
            x = frames.flatten(0, 1)
            if P != self.frame_size:
                x = F.interpolate(x, size=P, mode="bilinear", align_corners=False)
        else:
            x = crop_patches(frames, boxes, P).flatten(0, 1)  # (B * k, C, P, P)
        if self.cfg.focus_tsm:
            self.focus.set_segments(k)
        return self.focus(self._to_2d_input(x)).reshape(B, k, -1)

    # -- stage 5: classify ----------------------------------------------------------------------
    def classify(self, glance_feats: Tensor | None, focus_feats: Tensor | None) -> ClassifierOutput:
        """Every exit's logits and the auxiliary glance-only / focus-only heads (see ExitClassifier)."""
        return self.classifier(glance_feats, focus_feats)

    # -- surrogates: how the policies learn ------------------------------------------------------
    def spatial_surrogate(self, maps: Tensor, glance_boxes: Tensor) -> Tensor:
        """Crop the glance maps ``(B, T_g, C_g, h, w)`` with the live boxes ``(B, T_g, 4)``, pool, classify: ``(B, n)``."""
        h, w = maps.shape[-2:]
        scale = torch.tensor([w, h, w, h], device=maps.device, dtype=maps.dtype) / self.frame_size
        crops = crop_patches(maps, glance_boxes * scale, self.cfg.surrogate_size)  # (B, T_g, C_g, s, s)
        return self.spatial_head(crops.mean(dim=(1, 3, 4)))

    def temporal_surrogate(self, feats: Tensor, weights: Tensor) -> Tensor:
        """Average, over Monte Carlo draws of K glance positions, of the logits of w-weighted glance features: ``(B, n)``."""
        B, tg, c = feats.shape
        k = min(max(self.num_focus, 1), tg)
        draws = sample_without_replacement(weights, k, self.cfg.temporal_draws)  # (B, D, k)
        flat = draws.flatten(1)  # (B, D * k)
        w = weights.gather(1, flat).view_as(draws)
        w = w / w.sum(-1, keepdim=True).clamp(min=1e-12)  # renormalised over each draw
        f = feats.gather(1, flat[..., None].expand(-1, -1, c)).view(B, *draws.shape[1:], c)  # (B, D, k, C_g)
        return self.temporal_head((w[..., None] * f).sum(2)).mean(1)

    # -- the whole forward ---------------------------------------------------------------------
    def forward(self, video: Tensor, gt_boxes: Tensor | None = None, gt_mask: Tensor | None = None,
                patch_mode: str | None = None, frame_mode: str | None = None) -> AdaFocusOutput:
        """``video`` ``(B, T, C, H, W)`` float in [0, 1] -> :class:`AdaFocusOutput`.

        ``patch_mode`` / ``frame_mode`` override the config for this call (e.g. the trainer's
        random-patch branch). ``gt_boxes`` ``(B, T, 4)`` and ``gt_mask`` ``(B, T)`` are needed
        only by the oracle modes.
        """
        self.check_input(video)
        pm, fm = self._modes(patch_mode, frame_mode)
        B = video.shape[0]
        g = self.glance_features(video) if self.glance is not None else None
        actions = self.spatial_actions(g.maps) if pm == "policy" else None
        weights = self.temporal_weights(g.feats) if fm == "policy" else None
        frame_idx = self.select_frames(B, fm, weights, gt_mask)
        if frame_idx.device != video.device:
            frame_idx = frame_idx.to(video.device)

        focus_feats, boxes = None, torch.zeros(B, 0, 4, device=video.device)
        if self.focus is not None:
            boxes = self.select_boxes(pm, frame_idx, actions, gt_boxes)
            crop_boxes = boxes if (self.cfg.patch_grad and pm == "policy") else boxes.detach()
            focus_feats = self.focus_features(video, crop_boxes, frame_idx, full=pm == "full")
        cls = self.classify(g.feats if g is not None else None, focus_feats)

        glance_boxes = centers = spatial_logits = temporal_logits = None
        if actions is not None:
            c = self.cfg
            glance_boxes = boxes_from_actions(actions, self.frame_size, c.box_min, c.box_max, c.square_boxes)
            centers = box_centers(glance_boxes)
            if self.training:  # the surrogates are training signals only: inference does not pay for them
                spatial_logits = self.spatial_surrogate(g.maps, glance_boxes)
        if weights is not None and self.training:
            temporal_logits = self.temporal_surrogate(g.feats, weights)
        return AdaFocusOutput(
            logits=cls.exit_logits[:, -1], exit_logits=cls.exit_logits, glance_logits=cls.glance_logits,
            focus_logits=cls.focus_logits, spatial_logits=spatial_logits, temporal_logits=temporal_logits,
            boxes=boxes.detach(), frame_idx=frame_idx, glance_boxes=glance_boxes,
            glance_idx=self.glance_idx if g is not None else None, temporal_weights=weights, box_centers=centers,
            glance_mask=gt_mask[:, self.glance_idx].bool() if (gt_mask is not None and g is not None) else None)

    def _modes(self, patch_mode: str | None, frame_mode: str | None) -> tuple[str, str]:
        pm = patch_mode or self.cfg.patch_mode
        fm = frame_mode or self.cfg.frame_mode
        if pm not in PATCH_MODES:
            raise ValueError(f"UniAdaFocus: patch_mode must be one of {PATCH_MODES}, got {pm!r}")
        if fm not in FRAME_MODES:
            raise ValueError(f"UniAdaFocus: frame_mode must be one of {FRAME_MODES}, got {fm!r}")
        if self.focus is None:  # glance only: no patches to place, no frames to pick
            return "none", "uniform"
        if pm == "policy" and self.spatial_policy is None:
            raise ValueError("UniAdaFocus: patch_mode='policy' needs the spatial policy (spatial_policy=True)")
        if fm == "policy" and self.temporal_policy is None:
            raise ValueError("UniAdaFocus: frame_mode='policy' needs the temporal policy (temporal_policy=True)")
        return pm, fm

    # -- optimisation helpers -------------------------------------------------------------------
    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        """Parameters by part, for per-part learning rates: glance, focus, policy, classifier."""
        parts = {"glance": [self.glance], "focus": [self.focus],
                 "policy": [self.spatial_policy, self.temporal_policy],
                 "classifier": [self.classifier, self.spatial_head, self.temporal_head]}
        return {name: [p for m in mods if m is not None for p in m.parameters()] for name, mods in parts.items()}

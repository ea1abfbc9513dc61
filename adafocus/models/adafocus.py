"""Uni-AdaFocus: glance, decide where and when to look, focus, classify with exits.

One clip ``(B, T, C, H, W)`` goes through two public steps (docs/design.md, "The method"):

``plan = model.plan(video)`` -- *what to look at*:

1. :meth:`UniAdaFocus.glance_features`: the cheap glance network sees ``T_g`` frames (one per
   segment of the clip; a random frame of the segment in training with ``glance_jitter``), resized to
   ``glance_size``: maps ``(B, T_g, C_g, h, w)`` and pooled features ``(B, T_g, C_g)``;
2. :meth:`~UniAdaFocus.spatial_actions`: the spatial policy reads the (detached) maps and gives a box
   per glance frame (:mod:`adafocus.models.policy`); boxes at other frames are interpolated in time;
3. :meth:`~UniAdaFocus.temporal_weights` and :meth:`~UniAdaFocus.select_frames`: the temporal
   policy's distribution ``w`` over the glance positions, sampled with stratified inverse-CDF
   sampling into ``K`` frame indices (:mod:`adafocus.models.sampling`).

``out = model.run(video, plan)`` -- *look and answer*:

4. :meth:`~UniAdaFocus.focus_features`: the ``K`` boxes are cropped from the ``K`` frames and
   resampled to ``P x P`` patches (:mod:`adafocus.models.patches`) for the focus network; the crop
   uses *detached* boxes unless ``patch_grad`` (AdaFocusV2's end-to-end crop);
5. :meth:`~UniAdaFocus.classify`: per-step MLPs, running max-pools, an exit after every step
   (:mod:`adafocus.models.heads`). In training the per-frame auxiliary heads also classify every
   glance frame and every focus patch alone (``out.glance_frame_logits``, ``out.focus_frame_logits``).

``model(video) == model.run(video, model.plan(video))``. Step-by-step inference with real early
exits is :func:`adafocus.models.exits.exiting_forward`; it uses the same public methods.

**How the policies learn** is not in the forward pass: the surrogates that train them are loss
terms (:mod:`adafocus.models.surrogates`, :mod:`adafocus.losses`), computed from ``out.plan`` and
the model's surrogate head (:attr:`UniAdaFocus.spatial_head`).

**Ground truth** enters only the oracle modes (``patch_mode="oracle"`` / ``frame_mode="oracle"``,
:attr:`UniAdaFocus.needs_ground_truth`); every other mode ignores ``gt_boxes`` and ``gt_mask``.

Variants come from :class:`~adafocus.config.ModelConfig` switches and modes (named presets in
:mod:`adafocus.models.registry`): ``patch_mode`` policy / random / center / oracle (the true box
brought into ``[box_min, box_max]``) / full (the whole frame resized to ``P``); ``frame_mode``
policy / uniform / oracle (``K`` informative frames, stratified); ``use_glance`` / ``use_focus``;
``exits``. AdaFocusV2 is the special case with square boxes, uniform frames, no exits and the
end-to-end crop.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import Tensor, nn
from torch.profiler import record_function

from adafocus.config import FRAME_MODES, PATCH_MODES, ModelConfig
from adafocus.models.backbones import ConvBNAct, MobileNetV2, ResNet
from adafocus.models.heads import ExitClassifier
from adafocus.models.patches import (box_centers, boxes_from_actions, center_boxes, clamp_boxes, crop_patches,
                                     gather_frames, halve_frames, interpolate_actions, jitter_boxes,
                                     random_boxes, random_boxes_of_side, resize_frames)
from adafocus.models.policy import SpatialPolicy, TemporalPolicy
from adafocus.models.sampling import sample_frames, segment_indices, uniform_indices

CENTER_ACTION = 0.5  # the center patch: middle position, middle scale
# Inference stages, each a torch.profiler.record_function label "adafocus::<stage>" (cheap when no profiler
# runs): benchmarks/profile_inference.py splits the seconds by them. "sampling_crop" is everything outside
# the networks that moves pixels or picks them (frame gathers, the glance's resize, frame sampling, boxes,
# the crop), which is where adafocus.flops.model_cost counts resizing and cropping ("patch_extraction").
STAGES = ("check_input", "glance", "policies", "sampling_crop", "focus", "classifier")


def stage(name: str) -> record_function:
    """The profiler label of one inference stage (one of :data:`STAGES`)."""
    return record_function(f"adafocus::{name}")


@dataclass
class GlanceOutput:
    maps: Tensor  # (B, T_g, C_g, h, w) glance feature maps
    feats: Tensor  # (B, T_g, C_g) spatially pooled maps (max or average: model.glance_pool)
    positions: Tensor  # (B, T_g) the glance frames' indices in the clip


@dataclass
class Plan:
    """What the model decided to look at: the output of :meth:`UniAdaFocus.plan`."""

    patch_mode: str  # policy | random | center | oracle | full | none (no focus network)
    frame_mode: str  # policy | uniform | oracle
    glance: GlanceOutput | None  # None without a glance network
    frame_idx: Tensor  # (B, K) the focus frames, sorted
    boxes: Tensor  # (B, K, 4) x0, y0, x1, y1 pixels at frame_idx (live: gradients reach the spatial policy)
    actions: Tensor | None = None  # (B, T_g, 4) the spatial policy's actions at the glance frames (live)
    glance_boxes: Tensor | None = None  # (B, T_g, 4) the policy's boxes at the glance frames (live)
    weights: Tensor | None = None  # (B, T_g) the temporal policy's w (live)

    def select(self, index: Tensor) -> "Plan":
        """The plan of a subset of the batch (a bool mask or indices), e.g. the clips still running."""
        pick = (lambda t: None if t is None else t[index])
        g = self.glance
        glance = None if g is None else GlanceOutput(g.maps[index], g.feats[index], g.positions[index])
        return Plan(self.patch_mode, self.frame_mode, glance, self.frame_idx[index], self.boxes[index],
                    pick(self.actions), pick(self.glance_boxes), pick(self.weights))


@dataclass
class AdaFocusOutput:
    """The answer (``logits``, every exit's ``exit_logits``) and the :class:`Plan` it came from."""

    logits: Tensor  # (B, n) final prediction (last exit)
    exit_logits: Tensor  # (B, S, n), S = T_g + K exits (K without glance, T_g without focus, 1 without exits)
    plan: Plan
    glance_frame_logits: Tensor | None = None  # (B, T_g, n) each glance frame alone (training only)
    focus_frame_logits: Tensor | None = None  # (B, K, n) each focus patch alone (training only)

    @property
    def boxes(self) -> Tensor:
        """(B, K, 4) the chosen boxes, detached."""
        return self.plan.boxes.detach()

    @property
    def frame_idx(self) -> Tensor:
        """(B, K) the chosen frames."""
        return self.plan.frame_idx

    @property
    def temporal_weights(self) -> Tensor | None:
        """(B, T_g) the temporal policy's ``w`` (None without a temporal policy in use)."""
        return self.plan.weights

    @property
    def glance_boxes(self) -> Tensor | None:
        """(B, T_g, 4) the policy's boxes at the glance frames (None without a spatial policy in use)."""
        return self.plan.glance_boxes

    @property
    def glance_idx(self) -> Tensor | None:
        """(B, T_g) the glance frames' indices (None without a glance network)."""
        return None if self.plan.glance is None else self.plan.glance.positions

    @property
    def box_centers(self) -> Tensor | None:
        """(B, T_g, 2) centers (x, y) in pixels of the policy's boxes at the glance frames."""
        return None if self.plan.glance_boxes is None else box_centers(self.plan.glance_boxes)


class Glance(nn.Module):
    """MobileNetV2 up to output stride ``stride``, then an optional 1x1 conv to ``feature_dim``.

    At stride 32 this is the whole MobileNetV2 (its last 1x1 conv has ``feature_dim`` channels, or
    its own 1280·max(1, width) when 0). At stride 4, 8 or 16 the network is cut after the last block
    of that stride, so a small frame still gives a map for the spatial policy to point into (the
    CPU default: 32² frames, stride 4, an 8x8 map) at a fraction of the full network's cost.
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


def check_geometry(owner: str, cfg: ModelConfig, frame_size: int, num_frames: int, num_focus: int) -> None:
    """A clear error when a size of ``cfg`` does not fit clips of ``num_frames`` frames of ``frame_size``²."""
    for name, value, limit in (("patch_size", cfg.patch_size, frame_size), ("box_max", cfg.box_max, frame_size),
                               ("glance_size", cfg.glance_size, frame_size), ("num_focus", num_focus, num_frames),
                               ("glance_frames", cfg.glance_frames, num_frames)):
        if value > limit:
            raise ValueError(f"{owner}: model.{name} = {value} exceeds {limit} "
                             f"(frames are {num_frames} x {frame_size}²)")


class UniAdaFocus(nn.Module):
    """The whole model. ``cfg``: a :class:`ModelConfig`; clips have ``num_frames`` frames of ``frame_size``²."""

    def __init__(self, cfg: ModelConfig, frame_size: int, num_frames: int, channels: int = 3) -> None:
        super().__init__()
        cfg.validate()
        self.init_clip(cfg, frame_size, num_frames, channels)
        n = cfg.num_classes
        glance_dim = focus_dim = None
        if cfg.use_glance:
            self.glance = Glance(cfg.glance_width, channels, cfg.glance_stride, cfg.glance_feature_dim)
            glance_dim = self.glance.feature_dim
            self.glance_head = nn.Linear(glance_dim, n)  # each glance frame alone (training signal)
            self.build_policies(glance_dim, self.glance.map_size(cfg.glance_size))
        if cfg.use_focus:
            self.focus = ResNet(cfg.focus_block, cfg.focus_layers, cfg.focus_widths, cfg.focus_stem_stride,
                                channels, tsm=cfg.focus_tsm, tsm_segments=cfg.num_focus)
            focus_dim = self.focus.feature_dim
            self.focus_head = nn.Linear(focus_dim, n)  # each focus patch alone (training signal)
        self.classifier = ExitClassifier(glance_dim, focus_dim, cfg.glance_frames, cfg.num_focus, cfg.hidden_dim,
                                         n, exits=cfg.exits)
        if cfg.channels_last:  # 4-D conv weights only; the policies' 3-D/1-D convs stay as they are
            for net in (self.glance, self.focus):
                if net is not None:
                    net.to(memory_format=torch.channels_last)

    def init_clip(self, cfg: ModelConfig, frame_size: int, num_frames: int, channels: int) -> None:
        """What every family member sets before it builds its networks (``cfg`` already validated): the config,
        the clip geometry (checked), ``K``, the glance frames at test time, and no network yet."""
        self.cfg, self.frame_size, self.num_frames, self.channels = cfg, frame_size, num_frames, channels
        self.num_focus = cfg.num_focus if cfg.use_focus else 0
        check_geometry(type(self).__name__, cfg, frame_size, num_frames, self.num_focus)
        # the glance frames at test time (the center of each segment)
        self.register_buffer("glance_idx", uniform_indices(num_frames, cfg.glance_frames), persistent=False)
        self.glance = self.glance_head = self.spatial_policy = self.spatial_head = None
        self.temporal_policy = self.focus = self.focus_head = None
        # the glance's resize to exactly half the size as a 2x2 average pool (patches.halve_frames: the same
        # values as bilinear there, faster): off in the model as trained; optimize_for_inference turns it on
        self.exact_downsample = False
        # the crop's sampling grid built per axis (patches.box_grid: the same grid as F.affine_grid up to float
        # rounding, faster): likewise off as trained, on in the inference copy
        self.per_axis_grid = False

    def build_policies(self, glance_dim: int, map_side: int) -> None:
        """The spatial policy and its surrogate head, the temporal policy: those ``self.cfg`` switches on, reading
        glance features of ``glance_dim`` channels on ``map_side``² maps."""
        cfg = self.cfg
        if cfg.spatial_policy:
            self.spatial_policy = SpatialPolicy(glance_dim, cfg.policy_channels, (map_side, map_side),
                                                self.frame_size, cfg.box_min, cfg.box_max, cfg.square_boxes,
                                                cfg.location_head, separable=cfg.policy_separable)
            self.spatial_head = nn.Linear(glance_dim, cfg.num_classes)  # the spatial surrogate's classifier
        if cfg.temporal_policy:
            self.temporal_policy = TemporalPolicy(glance_dim, cfg.temporal_channels)

    # -- input checks ---------------------------------------------------------------------------
    def check_input(self, video: Tensor) -> None:
        """Raise a clear error unless ``video`` is ``(B, T, C, H, W)`` with this model's geometry, its dtype,
        and finite values in [0, 1] (checked with one ``aminmax`` per call)."""
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
        # one cheap pass (aminmax; NaN propagates into both); the counts only on the error path
        with stage("check_input"):
            lo, hi = (float(v) for v in torch.aminmax(video.detach()))
        if not (abs(lo) < float("inf") and abs(hi) < float("inf")):  # (False for NaN too)
            finite = torch.isfinite(video)
            nan = int(video.isnan().sum())
            raise ValueError(f"UniAdaFocus: video: expected finite values in [0, 1], got {nan} NaN and "
                             f"{int((~finite).sum()) - nan} inf values")
        slack = 0.05  # resampling (bicubic, antialiasing) may overshoot [0, 1] a little
        if lo < -slack or hi > 1 + slack:
            likely = "0-255 pixels" if hi > 2 and lo >= -slack else "normalised frames"
            raise ValueError(
                f"UniAdaFocus: video: expected values in [0, 1], got values in [{lo:.4g}, {hi:.4g}] (looks like "
                f"{likely}); the two common causes: 0-255 pixels (use video / 255) and ImageNet-normalised "
                "frames (undo it: video * std + mean; the model takes raw RGB in [0, 1])")


    def prepare_2d(self, x: Tensor) -> Tensor:
        """A batch of frames or patches ``(N, C, H, W)`` in the memory format the 2-D backbones expect."""
        return x.contiguous(memory_format=torch.channels_last) if self.cfg.channels_last else x

    # -- modes ----------------------------------------------------------------------------------
    def resolve_modes(self, patch_mode: str | None = None, frame_mode: str | None = None) -> tuple[str, str]:
        """The modes a call uses (the config's unless overridden), checked against what the model has."""
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

    @property
    def needs_ground_truth(self) -> bool:
        """Whether this model's own modes read the true boxes or masks (the oracle)."""
        pm, fm = self.resolve_modes()
        return pm == "oracle" or fm == "oracle"

    # -- step 1: glance -------------------------------------------------------------------------
    def glance_positions(self, batch: int) -> Tensor:
        """``(B, T_g)`` glance frames: the center of each segment, or (training with ``glance_jitter``) a
        random frame of it."""
        jitter = self.training and self.cfg.glance_jitter
        return segment_indices(self.num_frames, self.cfg.glance_frames, batch, jitter, device=self.glance_idx.device)

    def glance_features(self, video: Tensor, frames: Tensor | None = None) -> GlanceOutput:
        """Glance at frames ``frames`` (``(B, n)`` or ``(n,)`` indices; default :meth:`glance_positions`) of
        ``video`` ``(B, T, C, H, W)``."""
        if self.glance is None:
            raise RuntimeError("UniAdaFocus: this model has no glance network (use_glance=False)")
        B = video.shape[0]
        frames = self.glance_positions(B) if frames is None else torch.as_tensor(frames, device=video.device)
        frames = frames.expand(B, -1) if frames.dim() == 1 else frames  # (B, n)
        with stage("sampling_crop"):
            if self.exact_downsample and 2 * self.cfg.glance_size == self.frame_size:
                x = halve_frames(video, frames, channels_last=self.cfg.channels_last)  # (B * n, C, H/2, W/2)
            else:
                x = gather_frames(video, frames).flatten(0, 1)  # (B * n, C, H, W)
                if self.cfg.glance_size != self.frame_size:
                    x = resize_frames(x, self.cfg.glance_size)
            x = self.prepare_2d(x)
        with stage("glance"):
            maps = self.glance(x)  # (B * n, C_g, h, w)
            maps = maps.reshape(B, frames.shape[1], *maps.shape[1:])
            feats = maps.amax(dim=(-2, -1)) if self.cfg.glance_pool == "max" else maps.mean(dim=(-2, -1))
        return GlanceOutput(maps, feats, frames)

    # -- steps 2 and 3: the policies ------------------------------------------------------------
    def spatial_actions(self, maps: Tensor) -> Tensor:
        """Glance maps ``(B, T_g, C_g, h, w)`` (detached unless ``policy_trains_glance``) -> actions ``(B, T_g, 4)``."""
        if self.spatial_policy is None:
            raise RuntimeError("UniAdaFocus: this model has no spatial policy (spatial_policy=False)")
        return self.spatial_policy(maps if self.cfg.policy_trains_glance else maps.detach())

    def temporal_weights(self, feats: Tensor) -> Tensor:
        """Pooled glance features ``(B, T_g, C_g)`` -> ``w`` ``(B, T_g)`` (as in the paper, not detached)."""
        if self.temporal_policy is None:
            raise RuntimeError("UniAdaFocus: this model has no temporal policy (temporal_policy=False)")
        return self.temporal_policy(feats)

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
                     positions: Tensor | None = None, gt_boxes: Tensor | None = None) -> Tensor:
        """Boxes ``(B, K, 4)`` (pixels, live) at the chosen frames for the given patch mode. ``actions``
        ``(B, T_g, 4)`` at glance frames ``positions`` ``(B, T_g)`` (policy mode); ``gt_boxes`` (oracle)."""
        cfg, S = self.cfg, self.frame_size
        B, K = frame_idx.shape
        rows = torch.arange(B, device=frame_idx.device)[:, None]
        if mode == "policy":
            positions = self.glance_idx if positions is None else positions
            per_frame = interpolate_actions(actions, positions, self.num_frames)  # (B, T, 4)
            return boxes_from_actions(per_frame[rows, frame_idx], S, cfg.box_min, cfg.box_max, cfg.square_boxes)
        if mode == "random":
            return random_boxes(B, K, S, cfg.box_min, cfg.box_max, cfg.square_boxes, device=frame_idx.device)
        if mode == "center":
            mid = torch.full((B, K, 4), CENTER_ACTION, device=frame_idx.device)
            return boxes_from_actions(mid, S, cfg.box_min, cfg.box_max, cfg.square_boxes)
        if mode == "full":
            return center_boxes(B, K, S, S, device=frame_idx.device)
        if gt_boxes is None or gt_boxes.shape != (B, self.num_frames, 4):
            raise ValueError(f"UniAdaFocus: patch_mode='oracle' needs gt_boxes (B, T, 4) = ({B}, {self.num_frames}, 4)"
                             f", got {None if gt_boxes is None else tuple(gt_boxes.shape)}")
        true = gt_boxes[rows, frame_idx].float()
        if self.training and cfg.oracle_jitter:  # scale and offset augmentation (training only)
            return jitter_boxes(true, S, cfg.box_min, cfg.box_max)
        return clamp_boxes(true, S, cfg.box_min, cfg.box_max)

    def decide(self, glance: GlanceOutput | None, batch: int, patch_mode: str | None = None,
               frame_mode: str | None = None, gt_boxes: Tensor | None = None,
               gt_mask: Tensor | None = None) -> Plan:
        """Steps 2-3 on a glance already taken: the frames and boxes to look at (a :class:`Plan`)."""
        pm, fm = self.resolve_modes(patch_mode, frame_mode)
        device = self.glance_idx.device
        with stage("policies"):
            actions = self.spatial_actions(glance.maps) if pm == "policy" else None
            weights = self.temporal_weights(glance.feats) if fm == "policy" else None
        with stage("sampling_crop"):
            frame_idx = self.select_frames(batch, fm, weights, gt_mask if fm == "oracle" else None).to(device)
            boxes = torch.zeros(batch, 0, 4, device=device)
            if self.focus is not None:
                positions = glance.positions if glance is not None else None
                boxes = self.select_boxes(pm, frame_idx, actions, positions, gt_boxes if pm == "oracle" else None)
            glance_boxes = None
            if actions is not None:
                c = self.cfg
                glance_boxes = boxes_from_actions(actions, self.frame_size, c.box_min, c.box_max, c.square_boxes)
        return Plan(pm, fm, glance, frame_idx, boxes, actions, glance_boxes, weights)

    def plan(self, video: Tensor, patch_mode: str | None = None, frame_mode: str | None = None,
             gt_boxes: Tensor | None = None, gt_mask: Tensor | None = None) -> Plan:
        """Glance at ``video`` ``(B, T, C, H, W)`` and decide where and when to look. ``gt_boxes`` ``(B, T, 4)``
        and ``gt_mask`` ``(B, T)`` are read only by the oracle modes."""
        self.check_input(video)
        glance = self.glance_features(video) if self.glance is not None else None
        return self.decide(glance, video.shape[0], patch_mode, frame_mode, gt_boxes, gt_mask)

    def random_patch_plan(self, plan: Plan) -> Plan:
        """The same frames with boxes of side ``P`` at random positions: the random-patch branch of training
        (it keeps the focus network robust while the policy is young, as in the paper)."""
        B, K = plan.frame_idx.shape
        side = min(max(self.cfg.patch_size, self.cfg.box_min), self.cfg.box_max)
        boxes = random_boxes_of_side(B, K, self.frame_size, side, device=plan.frame_idx.device)
        return replace(plan, patch_mode="random", boxes=boxes)

    # -- step 4: focus --------------------------------------------------------------------------
    def focus_features(self, video: Tensor, boxes: Tensor, frame_idx: Tensor, full: bool = False) -> Tensor:
        """Crop ``boxes`` ``(B, k, 4)`` from frames ``frame_idx`` ``(B, k)`` -> focus features ``(B, k, C_f)``.

        ``full=True`` resizes the whole frame to ``P`` (same result as the full-frame box, without
        the crop). With a temporal shift (``focus_tsm``) all ``K`` frames must come together.
        """
        if self.focus is None:
            raise RuntimeError("UniAdaFocus: this model has no focus network (use_focus=False)")
        B, k = frame_idx.shape
        P = self.cfg.patch_size
        with stage("sampling_crop"):
            frames = gather_frames(video, frame_idx)  # (B, k, C, H, W)
            if full:
                x = frames.flatten(0, 1)
                if P != self.frame_size:
                    x = resize_frames(x, P)
            else:
                x = crop_patches(frames, boxes, P, self.per_axis_grid).flatten(0, 1)  # (B * k, C, P, P)
            x = self.prepare_2d(x)
        with stage("focus"):
            if self.cfg.focus_tsm:
                self.focus.set_segments(k)
            return self.focus(x).reshape(B, k, -1)

    # -- step 5: classify -----------------------------------------------------------------------
    def classify(self, glance_feats: Tensor | None, focus_feats: Tensor | None) -> Tensor:
        """Every exit's logits ``(B, S, n)`` (see :class:`~adafocus.models.heads.ExitClassifier`)."""
        with stage("classifier"):
            return self.classifier(glance_feats, focus_feats)

    def run(self, video: Tensor, plan: Plan, steps: int | None = None) -> AdaFocusOutput:
        """Look where ``plan`` says and answer: ``video`` ``(B, T, C, H, W)`` -> :class:`AdaFocusOutput`.

        ``steps``: use only the first ``steps`` focus frames of the plan (default all ``K``; the
        exits of the steps taken are returned). The crop uses detached boxes unless the model trains
        through it (``patch_grad``) in the policy mode.
        """
        g = plan.glance
        focus_feats = None
        if self.focus is not None:
            K = plan.frame_idx.shape[1]
            k = K if steps is None else int(steps)
            if not 1 <= k <= K:
                raise ValueError(f"UniAdaFocus.run: steps must be in [1, {K}], got {steps!r}")
            grad = self.cfg.patch_grad and plan.patch_mode == "policy"
            boxes = plan.boxes[:, :k] if grad else plan.boxes[:, :k].detach()
            focus_feats = self.focus_features(video, boxes, plan.frame_idx[:, :k], full=plan.patch_mode == "full")
        exit_logits = self.classify(g.feats if g is not None else None, focus_feats)
        glance_frame_logits = focus_frame_logits = None
        if self.training:  # the per-frame heads are a training signal: inference does not pay for them
            glance_frame_logits = self.glance_head(g.feats) if g is not None else None
            focus_frame_logits = self.focus_head(focus_feats) if focus_feats is not None else None
        return AdaFocusOutput(exit_logits[:, -1], exit_logits, plan, glance_frame_logits, focus_frame_logits)

    def forward(self, video: Tensor, gt_boxes: Tensor | None = None, gt_mask: Tensor | None = None,
                patch_mode: str | None = None, frame_mode: str | None = None) -> AdaFocusOutput:
        """``video`` ``(B, T, C, H, W)`` float in [0, 1] -> :class:`AdaFocusOutput` (``run(plan(video))``).

        ``patch_mode`` / ``frame_mode`` override the config for this call. ``gt_boxes`` ``(B, T, 4)``
        and ``gt_mask`` ``(B, T)`` are read only by the oracle modes.
        """
        return self.run(video, self.plan(video, patch_mode, frame_mode, gt_boxes, gt_mask))

    # -- optimisation helpers -------------------------------------------------------------------
    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        """Parameters by part, for per-part learning rates: glance, focus, policy, classifier."""
        parts = {"glance": [self.glance, self.glance_head], "focus": [self.focus, self.focus_head],
                 "policy": [self.spatial_policy, self.temporal_policy],
                 "classifier": [self.classifier, self.spatial_head]}
        return {name: [p for m in mods if m is not None for p in m.parameters()] for name, mods in parts.items()}

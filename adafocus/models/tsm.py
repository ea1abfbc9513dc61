"""Uni-AdaFocus-TSM: the family member for short, motion-heavy clips (docs/design.md, "The TSM variant").

The official code's variant for Something-Something and Jester, where the class is *how* things move, not
only *what* is there. Three changes to :class:`~adafocus.models.adafocus.UniAdaFocus`, all in this class,
plus two :class:`~adafocus.config.ModelConfig` switches:

1. **Temporal shift** (TSM, Lin et al. 2019) in the glance network (``glance_tsm``: MobileNetV2's inverted
   residuals with a skip) and in the focus network (``focus_tsm``: every ResNet block): 1/8 of the channels
   of a residual branch's input come from the previous frame, 1/8 from the next one. Frames then see their
   neighbours at every depth, at the cost of a memory move (no parameters, 0 MACs: ``adafocus.flops`` sees
   no convolution or product in it). Without the two switches (``uni_adafocus_tsn``) the same network
   treats every frame alone, TSN-style.
2. **One box for the whole clip**: :class:`ClipSpatialPolicy` reads the glance maps of *all* glance frames
   at once (stacked along the channels) and gives one action; every focus frame is cropped at the same box,
   so the focus network sees the object move through a fixed window (the temporal shift needs aligned
   frames to see motion).
3. **K frames from a candidate pool, logits summed**: the temporal policy's ``w`` (over the glance
   positions) is sampled into ``K`` of ``focus_candidates`` candidate frames (one per segment of the clip,
   a random frame of it in training; the official 3K); the answer is the glance logits (the per-frame
   glance head, averaged over the glance frames) plus the focus logits (the per-frame focus head, averaged
   over the K patches).

The training signal is the main model's (:mod:`adafocus.losses`, the ``cpu`` recipe; the official variant
uses scale-regulariser weight 0.5, as the ``small_motion`` preset). ``exit_logits`` has two exits: the glance
alone, then glance + focus. The temporal shift needs all ``K`` patches at once, so there is no step-by-step
early exit (:func:`adafocus.models.exits.exiting_forward` refuses this class with a clear error); the
early-exit *analysis* of logits (:mod:`adafocus.analysis.early_exit`) still reads the two exits.
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import Tensor, nn

from adafocus.config import ModelConfig
from adafocus.models.adafocus import AdaFocusOutput, GlanceOutput, Plan, UniAdaFocus, stage
from adafocus.models.backbones import ConvBNAct, set_temporal_shift
from adafocus.models.patches import actions_from_centers, random_boxes, random_boxes_of_side
from adafocus.models.sampling import sample_frames, segment_indices, uniform_indices


class ClipSpatialPolicy(nn.Module):
    """Glance maps of all ``T_g`` glance frames ``(B, T_g, C_g, h, w)`` -> one action ``(B, 4)`` for the clip.

    The maps are stacked along the channels (``T_g * C_g``), so the policy sees where the object is in
    every frame at once; a 1x1 conv to ``channels``, two 3x3 convs (depthwise-separable with
    ``separable``), then the location head of :class:`~adafocus.models.policy.SpatialPolicy`: a
    soft-argmax over a one-channel heatmap for the center and a sigmoid of the pooled features for
    the scale (``head="softargmax"``), or a valid conv over the whole map (``head="conv"``, the paper's).
    """

    def __init__(self, in_channels: int, frames: int, channels: int, map_size: tuple[int, int], frame_size: int,
                 box_min: float, box_max: float, square: bool = False, head: str = "softargmax",
                 separable: bool = True) -> None:
        super().__init__()
        if head not in ("softargmax", "conv"):
            raise ValueError(f"ClipSpatialPolicy: head must be 'softargmax' or 'conv', got {head!r}")
        self.frames, self.in_channels, self.map_size = frames, in_channels, tuple(map_size)
        self.head, self.square = head, square
        self.frame_size, self.box_min, self.box_max = frame_size, box_min, box_max

        def block() -> nn.Module:
            if separable:
                return nn.Sequential(ConvBNAct(channels, channels, 3, groups=channels),
                                     ConvBNAct(channels, channels, 1))
            return ConvBNAct(channels, channels, 3)

        self.body = nn.Sequential(ConvBNAct(frames * in_channels, channels, 1), block(), block())
        if head == "conv":
            self.location = nn.Conv2d(channels, 4, kernel_size=self.map_size)
        else:
            self.heatmap = nn.Conv2d(channels, 1, kernel_size=1)
            self.scale = nn.Linear(channels, 1 if square else 2)
            nn.init.zeros_(self.heatmap.weight)  # start from a flat heatmap: the center of the frame
            nn.init.zeros_(self.heatmap.bias)

    def forward(self, maps: Tensor) -> Tensor:
        expected = f"(B, T_g, C_g, h, w) = (B, {self.frames}, {self.in_channels}, h, w)"
        if maps.dim() != 5 or maps.shape[1:3] != (self.frames, self.in_channels):
            raise ValueError(f"ClipSpatialPolicy: maps must be {expected}, got {tuple(maps.shape)}")
        if self.head == "conv" and tuple(maps.shape[-2:]) != self.map_size:
            raise ValueError(f"ClipSpatialPolicy(head='conv'): expected {self.map_size} maps, got "
                             f"{tuple(maps.shape[-2:])}")
        x = self.body(maps.flatten(1, 2))  # (B, C, h, w)
        if self.head == "conv":
            actions = torch.sigmoid(self.location(x).flatten(1))  # (B, 4)
            return torch.cat([actions[:, :3], actions[:, 2:3]], dim=-1) if self.square else actions
        B, _, h, w = x.shape
        p = torch.softmax(self.heatmap(x).reshape(B, h * w), dim=-1).reshape(B, h, w)
        ys = (torch.arange(h, device=p.device, dtype=p.dtype) + 0.5) / h
        xs = (torch.arange(w, device=p.device, dtype=p.dtype) + 0.5) / w
        center = torch.stack([(p.sum(-1) * ys).sum(-1), (p.sum(-2) * xs).sum(-1)], dim=-1)  # (B, 2) as (y, x)
        s = torch.sigmoid(self.scale(x.mean(dim=(2, 3))))  # (B, 1 or 2)
        return actions_from_centers(center, s.expand(-1, 2) if self.square else s, self.frame_size, self.box_min,
                                    self.box_max, self.square)


class LogitSum(nn.Module):
    """The TSM variant's classifier: glance logits, then glance + focus logits (no parameters of its own: the
    per-frame heads are the model's ``glance_head`` and ``focus_head``). ``exits=False`` keeps the last only."""

    def __init__(self, num_classes: int, exits: bool = True) -> None:
        super().__init__()
        self.num_classes, self.exits = num_classes, exits

    @property
    def num_exits(self) -> int:
        return 2 if self.exits else 1

    def forward(self, glance_logits: Tensor, focus_logits: Tensor) -> Tensor:
        """``(B, n)`` each -> ``(B, S, n)``: ``[glance, glance + focus]`` (or ``[glance + focus]``)."""
        final = glance_logits + focus_logits
        return torch.stack([glance_logits, final], dim=1) if self.exits else final[:, None]


class UniAdaFocusTSM(UniAdaFocus):
    """Uni-AdaFocus-TSM (``glance_tsm`` / ``focus_tsm`` on) or its shift-free TSN-style twin (both off).

    Same constructor and interface as :class:`UniAdaFocus` (``plan`` / ``run`` / ``forward`` returning an
    :class:`~adafocus.models.adafocus.AdaFocusOutput`); see the module docstring for what differs.
    """

    # the temporal shift mixes all K patches: there is no patch-by-patch early exit (models.exits checks this)
    step_by_step = False

    def __init__(self, cfg: ModelConfig, frame_size: int, num_frames: int, channels: int = 3) -> None:
        if not (cfg.use_glance and cfg.use_focus):
            raise ValueError("UniAdaFocusTSM: needs the glance and the focus network (use_glance=True, "
                             f"use_focus=True), got use_glance={cfg.use_glance}, use_focus={cfg.use_focus}")
        pool = cfg.focus_candidates or num_frames
        if not cfg.num_focus <= pool <= num_frames:
            raise ValueError(f"UniAdaFocusTSM: model.num_focus = K = {cfg.num_focus} focus frames must come from a "
                             f"candidate pool of at least K frames, and the pool (model.focus_candidates = "
                             f"{cfg.focus_candidates}) must fit the clip's T = {num_frames} frames")
        super().__init__(cfg, frame_size, num_frames, channels)
        self.num_candidates = pool
        set_temporal_shift(self.glance, enabled=cfg.glance_tsm, segments=cfg.glance_frames)
        set_temporal_shift(self.focus, enabled=cfg.focus_tsm, segments=cfg.num_focus)
        if cfg.spatial_policy:  # one box per clip, from every glance frame at once
            side = self.glance.map_size(cfg.glance_size)
            self.spatial_policy = ClipSpatialPolicy(self.glance.feature_dim, cfg.glance_frames, cfg.policy_channels,
                                                    (side, side), frame_size, cfg.box_min, cfg.box_max,
                                                    cfg.square_boxes, cfg.location_head, cfg.policy_separable)
        self.classifier = LogitSum(cfg.num_classes, exits=cfg.exits)

    # -- input checks: name the TSM variant's expectations ---------------------------------------
    def check_input(self, video: Tensor) -> None:
        try:
            super().check_input(video)
        except ValueError as err:
            raise ValueError(f"{type(self).__name__}: {str(err).removeprefix('UniAdaFocus: ')}") from None

    # -- glance: the shift mixes the glance frames of one clip -----------------------------------
    def glance_features(self, video: Tensor, frames: Tensor | None = None) -> GlanceOutput:
        n = self.cfg.glance_frames if frames is None else torch.as_tensor(frames).shape[-1]
        set_temporal_shift(self.glance, segments=n)
        return super().glance_features(video, frames)

    # -- one box per clip ------------------------------------------------------------------------
    def spatial_actions(self, maps: Tensor) -> Tensor:
        """Glance maps ``(B, T_g, C_g, h, w)`` -> the clip's action repeated at every glance frame ``(B, T_g, 4)``."""
        if self.spatial_policy is None:
            raise RuntimeError(f"{type(self).__name__}: this model has no spatial policy (spatial_policy=False)")
        action = self.spatial_policy(maps if self.cfg.policy_trains_glance else maps.detach())  # (B, 4)
        return action[:, None].expand(-1, maps.shape[1], -1)

    def select_boxes(self, mode: str, frame_idx: Tensor, actions: Tensor | None = None,
                     positions: Tensor | None = None, gt_boxes: Tensor | None = None) -> Tensor:
        if mode == "random":  # one random box per clip, as the policy's
            c = self.cfg
            B, K = frame_idx.shape
            box = random_boxes(B, 1, self.frame_size, c.box_min, c.box_max, c.square_boxes, device=frame_idx.device)
            return box.expand(-1, K, -1)
        return super().select_boxes(mode, frame_idx, actions, positions, gt_boxes)

    def random_patch_plan(self, plan: Plan) -> Plan:
        """The random-patch branch of training with one box of side ``P`` per clip (at a random position)."""
        B, K = plan.frame_idx.shape
        side = min(max(self.cfg.patch_size, self.cfg.box_min), self.cfg.box_max)
        box = random_boxes_of_side(B, 1, self.frame_size, side, device=plan.frame_idx.device)
        return replace(plan, patch_mode="random", boxes=box.expand(-1, K, -1))

    # -- K frames out of the candidate pool ------------------------------------------------------
    def candidates(self, batch: int) -> Tensor:
        """``(B, N_c)`` candidate frames: one per segment of the clip, a random frame of it in training with
        ``glance_jitter`` (TSN sampling), the segment's center otherwise."""
        jitter = self.training and self.cfg.glance_jitter
        return segment_indices(self.num_frames, self.num_candidates, batch, jitter, device=self.glance_idx.device)

    def select_frames(self, batch: int, mode: str, weights: Tensor | None = None,
                      gt_mask: Tensor | None = None) -> Tensor:
        """``K`` sorted frames ``(B, K)`` among the candidates: sampled from ``w`` (policy; stratified, see
        :func:`~adafocus.models.sampling.sample_frames`) or the uniform grid of the pool; oracle: as the main model."""
        if mode == "oracle":
            return super().select_frames(batch, mode, weights, gt_mask)
        K, N = self.num_focus, self.num_candidates
        pool = self.candidates(batch)  # (B, N)
        if mode == "uniform":
            idx = uniform_indices(N, K, pool.device).expand(batch, K)
        else:
            idx = sample_frames(weights, N, K, train=self.training).to(pool.device)
        return pool.gather(1, idx)

    # -- classify: glance logits + focus logits --------------------------------------------------
    def run(self, video: Tensor, plan: Plan, steps: int | None = None) -> AdaFocusOutput:
        """Look where ``plan`` says and answer (``steps``: all ``K`` only; the shift needs every patch)."""
        K = plan.frame_idx.shape[1]
        if steps is not None and int(steps) != K:
            raise ValueError(f"{type(self).__name__}.run: steps must be None or K = {K} (the temporal shift mixes "
                             f"all K patches: no partial run), got {steps!r}")
        g = plan.glance
        grad = self.cfg.patch_grad and plan.patch_mode == "policy"
        boxes = plan.boxes if grad else plan.boxes.detach()
        focus_feats = self.focus_features(video, boxes, plan.frame_idx, full=plan.patch_mode == "full")
        with stage("classifier"):
            glance_frame_logits = self.glance_head(g.feats)  # (B, T_g, n)
            focus_frame_logits = self.focus_head(focus_feats)  # (B, K, n)
            exit_logits = self.classifier(glance_frame_logits.mean(1), focus_frame_logits.mean(1))
        if not self.training:  # as the main model: the per-frame logits are a training signal
            glance_frame_logits = focus_frame_logits = None
        return AdaFocusOutput(exit_logits[:, -1], exit_logits, plan, glance_frame_logits, focus_frame_logits)

    def classify(self, glance_feats: Tensor | None, focus_feats: Tensor | None) -> Tensor:
        """Exit logits ``(B, S, n)`` from pooled features ``(B, T_g, C_g)`` and ``(B, K, C_f)``."""
        with stage("classifier"):
            return self.classifier(self.glance_head(glance_feats).mean(1), self.focus_head(focus_feats).mean(1))

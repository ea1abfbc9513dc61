"""X3D (Feichtenhofer 2020) and Uni-AdaFocus-X3D: space-time cubes for a 3-D focus network (AdaFocus V3).

**X3D** is a 3-D ResNet expanded from a tiny base along a few axes; written here from the paper
(docs/design.md, "X3D and space-time cubes"), in the style of :mod:`adafocus.models.backbones`:

- a stem: a ``1x3x3`` conv (spatial stride 2) then a channelwise ``5x1x1`` temporal conv;
- four stages of bottleneck blocks, each halving the space (never the time): a ``1x1x1`` conv
  expands to ``bottleneck_factor`` x the stage width, a **channelwise** ``3x3x3`` conv (one filter per
  channel), squeeze-excitation on every other block, swish, a ``1x1x1`` projection, a residual;
- a head: a ``1x1x1`` conv to ``bottleneck_factor`` x the last width, global average pooling, a
  ``1x1x1`` (fully connected) layer to ``head_dim`` features.

Stage widths are ``round8(base_width * 2**i * width_factor)``; blocks per stage
``ceil(depth_factor * stage_blocks[i])``. The published sizes (:data:`X3D_SIZES`) share
``width_factor = 2``: X3D-XS / S / M are one network at different inputs (4 x 160², 13 x 160², 16 x 224²),
X3D-L is deeper (``depth_factor = 5``) at 16 x 312². Networks take clips ``(N, C, T, H, W)`` (channels
before time, as ``Conv3d`` wants); the video models take ``(B, T, C, H, W)`` and transpose.

**Uni-AdaFocus-X3D** (:class:`UniAdaFocusX3D`, registered ``uni_adafocus_x3d``) keeps the
:class:`~adafocus.models.adafocus.UniAdaFocus` interface (``plan`` / ``run`` / ``forward`` returning an
:class:`~adafocus.models.adafocus.AdaFocusOutput`, the same training loss) with three changes:

1. the **glance** is a shallow 3-D X3D on ``T_g`` low-resolution frames, cut at ``glance_stride``
   like the 2-D glance, so it gives a map per glance frame ``(B, T_g, C_g, h, w)``;
2. the spatial policy picks **one box per clip** (its input: the glance maps max-pooled over time);
3. the focus network sees a **space-time cube**: that box cropped from the ``K`` frames the temporal
   policy selects (or the uniform grid), resampled to ``K x P x P`` and seen at once by a 3-D X3D.

There is one prediction per clip (no exits: a 3-D network has no per-frame steps to exit after).
The full-clip baseline ``x3d_full`` is the same focus X3D on ``full_frame_frames`` whole frames.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from adafocus.config import X3D_SIZES as X3D_SIZE_NAMES
from adafocus.config import ModelConfig
from adafocus.models.adafocus import AdaFocusOutput, GlanceOutput, Plan, UniAdaFocus, stage
from adafocus.models.heads import ExitClassifier
from adafocus.models.patches import (boxes_from_actions, crop_patches, gather_frames,
                                     halve_frames, random_boxes_of_side, resize_frames)

CHANNEL_DIVISOR = 8  # every width is rounded to a multiple of 8 (as the paper's implementation)
STAGE_STRIDES = (2, 4, 8, 16, 32)  # the spatial output stride after the stem and after each stage


def round_width(width: float, divisor: int = CHANNEL_DIVISOR) -> int:
    """``width`` rounded to the nearest multiple of ``divisor`` (at least ``divisor``), never down by >10%."""
    out = max(divisor, int(width + divisor / 2) // divisor * divisor)
    return out + divisor if out < 0.9 * width else out


@dataclass(frozen=True)
class X3DSpec:
    """An X3D network: the expansion factors of the paper (the defaults: X3D-XS / S / M)."""

    base_width: int = 12  # the stem's width before the width factor (the paper's X2D base)
    width_factor: float = 2.0  # gamma_w: every width x this
    depth_factor: float = 2.2  # gamma_d: every stage's blocks x this (rounded up)
    bottleneck_factor: float = 2.25  # gamma_b: a block's inner width = this x its output width
    stage_blocks: tuple[int, ...] = (1, 2, 5, 3)  # blocks per stage before the depth factor
    se_ratio: float = 0.0625  # squeeze-excitation width = this x the inner width (every other block)
    stem_temporal_kernel: int = 5  # the stem's channelwise temporal conv
    head_dim: int = 2048  # features after the head's fully connected layer (0: no head, the last map pooled)

    def __post_init__(self) -> None:
        for name in ("base_width", "stem_temporal_kernel"):
            if not (isinstance(getattr(self, name), int) and getattr(self, name) >= 1):
                raise ValueError(f"X3DSpec.{name}: expected an int >= 1, got {getattr(self, name)!r}")
        for name in ("width_factor", "depth_factor", "bottleneck_factor"):
            if not getattr(self, name) > 0:
                raise ValueError(f"X3DSpec.{name}: expected a positive number, got {getattr(self, name)!r}")
        if not (1 <= len(self.stage_blocks) <= 4 and all(n >= 1 for n in self.stage_blocks)):
            raise ValueError(f"X3DSpec.stage_blocks: expected 1-4 stages of >= 1 block, got {self.stage_blocks!r}")
        if not 0 <= self.se_ratio < 1:
            raise ValueError(f"X3DSpec.se_ratio: expected a float in [0, 1), got {self.se_ratio!r}")
        if self.head_dim < 0:
            raise ValueError(f"X3DSpec.head_dim: expected an int >= 0 (0 = no head), got {self.head_dim!r}")

    @property
    def widths(self) -> tuple[int, ...]:
        """Output channels of each stage."""
        return tuple(round_width(self.base_width * 2 ** i * self.width_factor) for i in range(len(self.stage_blocks)))

    @property
    def depths(self) -> tuple[int, ...]:
        """Blocks of each stage."""
        return tuple(math.ceil(self.depth_factor * n) for n in self.stage_blocks)


# The published networks (X3D paper, Table 3) and the input each is reported at (frames, side).
X3D_SIZES: dict[str, X3DSpec] = {"XS": X3DSpec(), "S": X3DSpec(), "M": X3DSpec(), "L": X3DSpec(depth_factor=5.0)}
X3D_INPUTS: dict[str, tuple[int, int]] = {"XS": (4, 160), "S": (13, 160), "M": (16, 224), "L": (16, 312)}
# The CPU networks of the workbench's presets (docs/design.md, "X3D and space-time cubes"): the published
# design (channelwise 3x3x3, SE, swish, bottleneck 2.25) at a third of the width and depth 1.
X3D_SIZES["cpu"] = X3DSpec(base_width=4, depth_factor=1.0, head_dim=128)  # widths 8/16/32/64, 11 blocks
if tuple(X3D_SIZES) != X3D_SIZE_NAMES:  # ModelConfig validates model.glance_x3d / focus_x3d against those names
    raise RuntimeError(f"adafocus.config.X3D_SIZES {X3D_SIZE_NAMES} must name the sizes here: {tuple(X3D_SIZES)}")


class ConvBNAct3d(nn.Sequential):
    """Conv3d (no bias) -> BatchNorm3d -> optional activation. ``kernel`` / ``stride``: (t, h, w)."""

    def __init__(self, c_in: int, c_out: int, kernel: tuple[int, int, int], stride: tuple[int, int, int] = (1, 1, 1),
                 groups: int = 1, act: type[nn.Module] | None = nn.ReLU) -> None:
        layers: list[nn.Module] = [nn.Conv3d(c_in, c_out, kernel, stride, padding=tuple(k // 2 for k in kernel),
                                             groups=groups, bias=False), nn.BatchNorm3d(c_out)]
        if act is not None:
            layers.append(act(inplace=True) if act in (nn.ReLU, nn.SiLU) else act())
        super().__init__(*layers)


class SqueezeExcite3d(nn.Module):
    """Channel gates from the globally pooled clip: ``x * sigmoid(fc2(relu(fc1(mean(x)))))``."""

    def __init__(self, channels: int, ratio: float) -> None:
        super().__init__()
        hidden = round_width(channels * ratio)
        self.fc1 = nn.Conv3d(channels, hidden, 1)
        self.fc2 = nn.Conv3d(hidden, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        s = x.mean(dim=(2, 3, 4), keepdim=True)  # (N, C, 1, 1, 1)
        return x * torch.sigmoid(self.fc2(F.relu(self.fc1(s))))


class X3DBlock(nn.Module):
    """1x1x1 expand (ReLU) -> channelwise 3x3x3 (spatial stride) -> [SE] -> swish -> 1x1x1 project, + skip."""

    def __init__(self, c_in: int, c_out: int, inner: int, stride: int, se_ratio: float) -> None:
        super().__init__()
        self.expand = ConvBNAct3d(c_in, inner, (1, 1, 1))
        self.channelwise = ConvBNAct3d(inner, inner, (3, 3, 3), (1, stride, stride), groups=inner, act=None)
        self.se = SqueezeExcite3d(inner, se_ratio) if se_ratio > 0 else nn.Identity()
        self.project = ConvBNAct3d(inner, c_out, (1, 1, 1), act=None)
        self.shortcut = (ConvBNAct3d(c_in, c_out, (1, 1, 1), (1, stride, stride), act=None)
                         if stride != 1 or c_in != c_out else nn.Identity())

    def forward(self, x: Tensor) -> Tensor:
        out = F.silu(self.se(self.channelwise(self.expand(x))))  # swish = SiLU
        return F.relu(self.project(out) + self.shortcut(x))


class X3D(nn.Module):
    """X3D without its classifier: ``(N, C, T, H, W) -> (N, feature_dim)``.

    ``num_stages`` keeps the first stages only (the glance is cut at output stride 4 = the stem and
    one stage). ``forward_features`` gives the last map ``(N, C, T, H/s, W/s)``; ``forward`` adds the
    head (when ``spec.head_dim > 0`` and every stage is kept) or pools the map.
    """

    def __init__(self, spec: X3DSpec, in_channels: int = 3, num_stages: int | None = None) -> None:
        super().__init__()
        stages = len(spec.stage_blocks) if num_stages is None else num_stages
        if not 1 <= stages <= len(spec.stage_blocks):
            raise ValueError(f"X3D: num_stages must be in [1, {len(spec.stage_blocks)}], got {num_stages!r}")
        self.spec, self.in_channels = spec, in_channels
        widths, depths, b = spec.widths, spec.depths, spec.bottleneck_factor
        stem = widths[0]
        kt = spec.stem_temporal_kernel
        self.stem = nn.Sequential(nn.Conv3d(in_channels, stem, (1, 3, 3), (1, 2, 2), (0, 1, 1), bias=False),
                                  ConvBNAct3d(stem, stem, (kt, 1, 1), groups=stem))
        blocks, c_in = [], stem
        for i in range(stages):
            for j in range(depths[i]):
                se = spec.se_ratio if j % 2 == 0 else 0.0  # SE on every other block, from the first
                blocks.append(X3DBlock(c_in, widths[i], int(b * widths[i]), 2 if j == 0 else 1, se))
                c_in = widths[i]
        self.stages = nn.Sequential(*blocks)
        self.head = None
        if spec.head_dim > 0 and stages == len(spec.stage_blocks):
            inner = int(b * c_in)
            self.head = nn.ModuleDict({"conv": ConvBNAct3d(c_in, inner, (1, 1, 1)),
                                       "fc": nn.Linear(inner, spec.head_dim, bias=False)})
            c_in = spec.head_dim
        self.map_channels = widths[stages - 1]
        self.feature_dim = c_in
        self.stride = STAGE_STRIDES[stages]
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, X3DBlock):
                nn.init.zeros_(m.project[1].weight)  # every block starts as the identity (its skip)

    def map_size(self, size: int) -> int:
        """Side of the last map for a ``size`` x ``size`` input (every stride-2 conv rounds up)."""
        for _ in range(int(math.log2(self.stride))):
            size = (size + 1) // 2
        return size

    def check_clip(self, x: Tensor) -> None:
        """A clear error unless ``x`` is ``(N, C, T, H, W)`` with this network's ``C``."""
        if x.dim() != 5 or x.shape[1] != self.in_channels:
            hint = (" (looks like (N, T, C, H, W): use x.transpose(1, 2))"
                    if x.dim() == 5 and x.shape[2] == self.in_channels else "")
            raise ValueError(f"X3D: expected a clip (N, C, T, H, W) with C = {self.in_channels}, got "
                             f"{tuple(x.shape)}{hint}")

    def forward_features(self, x: Tensor) -> Tensor:
        """``(N, C, T, H, W) -> (N, map_channels, T, H/s, W/s)``."""
        self.check_clip(x)
        return self.stages(self.stem(x))

    def forward(self, x: Tensor) -> Tensor:
        """``(N, C, T, H, W) -> (N, feature_dim)``."""
        x = self.forward_features(x)
        if self.head is None:
            return x.mean(dim=(2, 3, 4))
        x = self.head["conv"](x).mean(dim=(2, 3, 4))  # (N, inner)
        return F.relu(self.head["fc"](x))


def x3d(size: str, in_channels: int = 3, **overrides) -> X3D:
    """A named X3D (:data:`X3D_SIZES`: XS, S, M, L, or the CPU sizes), optionally with spec overrides."""
    if size not in X3D_SIZES:
        raise ValueError(f"x3d: size must be one of {sorted(X3D_SIZES)}, got {size!r}")
    return X3D(replace(X3D_SIZES[size], **overrides), in_channels)


# -- Uni-AdaFocus-X3D ------------------------------------------------------------------------------

class X3DGlance(nn.Module):
    """The 3-D glance: an X3D cut after the stage of output stride ``stride``, then a ``1x1x1`` conv to
    ``feature_dim`` (0: none). ``(N, C, T, H, W) -> (N, feature_dim, T, H/stride, W/stride)``."""

    def __init__(self, spec: X3DSpec, in_channels: int, stride: int, feature_dim: int) -> None:
        super().__init__()
        if stride not in STAGE_STRIDES[1:len(spec.stage_blocks) + 1]:
            raise ValueError(f"X3DGlance: model.glance_stride must be one of {STAGE_STRIDES[1:]} (the stride after "
                             f"each X3D stage), got {stride}")
        self.net = X3D(replace(spec, head_dim=0), in_channels, num_stages=STAGE_STRIDES.index(stride))  # maps only
        channels = self.net.map_channels
        self.proj = ConvBNAct3d(channels, feature_dim, (1, 1, 1)) if feature_dim > 0 else nn.Identity()
        self.feature_dim = feature_dim or channels

    def map_size(self, size: int) -> int:
        return self.net.map_size(size)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(self.net.forward_features(x))


class UniAdaFocusX3D(UniAdaFocus):
    """Uni-AdaFocus with a 3-D glance and a space-time cube for a 3-D focus X3D (see the module docstring).

    Same constructor, ``plan`` / ``run`` / ``forward``, outputs and parameter groups as
    :class:`~adafocus.models.adafocus.UniAdaFocus`; what differs: the glance and focus networks are
    X3Ds (``model.glance_x3d``, ``model.focus_x3d``), the spatial policy gives one box per clip (the
    plan repeats it at every glance and focus frame, so the surrogate and the scale regulariser of
    :mod:`adafocus.losses` apply unchanged), and the ``K`` focus frames form one cube ``(B, C, K, P, P)``:
    one step, one exit (``exit_logits`` ``(B, 1, n)``, ``focus_frame_logits`` ``(B, 1, n)``).
    """

    step_by_step = False  # adafocus.models.exits.exiting_forward refuses it: the cube is seen at once
    # its backbones' pretraining ("module:function", resolved by adafocus.train): the 2-D weights do not fit an X3D
    pretraining = "adafocus.pretrain_x3d:pretrained_x3d_backbones"
    PATCH_MODES = ("policy", "random", "center", "full")  # no oracle box for a cube
    FRAME_MODES = ("policy", "uniform")

    def __init__(self, cfg: ModelConfig, frame_size: int, num_frames: int, channels: int = 3) -> None:
        nn.Module.__init__(self)  # the networks differ from UniAdaFocus's: only its methods are inherited
        cfg.validate()
        if cfg.exits:
            raise ValueError("UniAdaFocusX3D: model.exits must be False: the 3-D focus network sees the whole cube "
                             "at once, so there are no per-frame steps to exit after")
        if cfg.patch_mode not in self.PATCH_MODES or cfg.frame_mode not in self.FRAME_MODES:
            raise ValueError(f"UniAdaFocusX3D: model.patch_mode must be one of {self.PATCH_MODES} and model.frame_mode "
                             f"one of {self.FRAME_MODES}, got {cfg.patch_mode!r} / {cfg.frame_mode!r}")
        num_focus = cfg.num_focus if cfg.use_focus else 0
        if num_focus > num_frames:
            raise ValueError(f"UniAdaFocusX3D: model.num_focus = {num_focus}: a space-time cube of "
                             f"{num_focus} frames is deeper than the clip's T = {num_frames} frames")
        self.init_clip(cfg, frame_size, num_frames, channels)
        n = cfg.num_classes
        glance_dim = focus_dim = None
        if cfg.use_glance:
            self.glance = X3DGlance(X3D_SIZES[cfg.glance_x3d], channels, cfg.glance_stride, cfg.glance_feature_dim)
            glance_dim = self.glance.feature_dim
            self.glance_head = nn.Linear(glance_dim, n)  # each glance frame alone (the temporal surrogate's logits)
            # the 2-D model's policies; the spatial one reads the glance maps pooled over time (spatial_actions)
            self.build_policies(glance_dim, self.glance.map_size(cfg.glance_size))
        if cfg.use_focus:
            self.focus = X3D(X3D_SIZES[cfg.focus_x3d], channels)
            focus_dim = self.focus.feature_dim
            self.focus_head = nn.Linear(focus_dim, n)  # the cube alone (training signal)
        self.classifier = ExitClassifier(glance_dim, focus_dim, cfg.glance_frames, 1, cfg.hidden_dim, n, exits=False)
        if cfg.channels_last:  # channels-last 3-D memory: about 2x faster training of the X3Ds on a CPU (measured)
            for net in (self.glance, self.focus):
                if net is not None:
                    net.to(memory_format=torch.channels_last_3d)

    def resolve_modes(self, patch_mode: str | None = None, frame_mode: str | None = None) -> tuple[str, str]:
        pm, fm = super().resolve_modes(patch_mode, frame_mode)
        if pm not in (*self.PATCH_MODES, "none") or fm not in self.FRAME_MODES:
            raise ValueError(f"UniAdaFocusX3D: patch_mode must be one of {self.PATCH_MODES} and frame_mode one of "
                             f"{self.FRAME_MODES} (no oracle for a space-time cube), got {pm!r} / {fm!r}")
        return pm, fm

    def prepare_3d(self, x: Tensor) -> Tensor:
        """A clip ``(B, C, T, H, W)`` in the memory format the 3-D networks expect."""
        return x.contiguous(memory_format=torch.channels_last_3d) if self.cfg.channels_last else x

    # -- step 1: a 3-D glance --------------------------------------------------------------------
    def glance_features(self, video: Tensor, frames: Tensor | None = None) -> GlanceOutput:
        """Glance at frames ``frames`` (``(B, n)`` or ``(n,)``; default :meth:`glance_positions`) of ``video``
        ``(B, T, C, H, W)``, all at once: maps ``(B, n, C_g, h, w)``, one per glance frame."""
        if self.glance is None:
            raise RuntimeError("UniAdaFocusX3D: this model has no glance network (use_glance=False)")
        B = video.shape[0]
        frames = self.glance_positions(B) if frames is None else torch.as_tensor(frames, device=video.device)
        frames = frames.expand(B, -1) if frames.dim() == 1 else frames  # (B, n)
        n, g = frames.shape[1], self.cfg.glance_size
        with stage("sampling_crop"):
            if self.exact_downsample and 2 * g == self.frame_size:
                x = halve_frames(video, frames)  # (B * n, C, g, g)
            else:
                x = gather_frames(video, frames).flatten(0, 1)  # (B * n, C, H, W)
                if g != self.frame_size:
                    x = resize_frames(x, g)
            x = self.prepare_3d(x.reshape(B, n, self.channels, g, g).transpose(1, 2))  # (B, C, n, g, g)
        with stage("glance"):
            maps = self.glance(x).transpose(1, 2)  # (B, n, C_g, h, w)
            feats = maps.amax(dim=(-2, -1)) if self.cfg.glance_pool == "max" else maps.mean(dim=(-2, -1))
        return GlanceOutput(maps, feats, frames)

    # -- step 2: one box per clip ------------------------------------------------------------------
    def spatial_actions(self, maps: Tensor) -> Tensor:
        """Glance maps ``(B, T_g, C_g, h, w)`` -> one action per clip, repeated at every glance frame ``(B, T_g, 4)``
        (the policy sees the maps max-pooled over time: where the object was at any glance frame)."""
        if self.spatial_policy is None:
            raise RuntimeError("UniAdaFocusX3D: this model has no spatial policy (spatial_policy=False)")
        pooled = maps.amax(dim=1, keepdim=True)  # (B, 1, C_g, h, w)
        action = self.spatial_policy(pooled if self.cfg.policy_trains_glance else pooled.detach())  # (B, 1, 4)
        return action.expand(-1, maps.shape[1], -1)

    def select_boxes(self, mode: str, frame_idx: Tensor, actions: Tensor | None = None,
                     positions: Tensor | None = None, gt_boxes: Tensor | None = None) -> Tensor:
        """One box per clip, repeated at the ``K`` frames: ``(B, K, 4)``."""
        B, K = frame_idx.shape
        c = self.cfg
        if mode == "policy":
            return boxes_from_actions(actions[:, :1], self.frame_size, c.box_min, c.box_max,
                                      c.square_boxes).expand(-1, K, -1)
        if mode == "random":
            return super().select_boxes(mode, frame_idx[:, :1]).expand(-1, K, -1)
        return super().select_boxes(mode, frame_idx)  # center / full: the same box at every frame

    def random_patch_plan(self, plan: Plan) -> Plan:
        """The same frames and one box of side ``P`` per clip at a random position: the random-patch branch."""
        B, K = plan.frame_idx.shape
        side = min(max(self.cfg.patch_size, self.cfg.box_min), self.cfg.box_max)
        boxes = random_boxes_of_side(B, 1, self.frame_size, side, device=plan.frame_idx.device).expand(-1, K, -1)
        return replace(plan, patch_mode="random", boxes=boxes)

    # -- step 4: the space-time cube ---------------------------------------------------------------
    def focus_features(self, video: Tensor, boxes: Tensor, frame_idx: Tensor, full: bool = False) -> Tensor:
        """Crop one box per clip (``boxes`` ``(B, K, 4)``, the same at every frame) from frames ``frame_idx``
        ``(B, K)``: the cube ``(B, C, K, P, P)`` -> focus features ``(B, 1, C_f)``. ``full=True`` resizes the whole
        frames to ``P`` instead."""
        if self.focus is None:
            raise RuntimeError("UniAdaFocusX3D: this model has no focus network (use_focus=False)")
        B, K = frame_idx.shape
        P, C = self.cfg.patch_size, self.channels
        with stage("sampling_crop"):
            frames = gather_frames(video, frame_idx)  # (B, K, C, H, W)
            if full:
                x = frames if P == self.frame_size else resize_frames(frames.flatten(0, 1), P).view(B, K, C, P, P)
            else:
                if not torch.equal(boxes, boxes[:, :1].expand_as(boxes)):
                    raise ValueError("UniAdaFocusX3D.focus_features: a space-time cube has one box for all its "
                                     f"{K} frames; got boxes that differ between frames")
                # the K frames as K * C channels: one crop (one sampling grid) per clip
                x = crop_patches(frames.flatten(1, 2), boxes[:, 0], P, self.per_axis_grid).view(B, K, C, P, P)
            x = self.prepare_3d(x.transpose(1, 2))  # (B, C, K, P, P)
        with stage("focus"):
            return self.focus(x)[:, None]  # (B, 1, C_f)

    def run(self, video: Tensor, plan: Plan, steps: int | None = None) -> AdaFocusOutput:
        """Look where ``plan`` says and answer: ``video`` ``(B, T, C, H, W)`` -> :class:`AdaFocusOutput` (one exit)."""
        if steps is not None and steps != plan.frame_idx.shape[1]:
            raise ValueError(f"UniAdaFocusX3D.run: steps must be None: the {plan.frame_idx.shape[1]}-frame cube is "
                             f"one step (a 3-D network has no per-frame exits), got {steps!r}")
        g = plan.glance
        focus_feats = None
        if self.focus is not None:
            grad = self.cfg.patch_grad and plan.patch_mode == "policy"
            boxes = plan.boxes if grad else plan.boxes.detach()
            focus_feats = self.focus_features(video, boxes, plan.frame_idx, full=plan.patch_mode == "full")
        exit_logits = self.classify(g.feats if g is not None else None, focus_feats)  # (B, 1, n)
        glance_frame_logits = focus_frame_logits = None
        if self.training:
            glance_frame_logits = self.glance_head(g.feats) if g is not None else None
            focus_frame_logits = self.focus_head(focus_feats) if focus_feats is not None else None
        return AdaFocusOutput(exit_logits[:, -1], exit_logits, plan, glance_frame_logits, focus_frame_logits)

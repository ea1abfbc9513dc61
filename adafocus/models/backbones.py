"""Backbones: MobileNetV2 (the cheap *glance* network) and ResNet (the expensive *focus* network).

Both are written from the papers (no torchvision) and share one interface:

- ``feature_dim``: channels of the last feature map,
- ``forward_features(x)``: ``(N, C, H, W) -> (N, feature_dim, h, w)``,
- ``forward(x)``: the globally average-pooled features ``(N, feature_dim)``.

There is no classifier layer: heads live in :mod:`adafocus.models.heads`.

At the paper's sizes (``mobilenet_v2(1.0)`` and ``resnet(50)``) the architectures are exactly
MobileNetV2-1.0 (2.22M parameters without its classifier) and ResNet-50 v1.5 (23.5M parameters
without its fc, 2048 features). Smaller variants come from the width multiplier, the stage widths
and the stem: a ResNet stem of stride 2 (no max-pool) suits the 16..32 px patches of the CPU
presets, where the usual stride 4 stem would leave almost no spatial extent.

**Temporal shift (TSM, Lin et al. 2019).** With ``tsm=True`` every residual block shifts 1/8 of
its channels one frame back in time and 1/8 one frame forward (zero-padded at the clip ends)
before the first conv of its residual branch. The batch then holds ``N`` clips of ``T`` frames,
time-major within a clip (``x.view(N, T, C, H, W)``); set ``T`` with :meth:`ResNet.set_segments`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# MobileNetV2's inverted-residual table (Sandler et al. 2018, Table 2): expansion t, channels c,
# repeats n, stride s of the first repeat.
MOBILENET_V2_SETTING: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
MOBILENET_V2_STEM_CHANNELS = 32
MOBILENET_V2_LAST_CHANNELS = 1280

# ResNet depth -> (block, blocks per stage); the base width 64 gives the torchvision sizes.
RESNET_SPECS: dict[int, tuple[str, tuple[int, ...]]] = {
    10: ("basic", (1, 1, 1, 1)),
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
}
RESNET_STAGE_MULTIPLIERS = (1, 2, 4, 8)  # stage widths = base_width * these


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round a channel count to a multiple of ``divisor``, never dropping more than 10% (MobileNet)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def temporal_shift(x: Tensor, num_segments: int, fold_div: int = 8) -> Tensor:
    """Shift ``1/fold_div`` of the channels one step back in time and ``1/fold_div`` one step forward.

    ``x`` is ``(N*T, C, H, W)`` with ``T = num_segments`` consecutive frames per clip. After the
    shift, frame ``t`` carries channels ``[0, fold)`` of frame ``t+1`` and channels
    ``[fold, 2*fold)`` of frame ``t-1``; slots shifted in from outside the clip are zero.
    """
    if num_segments < 1:
        raise ValueError(f"temporal_shift: num_segments must be >= 1, got {num_segments}")
    if fold_div < 2:
        raise ValueError(f"temporal_shift: fold_div must be >= 2, got {fold_div}")
    nt, c, h, w = x.shape
    if nt % num_segments != 0:
        raise ValueError(f"temporal_shift: batch of {nt} frames is not a whole number of "
                         f"clips of num_segments={num_segments} frames")
    fold = c // fold_div
    x5 = x.view(nt // num_segments, num_segments, c, h, w)  # (N, T, C, H, W)
    out = torch.zeros_like(x5)
    out[:, :-1, :fold] = x5[:, 1:, :fold]  # backward in time: t sees t+1
    out[:, 1:, fold:2 * fold] = x5[:, :-1, fold:2 * fold]  # forward in time: t sees t-1
    out[:, :, 2 * fold:] = x5[:, :, 2 * fold:]  # the rest stays in place
    return out.reshape(nt, c, h, w)


class ConvBNAct(nn.Sequential):
    """Conv2d (no bias) -> BatchNorm2d -> optional activation."""

    def __init__(self, c_in: int, c_out: int, kernel: int = 3, stride: int = 1, groups: int = 1,
                 act: type[nn.Module] | None = nn.ReLU) -> None:
        layers: list[nn.Module] = [
            nn.Conv2d(c_in, c_out, kernel, stride, padding=(kernel - 1) // 2, groups=groups, bias=False),
            nn.BatchNorm2d(c_out),
        ]
        if act is not None:
            layers.append(act(inplace=True))
        super().__init__(*layers)


def _init_weights(module: nn.Module) -> None:
    """Kaiming-normal convs (fan out, as for ReLU nets), BN gamma 1 and beta 0."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


# ------------------------------------------------------------------------------------------------
# MobileNetV2: the glance network
# ------------------------------------------------------------------------------------------------

class _ShiftMixin:
    """Applies the temporal shift to a residual branch's input when enabled (see ResNet.set_segments and
    :func:`set_temporal_shift`)."""

    tsm_segments: int = 0
    tsm_fold_div: int = 8
    tsm: bool = False

    def _maybe_shift(self, x: Tensor) -> Tensor:
        if not self.tsm:
            return x
        if self.tsm_segments < 1:
            raise ValueError(f"{type(self).__name__}(tsm=True): the number of frames per clip is unset; "
                             "call model.set_segments(T) (ResNet) or set_temporal_shift(model, segments=T) "
                             "before forward")
        return temporal_shift(x, self.tsm_segments, self.tsm_fold_div)


class InvertedResidual(_ShiftMixin, nn.Module):
    """1x1 expand (ReLU6) -> 3x3 depthwise (ReLU6) -> 1x1 linear projection, with a skip if shapes match.

    With a temporal shift (:func:`set_temporal_shift`) the blocks with a skip shift their residual branch's
    input, as TSM does for MobileNetV2 (blocks without a skip are left as they are).
    """

    def __init__(self, c_in: int, c_out: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        hidden = int(round(c_in * expand_ratio))
        self.use_residual = stride == 1 and c_in == c_out
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(ConvBNAct(c_in, hidden, kernel=1, act=nn.ReLU6))
        layers += [
            ConvBNAct(hidden, hidden, kernel=3, stride=stride, groups=hidden, act=nn.ReLU6),
            ConvBNAct(hidden, c_out, kernel=1, act=None),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        if not self.use_residual:
            return self.conv(x)
        return x + self.conv(self._maybe_shift(x))


class MobileNetV2(nn.Module):
    """MobileNetV2 (Sandler et al. 2018) without its classifier.

    ``width_mult`` scales every layer's channels (rounded to ``round_nearest``); the last 1x1 conv
    has ``1280 * max(1, width_mult)`` channels, or ``last_channels`` when that is > 0.
    ``output_stride`` (32 in the paper) caps the total downsampling: stages whose stride would
    exceed it run at stride 1 instead (no dilation), so a 32² glance frame can still give a 4x4
    map (``output_stride=8``) for the spatial policy to point into, at a higher cost.
    ``depth_mult`` scales the repeats of every stage (at least one each, as in EfficientNet) and
    ``num_stages`` keeps only the first rows of the t/c/n/s table: together they give the shallow,
    cheap glance networks of the CPU presets (the defaults are the paper's network).
    """

    def __init__(self, width_mult: float = 1.0, in_channels: int = 3, last_channels: int = 0,
                 round_nearest: int = 8, output_stride: int = 32, depth_mult: float = 1.0,
                 num_stages: int = len(MOBILENET_V2_SETTING)) -> None:
        super().__init__()
        if width_mult <= 0:
            raise ValueError(f"MobileNetV2: width_mult must be > 0, got {width_mult}")
        if depth_mult <= 0:
            raise ValueError(f"MobileNetV2: depth_mult must be > 0, got {depth_mult}")
        if not 1 <= num_stages <= len(MOBILENET_V2_SETTING):
            raise ValueError(f"MobileNetV2: num_stages must be in [1, {len(MOBILENET_V2_SETTING)}], "
                             f"got {num_stages}")
        if output_stride not in (1, 2, 4, 8, 16, 32):
            raise ValueError(f"MobileNetV2: output_stride must be a power of 2 in [1, 32], got {output_stride}")
        c_stem = make_divisible(MOBILENET_V2_STEM_CHANNELS * width_mult, round_nearest)
        self.feature_dim = (last_channels if last_channels > 0 else
                            make_divisible(MOBILENET_V2_LAST_CHANNELS * max(1.0, width_mult), round_nearest))
        self.output_stride = output_stride

        stride_so_far = 1

        def next_stride(s: int) -> int:  # honour output_stride
            nonlocal stride_so_far
            s = s if stride_so_far * s <= output_stride else 1
            stride_so_far *= s
            return s

        layers: list[nn.Module] = [ConvBNAct(in_channels, c_stem, kernel=3, stride=next_stride(2), act=nn.ReLU6)]
        c_in = c_stem
        for t, c, n, s in MOBILENET_V2_SETTING[:num_stages]:
            c_out = make_divisible(c * width_mult, round_nearest)
            for i in range(max(1, round(n * depth_mult))):
                layers.append(InvertedResidual(c_in, c_out, next_stride(s) if i == 0 else 1, t))
                c_in = c_out
        layers.append(ConvBNAct(c_in, self.feature_dim, kernel=1, act=nn.ReLU6))
        self.features = nn.Sequential(*layers)

        _init_weights(self)
        for m in self.modules():  # zero-init the projection BN so each residual block starts as identity
            if isinstance(m, InvertedResidual) and m.use_residual:
                nn.init.zeros_(m.conv[-1][1].weight)

    def forward_features(self, x: Tensor) -> Tensor:
        """``(N, C, H, W) -> (N, feature_dim, H/s, W/s)`` with ``s = output_stride`` (rounded up)."""
        return self.features(x)

    def forward(self, x: Tensor) -> Tensor:
        """``(N, C, H, W) -> (N, feature_dim)``, globally average pooled."""
        return F.adaptive_avg_pool2d(self.forward_features(x), 1).flatten(1)


def mobilenet_v2(width_mult: float = 1.0, **kwargs) -> MobileNetV2:
    """MobileNetV2 with a width multiplier; ``mobilenet_v2(1.0)`` is the paper's glance network."""
    return MobileNetV2(width_mult=width_mult, **kwargs)


# ------------------------------------------------------------------------------------------------
# ResNet: the focus network
# ------------------------------------------------------------------------------------------------

def set_temporal_shift(module: nn.Module, enabled: bool | None = None, segments: int | None = None,
                       fold_div: int | None = None) -> int:
    """Switch the temporal shift of every shiftable block in ``module`` (ResNet blocks, MobileNetV2 inverted
    residuals with a skip) on or off (``enabled``), and/or set ``segments``, the frames per clip in a batch
    (``N = clips * T``, time-major within a clip), and ``fold_div`` (1/fold_div of the channels go each way).
    ``None`` leaves a setting as it is. Returns how many blocks shift. The shift is a memory move: no
    parameters, 0 MACs."""
    count = 0
    for m in module.modules():
        if isinstance(m, (BasicBlock, Bottleneck)) or (isinstance(m, InvertedResidual) and m.use_residual):
            if enabled is not None:
                m.tsm = bool(enabled)
            if segments is not None:
                m.tsm_segments = int(segments)
            if fold_div is not None:
                m.tsm_fold_div = int(fold_div)
            count += int(m.tsm)
    return count


class Shortcut(nn.Sequential):
    """The projection shortcut of a residual block: a 1x1 conv (stride ``stride``) and batch norm.

    The stride is taken by slicing (``x[..., ::s, ::s]``) before a stride-1 1x1 conv: the same
    result and the same MACs as a strided 1x1 conv, but it avoids a crash of PyTorch 2.13's CPU
    backward for a strided 1x1 conv in channels_last with two threads and an odd batch
    (tests/test_backbones.py reproduces it in a subprocess).
    """

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__(nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out))
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x[..., ::self.stride, ::self.stride] if self.stride > 1 else x)


class BasicBlock(_ShiftMixin, nn.Module):
    """Two 3x3 convs (ResNet-18/34)."""

    expansion = 1

    def __init__(self, c_in: int, width: int, stride: int = 1) -> None:
        super().__init__()
        c_out = width * self.expansion
        self.conv1 = ConvBNAct(c_in, width, 3, stride)
        self.conv2 = ConvBNAct(width, c_out, 3, act=None)
        self.downsample = (Shortcut(c_in, c_out, stride) if stride != 1 or c_in != c_out else nn.Identity())

    def last_bn(self) -> nn.BatchNorm2d:
        return self.conv2[1]

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv2(self.conv1(self._maybe_shift(x)))
        return F.relu(out + self.downsample(x))


class Bottleneck(_ShiftMixin, nn.Module):
    """1x1 reduce -> 3x3 (carries the stride, as in ResNet v1.5) -> 1x1 expand by 4 (ResNet-50/101)."""

    expansion = 4

    def __init__(self, c_in: int, width: int, stride: int = 1) -> None:
        super().__init__()
        c_out = width * self.expansion
        self.conv1 = ConvBNAct(c_in, width, 1)
        self.conv2 = ConvBNAct(width, width, 3, stride)
        self.conv3 = ConvBNAct(width, c_out, 1, act=None)
        self.downsample = (Shortcut(c_in, c_out, stride) if stride != 1 or c_in != c_out else nn.Identity())

    def last_bn(self) -> nn.BatchNorm2d:
        return self.conv3[1]

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv3(self.conv2(self.conv1(self._maybe_shift(x))))
        return F.relu(out + self.downsample(x))


BLOCKS: dict[str, type[BasicBlock] | type[Bottleneck]] = {"basic": BasicBlock, "bottleneck": Bottleneck}


class ResNet(nn.Module):
    """ResNet (He et al. 2016) without its classifier, optionally with a temporal shift (TSM).

    ``stem_stride``: 4 = 7x7 conv stride 2 + 3x3 max-pool stride 2 (the ImageNet ResNet),
    2 = 3x3 conv stride 2 without max-pool, 1 = 3x3 conv stride 1. The first stage keeps the
    resolution, every later stage halves it.
    """

    def __init__(self, block: str = "basic", layers: Sequence[int] = (1, 1, 1, 1),
                 widths: Sequence[int] = (16, 32, 64, 128), stem_stride: int = 2, in_channels: int = 3,
                 tsm: bool = False, tsm_segments: int = 0, tsm_fold_div: int = 8) -> None:
        super().__init__()
        if block not in BLOCKS:
            raise ValueError(f"ResNet: block must be one of {sorted(BLOCKS)}, got {block!r}")
        if len(layers) != len(widths) or len(layers) == 0:
            raise ValueError(f"ResNet: layers {tuple(layers)} and widths {tuple(widths)} must have the "
                             "same, non-zero number of stages")
        if any(n < 1 for n in layers) or any(w < 1 for w in widths):
            raise ValueError(f"ResNet: every stage needs >= 1 block and width >= 1, got layers "
                             f"{tuple(layers)}, widths {tuple(widths)}")
        block_cls = BLOCKS[block]
        c_stem = widths[0]
        if stem_stride == 4:
            self.stem = nn.Sequential(ConvBNAct(in_channels, c_stem, 7, 2),
                                      nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
        elif stem_stride in (1, 2):
            self.stem = ConvBNAct(in_channels, c_stem, 3, stem_stride)
        else:
            raise ValueError(f"ResNet: stem_stride must be 1, 2 or 4, got {stem_stride}")

        stages: list[nn.Module] = []
        c_in = c_stem
        for i, (n, width) in enumerate(zip(layers, widths)):
            blocks = []
            for j in range(n):
                blocks.append(block_cls(c_in, width, stride=2 if (i > 0 and j == 0) else 1))
                c_in = width * block_cls.expansion
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.feature_dim = c_in

        _init_weights(self)
        for m in self.modules():  # zero-init the last BN of each residual branch: blocks start as identity
            if isinstance(m, (BasicBlock, Bottleneck)):
                nn.init.zeros_(m.last_bn().weight)
        self.tsm = tsm
        for m in self.modules():
            if isinstance(m, (BasicBlock, Bottleneck)):
                m.tsm, m.tsm_fold_div = tsm, tsm_fold_div
        self.set_segments(tsm_segments)

    def set_segments(self, num_segments: int) -> None:
        """Set ``T``, the frames per clip in the batch, used by the temporal shift (no-op without TSM)."""
        self.tsm_segments = num_segments
        for m in self.modules():
            if isinstance(m, (BasicBlock, Bottleneck)):
                m.tsm_segments = num_segments

    def forward_features(self, x: Tensor) -> Tensor:
        """``(N, C, H, W) -> (N, feature_dim, h, w)``; with TSM, ``N = clips * T`` (time-major in a clip)."""
        return self.stages(self.stem(x))

    def forward(self, x: Tensor) -> Tensor:
        """``(N, C, H, W) -> (N, feature_dim)``, globally average pooled."""
        return F.adaptive_avg_pool2d(self.forward_features(x), 1).flatten(1)


def resnet(depth: int | None = 50, base_width: int = 64, *, block: str | None = None,
           layers: Sequence[int] | None = None, stem_stride: int = 4, **kwargs) -> ResNet:
    """A ResNet by depth (10/18/34/50/101) or by an explicit ``(block, layers)`` spec.

    Stage widths are ``base_width * (1, 2, 4, 8)``; ``resnet(50)`` is ResNet-50 (2048 features).
    ``resnet(18, base_width=16, stem_stride=2)`` is a small CPU focus network.
    """
    if block is None or layers is None:
        if depth not in RESNET_SPECS:
            raise ValueError(f"resnet: depth must be one of {sorted(RESNET_SPECS)} "
                             f"(or pass block= and layers=), got {depth!r}")
        spec_block, spec_layers = RESNET_SPECS[depth]
        block = block or spec_block
        layers = layers or spec_layers
    widths = tuple(base_width * m for m in RESNET_STAGE_MULTIPLIERS[:len(layers)])
    return ResNet(block=block, layers=layers, widths=widths, stem_stride=stem_stride, **kwargs)


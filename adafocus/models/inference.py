"""Inference-only copies of a model that use the CPU better (docs/design.md, "Inference speed").

:func:`optimize_for_inference` returns a **copy** in eval mode; the model it was given (and so
every training path) is never touched. The copy gives the same logits within float tolerance and
counts the same MACs (:func:`adafocus.flops.count_macs`; ``tests/test_inference.py`` checks both
for every registered model). Its switches, each timed side by side by
``benchmarks/profile_inference.py --paths`` and kept because it won there:

- ``fold_bn`` (:func:`fold_batchnorm`): in eval mode a batch norm is a per-channel affine map, so
  ``bn(conv(x)) == conv'(x)`` with scaled weights and a bias: one pass over every activation fewer.
- ``exact_downsample`` (``model.exact_downsample``; :func:`adafocus.models.patches.halve_frames`):
  the glance's resize to exactly half the size as the 2x2 average it equals, written straight into
  channels-last memory, from frames read in place when every clip glances at the same evenly spaced ones.
- ``per_axis_grid`` (``model.per_axis_grid``; :func:`adafocus.models.patches.box_grid`): the crop's
  sampling grid built per axis from the boxes instead of by ``F.affine_grid``'s batched matrix product.
- ``fused_exits``: each phase's exit heads as one batched product (``baddbmm``), the running
  max-pools as in-place maxima.
- ``packed_convs`` (:class:`PackedConv`): the 2-D convolutions of the glance and focus networks and the
  spatial policy's 3-D ones with their weights reordered once into oneDNN's layout and the activation
  after them (or a residual block's addition and activation) fused into the same kernel, where oneDNN
  is available.
- ``inplace_residual``: in-place skip additions (what is left of the fusion without oneDNN).

Parameters are frozen (no autograd bookkeeping); run the copy under ``torch.inference_mode()``. The
copy refuses ``train()``: its batch norms are gone, so it cannot learn as the model did.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn
from torch.nn.utils.fusion import fuse_conv_bn_weights

from adafocus.models.adafocus import UniAdaFocus
from adafocus.models.backbones import BasicBlock, Bottleneck, InvertedResidual
from adafocus.models.heads import ExitClassifier

_PAIRS = ((nn.Conv1d, nn.BatchNorm1d), (nn.Conv2d, nn.BatchNorm2d), (nn.Conv3d, nn.BatchNorm3d))


def _foldable(conv: nn.Module, bn: nn.Module) -> bool:
    return (any(isinstance(conv, c) and isinstance(bn, b) for c, b in _PAIRS) and bn.running_mean is not None
            and bn.running_var is not None and conv.out_channels == bn.num_features)


def fold_batchnorm(module: nn.Module) -> int:
    """Fold every batch norm that directly follows a convolution in an ``nn.Sequential`` into that
    convolution, in place (the batch norm is removed). Only valid for inference: the running
    statistics become constants. Returns the number of batch norms folded."""
    folded = 0
    for seq in [m for m in module.modules() if isinstance(m, nn.Sequential)]:
        keys = list(seq._modules)
        for a, b in zip(keys, keys[1:]):
            conv, bn = seq._modules.get(a), seq._modules.get(b)
            if conv is None or bn is None or not _foldable(conv, bn):
                continue
            memory_format = (torch.channels_last if conv.weight.dim() == 4 and
                             conv.weight.is_contiguous(memory_format=torch.channels_last) and
                             not conv.weight.is_contiguous() else torch.contiguous_format)
            w, bias = fuse_conv_bn_weights(conv.weight, conv.bias, bn.running_mean, bn.running_var, bn.eps,
                                           bn.weight, bn.bias)
            conv.weight = nn.Parameter(w.detach().contiguous(memory_format=memory_format), requires_grad=False)
            conv.bias = nn.Parameter(bias.detach(), requires_grad=False)
            del seq._modules[b]
            folded += 1
    return folded


_ACTIVATIONS = {nn.ReLU: ("relu", []), nn.ReLU6: ("hardtanh", [0.0, 6.0])}


def packed_conv_available() -> bool:
    """Whether this PyTorch has oneDNN's fused convolution (``torch.ops.mkldnn._convolution_pointwise``)."""
    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_convolution_pointwise")


class PackedConv(nn.Module):
    """A 2-D or 3-D convolution for inference: its weight reordered once into oneDNN's own layout (eager
    PyTorch reorders it at every call) and the activation after it fused into the same kernel (``relu``,
    ``hardtanh`` for ReLU6, or none); ``forward(x, other)`` also adds ``other`` (a skip connection)
    before the activation, in the same kernel. The same arithmetic as ``act(conv(x) [+ other])``;
    :mod:`adafocus.flops` counts its MACs as the convolution's."""

    def __init__(self, conv: nn.Conv2d | nn.Conv3d, act: nn.Module | None = None) -> None:
        super().__init__()
        self.attr, self.scalars = _ACTIVATIONS[type(act)] if act is not None else ("none", [])
        self.padding, self.stride = list(conv.padding), list(conv.stride)
        self.dilation, self.groups = list(conv.dilation), conv.groups
        weight = conv.weight.detach().float()
        self.weight_shape = tuple(weight.shape)
        self.bias = None if conv.bias is None else conv.bias.detach().float().contiguous()
        reorder = (torch._C._nn.mkldnn_reorder_conv3d_weight if weight.dim() == 5 else
                   torch._C._nn.mkldnn_reorder_conv2d_weight)
        self.packed = reorder(weight.contiguous().to_mkldnn(), self.padding, self.stride, self.dilation, self.groups)

    def forward(self, x: Tensor, other: Tensor | None = None) -> Tensor:
        args = (self.padding, self.stride, self.dilation, self.groups)
        if other is None:
            return torch.ops.mkldnn._convolution_pointwise(x, self.packed, self.bias, *args, self.attr,
                                                           self.scalars, "")
        unary = None if self.attr == "none" else self.attr
        return torch.ops.mkldnn._convolution_pointwise.binary(x, other, self.packed, self.bias, *args, "add", None,
                                                              unary, self.scalars, None)

    def extra_repr(self) -> str:
        return f"weight={self.weight_shape}, stride={self.stride}, padding={self.padding}, groups={self.groups}, " \
               f"act={self.attr}"


def _pack_convolutions(module: nn.Module, kinds: tuple[type, ...] = (nn.Conv2d,)) -> None:
    """Every convolution of a type in ``kinds`` in an ``nn.Sequential`` (its ReLU / ReLU6 after it fused) ->
    :class:`PackedConv`; the last convolution of a residual block also takes the skip connection (and the block's
    ReLU)."""
    for seq in [m for m in module.modules() if isinstance(m, nn.Sequential)]:
        keys = list(seq._modules)
        for i, key in enumerate(keys):
            conv = seq._modules.get(key)
            if type(conv) not in kinds:
                continue
            nxt = seq._modules.get(keys[i + 1]) if i + 1 < len(keys) else None
            act = nxt if type(nxt) in _ACTIVATIONS else None
            seq._modules[key] = PackedConv(conv, act)
            if act is not None:
                del seq._modules[keys[i + 1]]
    for m in module.modules():
        if type(m) in _FUSED_BLOCK:
            m.__class__ = _FUSED_BLOCK[type(m)]
            m.fuse()


def _last_packed(seq: nn.Module) -> "PackedConv | None":
    """The last module of a (nested) Sequential if it is a PackedConv without an activation."""
    while isinstance(seq, nn.Sequential) and len(seq):
        seq = seq[-1]
    return seq if isinstance(seq, PackedConv) and seq.attr == "none" else None


class _FusedResidualBlock(nn.Module):
    """Mixin for a residual block whose last convolution adds the skip connection (and applies the block's
    activation) in its own kernel."""

    block_act = "relu"

    def fuse(self) -> None:
        last = _last_packed(self._branch_modules()[-1])
        self._fused = last is not None
        if self._fused:
            last.attr, last.scalars = (self.block_act, []) if self.block_act else ("none", [])

    def _branch(self, x: Tensor, skip: Tensor) -> Tensor:
        *first, last = self._branch_modules()
        for m in first:
            x = m(x)
        if not self._fused:
            out = last(x) + skip
            return out.relu_() if self.block_act else out
        while isinstance(last, nn.Sequential):  # run the nested Sequentials down to the fused convolution
            *inner, last = list(last)
            for m in inner:
                x = m(x)
        return last(x, skip)


class _FusedBasicBlock(_FusedResidualBlock, BasicBlock):
    def _branch_modules(self) -> list[nn.Module]:
        return [self.conv1, self.conv2]

    def forward(self, x: Tensor) -> Tensor:
        return self._branch(self._maybe_shift(x), self.downsample(x))


class _FusedBottleneck(_FusedResidualBlock, Bottleneck):
    def _branch_modules(self) -> list[nn.Module]:
        return [self.conv1, self.conv2, self.conv3]

    def forward(self, x: Tensor) -> Tensor:
        return self._branch(self._maybe_shift(x), self.downsample(x))


class _FusedInvertedResidual(_FusedResidualBlock, InvertedResidual):
    block_act = None  # MobileNetV2's projection is linear

    def _branch_modules(self) -> list[nn.Module]:
        return list(self.conv)

    def fuse(self) -> None:
        if self.use_residual:
            super().fuse()

    def forward(self, x: Tensor) -> Tensor:
        return self._branch(self._maybe_shift(x), x) if self.use_residual else self.conv(x)


_FUSED_BLOCK = {BasicBlock: _FusedBasicBlock, Bottleneck: _FusedBottleneck, InvertedResidual: _FusedInvertedResidual}


class _InplaceBasicBlock(BasicBlock):
    """:class:`BasicBlock` whose skip connection adds into the branch's output and applies ReLU in place."""

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv2(self.conv1(self._maybe_shift(x)))
        out += self.downsample(x)
        return out.relu_()


class _InplaceBottleneck(Bottleneck):
    def forward(self, x: Tensor) -> Tensor:
        out = self.conv3(self.conv2(self.conv1(self._maybe_shift(x))))
        out += self.downsample(x)
        return out.relu_()


class _InplaceInvertedResidual(InvertedResidual):
    def forward(self, x: Tensor) -> Tensor:
        if not self.use_residual:
            return self.conv(x)
        out = self.conv(self._maybe_shift(x))
        out += x
        return out


_INPLACE = {BasicBlock: _InplaceBasicBlock, Bottleneck: _InplaceBottleneck, InvertedResidual: _InplaceInvertedResidual}


def _running_max_(h: Tensor) -> Tensor:
    """``(B, S, D)`` -> the max over steps ``1..s`` at every step ``s``, in place (``torch.cummax`` also computes
    indices and is several times slower here)."""
    for t in range(1, h.shape[1]):
        torch.maximum(h[:, t - 1], h[:, t], out=h[:, t])
    return h


class _FusedExitClassifier(ExitClassifier):
    """:class:`ExitClassifier` whose exit heads of each phase run as one batched matrix product (``baddbmm``)
    instead of one ``Linear`` per exit; the step-by-step API (early exit) keeps the heads as they are."""

    def fuse(self) -> "_FusedExitClassifier":
        for phase in ("glance_exits", "focus_exits"):
            heads = getattr(self, phase)
            if len(heads):
                self.register_buffer(f"_{phase}_w", torch.stack([h.weight.t() for h in heads]), persistent=False)
                self.register_buffer(f"_{phase}_b", torch.stack([h.bias for h in heads])[:, None], persistent=False)
        return self

    def forward(self, glance_feats: Tensor | None, focus_feats: Tensor | None) -> Tensor:
        if not self.exits:
            return super().forward(glance_feats, focus_feats)
        logits: list[Tensor] = []
        gsum = None
        if self.use_glance:
            self._check(glance_feats, self.glance_frames, "glance_feats", "(B, T_g, C_g)")
            g = _running_max_(self.glance_mlp(glance_feats))  # (B, T_g, D)
            gsum = g[:, -1]
            logits.append(torch.baddbmm(self._glance_exits_b, g.transpose(0, 1), self._glance_exits_w))  # (T_g, B, n)
        if self.use_focus:
            self._check(focus_feats, self.num_focus, "focus_feats", "(B, k, C_f)", partial=True)
            f = _running_max_(self.focus_mlp(focus_feats))  # (B, k, D)
            if gsum is not None:
                f = torch.cat([f, gsum[:, None].expand_as(f)], dim=-1)
            k = f.shape[1]
            logits.append(torch.baddbmm(self._focus_exits_b[:k], f.transpose(0, 1), self._focus_exits_w[:k]))
        return torch.cat(logits).transpose(0, 1)  # (B, S, n)


class InferenceUniAdaFocus(UniAdaFocus):
    """A :class:`UniAdaFocus` made by :func:`optimize_for_inference`: eval mode only."""

    def train(self, mode: bool = True) -> "InferenceUniAdaFocus":
        if mode:
            raise RuntimeError("an inference-optimised copy (optimize_for_inference) cannot train: its batch norms "
                               "are folded into the convolutions; train the original model")
        return super().train(False)


_INFERENCE_CLASSES: dict[type, type] = {UniAdaFocus: InferenceUniAdaFocus}


def inference_class(cls: type) -> type:
    """The eval-only class of a copy of a ``cls`` model: :class:`InferenceUniAdaFocus`, or for a family member that
    subclasses :class:`UniAdaFocus` (e.g. AdaFocus V1) a subclass of both, so the copy keeps that model's methods."""
    if cls not in _INFERENCE_CLASSES:
        _INFERENCE_CLASSES[cls] = type(f"Inference{cls.__name__}", (InferenceUniAdaFocus, cls), {})
    return _INFERENCE_CLASSES[cls]


def optimize_for_inference(model: UniAdaFocus, fold_bn: bool = True, exact_downsample: bool = True,
                           inplace_residual: bool = True, fused_exits: bool = True,
                           packed_convs: bool = True, per_axis_grid: bool = True) -> InferenceUniAdaFocus:
    """An eval-mode copy of ``model`` for fast CPU inference (see the module docstring); ``model`` is unchanged.

    ``fold_bn``: fold batch norms into convolutions; ``exact_downsample``: resize by exactly 2 with an
    average pool; ``per_axis_grid``: the crop's grid built per axis; ``inplace_residual``: skip connections add
    (and ReLU) in place; ``fused_exits``: the exit heads of a phase as one batched product; ``packed_convs``: 2-D
    convolutions (and the spatial policy's 3-D ones) with prepacked weights and their activation (and a residual
    block's skip connection) fused, where oneDNN is available (:func:`packed_conv_available`). Each measured in
    benchmarks/profile_inference.py.
    """
    if not isinstance(model, UniAdaFocus):
        raise TypeError(f"optimize_for_inference: expected a UniAdaFocus model, got {type(model).__name__}")
    out = copy.deepcopy(model).eval()
    if fold_bn:
        fold_batchnorm(out)
    out.exact_downsample = bool(exact_downsample)
    out.per_axis_grid = bool(per_axis_grid)
    for p in out.parameters():
        p.requires_grad_(False)
    if packed_convs and packed_conv_available() and next(out.parameters()).dtype == torch.float32:
        for net in (out.glance, out.focus):
            if net is not None:
                _pack_convolutions(net)
        if out.spatial_policy is not None:  # its 3-D convolutions read channels-last glance maps
            _pack_convolutions(out.spatial_policy, (nn.Conv3d,))
    if inplace_residual:
        for m in out.modules():
            if type(m) in _INPLACE:
                m.__class__ = _INPLACE[type(m)]
    if fused_exits and isinstance(out.classifier, ExitClassifier) and out.classifier.exits:
        out.classifier.__class__ = _FusedExitClassifier
        out.classifier.fuse()
    out.__class__ = inference_class(type(model))
    return out

"""Inference-only copies of a model that use the CPU better (issue 16; docs/design.md, "Costs").

:func:`optimize_for_inference` returns a **copy** in eval mode; the model it was given (and so
every training path) is never touched. The copy gives the same logits within float tolerance and
counts the same MACs (:func:`adafocus.flops.count_macs`; ``tests/test_inference.py`` checks both
for every registered model). What it changes, each measured by ``benchmarks/profile_inference.py``
and kept only because it won there:

- **BatchNorm folded into the convolution before it** (:func:`fold_batchnorm`): in eval mode a
  batch norm is a per-channel affine map, so ``bn(conv(x)) == conv'(x)`` with scaled weights and a
  bias. One pass over every activation fewer, in the glance, the focus network and the policies.
- **The glance's 2x downsampling as a 2x2 average pool** (``model.exact_downsample``; see
  :func:`adafocus.models.patches.resize_frames`): the same values as the bilinear resize at exactly
  half the size, in a simpler kernel.
- **Frozen parameters** (no autograd bookkeeping); run it under ``torch.inference_mode()``.

The copy refuses ``train()``: its batch norms are gone, so it cannot learn as the model did.
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
        out = self.conv(x)
        if self.use_residual:
            out += x
        return out


_INPLACE = {BasicBlock: _InplaceBasicBlock, Bottleneck: _InplaceBottleneck, InvertedResidual: _InplaceInvertedResidual}


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
            g = torch.cummax(self.glance_mlp(glance_feats), dim=1).values  # (B, T_g, D)
            gsum = g[:, -1]
            logits.append(torch.baddbmm(self._glance_exits_b, g.transpose(0, 1), self._glance_exits_w))  # (T_g, B, n)
        if self.use_focus:
            self._check(focus_feats, self.num_focus, "focus_feats", "(B, k, C_f)", partial=True)
            f = torch.cummax(self.focus_mlp(focus_feats), dim=1).values  # (B, k, D)
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


def optimize_for_inference(model: UniAdaFocus, fold_bn: bool = True, exact_downsample: bool = True,
                           inplace_residual: bool = True, fused_exits: bool = True) -> InferenceUniAdaFocus:
    """An eval-mode copy of ``model`` for fast CPU inference (see the module docstring); ``model`` is unchanged.

    ``fold_bn``: fold batch norms into convolutions; ``exact_downsample``: resize by exactly 2 with an
    average pool; ``inplace_residual``: skip connections add (and ReLU) in place; ``fused_exits``: the
    exit heads of a phase as one batched product. Each measured in benchmarks/profile_inference.py.
    """
    if not isinstance(model, UniAdaFocus):
        raise TypeError(f"optimize_for_inference: expected a UniAdaFocus model, got {type(model).__name__}")
    out = copy.deepcopy(model).eval()
    if fold_bn:
        fold_batchnorm(out)
    out.exact_downsample = bool(exact_downsample)
    for p in out.parameters():
        p.requires_grad_(False)
    if inplace_residual:
        for m in out.modules():
            if type(m) in _INPLACE:
                m.__class__ = _INPLACE[type(m)]
    if fused_exits and out.classifier.exits:
        out.classifier.__class__ = _FusedExitClassifier
        out.classifier.fuse()
    out.__class__ = InferenceUniAdaFocus
    return out

"""Honest cost counting: multiply-accumulates (MACs) of whatever a function actually runs.

The paper's "FLOPs" are MACs, and so are ours (always labelled MACs). Nothing here keeps a table
per layer: the count comes from torch's :class:`~torch.utils.flop_counter.FlopCounterMode`, which
watches every aten op dispatched while the code runs and prices convolutions and matrix products
at 2 FLOPs per MAC. Ops it does not price are added through its ``custom_mapping``:

- ``grid_sampler_2d`` (patch extraction): bilinear interpolation = 4 MACs per output element per
  channel, i.e. ``4 * N * C * Ho * Wo`` (nearest 0, bicubic 16),
- ``upsample_bilinear2d`` (resizing frames for the glance): 4 MACs per output element,
- ``affine_grid_generator``: each output location's (x, y) is a 3-term dot product, 6 MACs; the
  inference path's per-axis build of the same grid for a box (``adafocus::box_grid``) is priced alike,
- ``adafocus::average_2x2`` (the inference path's exact 2x resize,
  :func:`adafocus.models.patches.halve_frames`): 4 MACs per output element, as the bilinear resize it
  equals and replaces.

Batch norm, activations, pooling, softmax and additions are not counted, as in the paper. Nor is the
temporal shift of TSM (:func:`adafocus.models.backbones.temporal_shift`, Uni-AdaFocus-TSM): it moves a
quarter of the channels one frame along, a memory move with no multiplication, so it costs 0 MACs, as in
the TSM paper (a TSM ResNet-50 on 8 frames costs exactly 8 ResNet-50 frames; tests/test_flops.py).
Because the counter sees what runs, a sample that leaves at an early exit costs only what it ran.

At the paper's sizes this reproduces the published costs (docs/design.md, "Costs") to the last digit, with
the backbones' classification layers left out (tested in tests/test_flops.py): MobileNetV2-1.0
features on one 224² frame = 0.2995 GMACs (with its 1000-class fc it would be 0.3008), ResNet-50
without its fc on one patch of 96 / 128 / 160 / 192 px = 0.7507 / 1.3346 / 2.0853 / 3.0028 GMACs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode, conv_flop_count

from adafocus.config import Config
from adafocus.data.batches import ground_truth_kwargs
from adafocus.models import patches  # noqa: F401  (registers the custom ops adafocus::average_2x2, ::box_grid)

aten = torch.ops.aten

FLOPS_PER_MAC = 2  # FlopCounterMode reports FLOPs = 2 * MACs for matmul and convolution
# MACs per output element per channel of grid_sample, by aten's interpolation_mode code
GRID_SAMPLE_MACS_PER_OUTPUT = {0: 4, 1: 0, 2: 16}  # 0 bilinear (2x2 taps), 1 nearest, 2 bicubic (4x4)
BILINEAR_RESIZE_MACS_PER_OUTPUT = 4  # 2x2 taps per output element
AFFINE_GRID_MACS_PER_LOCATION = 6  # (x, y) = theta (2x3) @ (u, v, 1)


def _numel(shape: Any) -> int:
    n = 1
    for s in shape:
        n *= int(s)
    return n


def _grid_sampler_2d_flop(input_shape: Any, grid_shape: Any, interpolation_mode: int, *args: Any,
                          out_shape: Any = None, **kwargs: Any) -> int:
    """FLOPs of grid_sample: input ``(N, C, H, W)``, grid ``(N, Ho, Wo, 2)``, output ``(N, C, Ho, Wo)``."""
    n, c = input_shape[0], input_shape[1]
    ho, wo = grid_shape[1], grid_shape[2]
    return FLOPS_PER_MAC * GRID_SAMPLE_MACS_PER_OUTPUT[int(interpolation_mode)] * n * c * ho * wo


def _bilinear_resize_flop(*args: Any, out_shape: Any = None, **kwargs: Any) -> int:
    """FLOPs of a bilinear resize (or the exact half-size one, ``adafocus::average_2x2``): 4 MACs per output
    element ``(N, C, Ho, Wo)``."""
    return FLOPS_PER_MAC * BILINEAR_RESIZE_MACS_PER_OUTPUT * _numel(out_shape)


def _affine_grid_flop(*args: Any, out_shape: Any = None, **kwargs: Any) -> int:
    """FLOPs of affine_grid: output ``(N, Ho, Wo, 2)``, a 3-term dot product per coordinate."""
    return FLOPS_PER_MAC * AFFINE_GRID_MACS_PER_LOCATION * _numel(out_shape[:-1])


def _packed_conv_flop(x_shape: Any, w_or_other_shape: Any, w_or_bias_shape: Any, *args: Any, out_shape: Any = None,
                      **kwargs: Any) -> int:
    """FLOPs of oneDNN's fused convolution (:class:`adafocus.models.inference.PackedConv`): the convolution's.
    Two overloads share the counter's key: ``(x, w, bias, ...)`` and ``.binary`` ``(x, other, w, bias, ...)``
    (the fused addition of a skip connection is not counted)."""
    binary = w_or_bias_shape is not None and len(w_or_bias_shape) == len(x_shape)
    w_shape = w_or_bias_shape if binary else w_or_other_shape
    return conv_flop_count(list(x_shape), list(w_shape), list(out_shape))


EXTRA_FLOP_FORMULAS: dict[Any, Callable[..., int]] = {
    aten.grid_sampler_2d: _grid_sampler_2d_flop,
    aten.upsample_bilinear2d: _bilinear_resize_flop,
    aten.affine_grid_generator: _affine_grid_flop,
    torch.ops.adafocus.average_2x2: _bilinear_resize_flop,
    torch.ops.adafocus.box_grid: _affine_grid_flop,
}
if hasattr(torch.ops.mkldnn, "_convolution_pointwise"):  # the inference path's fused convolutions
    EXTRA_FLOP_FORMULAS[torch.ops.mkldnn._convolution_pointwise] = _packed_conv_flop


def _counter() -> FlopCounterMode:
    return FlopCounterMode(display=False, custom_mapping=EXTRA_FLOP_FORMULAS)


def _run_counted(fn: Callable[..., Any], inputs: tuple[Any, ...], kwargs: dict[str, Any]) -> FlopCounterMode:
    """Run ``fn(*inputs, **kwargs)`` without grad under a fresh counter; a module runs in eval mode.

    Eval mode makes batch norm use its running statistics, so a batch of one sample with a 1x1 map
    is valid; the module's train/eval flags are restored afterwards.
    """
    was_training = None
    if isinstance(fn, nn.Module):
        was_training = {m: m.training for m in fn.modules()}
        fn.eval()
    try:
        with torch.no_grad(), _counter() as counter:
            fn(*inputs, **kwargs)
    finally:
        if was_training is not None:
            for m, flag in was_training.items():
                m.training = flag
    return counter


def count_macs(fn_or_module: Callable[..., Any], *inputs: Any, **kwargs: Any) -> int:
    """MACs of one call ``fn_or_module(*inputs, **kwargs)`` (forward only, no grad).

    >>> count_macs(nn.Linear(10, 5), torch.zeros(3, 10))
    150
    """
    counter = _run_counted(fn_or_module, inputs, kwargs)
    return counter.get_total_flops() // FLOPS_PER_MAC


def count_macs_by_module(module: nn.Module, *inputs: Any, **kwargs: Any) -> dict[str, int]:
    """MACs of one forward of ``module``, split by its top-level children (by attribute name).

    Work done in ``module.forward`` itself, outside any child (e.g. a functional ``grid_sample``),
    is reported under ``"(self)"`` when non-zero, so the values always sum to :func:`count_macs`.
    """
    counter = _run_counted(module, inputs, kwargs)
    counts = counter.get_flop_counts()
    root = type(module).__name__
    by_child: dict[str, int] = {}
    for name, _child in module.named_children():
        by_child[name] = sum(counts.get(f"{root}.{name}", {}).values()) // FLOPS_PER_MAC
    total = counter.get_total_flops() // FLOPS_PER_MAC
    rest = total - sum(by_child.values())
    if rest:
        by_child["(self)"] = rest
    return by_child


def dummy_input(cfg: Config, batch: int = 1) -> dict[str, Tensor]:
    """A batch like :func:`~adafocus.data.batches.iterate_batches`'s for cost counting (costs do not depend on
    content): zero clips ``video`` ``(batch, T, C, H, W)``, the middle quarter of the frame as the true
    ``boxes`` ``(batch, T, 4)`` and every frame informative in ``mask`` ``(batch, T)``. Pass the ground truth
    on with :func:`~adafocus.data.batches.ground_truth_kwargs` (only the oracle reads it)."""
    d = cfg.data
    S = d.frame_size
    box = torch.tensor([S / 4, S / 4, 3 * S / 4, 3 * S / 4])
    return {"video": torch.zeros(batch, d.num_frames, d.channels, S, S),
            "boxes": box.expand(batch, d.num_frames, 4).clone(),
            "mask": torch.ones(batch, d.num_frames, dtype=torch.bool)}


def gmacs(macs: int) -> float:
    """MACs in units of 10^9."""
    return macs / 1e9


def mmacs(macs: int) -> float:
    """MACs in units of 10^6."""
    return macs / 1e6


def model_cost(model_name: str, cfg: Config) -> dict[str, Any]:
    """MACs per video of a registered model, per component, at ``cfg``'s geometry (no training).

    Components follow the paper's table (docs/design.md, "Costs"): ``glance`` (all glance frames),
    ``spatial_policy``, ``temporal_policy``, ``focus`` (all K patches) and ``focus_per_patch``,
    ``classifier`` (exit MLPs and heads), plus ``patch_extraction`` (resize + grid_sample) for
    whatever runs outside those networks. Returns GMACs and the total.
    """
    from adafocus.models.registry import create_model

    model = create_model(model_name, cfg).eval()
    x = dummy_input(cfg)
    by_module = count_macs_by_module(model, x["video"], **ground_truth_kwargs(model, x))
    # the per-frame heads count as the classifier: the TSM variant's answer is their averaged logits (they run only
    # in training in the other models)
    names = {"glance": "glance", "spatial_policy": "spatial_policy", "temporal_policy": "temporal_policy",
             "focus": "focus", "classifier": "classifier", "glance_head": "classifier", "focus_head": "classifier",
             "(self)": "patch_extraction"}
    components: dict[str, float] = {}
    for k, v in by_module.items():
        if v:
            components[names.get(k, k)] = components.get(names.get(k, k), 0.0) + gmacs(v)
    if "focus" in components and model.num_focus:
        components["focus_per_patch"] = components["focus"] / model.num_focus
    total = sum(v for k, v in components.items() if k != "focus_per_patch")
    return {"model": model_name, "preset": cfg.name, "patch_size": cfg.model.patch_size,
            "glance_frames": cfg.model.glance_frames, "num_focus": cfg.model.num_focus,
            "components": components, "total_gmacs": total}

"""Boxes and patches: from the spatial policy's actions to ``P x P`` patches.

(docs/design.md, "The method", steps 2-3.)

**Actions.** The spatial policy emits, per frame, four numbers in [0, 1]: ``(y, x, sy, sx)``.
The scales map linearly to box sides in pixels,
``side = box_min + s * (box_max - box_min)`` (independently per axis, or both from ``sy`` for
square boxes), and the positions map to the box's *top-left corner* in ``[0, frame - side]``, so
a box never leaves the frame: ``y0 = y * (H - side_y)``, ``x0 = x * (W - side_x)``.

**Boxes** are ``(x0, y0, x1, y1)`` in continuous pixel coordinates: pixel ``i`` covers
``[i, i + 1)``, so the whole frame is the box ``(0, 0, W, H)``.

**Patches.** A box is resampled to a fixed ``P x P`` patch with ``F.affine_grid`` + bilinear
``F.grid_sample`` (``align_corners=False``). Output pixel ``j`` samples the box at
``x0 + (j + 0.5) * (x1 - x0) / P``: the ``P`` samples are the centers of ``P`` equal cells of the
box. So the full-frame box gives exactly ``F.interpolate(frame, P, mode="bilinear",
align_corners=False)``, and the next network's cost depends on ``P`` only, never on the box size:
a big box is seen at a lower resolution. The crop is differentiable with respect to the box
(bilinear weights depend smoothly on the sampling positions), which is what the spatial
surrogate loss relies on; the real patches are cropped with *detached* boxes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

# the four action numbers, in order
ACTION_NAMES = ("y", "x", "sy", "sx")
BOX_NAMES = ("x0", "y0", "x1", "y1")


def _hw(frame_size: int | tuple[int, int]) -> tuple[int, int]:
    """``frame_size`` as ``(H, W)``."""
    if isinstance(frame_size, int):
        return frame_size, frame_size
    h, w = frame_size
    return int(h), int(w)


def _check_last_dim(t: Tensor, name: str, fn: str, size: int = 4) -> None:
    if t.dim() < 1 or t.shape[-1] != size:
        raise ValueError(f"{fn}: {name} must end in a dimension of {size}, got shape {tuple(t.shape)}")


def boxes_from_actions(actions: Tensor, frame_size: int | tuple[int, int], box_min: float, box_max: float,
                       square: bool = False) -> Tensor:
    """Map actions ``(..., 4)`` = ``(y, x, sy, sx)`` in [0, 1] to boxes ``(..., 4)`` = ``(x0, y0, x1, y1)``.

    Box sides lie in ``[box_min, box_max]`` pixels (clipped to the frame); with ``square=True``
    both sides come from ``sy`` and ``sx`` is ignored. Differentiable in ``actions``.
    """
    _check_last_dim(actions, "actions", "boxes_from_actions")
    if not 0 < box_min <= box_max:
        raise ValueError(f"boxes_from_actions: expected 0 < box_min <= box_max, got {box_min}, {box_max}")
    H, W = _hw(frame_size)
    y, x, sy, sx = actions.unbind(-1)
    if square:
        sx = sy
    side_y = (box_min + sy * (box_max - box_min)).clamp(max=H)
    side_x = (box_min + sx * (box_max - box_min)).clamp(max=W)
    y0 = y * (H - side_y)
    x0 = x * (W - side_x)
    return torch.stack([x0, y0, x0 + side_x, y0 + side_y], dim=-1)


def actions_from_centers(center_yx: Tensor, scales: Tensor, frame_size: int | tuple[int, int], box_min: float,
                         box_max: float, square: bool = False) -> Tensor:
    """The inverse view used by the soft-argmax head: box centers -> top-left-corner actions.

    ``center_yx`` ``(..., 2)`` are centers as fractions of the frame in [0, 1]; ``scales`` ``(..., 2)``
    are ``(sy, sx)`` in [0, 1]. Returns actions ``(..., 4)`` whose boxes (via
    :func:`boxes_from_actions`) are centered on ``center_yx`` unless that would leave the frame, in
    which case the box is shifted inside (the position is clamped to [0, 1]).
    """
    _check_last_dim(center_yx, "center_yx", "actions_from_centers", 2)
    _check_last_dim(scales, "scales", "actions_from_centers", 2)
    H, W = _hw(frame_size)
    sy, sx = scales.unbind(-1)
    if square:
        sx = sy
    side_y = (box_min + sy * (box_max - box_min)).clamp(max=H)
    side_x = (box_min + sx * (box_max - box_min)).clamp(max=W)
    cy, cx = center_yx.unbind(-1)
    # top-left = center - side / 2, as a fraction of the free range [0, frame - side]
    y = ((cy * H - side_y / 2) / (H - side_y).clamp(min=1e-6)).clamp(0.0, 1.0)
    x = ((cx * W - side_x / 2) / (W - side_x).clamp(min=1e-6)).clamp(0.0, 1.0)
    return torch.stack([y, x, sy, sx], dim=-1)


def box_centers(boxes: Tensor) -> Tensor:
    """Centers ``(..., 2)`` = ``(x, y)`` in pixels of boxes ``(..., 4)`` = ``(x0, y0, x1, y1)``."""
    _check_last_dim(boxes, "boxes", "box_centers")
    x0, y0, x1, y1 = boxes.unbind(-1)
    return torch.stack([(x0 + x1) / 2, (y0 + y1) / 2], dim=-1)


def _cell_centers(n: int, like: Tensor) -> Tensor:
    """``(n,)`` the centres of ``n`` equal cells of [-1, 1], computed as ``F.affine_grid`` does
    (``align_corners=False``): ``linspace(-1, 1, n) * (n - 1) / n``."""
    return torch.linspace(-1, 1, n, dtype=like.dtype, device=like.device) * ((n - 1) / n)


@torch.library.custom_op("adafocus::box_grid", mutates_args=())
def box_grid(coef: Tensor, height: int, width: int) -> Tensor:
    """``F.affine_grid``'s sampling grid ``(N, height, width, 2)`` for axis-aligned maps, built per axis:
    ``coef`` ``(N, 4)`` = ``(a_x, b_x, a_y, b_y)``, the grid's x at column ``j`` is ``a_x * u_j + b_x`` and
    its y at row ``i`` is ``a_y * v_i + b_y`` (``u``, ``v``: the output cells' centres in [-1, 1]). The same
    values as ``F.affine_grid`` with ``theta = [[a_x, 0, b_x], [0, a_y, b_y]]`` up to float rounding, without
    its batched matrix product over every location; :mod:`adafocus.flops` prices it as that affine map
    (6 MACs per location), so a path that uses it counts what ``F.affine_grid`` would."""
    ax, bx, ay, by = coef[:, :, None, None].unbind(1)  # (N, 1, 1) each
    grid = coef.new_empty(coef.shape[0], height, width, 2)
    grid[..., 0] = torch.addcmul(bx, ax, _cell_centers(width, coef)[None, None, :])
    grid[..., 1] = torch.addcmul(by, ay, _cell_centers(height, coef)[None, :, None])
    return grid


@box_grid.register_fake
def _(coef: Tensor, height: int, width: int) -> Tensor:
    return coef.new_empty(coef.shape[0], height, width, 2)


def _box_grid_backward(ctx, grad: Tensor) -> tuple[Tensor, None, None]:
    gx, gy = grad[..., 0], grad[..., 1]  # (N, H, W)
    u, v = _cell_centers(grad.shape[2], grad), _cell_centers(grad.shape[1], grad)
    return torch.stack([(gx * u).sum((1, 2)), gx.sum((1, 2)), (gy * v[:, None]).sum((1, 2)), gy.sum((1, 2))], 1), \
        None, None


box_grid.register_autograd(_box_grid_backward)


def crop_patches(frames: Tensor, boxes: Tensor, patch_size: int | tuple[int, int],
                 per_axis_grid: bool = False) -> Tensor:
    """Resample each box of each frame to a ``P x P`` patch (bilinear, differentiable in ``boxes``).

    frames: ``(B, K, C, H, W)`` (or ``(N, C, H, W)``); boxes: ``(B, K, 4)`` (or ``(N, 4)``) as
    ``(x0, y0, x1, y1)`` in pixels of these frames. Returns ``(B, K, C, P, P)`` (or ``(N, C, P, P)``).
    Samples that fall within half a pixel outside the frame repeat the border pixel, as
    ``F.interpolate`` does. ``per_axis_grid``: the sampling grid from :func:`box_grid` instead of
    ``F.affine_grid`` (the same grid up to float rounding, faster; the inference copy's choice).
    """
    if frames.dim() not in (4, 5):
        raise ValueError(f"crop_patches: frames must be (B, K, C, H, W) or (N, C, H, W), got shape "
                         f"{tuple(frames.shape)}")
    lead = frames.shape[:-3]
    if boxes.shape != (*lead, 4):
        raise ValueError(f"crop_patches: boxes must have shape {(*lead, 4)} to match frames "
                         f"{tuple(frames.shape)}, got {tuple(boxes.shape)}")
    ph, pw = (patch_size, patch_size) if isinstance(patch_size, int) else patch_size
    C, H, W = frames.shape[-3:]
    flat = frames.reshape(-1, C, H, W)  # (N, C, H, W)
    x0, y0, x1, y1 = boxes.reshape(-1, 4).to(frames.dtype).unbind(-1)  # (N,) each
    # the grid maps output cell centers (2j+1)/P - 1 in (-1, 1) to the box's cell centers in normalised
    # input coordinates u = 2 * x / W - 1: scale (x1 - x0) / W, shift (x0 + x1) / W - 1 (and the same in y)
    ax, bx, ay, by = (x1 - x0) / W, (x0 + x1) / W - 1, (y1 - y0) / H, (y0 + y1) / H - 1
    if per_axis_grid:
        grid = box_grid(torch.stack([ax, bx, ay, by], dim=1), ph, pw)  # (N, P, P, 2)
    else:
        zero = torch.zeros_like(x0)
        theta = torch.stack([torch.stack([ax, zero, bx], dim=-1), torch.stack([zero, ay, by], dim=-1)], dim=1)
        grid = F.affine_grid(theta, [flat.shape[0], C, ph, pw], align_corners=False)  # (N, P, P, 2)
    patches = F.grid_sample(flat, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return patches.reshape(*lead, C, ph, pw)


def gather_frames(video: Tensor, frame_idx: Tensor, rows: Tensor | None = None) -> Tensor:
    """Frames ``frame_idx`` ``(b, k)`` of clips ``rows`` ``(b,)`` (default: every clip, in order) of ``video``
    ``(B, T, C, H, W)`` -> ``(b, k, C, H, W)``: one ``index_select`` over the clip-frame axis, a block copy
    per frame (on CPU two to three times faster than ``video[rows[:, None], frame_idx]``, same values)."""
    B, T = video.shape[:2]
    rows = torch.arange(B, device=video.device) if rows is None else rows
    if video.stride(0) != video.stride(1) * T:  # clips and frames cannot merge into one axis without a copy
        return video[rows[:, None], frame_idx]
    flat = (rows[:, None] * T + frame_idx).reshape(-1)
    return video.flatten(0, 1).index_select(0, flat).view(*frame_idx.shape, *video.shape[2:])


def resize_frames(frames: Tensor, size: int) -> Tensor:
    """Resize frames ``(N, C, H, W)`` to ``size`` x ``size``: bilinear, ``align_corners=False``, no antialiasing."""
    return F.interpolate(frames, size=size, mode="bilinear", align_corners=False)


@torch.library.custom_op("adafocus::average_2x2", mutates_args=())
def average_2x2(frames: Tensor, channels_last: bool) -> Tensor:
    """Frames ``(N, C, H, W)`` (even ``H`` and ``W``, rows contiguous) -> the mean of every 2x2 block,
    ``(N, C, H/2, W/2)``, channels-last memory if ``channels_last``. Rows first, where pairs of rows are contiguous
    runs; then pairs of columns written straight into the output's memory format. :mod:`adafocus.flops` prices
    it as the bilinear resize it equals: 4 MACs per output element."""
    N, C, H, W = frames.shape
    if frames.stride(-1) != 1 or frames.stride(-2) != W:
        frames = frames.contiguous()
    rows = frames.unflatten(2, (H // 2, 2)).flatten(3)  # (N, C, H/2, 2W): rows 2i and 2i + 1 side by side
    pairs = torch.add(rows[..., :W], rows[..., W:])  # (N, C, H/2, W)
    out = torch.empty(N, C, H // 2, W // 2, dtype=frames.dtype, device=frames.device,
                      memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    torch.add(pairs[..., 0::2], pairs[..., 1::2], out=out)
    return out.mul_(0.25)


@average_2x2.register_fake
def _(frames: Tensor, channels_last: bool) -> Tensor:
    N, C, H, W = frames.shape
    return frames.new_empty(N, C, H // 2, W // 2)


def _average_2x2_backward(ctx, grad: Tensor) -> tuple[Tensor, None]:
    return grad.repeat_interleave(2, dim=-2).repeat_interleave(2, dim=-1).mul_(0.25), None


average_2x2.register_autograd(_average_2x2_backward)


def _shared_slice(frame_idx: Tensor) -> slice | None:
    """``frame_idx`` ``(B, k)`` as the slice of frames it equals when every clip reads the same evenly spaced,
    increasing frames (the glance at test time), else None."""
    rows = frame_idx.tolist()
    first = rows[0]
    step = first[1] - first[0] if len(first) > 1 else 1
    if step < 1 or any(r != first for r in rows) or first != list(range(first[0], first[-1] + 1, step)):
        return None
    return slice(first[0], first[-1] + 1, step)


def halve_frames(video: Tensor, frame_idx: Tensor, channels_last: bool = False) -> Tensor:
    """Frames ``frame_idx`` ``(B, k)`` of ``video`` ``(B, T, C, H, W)`` at half their size, ``(B * k, C, H/2, W/2)``:
    the values of :func:`resize_frames` to ``H/2`` in fewer operations.

    Bilinear resizing to exactly half the size (``align_corners=False``) samples output pixel ``j`` at
    input ``2j + 0.5``, halfway between pixels ``2j`` and ``2j + 1``: weights 1/2 and 1/2 in each axis,
    i.e. the mean of a 2x2 block (:func:`average_2x2`, priced by :mod:`adafocus.flops` at the resize's 4 MACs
    per output; equal to it up to float rounding, exactly on integer-valued frames). When every clip reads the
    same evenly spaced frames (the glance at test time) they are read where they are; otherwise gathered
    with one block copy each (:func:`gather_frames`). ``channels_last``: the result is in channels-last memory.
    """
    B, T, C, H, W = video.shape
    if H % 2 or W % 2:
        raise ValueError(f"halve_frames: frames of even size expected, got {H}x{W}")
    if frame_idx.shape[1] > 0 and (frames := _shared_slice(frame_idx)) is not None:
        return average_2x2(video[:, frames].flatten(0, 1), channels_last)
    return average_2x2(gather_frames(video, frame_idx).flatten(0, 1), channels_last)


def interpolate_actions(actions: Tensor, glance_idx: Tensor, num_frames: int) -> Tensor:
    """Actions at the glance frames ``(B, T_g, 4)`` -> actions at every frame ``(B, T, 4)``.

    Linear in time between consecutive glance frames (``glance_idx``: ``(T_g,)`` shared by the
    batch, or ``(B, T_g)`` per clip; strictly increasing), constant before the first and after the
    last. Differentiable in ``actions``.
    """
    if actions.dim() != 3:
        raise ValueError(f"interpolate_actions: actions must be (B, T_g, A), got shape {tuple(actions.shape)}")
    B, T_g = actions.shape[:2]
    glance_idx = torch.as_tensor(glance_idx, device=actions.device)
    if glance_idx.dim() == 1:
        glance_idx = glance_idx.expand(B, -1)
    if glance_idx.shape != (B, T_g):
        raise ValueError(f"interpolate_actions: glance_idx must be (T_g,) or (B, T_g) with T_g = {T_g}, B = {B}, "
                         f"got shape {tuple(glance_idx.shape)}")
    if T_g > 1 and not bool((glance_idx[:, 1:] > glance_idx[:, :-1]).all()):
        raise ValueError(f"interpolate_actions: glance_idx must be strictly increasing, got {glance_idx.tolist()}")
    if T_g == 1:
        return actions.expand(-1, num_frames, -1)
    g = glance_idx.to(actions.dtype).contiguous()  # (B, T_g)
    t = torch.arange(num_frames, device=actions.device, dtype=actions.dtype).expand(B, -1).contiguous()  # (B, T)
    # segment i spans [g_i, g_{i+1}]; frames outside [g_0, g_last] use the end segments, clamped
    seg = (torch.searchsorted(g, t, right=True) - 1).clamp(0, T_g - 2)  # (B, T)
    left, right = g.gather(1, seg), g.gather(1, seg + 1)
    alpha = ((t - left) / (right - left)).clamp(0.0, 1.0)[..., None]  # (B, T, 1)
    a = actions.shape[-1]
    lo = actions.gather(1, seg[..., None].expand(-1, -1, a))
    hi = actions.gather(1, (seg + 1)[..., None].expand(-1, -1, a))
    return lo * (1 - alpha) + hi * alpha


def random_actions(batch: int, num: int, generator: torch.Generator | None = None,
                   device: torch.device | str | None = None) -> Tensor:
    """Uniformly random actions ``(batch, num, 4)`` in [0, 1]: random position and size."""
    return torch.rand(batch, num, 4, generator=generator, device=device)


def random_boxes(batch: int, num: int, frame_size: int | tuple[int, int], box_min: float, box_max: float,
                 square: bool = False, generator: torch.Generator | None = None,
                 device: torch.device | str | None = None) -> Tensor:
    """Random boxes ``(batch, num, 4)``: uniform top-left in the free range, uniform side in [box_min, box_max]."""
    return boxes_from_actions(random_actions(batch, num, generator, device), frame_size, box_min, box_max, square)


def random_boxes_of_side(batch: int, num: int, frame_size: int | tuple[int, int], side: float,
                         generator: torch.Generator | None = None,
                         device: torch.device | str | None = None) -> Tensor:
    """Square boxes ``(batch, num, 4)`` of side ``side`` pixels at uniformly random positions inside the frame."""
    H, W = _hw(frame_size)
    if not 0 < side <= min(H, W):
        raise ValueError(f"random_boxes_of_side: side {side} must be positive and fit the {H}x{W} frame")
    u = torch.rand(batch, num, 2, generator=generator, device=device)
    x0, y0 = u[..., 0] * (W - side), u[..., 1] * (H - side)
    return torch.stack([x0, y0, x0 + side, y0 + side], dim=-1)


def center_boxes(batch: int, num: int, frame_size: int | tuple[int, int], side: float | tuple[float, float],
                 device: torch.device | str | None = None) -> Tensor:
    """Centerd boxes ``(batch, num, 4)`` of the given side (or ``(side_y, side_x)``) in pixels."""
    H, W = _hw(frame_size)
    sh, sw = (side, side) if isinstance(side, (int, float)) else side
    if not (0 < sh <= H and 0 < sw <= W):
        raise ValueError(f"center_boxes: side {side} must be positive and fit the {H}x{W} frame")
    box = torch.tensor([(W - sw) / 2, (H - sh) / 2, (W + sw) / 2, (H + sh) / 2], device=device)
    return box.expand(batch, num, 4).clone()


def clamp_boxes(boxes: Tensor, frame_size: int | tuple[int, int], box_min: float, box_max: float) -> Tensor:
    """Keep each box's center but force its sides into ``[box_min, box_max]`` and the box inside the frame.

    Used by the oracle: a ground-truth box is brought into the policy's action space, so the
    oracle pays the same cost per patch and looks at the same range of scales.
    """
    _check_last_dim(boxes, "boxes", "clamp_boxes")
    H, W = _hw(frame_size)
    x0, y0, x1, y1 = boxes.unbind(-1)
    sw = (x1 - x0).clamp(box_min, min(box_max, W))
    sh = (y1 - y0).clamp(box_min, min(box_max, H))
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    nx0 = torch.minimum((cx - sw / 2).clamp(min=0), W - sw)
    ny0 = torch.minimum((cy - sh / 2).clamp(min=0), H - sh)
    return torch.stack([nx0, ny0, nx0 + sw, ny0 + sh], dim=-1)


def jitter_boxes(boxes: Tensor, frame_size: int | tuple[int, int], box_min: float, box_max: float,
                 generator: torch.Generator | None = None) -> Tensor:
    """Random boxes that still contain ``boxes`` ``(..., 4)``: each side uniform in
    ``[max(true side, box_min), box_max]``, the position uniform among those that keep the true box
    inside (and the box inside the frame). A RandomResizedCrop for patches: trained on these, the
    focus network recognises an object at every scale and offset a policy's box may give it.
    """
    _check_last_dim(boxes, "boxes", "jitter_boxes")
    H, W = _hw(frame_size)
    x0, y0, x1, y1 = boxes.unbind(-1)
    u = torch.rand(*boxes.shape, generator=generator, device=boxes.device)

    def axis(a0: Tensor, a1: Tensor, size: int, us: Tensor, up: Tensor) -> tuple[Tensor, Tensor]:
        hi = min(box_max, size)
        lo = (a1 - a0).clamp(min=box_min, max=hi)
        side = lo + us * (hi - lo)
        start_lo = (a1 - side).clamp(min=0)
        start_hi = torch.minimum(a0.clamp(min=0), size - side)
        start = start_lo + up * (start_hi - start_lo).clamp(min=0)
        return start, start + side

    nx0, nx1 = axis(x0, x1, W, u[..., 0], u[..., 1])
    ny0, ny1 = axis(y0, y1, H, u[..., 2], u[..., 3])
    return torch.stack([nx0, ny0, nx1, ny1], dim=-1)

"""Boxes from actions, differentiable patch cropping, action interpolation (adafocus.models.patches)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from adafocus.models.patches import (actions_from_centers, box_centers, boxes_from_actions, center_boxes,
                                     clamp_boxes, crop_patches, interpolate_actions, random_boxes,
                                     random_boxes_of_side)


# ---- actions -> boxes ----------------------------------------------------------------------------

def test_extreme_actions_give_the_documented_boxes() -> None:
    a = torch.tensor([[0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0], [0.5, 0.5, 1.0, 0.0]])
    b = boxes_from_actions(a, 64, box_min=16, box_max=32)
    assert b[0].tolist() == [0, 0, 16, 16]  # top-left, smallest
    assert b[1].tolist() == [32, 32, 64, 64]  # bottom-right, largest
    x0, y0, x1, y1 = b[2].tolist()  # centered rectangle: 32 tall, 16 wide
    assert (y1 - y0, x1 - x0) == (32, 16)
    assert (x0 + x1) / 2 == 32 and (y0 + y1) / 2 == 32


def test_boxes_stay_inside_the_frame_with_sides_in_range() -> None:
    g = torch.Generator().manual_seed(0)
    b = random_boxes(64, 5, (48, 64), box_min=10, box_max=40, generator=g)
    x0, y0, x1, y1 = b.unbind(-1)
    assert (x0 >= 0).all() and (y0 >= 0).all() and (x1 <= 64 + 1e-5).all() and (y1 <= 48 + 1e-5).all()
    assert ((x1 - x0) >= 10 - 1e-5).all() and ((x1 - x0) <= 40 + 1e-5).all()
    assert ((y1 - y0) >= 10 - 1e-5).all() and ((y1 - y0) <= 40 + 1e-5).all()


def test_square_boxes_use_the_first_scale() -> None:
    a = torch.rand(8, 3, 4)
    b = boxes_from_actions(a, 64, 16, 48, square=True)
    assert torch.allclose(b[..., 2] - b[..., 0], b[..., 3] - b[..., 1])
    assert torch.allclose(b[..., 2] - b[..., 0], 16 + a[..., 2] * 32)


def test_actions_from_centers_round_trip() -> None:
    centers = torch.tensor([[0.5, 0.5], [0.3, 0.7], [0.0, 1.0]])  # (y, x) fractions; the last is at a corner
    scales = torch.tensor([[0.0, 1.0], [0.5, 0.5], [0.2, 0.2]])
    b = boxes_from_actions(actions_from_centers(centers, scales, 64, 16, 32), 64, 16, 32)
    c = box_centers(b)  # (x, y) pixels
    assert torch.allclose(c[0], torch.tensor([32.0, 32.0]))
    assert torch.allclose(c[1], torch.tensor([0.7 * 64, 0.3 * 64]))
    x0, y0, x1, y1 = b[2]  # a center in the corner is pushed inside the frame
    assert y0 == 0 and x1 == 64


def test_center_and_clamp_boxes() -> None:
    c = center_boxes(2, 3, 64, 20)
    assert c.shape == (2, 3, 4) and c[0, 0].tolist() == [22, 22, 42, 42]
    gt = torch.tensor([[0.0, 0.0, 4.0, 4.0], [10.0, 10.0, 60.0, 50.0], [30.0, 20.0, 50.0, 44.0]])
    b = clamp_boxes(gt, 64, box_min=16, box_max=32)
    sides = torch.stack([b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]], -1)
    assert sides.tolist() == [[16, 16], [32, 32], [20, 24]]
    assert b[0].tolist() == [0, 0, 16, 16]  # grown, then moved inside the frame
    assert torch.allclose(box_centers(b[1:]), box_centers(gt[1:]))  # center kept when possible
    assert torch.equal(b[2], gt[2])  # an admissible box is untouched


# ---- cropping -------------------------------------------------------------------------------------

def test_full_frame_box_is_a_bilinear_resize() -> None:
    frames = torch.rand(2, 3, 3, 32, 40)
    full = torch.tensor([0.0, 0.0, 40.0, 32.0]).expand(2, 3, 4)
    for p in (16, 24, 48):
        patch = crop_patches(frames, full, p)
        ref = F.interpolate(frames.flatten(0, 1), size=(p, p), mode="bilinear", align_corners=False)
        assert patch.shape == (2, 3, 3, p, p)
        assert torch.allclose(patch.flatten(0, 1), ref, atol=1e-5)


def test_unit_scale_crop_is_exact_and_a_bright_square_lands_where_expected() -> None:
    frame = torch.zeros(1, 1, 1, 32, 32)
    frame[..., 10:14, 20:24] = 1.0  # a bright square, rows 10-13, columns 20-23
    box = torch.tensor([[[16.0, 8.0, 32.0, 24.0]]])  # x0, y0, x1, y1: 16 x 16 pixels, no resampling
    patch = crop_patches(frame, box, 16)[0, 0, 0]
    assert torch.allclose(patch, frame[0, 0, 0, 8:24, 16:32], atol=1e-6)
    rows, cols = torch.nonzero(patch > 0.5, as_tuple=True)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (2, 5, 4, 7)
    away = crop_patches(frame, torch.tensor([[[0.0, 16.0, 16.0, 32.0]]]), 16)  # a box without the square
    assert away.abs().max() == 0


def test_downscaling_crop_averages_pixel_pairs() -> None:
    frames = torch.rand(1, 1, 2, 32, 32)
    box = torch.tensor([[[4.0, 8.0, 20.0, 24.0]]])  # 16 x 16 -> 8 x 8: each output averages a 2x2 block
    patch = crop_patches(frames, box, 8)[0, 0]
    assert torch.allclose(patch, F.avg_pool2d(frames[0, 0, :, 8:24, 4:20], 2), atol=1e-6)


def test_gradients_reach_the_box() -> None:
    frames = torch.rand(1, 2, 2, 16, 16, dtype=torch.float64)
    boxes = torch.tensor([[[2.3, 3.1, 11.7, 12.4], [0.6, 4.2, 9.9, 15.1]]], dtype=torch.float64,
                         requires_grad=True)
    torch.autograd.gradcheck(lambda b: crop_patches(frames, b, 5), (boxes,))
    crop_patches(frames, boxes, 5).sum().backward()
    assert boxes.grad is not None and boxes.grad.abs().sum() > 0


def test_the_per_axis_grid_is_affine_grids_grid_with_the_same_gradients_and_macs() -> None:
    """box_grid (the inference copy's) = F.affine_grid for axis-aligned boxes, differentiable, priced alike."""
    from adafocus.flops import count_macs
    from adafocus.models.patches import box_grid

    g = torch.Generator().manual_seed(0)
    coef = torch.rand(6, 4, generator=g, dtype=torch.float64) * 2 - 1
    zero = torch.zeros(6, dtype=torch.float64)
    theta = torch.stack([torch.stack([coef[:, 0], zero, coef[:, 1]], -1),
                         torch.stack([zero, coef[:, 2], coef[:, 3]], -1)], 1)  # (N, 2, 3)
    for h, w in ((5, 7), (24, 24), (1, 3)):
        ref = F.affine_grid(theta, [6, 1, h, w], align_corners=False)
        torch.testing.assert_close(box_grid(coef, h, w), ref, rtol=0, atol=1e-15)
        assert count_macs(lambda c: box_grid(c, h, w), coef) == count_macs(
            lambda t: F.affine_grid(t, [6, 1, h, w], align_corners=False), theta) == 6 * 6 * h * w
    torch.autograd.gradcheck(lambda c: box_grid(c, 4, 3), (coef.clone().requires_grad_(True),))
    frames = torch.rand(2, 3, 3, 32, 40, generator=g, dtype=torch.float64)
    boxes = torch.tensor([[2.3, 3.1, 11.7, 12.4], [0.0, 0.0, 40.0, 32.0], [5.5, 1.0, 39.0, 30.5]],
                         dtype=torch.float64).expand(2, 3, 4)
    for p in (8, 24):
        torch.testing.assert_close(crop_patches(frames, boxes, p, per_axis_grid=True), crop_patches(frames, boxes, p),
                                   rtol=0, atol=1e-12)
    b = boxes.clone().requires_grad_(True)
    torch.autograd.gradcheck(lambda x: crop_patches(frames, x, 5, per_axis_grid=True), (b,))


def test_crop_shape_errors_are_clear() -> None:
    with pytest.raises(ValueError, match="boxes must have shape"):
        crop_patches(torch.rand(2, 3, 3, 16, 16), torch.zeros(2, 4, 4), 8)
    with pytest.raises(ValueError, match="frames must be"):
        crop_patches(torch.rand(3, 16, 16), torch.zeros(3, 4), 8)
    with pytest.raises(ValueError, match="actions must end"):
        boxes_from_actions(torch.rand(2, 3), 16, 4, 8)


# ---- interpolation in time ------------------------------------------------------------------------

def test_interpolate_actions_is_linear_between_glance_frames() -> None:
    actions = torch.rand(2, 4, 4, requires_grad=True)
    idx = torch.tensor([1, 5, 9, 13])
    full = interpolate_actions(actions, idx, 16)
    assert full.shape == (2, 16, 4)
    assert torch.allclose(full[:, idx], actions)  # exact at the glance frames
    assert torch.allclose(full[:, 3], (actions[:, 0] + actions[:, 1]) / 2)  # halfway between 1 and 5
    assert torch.allclose(full[:, 6], 0.75 * actions[:, 1] + 0.25 * actions[:, 2])
    assert torch.allclose(full[:, 0], actions[:, 0]) and torch.allclose(full[:, 15], actions[:, 3])  # clamped ends
    full.sum().backward()
    assert actions.grad is not None and (actions.grad > 0).all()


def test_interpolate_actions_checks_its_indices() -> None:
    with pytest.raises(ValueError, match="strictly increasing"):
        interpolate_actions(torch.rand(1, 3, 4), torch.tensor([0, 4, 2]), 8)
    with pytest.raises(ValueError, match="T_g = 3"):
        interpolate_actions(torch.rand(1, 3, 4), torch.tensor([0, 4]), 8)
    with pytest.raises(ValueError, match="B = 2"):
        interpolate_actions(torch.rand(2, 3, 4), torch.tensor([[0, 2, 4], [1, 3, 5], [0, 1, 2]]), 8)
    with pytest.raises(ValueError, match="strictly increasing"):  # one clip's positions out of order
        interpolate_actions(torch.rand(2, 3, 4), torch.tensor([[0, 2, 4], [1, 5, 3]]), 8)
    single = interpolate_actions(torch.rand(2, 1, 4), torch.tensor([3]), 8)
    assert single.shape == (2, 8, 4)


def test_interpolate_actions_takes_each_clips_own_glance_frames() -> None:
    """Training with glance jitter: every clip glanced at its own frames, (B, T_g) positions."""
    actions = torch.rand(3, 4, 4, requires_grad=True)
    idx = torch.tensor([[1, 5, 9, 13], [0, 4, 8, 12], [3, 7, 11, 15]])
    full = interpolate_actions(actions, idx, 16)
    assert full.shape == (3, 16, 4)
    for b in range(3):  # each row is the shared-index interpolation with its own positions
        assert torch.allclose(full[b], interpolate_actions(actions[b:b + 1], idx[b], 16)[0])
        assert torch.allclose(full[b, idx[b]], actions[b])  # exact at its own glance frames
    assert torch.allclose(full[1, 2], (actions[1, 0] + actions[1, 1]) / 2)  # halfway between 0 and 4
    assert torch.allclose(full[2, :4], actions[2, 0].expand(4, 4))  # constant before its first glance frame
    # the same positions for every clip give the (T_g,) result
    same = torch.tensor([1, 5, 9, 13]).expand(3, 4)
    assert torch.equal(interpolate_actions(actions, same, 16), interpolate_actions(actions, same[0], 16))
    full.sum().backward()
    assert actions.grad is not None and (actions.grad > 0).all()


# ---- random boxes of a given side (the random-patch branch) ------------------------------------

def test_random_boxes_of_side_have_that_side_and_stay_inside_the_frame() -> None:
    g = torch.Generator().manual_seed(0)
    b = random_boxes_of_side(500, 3, (48, 64), 20, generator=g)
    assert b.shape == (500, 3, 4)
    x0, y0, x1, y1 = b.unbind(-1)
    assert torch.allclose(x1 - x0, torch.full_like(x0, 20.0)) and torch.allclose(y1 - y0, torch.full_like(y0, 20.0))
    assert (x0 >= 0).all() and (y0 >= 0).all() and (x1 <= 64 + 1e-5).all() and (y1 <= 48 + 1e-5).all()
    # positions spread over the whole free range (uniform): both ends are reached
    assert x0.min() < 2 and x0.max() > 42 and y0.min() < 2 and y0.max() > 26
    again = random_boxes_of_side(500, 3, (48, 64), 20, generator=torch.Generator().manual_seed(0))
    assert torch.equal(b, again)
    whole = random_boxes_of_side(2, 2, 32, 32)
    assert torch.equal(whole, torch.tensor([0.0, 0.0, 32.0, 32.0]).expand(2, 2, 4))
    with pytest.raises(ValueError, match="side 40"):
        random_boxes_of_side(1, 1, 32, 40)
    with pytest.raises(ValueError, match="positive"):
        random_boxes_of_side(1, 1, 32, 0)

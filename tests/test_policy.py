"""The spatial and temporal policies (adafocus.models.policy): shapes, ranges, localisation, costs."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from adafocus.flops import count_macs
from adafocus.models.patches import box_centers, boxes_from_actions, crop_patches
from adafocus.models.policy import ConvBNReLU3d, SeparableConvBNReLU3d, SpatialPolicy, TemporalPolicy

GEOMETRY = dict(frame_size=64, box_min=16, box_max=32)


@pytest.mark.parametrize("separable", [False, True])
@pytest.mark.parametrize("head", ["softargmax", "conv"])
@pytest.mark.parametrize("square", [False, True])
def test_spatial_policy_actions_are_in_range_and_train(head: str, square: bool, separable: bool) -> None:
    torch.manual_seed(0)
    policy = SpatialPolicy(24, 8, (4, 4), square=square, head=head, separable=separable, **GEOMETRY)
    maps = torch.randn(3, 5, 24, 4, 4)
    actions = policy(maps)
    assert actions.shape == (3, 5, 4)
    assert (actions >= 0).all() and (actions <= 1).all()
    if square:
        assert torch.equal(actions[..., 2], actions[..., 3])
    # every parameter of the location path gets a gradient from a loss on the boxes
    boxes = boxes_from_actions(actions, 64, 16, 32, square)
    (boxes * torch.randn_like(boxes)).sum().backward()
    head_params = policy.location.parameters() if head == "conv" else policy.scale.parameters()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in head_params)
    assert policy.body[0][0].weight.grad.abs().sum() > 0
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in policy.body.parameters())


def test_softargmax_starts_at_the_center_and_follows_the_peak() -> None:
    policy = SpatialPolicy(4, 4, (4, 4), **GEOMETRY).eval()
    maps = torch.randn(2, 3, 4, 4, 4)
    centers = box_centers(boxes_from_actions(policy(maps), 64, 16, 32))
    assert torch.allclose(centers, torch.full_like(centers, 32.0), atol=1e-4)  # flat heatmap at init

    policy.body = nn.Identity()  # read channel 0 of the map directly as the heatmap, sharply
    with torch.no_grad():
        policy.heatmap.weight.zero_()
        policy.heatmap.weight[0, 0] = 50.0
    maps = torch.zeros(1, 2, 4, 4, 4)
    maps[0, 0, 0, 1, 2] = 1.0  # frame 0: peak in row 1, column 2
    maps[0, 1, 0, 3, 0] = 1.0  # frame 1: peak in row 3, column 0 (box pushed inside the frame)
    boxes = boxes_from_actions(policy(maps), 64, 16, 32)
    cx, cy = box_centers(boxes)[0, 0].tolist()
    assert abs(cx - 2.5 * 16) < 0.5 and abs(cy - 1.5 * 16) < 0.5  # the cell center in pixels
    x0, y0, x1, y1 = boxes[0, 1].tolist()
    assert x0 < 16 and y1 > 48  # bottom-left region


def test_conv_head_needs_its_map_size() -> None:
    policy = SpatialPolicy(8, 4, (4, 4), head="conv", **GEOMETRY)
    with pytest.raises(ValueError, match=r"expected \(4, 4\) maps"):
        policy(torch.randn(1, 2, 8, 3, 3))
    with pytest.raises(ValueError, match="head must be"):
        SpatialPolicy(8, 4, (4, 4), head="mlp", **GEOMETRY)


def test_temporal_policy_is_a_distribution_that_starts_uniform() -> None:
    torch.manual_seed(0)
    policy = TemporalPolicy(16, 8)
    w = policy(torch.randn(4, 6, 16))
    assert w.shape == (4, 6)
    assert torch.allclose(w.sum(-1), torch.ones(4)) and torch.allclose(w, torch.full_like(w, 1 / 6))
    with torch.no_grad():
        policy.logit.weight.normal_()
    w = policy(torch.randn(4, 6, 16))
    assert torch.allclose(w.sum(-1), torch.ones(4)) and w.std() > 0
    with pytest.raises(ValueError, match=r"\(B, T_g, C_g\)"):
        policy(torch.randn(4, 16))


def test_full_size_costs_match_the_paper() -> None:
    """docs/design.md, "Costs": 0.8225 GMACs (spatial, 16 frames of 1280 x 7 x 7, 128 channels), 0.0041 (temporal)."""
    spatial = SpatialPolicy(1280, 128, (7, 7), frame_size=224, box_min=96, box_max=224, head="conv")
    macs = count_macs(spatial, torch.zeros(1, 16, 1280, 7, 7))
    assert abs(macs / 1e9 - 0.8225) / 0.8225 < 0.02
    temporal = TemporalPolicy(1280, 64)
    macs = count_macs(temporal, torch.zeros(1, 16, 1280))
    assert abs(macs / 1e9 - 0.0041) / 0.0041 < 0.02


def test_separable_convs_reach_as_far_at_a_fraction_of_the_cost() -> None:
    """``separable=True`` (the CPU default): each 3x3x3 conv is depthwise, then 1x1x1."""
    torch.manual_seed(0)
    dense = SpatialPolicy(32, 16, (8, 8), **GEOMETRY)
    sep = SpatialPolicy(32, 16, (8, 8), separable=True, **GEOMETRY)
    assert [type(b) for b in dense.body] == [ConvBNReLU3d, ConvBNReLU3d, ConvBNReLU3d]
    assert [type(b) for b in sep.body] == [ConvBNReLU3d, SeparableConvBNReLU3d, SeparableConvBNReLU3d]
    depthwise = sep.body[1][0]
    assert depthwise.groups == depthwise.in_channels == 16 and depthwise.kernel_size == (3, 3, 3)
    assert sep.body[1][3].kernel_size == (1, 1, 1)
    maps = torch.zeros(1, 8, 32, 8, 8)
    macs_dense, macs_sep = count_macs(dense.eval(), maps), count_macs(sep.eval(), maps)
    assert macs_sep < macs_dense / 3
    # the same receptive field: a change in one cell of one frame reaches 2 cells / 2 frames away
    block = sep.body[1:].eval()
    x = torch.zeros(1, 16, 8, 8, 8)
    base = block(x)
    x[0, :, 4, 4, 4] = 5.0
    diff = (block(x) - base).abs().sum(1)[0]  # (T, h, w)
    assert diff[2, 2, 2] > 0 and diff[6, 6, 6] > 0 and diff[1].abs().max() == 0 and diff[4, 4, 1] == 0


@pytest.mark.parametrize("preset, separable", [("tiny", True), ("small", True), ("full", False)])
def test_model_config_chooses_separable_policy_convs(preset: str, separable: bool) -> None:
    from adafocus.config import get_config
    from adafocus.models.registry import create_model

    cfg = get_config(preset)
    assert cfg.model.policy_separable is separable
    if preset == "full":
        return  # (too big to build here; its cost is checked by test_full_size_costs_match_the_paper)
    body = create_model("uni_adafocus", cfg).spatial_policy.body
    assert isinstance(body[1], SeparableConvBNReLU3d) is separable


@pytest.fixture
def one_thread():
    """Small tensors: one thread is faster and immune to oversubscription on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("head", ["softargmax", "conv"])
@pytest.mark.parametrize("seed", [0, 1])
def test_policy_learns_to_point_at_a_bright_square_through_the_crop(head: str, seed: int, one_thread) -> None:
    """End to end through ``grid_sample``: maximising patch brightness moves the boxes onto the square."""
    torch.manual_seed(seed)
    S, B, T, side, cells = 64, 16, 2, 12, 8
    policy = SpatialPolicy(1, 8, (cells, cells), head=head, **GEOMETRY)
    opt = torch.optim.Adam(policy.parameters(), 3e-3)
    for step in range(150):
        frames = torch.zeros(B, T, 1, S, S)
        xy = torch.randint(0, S - side, (B, 2))
        for i in range(B):
            frames[i, ..., xy[i, 1]:xy[i, 1] + side, xy[i, 0]:xy[i, 0] + side] = 1.0
        maps = F.avg_pool2d(frames.flatten(0, 1), S // cells).view(B, T, 1, cells, cells)
        boxes = boxes_from_actions(policy(maps), S, 16, 32)
        loss = -crop_patches(frames, boxes, 16).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    center = (xy + side / 2).float()  # (x, y)
    b = boxes[:, 0].detach()
    hit = ((center[:, 0] > b[:, 0]) & (center[:, 0] < b[:, 2]) & (center[:, 1] > b[:, 1]) & (center[:, 1] < b[:, 3]))
    assert hit.float().mean() >= 0.9

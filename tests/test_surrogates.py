"""The surrogates that train the policies from the label alone (adafocus.models.surrogates)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from adafocus.models.surrogates import spatial_surrogate_logits, temporal_surrogate_logits

FRAME = 32  # pixels; the maps below are 8x8, one cell = 4 pixels


def _class_map(label: int, num_classes: int = 3, b: int = 1, tg: int = 2, where=(1, 1)) -> torch.Tensor:
    """Glance maps ``(B, T_g, C, 8, 8)`` that are zero except a 2x2-cell blob (cells ``where``..+1) on
    channel ``label``: only there do the features name the class; elsewhere they are blank."""
    maps = torch.zeros(b, tg, num_classes, 8, 8)
    r, c = where
    maps[:, :, label, r:r + 2, c:c + 2] = 1.0
    return maps


def _identity_head(num_classes: int = 3, gain: float = 4.0) -> nn.Linear:
    """Channel k votes for class k."""
    head = nn.Linear(num_classes, num_classes)
    with torch.no_grad():
        head.weight.copy_(gain * torch.eye(num_classes))
        head.bias.zero_()
    return head


def _box(x0: float, y0: float, side: float, b: int = 1, tg: int = 2, requires_grad: bool = False) -> torch.Tensor:
    return torch.tensor([x0, y0, x0 + side, y0 + side]).expand(b, tg, 4).clone().requires_grad_(requires_grad)


# ---------------------------------------------------------------------------------------------
# spatial
# ---------------------------------------------------------------------------------------------

def test_a_box_on_the_informative_region_gives_a_lower_spatial_loss() -> None:
    """The surrogate's whole point: crops that hold the object name the class; crops elsewhere do not."""
    label = torch.tensor([2])
    maps, head = _class_map(2, where=(1, 1)), _identity_head()  # the blob covers pixels 4..12 (x and y)
    on = _box(4.0, 4.0, 8.0)
    elsewhere = [_box(20.0, 20.0, 8.0), _box(0.0, 20.0, 12.0), _box(20.0, 0.0, 10.0)]
    loss_on = F.cross_entropy(spatial_surrogate_logits(maps, on, FRAME, 3, head), label)
    for box in elsewhere:
        loss_off = F.cross_entropy(spatial_surrogate_logits(maps, box, FRAME, 3, head), label)
        assert loss_on < loss_off - 0.5, (loss_on, loss_off)
    with torch.no_grad():
        blank = F.cross_entropy(spatial_surrogate_logits(maps, elsewhere[0], FRAME, 3, head), label)
    assert abs(float(blank) - float(torch.log(torch.tensor(3.0)))) < 1e-4  # a blank crop: chance


def test_spatial_gradients_pull_the_box_towards_the_object() -> None:
    label = torch.tensor([0])
    maps, head = _class_map(0, where=(1, 1)), _identity_head()  # blob at pixels 4..12
    box = _box(10.0, 10.0, 8.0, requires_grad=True)  # overlaps the blob's bottom-right corner
    F.cross_entropy(spatial_surrogate_logits(maps, box, FRAME, 3, head), label).backward()
    g = box.grad  # (1, T_g, 4): descending the loss moves x0, y0, x1, y1 towards smaller values
    assert g is not None and torch.isfinite(g).all()
    assert (g[..., 0] + g[..., 2] > 0).all() and (g[..., 1] + g[..., 3] > 0).all()


def test_spatial_gradients_reach_boxes_and_maps_unless_detached() -> None:
    torch.manual_seed(0)
    maps = torch.randn(2, 3, 5, 8, 8, requires_grad=True)
    boxes = torch.tensor([4.3, 6.1, 19.7, 22.4]).expand(2, 3, 4).clone().requires_grad_(True)
    head = nn.Linear(5, 4)
    labels = torch.tensor([1, 3])
    logits = spatial_surrogate_logits(maps, boxes, FRAME, 3, head)
    assert logits.shape == (2, 4)
    F.cross_entropy(logits, labels).backward()
    assert boxes.grad is not None and boxes.grad.abs().sum() > 0
    assert maps.grad is not None and maps.grad.abs().sum() > 0
    assert head.weight.grad is not None and head.weight.grad.abs().sum() > 0
    # the caller detaches the maps (the paper): the glance gets nothing, the boxes still do
    boxes.grad = None
    maps2 = maps.detach().requires_grad_(False)
    F.cross_entropy(spatial_surrogate_logits(maps2, boxes, FRAME, 3, head), labels).backward()
    assert boxes.grad.abs().sum() > 0


def test_spatial_surrogate_averages_frames_and_grid_before_the_head() -> None:
    """Boxes in frame pixels map onto the map's cells: the whole-frame box averages the whole map."""
    torch.manual_seed(0)
    maps = torch.rand(2, 3, 4, 8, 8)
    head = nn.Linear(4, 2)
    whole = torch.tensor([0.0, 0.0, FRAME, FRAME]).expand(2, 3, 4)
    logits = spatial_surrogate_logits(maps, whole, FRAME, 8, head)  # 8x8 samples = the cells themselves
    assert torch.allclose(logits, head(maps.mean(dim=(1, 3, 4))), atol=1e-5)


def test_spatial_surrogate_checks_its_shapes() -> None:
    head = nn.Linear(5, 2)
    with pytest.raises(ValueError, match=r"maps \(B, T_g, C, h, w\) and boxes \(B, T_g, 4\)"):
        spatial_surrogate_logits(torch.zeros(2, 3, 5, 8, 8), torch.zeros(2, 2, 4), FRAME, 3, head)
    with pytest.raises(ValueError, match="expected maps"):
        spatial_surrogate_logits(torch.zeros(2, 5, 8, 8), torch.zeros(2, 4), FRAME, 3, head)


# ---------------------------------------------------------------------------------------------
# temporal
# ---------------------------------------------------------------------------------------------

def test_temporal_surrogate_without_removals_is_the_w_weighted_average() -> None:
    torch.manual_seed(0)
    logits = torch.randn(3, 5, 4)
    w = torch.softmax(torch.randn(3, 5), -1)
    expected = (w[..., None] * logits).sum(1) / w.sum(1, keepdim=True)
    for draws in (1, 7):
        got = temporal_surrogate_logits(logits, w, draws, removals=1)
        assert torch.allclose(got, expected, atol=1e-6)
    unnormalised = 3.0 * w  # the normaliser makes the scale of w irrelevant
    assert torch.allclose(temporal_surrogate_logits(logits, unnormalised, 4, 1), expected, atol=1e-5)
    assert torch.allclose(temporal_surrogate_logits(logits, w, 4, 0), expected, atol=1e-6)  # 0 means none


def test_temporal_gradients_reach_w_and_the_normaliser_is_detached() -> None:
    """Per-frame logits that all say the same thing: the plain average is constant in w, so its
    gradient is zero; with the detached normaliser (the paper's) each w_t gets logits_t / sum(w)."""
    logits = torch.tensor([[[1.0, -1.0], [1.0, -1.0], [1.0, -1.0]]])  # (1, 3, 2)
    w = torch.tensor([[0.2, 0.3, 0.5]], requires_grad=True)
    out = temporal_surrogate_logits(logits, w, draws=2, removals=1)
    out[0, 0].backward()
    assert torch.allclose(w.grad, torch.ones(1, 3), atol=1e-6)  # logits[:, t, 0] / sum(w) = 1 / 1
    # and gradients reach the per-frame logits (they train the glance)
    frame_logits = torch.randn(2, 4, 3, requires_grad=True)
    w2 = torch.softmax(torch.randn(2, 4), -1).requires_grad_(True)
    F.cross_entropy(temporal_surrogate_logits(frame_logits, w2, 8, 2), torch.tensor([0, 2])).backward()
    assert frame_logits.grad.abs().sum() > 0 and w2.grad.abs().sum() > 0


def test_temporal_surrogate_rewards_weight_on_frames_that_name_the_class() -> None:
    logits = torch.zeros(1, 4, 2)
    logits[0, 2, 1] = 5.0  # only frame 2 says "class 1"
    w = torch.full((1, 4), 0.25, requires_grad=True)
    F.cross_entropy(temporal_surrogate_logits(logits, w, 16, 2, torch.Generator().manual_seed(0)),
                    torch.tensor([1])).backward()
    assert w.grad[0, 2] < 0 and (w.grad[0, [0, 1, 3]] >= 0).all()  # descending raises w_2, lowers the others


def test_temporal_removals_follow_w_in_expectation() -> None:
    """removals=2: the mean of no removal and of one frame removed with probability w_j, whose
    expectation is sum_j w_j * (w without j) / (1 - w_j) for one-hot per-frame logits."""
    w = torch.tensor([[0.5, 0.3, 0.2]])
    logits = torch.eye(3)[None]  # frame t votes for class t: the output is the effective weights
    exact_one_removed = sum(w[0, j] * torch.cat([w[0, :j], torch.zeros(1), w[0, j + 1:]]) / (1 - w[0, j])
                            for j in range(3))
    expected = (w[0] + exact_one_removed) / 2
    got = temporal_surrogate_logits(logits, w, 20000, 2, torch.Generator().manual_seed(0))[0]
    assert torch.allclose(got, expected, atol=0.01), (got, expected)
    assert torch.allclose(got.sum(), torch.tensor(1.0), atol=1e-5)
    a = temporal_surrogate_logits(logits, w, 16, 3, torch.Generator().manual_seed(1))
    b = temporal_surrogate_logits(logits, w, 16, 3, torch.Generator().manual_seed(1))
    assert torch.equal(a, b)  # a seeded generator: reproducible draws


def test_temporal_removals_never_remove_every_frame() -> None:
    logits = torch.randn(2, 3, 4)
    w = torch.tensor([[1.0, 0.0, 0.0], [0.2, 0.3, 0.5]])
    out = temporal_surrogate_logits(logits, w, 8, removals=10)  # clamped to T_g: at most T_g - 1 removed
    assert torch.isfinite(out).all()


def test_temporal_surrogate_checks_its_shapes() -> None:
    with pytest.raises(ValueError, match=r"weights must be \(B, T_g\) = \(2, 3\)"):
        temporal_surrogate_logits(torch.zeros(2, 3, 4), torch.ones(2, 4), 4, 1)

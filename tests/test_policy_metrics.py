"""Policy-vs-ground-truth metrics."""

import math

import pytest
import torch

from adafocus.analysis.policy_metrics import (box_iou, center_error, chosen_box_iou, frame_recall_precision,
                                              policy_summary, trajectory_smoothness)


def test_box_iou_known_values():
    a = torch.tensor([[0.0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10]])
    b = torch.tensor([[0.0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]])
    assert torch.allclose(box_iou(a, b), torch.tensor([1.0, 50 / 150, 0.0]))


def test_box_iou_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match=r"\(\.\.\., 4\)"):
        box_iou(torch.zeros(3, 4), torch.zeros(2, 4))


def test_chosen_box_iou_uses_the_chosen_frames_and_mask():
    gt = torch.tensor([[[0.0, 0, 10, 10], [10, 10, 20, 20], [30, 30, 40, 40]]])  # (1, 3, 4)
    mask = torch.tensor([[True, True, False]])
    chosen = torch.tensor([[[10.0, 10, 20, 20], [30, 30, 40, 40]]])  # exact boxes of frames 1 and 2
    iou = chosen_box_iou(chosen, torch.tensor([[1, 2]]), gt, mask)
    assert iou[0, 0] == 1.0 and math.isnan(iou[0, 1])  # frame 2 is not informative
    wrong = chosen_box_iou(chosen, torch.tensor([[0, 1]]), gt, mask)  # boxes put on the wrong frames
    assert wrong[0, 0] == 0.0


def test_frame_recall_and_precision():
    mask = torch.tensor([[False, False, True, True, True, True, False, False]])
    r, p = frame_recall_precision(torch.tensor([[2, 3, 4, 5]]), mask)
    assert r.item() == 1.0 and p.item() == 1.0
    r, p = frame_recall_precision(torch.tensor([[0, 2, 4, 6]]), mask)  # a uniform grid
    assert r.item() == 0.5 and p.item() == 0.5


def test_center_error_and_smoothness():
    gt = torch.tensor([[[0.0, 0, 10, 10], [0, 0, 10, 10]]])
    boxes = torch.tensor([[[3.0, 4, 13, 14], [0, 0, 10, 10]]])
    assert torch.allclose(center_error(boxes, torch.tensor([[0, 1]]), gt), torch.tensor([[5.0, 0.0]]))
    assert torch.allclose(trajectory_smoothness(boxes), torch.tensor([5.0]))


def test_policy_summary_keys_and_ranges():
    g = torch.Generator().manual_seed(0)
    gt = torch.rand(4, 8, 2, generator=g).mul(40).repeat(1, 1, 2) + torch.tensor([0, 0, 16, 16])
    mask = torch.rand(4, 8, generator=g) > 0.5
    idx = torch.tensor([[0, 2, 4, 6]]).repeat(4, 1)
    s = policy_summary(gt[:, ::2], idx, gt, mask | torch.eye(8, dtype=torch.bool)[:4])
    assert s["box_iou"] == pytest.approx(1.0) and s["center_error_px"] == pytest.approx(0.0)
    assert 0 <= s["frame_recall"] <= 1 and 0 <= s["frame_precision"] <= 1

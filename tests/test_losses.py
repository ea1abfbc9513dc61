"""Loss terms: every exit, auxiliary heads, surrogates, and non-finite detection."""

import pytest
import torch

from adafocus.config import TrainConfig, get_config
from adafocus.losses import LossWeights, adafocus_loss, exit_cross_entropy, temporal_mask_kl, two_branch_loss
from adafocus.models.registry import create_model


@pytest.fixture(scope="module")
def batch():
    torch.manual_seed(0)
    cfg = get_config("tiny")
    d = cfg.data
    video = torch.rand(4, d.num_frames, d.channels, d.frame_size, d.frame_size)
    boxes = torch.tensor([4.0, 4, 16, 16]).expand(4, d.num_frames, 4).clone()
    return cfg, video, torch.tensor([0, 1, 2, 3]), boxes


def test_exit_cross_entropy_averages_every_exit():
    logits = torch.zeros(2, 3, 4)
    logits[:, 0, 1] = 10.0  # exit 0 confidently right for label 1, the others uniform
    labels = torch.tensor([1, 1])
    expected = (torch.nn.functional.cross_entropy(logits[:, 0], labels) + 2 * torch.log(torch.tensor(4.0))) / 3
    assert torch.allclose(exit_cross_entropy(logits, labels), expected)


def test_all_terms_present_and_gradients_reach_the_policies(batch):
    cfg, video, labels, boxes = batch
    model = create_model("uni_adafocus", cfg).train()
    out = model(video, gt_boxes=boxes)
    loss, parts = adafocus_loss(out, labels, LossWeights(center=1.0, size_penalty=1.0), cfg.data.frame_size, boxes)
    assert {"exits", "glance", "focus", "spatial", "temporal", "center", "size_penalty"} <= set(parts)
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.spatial_policy.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.temporal_policy.parameters())


def test_two_branch_loss_is_the_mean_of_both_branches(batch):
    cfg, video, labels, boxes = batch
    model = create_model("uni_adafocus", cfg).train()
    torch.manual_seed(1)
    out_p, out_r = model(video), model(video, patch_mode="random")
    loss, parts = two_branch_loss(out_p, out_r, labels, LossWeights(), cfg.data.frame_size)
    assert "random_exits" in parts and "spatial" in parts
    lp, _ = adafocus_loss(out_p, labels, LossWeights(), cfg.data.frame_size)
    lr, _ = adafocus_loss(out_r, labels, LossWeights(spatial=0.0, temporal=0.0), cfg.data.frame_size)
    assert torch.allclose(loss, 0.5 * (lp + lr))


def test_non_finite_loss_names_the_term(batch):
    cfg, video, labels, _ = batch
    model = create_model("glance_only", cfg).train()
    out = model(video)
    out.exit_logits = out.exit_logits * float("nan")
    with pytest.raises(FloatingPointError, match="loss term 'exits' is not finite"):
        adafocus_loss(out, labels, LossWeights(), cfg.data.frame_size)


def test_temporal_mask_kl_is_zero_at_the_normalised_mask_and_skips_empty_clips():
    mask = torch.tensor([[True, False, True, False], [False, False, False, False], [True, True, True, True]])
    target = torch.tensor([[0.5, 0.0, 0.5, 0.0], [0.25, 0.25, 0.25, 0.25], [0.25, 0.25, 0.25, 0.25]])
    assert temporal_mask_kl(target, mask).abs() < 1e-6
    w = torch.full((3, 4), 0.25)  # uniform w: KL = log(4 / 2) on clip 0, 0 on clip 2, clip 1 skipped
    assert torch.allclose(temporal_mask_kl(w, mask), torch.log(torch.tensor(2.0)) / 2)
    assert temporal_mask_kl(w, torch.zeros(3, 4, dtype=torch.bool)) == 0


def test_temporal_supervision_trains_only_the_temporal_policy_towards_the_mask(batch):
    cfg, video, labels, boxes = batch
    model = create_model("uni_adafocus", cfg).train()
    mask = torch.zeros(4, cfg.data.num_frames, dtype=torch.bool)
    mask[:, : cfg.data.num_frames // 2] = True
    out = model(video, gt_boxes=boxes, gt_mask=mask)
    assert torch.equal(out.glance_mask, mask[:, model.glance_idx])
    weights = LossWeights(exits=0, glance=0, focus=0, spatial=0, temporal=0, temporal_mask=1.0)
    loss, parts = adafocus_loss(out, labels, weights, cfg.data.frame_size, boxes)
    assert "temporal_mask" in parts and parts["temporal_mask"] > 0
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.temporal_policy.parameters())
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in model.glance.parameters())  # w reads detached feats
    assert LossWeights.from_train(cfg.train).temporal_mask == cfg.train.temporal_supervision
    # off (the paper's recipe): no term
    _, parts = adafocus_loss(out, labels, LossWeights(), cfg.data.frame_size, boxes)
    assert "temporal_mask" not in parts


def test_temporal_supervision_is_validated_and_part_of_the_cache_key():
    from adafocus.config import ConfigError

    with pytest.raises(ConfigError, match="train.temporal_supervision: expected a non-negative float"):
        get_config("tiny", **{"train.temporal_supervision": -1.0})
    assert TrainConfig().temporal_supervision == 0.0  # off by default (the paper's recipe)
    cfg = get_config("small", **{"train.temporal_supervision": 0.0})
    assert cfg.hash() != cfg.replace(**{"train.temporal_supervision": 1.0}).hash()

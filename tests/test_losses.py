"""The training loss (adafocus.losses): every term of every recipe, which parts each one trains,
what it reads from the batch, and non-finite detection."""

from __future__ import annotations

import math
from collections.abc import Mapping

import pytest
import torch
import torch.nn.functional as F

from adafocus.config import ConfigError, TrainConfig, get_config
from adafocus.losses import (box_center_l1, exit_cross_entropy, scale_regulariser, temporal_mask_kl,
                             training_loss)
from adafocus.models.registry import create_model

TINY = get_config("tiny")
D = TINY.data
LABEL_FREE_TERMS = {"exits", "glance_frames", "focus_frames", "spatial", "temporal", "scale"}


@pytest.fixture(scope="module")
def batch():
    torch.manual_seed(0)
    video = torch.rand(4, D.num_frames, D.channels, D.frame_size, D.frame_size)
    boxes = torch.tensor([4.0, 4, 16, 16]).expand(4, D.num_frames, 4).clone()
    mask = torch.zeros(4, D.num_frames, dtype=torch.bool)
    mask[:, : D.num_frames // 2] = True
    return {"video": video, "label": torch.tensor([0, 1, 2, 3]), "boxes": boxes, "mask": mask}


def _outputs(name: str, cfg, video: torch.Tensor, seed: int = 0, random_branch: bool = True):
    """A model in training mode, its policy-branch output and (for a learned spatial policy) its random branch."""
    torch.manual_seed(seed)
    model = create_model(name, cfg).train()
    gt = {}
    if model.needs_ground_truth:  # the oracle: its own modes read the truth (the loss never does)
        T = cfg.data.num_frames
        gt = {"gt_boxes": torch.tensor([4.0, 4, 16, 16]).expand(video.shape[0], T, 4),
              "gt_mask": torch.ones(video.shape[0], T, dtype=torch.bool)}
    plan = model.plan(video, **gt)
    out = model.run(video, plan)
    out_random = model.run(video, model.random_patch_plan(plan)) if random_branch and model.spatial_policy else None
    return model, out, out_random


class _NoGroundTruth(Mapping):
    """A batch that fails the test the moment anything asks for its boxes or its mask."""

    def __init__(self, label: torch.Tensor) -> None:
        self._d = {"label": label}

    def __getitem__(self, key):
        if key in ("boxes", "mask"):
            raise AssertionError(f"the label-free loss read batch[{key!r}]")
        return self._d[key]

    def __iter__(self):
        return iter(self._d)

    def __len__(self):
        return len(self._d)

    def get(self, key, default=None):
        if key in ("boxes", "mask"):
            raise AssertionError(f"the label-free loss read batch.get({key!r})")
        return self._d.get(key, default)

    def __contains__(self, key):
        if key in ("boxes", "mask"):
            raise AssertionError(f"the label-free loss asked whether the batch has {key!r}")
        return key in self._d


def _grad_sum(params) -> float:
    return float(sum(p.grad.abs().sum() for p in params if p.grad is not None))


# ---------------------------------------------------------------------------------------------
# the pieces
# ---------------------------------------------------------------------------------------------

def test_exit_cross_entropy_averages_every_exit():
    logits = torch.zeros(2, 3, 4)
    logits[:, 0, 1] = 10.0  # exit 0 confidently right for label 1, the others uniform
    labels = torch.tensor([1, 1])
    expected = (F.cross_entropy(logits[:, 0], labels) + 2 * torch.log(torch.tensor(4.0))) / 3
    assert torch.allclose(exit_cross_entropy(logits, labels), expected)


def test_scale_regulariser_is_zero_for_the_largest_boxes():
    actions = torch.rand(2, 3, 4)
    actions[..., 2:] = 1.0
    assert scale_regulariser(actions) == 0
    actions[..., 2:] = 0.5
    actions[..., :2] = torch.rand(2, 3, 2)  # positions do not count
    assert torch.allclose(scale_regulariser(actions), torch.tensor(0.25))


def test_box_center_l1_compares_centers_at_the_glance_frames_in_frame_units():
    gt = torch.zeros(1, 4, 4)
    gt[0, :, :] = torch.tensor([0.0, 0.0, 8.0, 8.0])  # center (4, 4)
    gt[0, 2] = torch.tensor([16.0, 16.0, 24.0, 24.0])  # frame 2: center (20, 20)
    centers = torch.tensor([[[4.0, 4.0], [20.0, 20.0]]])  # at glance frames 0 and 2: both right
    assert box_center_l1(centers, gt, torch.tensor([[0, 2]]), 32) == 0
    wrong = torch.tensor([[[4.0, 4.0], [4.0, 4.0]]])  # frame 2 off by 16 px in x and y
    assert torch.allclose(box_center_l1(wrong, gt, torch.tensor([[0, 2]]), 32), torch.tensor(8 / 32))


def test_temporal_mask_kl_is_zero_at_the_normalised_mask_and_skips_empty_clips():
    mask = torch.tensor([[True, False, True, False], [False, False, False, False], [True, True, True, True]])
    target = torch.tensor([[0.5, 0.0, 0.5, 0.0], [0.25, 0.25, 0.25, 0.25], [0.25, 0.25, 0.25, 0.25]])
    assert temporal_mask_kl(target, mask).abs() < 1e-6
    w = torch.full((3, 4), 0.25)  # uniform w: KL = log(4 / 2) on clip 0, 0 on clip 2, clip 1 skipped
    assert torch.allclose(temporal_mask_kl(w, mask), torch.log(torch.tensor(2.0)) / 2)
    assert temporal_mask_kl(w, torch.zeros(3, 4, dtype=torch.bool)) == 0


# ---------------------------------------------------------------------------------------------
# the terms of each recipe
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("recipe", ["cpu", "paper"])
def test_label_free_recipes_have_the_label_free_terms_and_never_read_ground_truth(batch, recipe):
    cfg = TINY.replace(**{"train.recipe": recipe})
    model, out, out_random = _outputs("uni_adafocus", cfg, batch["video"])
    torch.manual_seed(1)  # (the temporal surrogate's draws)
    loss, parts = training_loss(model, out, out_random, _NoGroundTruth(batch["label"]), cfg.train)
    assert set(parts) == LABEL_FREE_TERMS
    assert torch.isfinite(loss) and all(math.isfinite(v) for v in parts.values())
    # a batch without the keys at all, or with ground truth that is all NaN, gives the same loss
    torch.manual_seed(1)
    loss2, _ = training_loss(model, out, out_random, {"label": batch["label"]}, cfg.train)
    nan = {"label": batch["label"], "boxes": torch.full_like(batch["boxes"], float("nan")), "mask": ~batch["mask"]}
    torch.manual_seed(1)
    loss3, _ = training_loss(model, out, out_random, nan, cfg.train)
    assert torch.equal(loss, loss2) and torch.equal(loss, loss3)


def test_the_total_is_the_weighted_sum_of_the_terms(batch):
    t = TINY.replace(**{"train.recipe": "hinted", "train.spatial_weight": 0.7, "train.temporal_weight": 1.3,
                        "train.scale_reg": 0.4}).train
    model, out, out_random = _outputs("uni_adafocus", TINY, batch["video"])
    loss, parts = training_loss(model, out, out_random, batch, t)
    weights = {"exits": 1.0, "glance_frames": 1.0, "focus_frames": 1.0, "spatial": 0.7, "temporal": 1.3,
               "scale": 0.4, "center": t.center_supervision, "temporal_mask": t.temporal_supervision}
    assert set(parts) == set(weights)
    assert math.isclose(float(loss.detach()), sum(weights[k] * v for k, v in parts.items()), rel_tol=1e-5)


def test_hinted_terms_appear_only_with_a_positive_weight_and_need_the_ground_truth(batch):
    model, out, out_random = _outputs("uni_adafocus", TINY, batch["video"])
    hinted = TINY.replace(**{"train.recipe": "hinted"}).train
    _, parts = training_loss(model, out, out_random, batch, hinted)
    assert set(parts) == LABEL_FREE_TERMS | {"center", "temporal_mask"}
    assert parts["center"] > 0 and parts["temporal_mask"] > 0
    only_center = TINY.replace(**{"train.center_supervision": 1.0}).train
    _, parts = training_loss(model, out, out_random, {"label": batch["label"], "boxes": batch["boxes"]}, only_center)
    assert "center" in parts and "temporal_mask" not in parts  # the mask was not needed, nor read
    only_mask = TINY.replace(**{"train.temporal_supervision": 1.0}).train
    _, parts = training_loss(model, out, out_random, {"label": batch["label"], "mask": batch["mask"]}, only_mask)
    assert "temporal_mask" in parts and "center" not in parts
    with pytest.raises(KeyError, match="boxes"):
        training_loss(model, out, out_random, {"label": batch["label"]}, only_center)
    with pytest.raises(KeyError, match="mask"):
        training_loss(model, out, out_random, {"label": batch["label"]}, only_mask)


@pytest.mark.parametrize("field, term", [("train.spatial_weight", "spatial"), ("train.temporal_weight", "temporal"),
                                         ("train.scale_reg", "scale")])
def test_a_zero_weight_removes_its_term(batch, field, term):
    cfg = TINY.replace(**{field: 0.0})
    model, out, out_random = _outputs("uni_adafocus", cfg, batch["video"])
    _, parts = training_loss(model, out, out_random, batch, cfg.train)
    assert term not in parts and parts.keys() == LABEL_FREE_TERMS - {term}


@pytest.mark.parametrize("name, terms", [
    ("glance_only", {"exits", "glance_frames"}),
    ("full_frame", {"exits", "focus_frames"}),
    ("random_patch", {"exits", "glance_frames", "focus_frames", "temporal"}),
    ("center_patch", {"exits", "glance_frames", "focus_frames", "temporal"}),
    ("temporal_only", {"exits", "glance_frames", "focus_frames", "temporal"}),
    ("adafocus_v2", {"exits", "glance_frames", "focus_frames", "spatial", "scale"}),
    ("oracle", {"exits", "glance_frames", "focus_frames"}),
])
def test_each_model_gets_the_terms_of_what_it_has(batch, name, terms):
    """A surrogate exists only where its policy is used; a hint only where the policy exists, too."""
    model, out, out_random = _outputs(name, TINY, batch["video"])
    _, parts = training_loss(model, out, out_random, _NoGroundTruth(batch["label"]), TINY.train)
    assert set(parts) == terms


def test_the_random_branch_averages_exits_and_focus_frames(batch):
    model, out, out_random = _outputs("uni_adafocus", TINY, batch["video"])
    labels = batch["label"]
    torch.manual_seed(1)  # the same temporal draws in both calls
    _, both = training_loss(model, out, out_random, {"label": labels}, TINY.train)
    torch.manual_seed(1)
    _, alone = training_loss(model, out, None, {"label": labels}, TINY.train)
    exits_random = float(exit_cross_entropy(out_random.exit_logits, labels).detach())
    focus_random = float(exit_cross_entropy(out_random.focus_frame_logits, labels).detach())
    assert math.isclose(both["exits"], (alone["exits"] + exits_random) / 2, rel_tol=1e-5)
    assert math.isclose(both["focus_frames"], (alone["focus_frames"] + focus_random) / 2, rel_tol=1e-5)
    for same in ("glance_frames", "spatial", "temporal", "scale"):  # one glance, one policy: not averaged
        assert math.isclose(both[same], alone[same], rel_tol=1e-6), same
    # the random branch: the same frames, boxes of the patch size at random places
    assert torch.equal(out_random.frame_idx, out.frame_idx)
    sides = out_random.boxes[..., 2:] - out_random.boxes[..., :2]
    assert torch.allclose(sides, torch.full_like(sides, float(TINY.model.patch_size)))


# ---------------------------------------------------------------------------------------------
# what each term trains
# ---------------------------------------------------------------------------------------------

def _term_gradients(cfg, batch, keep: str, monkeypatch):
    """The gradients of one term alone: the others weighted 0, the classification terms (whose weight
    is fixed at 1) made constant, so that every gradient left comes from ``keep``."""
    import adafocus.losses as L

    monkeypatch.setattr(L, "exit_cross_entropy", lambda logits, labels: logits.sum() * 0.0)
    weight = {"spatial": "train.spatial_weight", "temporal": "train.temporal_weight", "scale": "train.scale_reg",
              "center": "train.center_supervision", "temporal_mask": "train.temporal_supervision"}
    t = cfg.replace(**{**{w: 0.0 for w in weight.values()}, weight[keep]: 1.0}).train
    model, out, _ = _outputs("uni_adafocus", cfg, batch["video"])
    loss, parts = training_loss(model, out, None, batch, t)
    assert set(parts) == {"exits", "glance_frames", "focus_frames", keep} and parts["exits"] == 0
    loss.backward()
    return model


def test_the_spatial_surrogate_trains_the_spatial_policy_and_its_head_not_the_glance(batch, monkeypatch):
    model = _term_gradients(TINY, batch, "spatial", monkeypatch)
    assert _grad_sum(model.spatial_policy.parameters()) > 0 and _grad_sum(model.spatial_head.parameters()) > 0
    assert _grad_sum(model.glance.parameters()) == 0  # the paper crops the detached glance map
    assert _grad_sum(model.temporal_policy.parameters()) == 0 and _grad_sum(model.focus.parameters()) == 0


def test_policy_trains_glance_lets_the_spatial_surrogate_reach_the_glance(batch, monkeypatch):
    model = _term_gradients(TINY.replace(**{"model.policy_trains_glance": True}), batch, "spatial", monkeypatch)
    assert _grad_sum(model.glance.parameters()) > 0 and _grad_sum(model.spatial_policy.parameters()) > 0


def test_the_temporal_surrogate_trains_the_temporal_policy_and_the_glance(batch, monkeypatch):
    model = _term_gradients(TINY, batch, "temporal", monkeypatch)
    assert model.temporal_policy.logit.weight.grad.abs().sum() > 0  # (the body waits: the logit starts at 0)
    assert _grad_sum(model.glance.parameters()) > 0 and _grad_sum(model.glance_head.parameters()) > 0
    assert _grad_sum(model.spatial_policy.parameters()) == 0 and _grad_sum(model.focus.parameters()) == 0


def test_the_scale_regulariser_trains_only_the_box_scales(batch, monkeypatch):
    model = _term_gradients(TINY, batch, "scale", monkeypatch)
    assert model.spatial_policy.scale.weight.grad.abs().sum() > 0
    assert _grad_sum(model.spatial_policy.heatmap.parameters()) == 0  # positions are free
    assert _grad_sum(model.glance.parameters()) == 0 and _grad_sum(model.temporal_policy.parameters()) == 0


def test_the_hints_train_only_their_policy(batch, monkeypatch):
    hinted = TINY.replace(**{"train.recipe": "hinted"})
    model = _term_gradients(hinted, batch, "center", monkeypatch)
    assert _grad_sum(model.spatial_policy.parameters()) > 0
    assert _grad_sum(model.glance.parameters()) == 0 and _grad_sum(model.temporal_policy.parameters()) == 0
    model = _term_gradients(hinted, batch, "temporal_mask", monkeypatch)
    assert _grad_sum(model.temporal_policy.parameters()) > 0
    assert _grad_sum(model.spatial_policy.parameters()) == 0 and _grad_sum(model.focus.parameters()) == 0


def test_the_classification_terms_do_not_reach_the_policies(batch):
    """Detached boxes (the paper's crop), integer frames: the exits and per-frame terms cannot train either
    policy. (The cpu recipe's ``patch_grad`` lets them reach the spatial policy: tests/test_models.py.)"""
    detached = TINY.replace(**{"model.patch_grad": False})
    model, out, out_random = _outputs("uni_adafocus", detached, batch["video"])
    zero = {"train.spatial_weight": 0.0, "train.temporal_weight": 0.0, "train.scale_reg": 0.0}
    loss, parts = training_loss(model, out, out_random, batch, detached.replace(**zero).train)
    assert set(parts) == {"exits", "glance_frames", "focus_frames"}
    loss.backward()
    assert _grad_sum(model.spatial_policy.parameters()) == 0 and _grad_sum(model.temporal_policy.parameters()) == 0
    assert _grad_sum(model.glance.parameters()) > 0 and _grad_sum(model.focus.parameters()) > 0
    assert _grad_sum(model.classifier.parameters()) > 0


# ---------------------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------------------

def test_non_finite_loss_names_the_term(batch):
    model, out, _ = _outputs("glance_only", TINY, batch["video"])
    out.exit_logits = out.exit_logits * float("nan")
    with pytest.raises(FloatingPointError, match="loss term 'exits' is not finite"):
        training_loss(model, out, None, {"label": batch["label"]}, TINY.train)
    model, out, _ = _outputs("glance_only", TINY, batch["video"])
    out.glance_frame_logits = out.glance_frame_logits + float("inf")
    with pytest.raises(FloatingPointError, match="loss term 'glance_frames' is not finite"):
        training_loss(model, out, None, {"label": batch["label"]}, TINY.train)


def test_loss_weights_are_validated_and_part_of_the_cache_key():
    with pytest.raises(ConfigError, match="train.temporal_supervision: expected a non-negative float"):
        get_config("tiny", **{"train.temporal_supervision": -1.0})
    assert TrainConfig().temporal_supervision == 0.0 and TrainConfig().center_supervision == 0.0  # off by default
    cfg = get_config("small")
    for field in ("train.temporal_supervision", "train.center_supervision", "train.scale_reg",
                  "train.spatial_weight", "train.temporal_weight"):
        assert cfg.hash() != cfg.replace(**{field: 2.5}).hash(), field

"""The Uni-AdaFocus model and its registry (adafocus.models.adafocus, adafocus.models.registry)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from adafocus.config import get_config
from adafocus.flops import count_macs
from adafocus.models.adafocus import Glance, Plan, UniAdaFocus
from adafocus.models.registry import create_model, list_models, model_config
from adafocus.models.sampling import uniform_indices

TINY = get_config("tiny")
D = TINY.data
EXPECTED_MODELS = {"uni_adafocus", "uni_adafocus_paper_head", "adafocus_v2", "full_frame", "lowres_full_frame",
                   "glance_only", "random_patch", "center_patch", "oracle", "temporal_only", "exits_only",
                   "uni_adafocus_tsm", "uni_adafocus_tsn"}


def _batch(b: int = 3, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    T, S = D.num_frames, D.frame_size
    video = torch.rand(b, T, D.channels, S, S, generator=g)
    x0 = torch.randint(0, S - 14, (b, T, 1), generator=g).float()
    y0 = torch.randint(0, S - 14, (b, T, 1), generator=g).float()
    side = torch.randint(10, 15, (b, T, 1), generator=g).float()  # inside [box_min, box_max] = [10, 20]
    boxes = torch.cat([x0, y0, x0 + side, y0 + side], -1)
    mask = torch.rand(b, T, generator=g) < 0.5
    mask[:, 0] = True
    return {"video": video, "gt_boxes": boxes, "gt_mask": mask,
            "labels": torch.randint(0, D.num_classes, (b,), generator=g)}


def _expected_exits(m) -> int:
    if type(m) is not UniAdaFocus:  # a family member with its own classifier (Uni-AdaFocus-TSM: glance, glance + focus)
        return m.classifier.num_exits
    c = m.cfg
    if not c.exits:
        return 1
    return (c.glance_frames if c.use_glance else 0) + (c.num_focus if c.use_focus else 0)


def test_registry_lists_every_model_and_rejects_unknown_names() -> None:
    assert EXPECTED_MODELS <= set(list_models())
    with pytest.raises(ValueError, match="registered models: .*uni_adafocus"):
        create_model("adafocus_v9", TINY)


@pytest.mark.parametrize("name", sorted(EXPECTED_MODELS))
def test_every_model_builds_runs_and_trains(name: str) -> None:
    from adafocus.train import TrainStep

    torch.manual_seed(0)
    model = create_model(name, TINY).train()
    batch = _batch()
    out = model(batch["video"], gt_boxes=batch["gt_boxes"], gt_mask=batch["gt_mask"])
    B, n, K, tg = 3, D.num_classes, model.num_focus, TINY.model.glance_frames
    assert out.logits.shape == (B, n)
    assert out.exit_logits.shape == (B, _expected_exits(model), n)
    assert torch.equal(out.logits, out.exit_logits[:, -1])
    assert out.boxes.shape == (B, K, 4) and out.frame_idx.shape == (B, K)
    if K:
        assert (out.frame_idx[:, 1:] > out.frame_idx[:, :-1]).all()
    # the per-frame heads, in training only: each glance frame and each focus patch classified alone
    assert (out.glance_frame_logits is None) == (model.glance is None)
    assert (out.focus_frame_logits is None) == (model.focus is None)
    if model.glance is not None:
        assert out.glance_frame_logits.shape == (B, tg, n)
    if model.focus is not None:
        assert out.focus_frame_logits.shape == (B, K, n)
    # one training step as the trainer takes it: every part that exists learns something
    step = TrainStep(model, TINY.train)
    loss, logits, parts = step({"video": batch["video"], "label": batch["labels"], "boxes": batch["gt_boxes"],
                                "mask": batch["gt_mask"]})
    assert torch.isfinite(loss) and logits.shape == (B, n) and "exits" in parts
    loss.backward()
    for part, params in model.param_groups().items():
        if params:
            assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in params), part


def test_parameter_groups_cover_every_parameter_once() -> None:
    for name in ("uni_adafocus", "full_frame", "glance_only"):
        model = create_model(name, TINY)
        groups = model.param_groups()
        assert set(groups) == {"glance", "focus", "policy", "classifier"}
        ids = [id(p) for ps in groups.values() for p in ps]
        assert len(ids) == len(set(ids)) == len(list(model.parameters()))


def test_bad_shapes_give_clear_errors() -> None:
    model = create_model("uni_adafocus", TINY)
    video = _batch()["video"]
    with pytest.raises(ValueError, match=r"\(B, T, C, H, W\) .* expected, got .*looks like \(B, C, T, H, W\)"):
        model(video.transpose(1, 2))
    with pytest.raises(ValueError, match="5-D tensor"):
        model(video[0])
    with pytest.raises(ValueError, match="expected"):
        model(video[..., :16, :16])
    with pytest.raises(ValueError, match="gt_boxes"):
        model(video, patch_mode="oracle")
    with pytest.raises(ValueError, match="patch_mode must be one of"):
        model(video, patch_mode="everywhere")


def test_same_seed_gives_a_bit_identical_model() -> None:
    batch = _batch()
    outs = []
    for _ in range(2):
        torch.manual_seed(123)
        model = create_model("uni_adafocus", TINY).eval()
        with torch.no_grad():
            outs.append(model(batch["video"]))
    assert torch.equal(outs[0].exit_logits, outs[1].exit_logits)
    assert torch.equal(outs[0].boxes, outs[1].boxes) and torch.equal(outs[0].frame_idx, outs[1].frame_idx)


def test_eval_is_deterministic_and_skips_the_per_frame_heads() -> None:
    torch.manual_seed(0)
    model = create_model("uni_adafocus", TINY).eval()
    video = _batch()["video"]
    with torch.no_grad():
        a, b = model(video), model(video)
    assert torch.equal(a.logits, b.logits) and torch.equal(a.frame_idx, b.frame_idx)
    assert torch.equal(a.boxes, b.boxes)
    assert a.glance_frame_logits is None and a.focus_frame_logits is None  # inference does not pay for them
    assert torch.equal(a.glance_idx, model.glance_idx.expand(3, -1))  # the center of each segment
    # a fresh temporal policy is uniform, so eval takes the uniform grid
    assert torch.equal(a.frame_idx, uniform_indices(D.num_frames, TINY.model.num_focus).expand(3, -1))


def test_adafocus_v2_uses_squares_and_the_uniform_grid() -> None:
    torch.manual_seed(0)
    model = create_model("adafocus_v2", TINY).train()
    out = model(_batch()["video"])
    sides_x = out.boxes[..., 2] - out.boxes[..., 0]
    sides_y = out.boxes[..., 3] - out.boxes[..., 1]
    assert torch.allclose(sides_x, sides_y)
    assert torch.equal(out.frame_idx, uniform_indices(D.num_frames, TINY.model.num_focus).expand(3, -1))
    assert model.temporal_policy is None and out.exit_logits.shape[1] == 1
    # AdaFocusV2 trains the policy straight through the pixel crop: the final loss reaches it
    out.logits.sum().backward()
    assert model.spatial_policy.scale.weight.grad.abs().sum() > 0


def test_oracle_crops_the_true_boxes_at_informative_frames() -> None:
    model = create_model("oracle", TINY).eval()
    batch = _batch()
    out = model(batch["video"], gt_boxes=batch["gt_boxes"], gt_mask=batch["gt_mask"])
    rows = torch.arange(3)[:, None]
    assert torch.allclose(out.boxes, batch["gt_boxes"][rows, out.frame_idx])  # admissible boxes: untouched
    informative = batch["gt_mask"][rows, out.frame_idx]
    enough = batch["gt_mask"].sum(1) >= model.num_focus
    assert informative[enough].all()


def test_the_classifier_loss_never_reaches_the_policies() -> None:
    """The paper's Uni-AdaFocus (recipe ``paper``): patches cropped with detached boxes at integer frames,
    so the policies learn only through their surrogates (tests/test_losses.py)."""
    torch.manual_seed(0)
    model = create_model("uni_adafocus", TINY.replace(**{"train.recipe": "paper"})).train()
    assert not model.cfg.patch_grad and not model.cfg.policy_trains_glance
    batch = _batch()
    out = model(batch["video"])
    (F.cross_entropy(out.logits, batch["labels"]) + out.glance_frame_logits.sum()
     + out.focus_frame_logits.sum()).backward()
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in model.param_groups()["policy"])
    assert out.plan.boxes.requires_grad and not out.boxes.requires_grad  # live in the plan, detached outside
    assert out.plan.weights.requires_grad


def test_patch_grad_lets_the_classifier_loss_reach_the_spatial_policy() -> None:
    """AdaFocusV2's end-to-end crop (``patch_grad``): gradients through the pixel crop into the boxes."""
    torch.manual_seed(0)
    model = create_model("uni_adafocus", TINY.replace(**{"model.patch_grad": True})).train()
    batch = _batch()
    F.cross_entropy(model(batch["video"]).logits, batch["labels"]).backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.spatial_policy.parameters())
    grad = model.temporal_policy.logit.weight.grad
    assert grad is None or grad.abs().sum() == 0  # frames stay integer: no gradient to w


def test_patch_and_frame_modes_can_be_overridden_per_call() -> None:
    torch.manual_seed(0)
    model = create_model("uni_adafocus", TINY).eval()
    video = _batch()["video"]
    full = model(video, patch_mode="full")
    assert torch.equal(full.boxes, torch.tensor([0.0, 0.0, D.frame_size, D.frame_size]).expand(3, 3, 4))
    rnd = model(video, patch_mode="random", frame_mode="uniform")
    assert rnd.glance_boxes is None and rnd.temporal_weights is None
    assert not torch.equal(rnd.boxes, model(video, patch_mode="random").boxes)


def test_glance_map_size_matches_the_network() -> None:
    for width, size, stride in ((0.25, 16, 8), (0.5, 32, 8), (0.5, 32, 16), (0.25, 24, 4), (0.25, 64, 32)):
        g = Glance(width, 3, stride, 32).eval()
        maps = g(torch.rand(1, 3, size, size))
        assert maps.shape[1] == g.feature_dim == 32
        assert maps.shape[-1] == g.map_size(size) == -(-size // stride)


def test_variants_use_the_documented_settings() -> None:
    full = model_config("full_frame", TINY)
    assert not full.use_glance and full.patch_mode == "full" and full.patch_size == D.frame_size
    assert full.num_focus == TINY.model.full_frame_frames
    assert model_config("lowres_full_frame", TINY).patch_size == TINY.model.patch_size
    assert model_config("uni_adafocus_paper_head", TINY).location_head == "conv"
    assert model_config("exits_only", TINY).exits and not model_config("exits_only", TINY).use_glance


def test_full_size_model_costs_27_gmacs() -> None:
    """docs/design.md, "Costs": 16 glance frames + 16 patches of 128 px + policies + classifier = 27.23 GMACs."""
    cfg = get_config("full")
    model = create_model("uni_adafocus_paper_head", cfg).eval()
    macs = count_macs(model, torch.rand(1, cfg.data.num_frames, 3, 224, 224))
    assert abs(macs / 1e9 - 27.23) / 27.23 < 0.02


def test_stage_methods_step_by_step_reproduce_the_forward() -> None:
    """The early-exit path: glance steps, then one patch per step, with the carried classifier state."""
    torch.manual_seed(0)
    model = create_model("uni_adafocus", TINY).eval()
    video = _batch()["video"]
    with torch.no_grad():
        ref = model(video).exit_logits
        g = model.glance_features(video)
        state, steps = model.classifier.init_state(), []
        for t in range(g.feats.shape[1]):
            logits, state = model.classifier.glance_step(g.feats[:, t], state)
            steps.append(logits)
        idx = model.select_frames(3, "policy", model.temporal_weights(g.feats))
        boxes = model.select_boxes("policy", idx, model.spatial_actions(g.maps))
        for k in range(model.num_focus):
            f = model.focus_features(video, boxes[:, k:k + 1], idx[:, k:k + 1])
            logits, state = model.classifier.focus_step(f[:, 0], state)
            steps.append(logits)
    assert torch.allclose(torch.stack(steps, 1), ref, atol=1e-5)


# ---------------------------------------------------------------------------------------------
# the public steps: plan, run, decide, the random-patch plan
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["uni_adafocus", "adafocus_v2", "random_patch", "full_frame", "glance_only"])
def test_forward_is_run_of_plan(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name, TINY).eval()
    video = _batch()["video"]
    with torch.no_grad():
        ref = model(video)
        if name == "random_patch":  # random boxes: the same draws
            torch.manual_seed(1)
            ref = model(video)
            torch.manual_seed(1)
        plan = model.plan(video)
        out = model.run(video, plan)
    assert torch.equal(out.exit_logits, ref.exit_logits) and torch.equal(out.frame_idx, ref.frame_idx)
    assert torch.equal(out.boxes, ref.boxes) and out.plan is plan
    assert isinstance(model.classify(plan.glance.feats if plan.glance else None,
                                     model.focus_features(video, plan.boxes, plan.frame_idx,
                                                          full=plan.patch_mode == "full")
                                     if model.focus is not None else None), torch.Tensor)


def test_decide_on_a_glance_already_taken_is_the_plan() -> None:
    torch.manual_seed(0)
    model = create_model("uni_adafocus", TINY).eval()
    video = _batch()["video"]
    with torch.no_grad():
        plan = model.plan(video)
        again = model.decide(model.glance_features(video), video.shape[0])
    assert isinstance(plan, Plan) and (plan.patch_mode, plan.frame_mode) == ("policy", "policy")
    for field in ("frame_idx", "boxes", "actions", "glance_boxes", "weights"):
        assert torch.equal(getattr(plan, field), getattr(again, field)), field
    tg = TINY.model.glance_frames
    assert plan.actions.shape == (3, tg, 4) and plan.weights.shape == (3, tg)
    sub = plan.select(torch.tensor([True, False, True]))
    assert torch.equal(sub.boxes, plan.boxes[[0, 2]]) and torch.equal(sub.glance.maps, plan.glance.maps[[0, 2]])


def test_run_with_fewer_steps_gives_the_first_exits() -> None:
    torch.manual_seed(0)
    model = create_model("uni_adafocus", TINY).eval()
    video = _batch()["video"]
    tg, K = TINY.model.glance_frames, model.num_focus
    with torch.no_grad():
        plan = model.plan(video)
        full = model.run(video, plan)
        for k in range(1, K + 1):
            part = model.run(video, plan, steps=k)
            assert part.exit_logits.shape == (3, tg + k, D.num_classes)
            assert torch.allclose(part.exit_logits, full.exit_logits[:, :tg + k], atol=1e-5)
            assert torch.equal(part.logits, part.exit_logits[:, -1])
    for bad in (0, K + 1):
        with pytest.raises(ValueError, match=rf"steps must be in \[1, {K}\]"):
            model.run(video, plan, steps=bad)


def test_the_random_patch_plan_keeps_the_frames_and_draws_boxes_of_the_patch_size() -> None:
    torch.manual_seed(0)
    model = create_model("uni_adafocus", TINY).train()
    video = _batch()["video"]
    plan = model.plan(video)
    rnd = model.random_patch_plan(plan)
    P, S = TINY.model.patch_size, D.frame_size
    assert rnd.patch_mode == "random" and rnd.frame_mode == plan.frame_mode
    assert torch.equal(rnd.frame_idx, plan.frame_idx) and rnd.glance is plan.glance
    sides = rnd.boxes[..., 2:] - rnd.boxes[..., :2]
    assert torch.allclose(sides, torch.full_like(sides, float(P)))  # P is in [box_min, box_max] on tiny
    assert (rnd.boxes >= 0).all() and (rnd.boxes <= S + 1e-5).all()
    assert not torch.equal(rnd.boxes, model.random_patch_plan(plan).boxes)  # new positions every call
    out = model.run(video, rnd)
    assert out.plan.patch_mode == "random" and out.exit_logits.shape[1] == _expected_exits(model)
    small = create_model("uni_adafocus", TINY.replace(**{"model.patch_size": 8}))  # P below box_min: box_min
    b = small.random_patch_plan(small.plan(video)).boxes
    side = b[..., 2] - b[..., 0]
    assert torch.allclose(side, torch.full_like(side, float(TINY.model.box_min)))


# ---------------------------------------------------------------------------------------------
# the glance: which frames, how pooled
# ---------------------------------------------------------------------------------------------

def test_glance_frames_are_the_segment_centers_at_test_and_random_in_training() -> None:
    torch.manual_seed(0)
    cfg = TINY.replace(**{"data.num_frames": 16, "model.glance_frames": 4})
    model = create_model("glance_only", cfg)
    video = torch.rand(64, 16, D.channels, D.frame_size, D.frame_size)
    centers = uniform_indices(16, 4)
    assert torch.equal(model.eval().glance_positions(64), centers.expand(64, 4))
    pos = model.train().glance_positions(64)  # glance_jitter is on in every recipe
    assert model.cfg.glance_jitter
    assert ((pos >= torch.arange(4) * 4) & (pos < torch.arange(4) * 4 + 4)).all()  # one frame per segment
    assert len({tuple(r) for r in pos.tolist()}) > 10  # each clip its own draw
    g = model.glance_features(video)
    assert g.positions.shape == (64, 4) and g.maps.shape[:2] == (64, 4)
    off = create_model("glance_only", cfg.replace(**{"model.glance_jitter": False})).train()
    assert torch.equal(off.glance_positions(64), centers.expand(64, 4))


def test_glance_features_at_given_frames_see_those_frames() -> None:
    torch.manual_seed(0)
    model = create_model("glance_only", TINY).eval()
    video = _batch()["video"]
    frames = torch.tensor([[0, 1, 2, 3, 4, 5, 6, 7], [7, 6, 5, 4, 3, 2, 1, 0], [2, 2, 2, 2, 2, 2, 2, 2]])
    with torch.no_grad():
        g = model.glance_features(video, frames)
        shared = model.glance_features(video, torch.arange(8))
    assert torch.equal(g.positions, frames) and torch.equal(shared.positions, torch.arange(8).expand(3, 8))
    assert torch.allclose(g.feats[0], shared.feats[0], atol=1e-6)  # the same frames in the same order
    assert torch.allclose(g.feats[1], shared.feats[1].flip(0), atol=1e-6)  # reversed frames, reversed features
    assert torch.allclose(g.feats[2], g.feats[2, :1].expand(8, -1), atol=1e-6)  # one frame eight times


@pytest.mark.parametrize("pool", ["max", "avg"])
def test_glance_pool_makes_the_frame_features(pool: str) -> None:
    torch.manual_seed(0)
    model = create_model("glance_only", TINY.replace(**{"model.glance_pool": pool})).eval()
    with torch.no_grad():
        g = model.glance_features(_batch()["video"])
    ref = g.maps.amax(dim=(-2, -1)) if pool == "max" else g.maps.mean(dim=(-2, -1))
    assert torch.equal(g.feats, ref)


# ---------------------------------------------------------------------------------------------
# ground truth: read by the oracle modes only
# ---------------------------------------------------------------------------------------------

def test_only_the_oracle_needs_ground_truth() -> None:
    needs = {name for name in list_models() if create_model(name, TINY).needs_ground_truth}
    assert needs == {"oracle"}
    model = create_model("uni_adafocus", TINY)
    assert not model.needs_ground_truth


@pytest.mark.parametrize("name", sorted(EXPECTED_MODELS - {"oracle"}))
def test_models_without_oracle_modes_ignore_the_ground_truth(name: str) -> None:
    """NaN boxes and an inverted mask change nothing, in training (with its random draws) or at test."""
    batch = _batch()
    nan_boxes = torch.full_like(batch["gt_boxes"], float("nan"))
    torch.manual_seed(0)
    model = create_model(name, TINY)
    for mode in ("train", "eval"):
        getattr(model, mode)()
        torch.manual_seed(5)
        a = model(batch["video"])
        torch.manual_seed(5)
        b = model(batch["video"], gt_boxes=nan_boxes, gt_mask=~batch["gt_mask"])
        assert torch.equal(a.exit_logits, b.exit_logits) and torch.equal(a.boxes, b.boxes), mode

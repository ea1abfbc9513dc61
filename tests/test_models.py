"""The Uni-AdaFocus model and its registry (adafocus.models.adafocus, adafocus.models.registry)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from adafocus.config import get_config
from adafocus.flops import count_macs
from adafocus.models.adafocus import Glance, UniAdaFocus
from adafocus.models.registry import create_model, list_models, model_config
from adafocus.models.sampling import uniform_indices

TINY = get_config("tiny")
D = TINY.data
EXPECTED_MODELS = {"uni_adafocus", "uni_adafocus_paper_head", "adafocus_v2", "full_frame", "lowres_full_frame",
                   "glance_only", "random_patch", "center_patch", "oracle", "temporal_only", "exits_only"}


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
    torch.manual_seed(0)
    model = create_model(name, TINY).train()
    batch = _batch()
    out = model(batch["video"], gt_boxes=batch["gt_boxes"], gt_mask=batch["gt_mask"])
    B, n, K = 3, D.num_classes, model.num_focus
    assert out.logits.shape == (B, n)
    assert out.exit_logits.shape == (B, _expected_exits(model), n)
    assert torch.equal(out.logits, out.exit_logits[:, -1])
    assert out.boxes.shape == (B, K, 4) and out.frame_idx.shape == (B, K)
    if K:
        assert (out.frame_idx[:, 1:] > out.frame_idx[:, :-1]).all()
    labels = batch["labels"]
    loss = F.cross_entropy(out.logits, labels)
    for aux in (out.glance_logits, out.focus_logits, out.spatial_logits, out.temporal_logits):
        if aux is not None:
            assert aux.shape == (B, n)
            loss = loss + F.cross_entropy(aux, labels)
    loss.backward()
    assert torch.isfinite(loss)
    for part, params in model.param_groups().items():  # every part that exists learns something
        if params:
            assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in params), part
    # the surrogates exist exactly when the policies are used
    assert (out.spatial_logits is not None) == (model.cfg.patch_mode == "policy" and model.spatial_policy is not None)
    assert (out.temporal_logits is not None) == (model.cfg.frame_mode == "policy" and model.temporal_policy is not None)


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


def test_eval_is_deterministic_and_skips_the_surrogates() -> None:
    torch.manual_seed(0)
    model = create_model("uni_adafocus", TINY).eval()
    video = _batch()["video"]
    with torch.no_grad():
        a, b = model(video), model(video)
    assert torch.equal(a.logits, b.logits) and torch.equal(a.frame_idx, b.frame_idx)
    assert a.spatial_logits is None and a.temporal_logits is None
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


PAPER_GRADIENTS = {"model.patch_grad": False, "model.policy_trains_glance": False}


def test_policies_learn_only_through_their_surrogates() -> None:
    """The paper's Uni-AdaFocus: crops with detached boxes, the policy reads detached glance maps."""
    torch.manual_seed(0)
    model = create_model("uni_adafocus", TINY.replace(**PAPER_GRADIENTS)).train()
    batch = _batch()
    out = model(batch["video"])
    F.cross_entropy(out.logits, batch["labels"]).backward(retain_graph=True)
    policy_grads = [p.grad for p in model.param_groups()["policy"]]
    assert all(g is None or g.abs().sum() == 0 for g in policy_grads)  # detached boxes and frames
    F.cross_entropy(out.spatial_logits, batch["labels"]).backward(retain_graph=True)
    assert model.spatial_policy.scale.weight.grad.abs().sum() > 0
    F.cross_entropy(out.temporal_logits, batch["labels"]).backward()
    assert model.temporal_policy.logit.weight.grad.abs().sum() > 0  # (the body waits: the logit starts at 0)


def test_patch_grad_lets_the_classifier_loss_reach_the_spatial_policy() -> None:
    """The CPU default (AdaFocusV2-style): gradients through the pixel crop into the boxes and glance."""
    torch.manual_seed(0)
    model = create_model("uni_adafocus", TINY).train()
    assert model.cfg.patch_grad and model.cfg.policy_trains_glance
    batch = _batch()
    F.cross_entropy(model(batch["video"]).logits, batch["labels"]).backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.spatial_policy.parameters())
    assert model.temporal_policy.logit.weight.grad is None or model.temporal_policy.logit.weight.grad.abs().sum() == 0


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
    """DESIGN.md 2: 16 glance frames + 16 patches of 128 px + policies + classifier = 27.23 GMACs."""
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

"""X3D and Uni-AdaFocus-X3D (adafocus.models.x3d): published costs, shapes, one box per cube, training, bad input."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from adafocus.config import ConfigError, get_config
from adafocus.flops import count_macs, model_cost
from adafocus.models.exits import exiting_forward
from adafocus.models.patches import crop_patches
from adafocus.models.registry import create_model, model_config
from adafocus.models.x3d import X3D_INPUTS, X3D_SIZES, UniAdaFocusX3D, x3d

TINY = get_config("tiny")
D = TINY.data
KINETICS_CLASSES = 400  # the published costs include the 2048 -> 400 projection

# PySlowFast's model zoo / the X3D paper (Table 3): GFLOPs = GMACs of one view at the training geometry
PYSLOWFAST_GMACS = {"XS": 0.60, "S": 1.96, "M": 4.73, "L": 18.37}
# pytorchvideo's model zoo reports other numbers for the same networks; the test below pins why
PYTORCHVIDEO_GFLOPS = {"XS": 0.91, "S": 2.96, "M": 6.72, "L": 26.64}
TEST_SIDE = {"XS": 182, "S": 182, "M": 256, "L": 356}  # the side of the test-time crop (the zoo's test views)
FVCORE_TRAIN_BN_FLOPS = 5  # fvcore's batch-norm formula in training mode with an affine: 5 FLOPs per input element


def _classifier(size: str) -> nn.Module:
    with torch.device("meta"):  # counted, never computed: the paper's geometries cost seconds otherwise
        return nn.Sequential(x3d(size), nn.Linear(X3D_SIZES[size].head_dim, KINETICS_CLASSES))


def _count(net: nn.Module, frames: int, side: int) -> tuple[float, float]:
    """(GMACs, batch-norm input elements in 10^9) of one view ``(1, 3, frames, side, side)``."""
    seen = []
    hooks = [m.register_forward_hook(lambda m, i, o: seen.append(i[0].numel()))
             for m in net.modules() if isinstance(m, nn.BatchNorm3d)]
    macs = count_macs(net, torch.zeros(1, 3, frames, side, side, device="meta"))
    for h in hooks:
        h.remove()
    return macs / 1e9, sum(seen) / 1e9


SLOW_L = pytest.param("L", marks=pytest.mark.slow)  # the deepest network at 312²: seconds even on the meta device


@pytest.mark.parametrize("size", ["XS", "S", "M", SLOW_L])
def test_costs_at_the_published_geometries_match_pyslowfast_within_5_percent(size: str) -> None:
    frames, side = X3D_INPUTS[size]
    gmacs, _ = _count(_classifier(size), frames, side)
    assert gmacs == pytest.approx(PYSLOWFAST_GMACS[size], rel=0.05)
    assert gmacs == pytest.approx(PYSLOWFAST_GMACS[size], abs=0.01)  # in fact to the published digits


@pytest.mark.parametrize("size", ["XS", "S", pytest.param("M", marks=pytest.mark.slow), SLOW_L])
def test_pytorchvideo_counts_the_test_crop_and_five_flops_per_batch_norm_element(size: str) -> None:
    """pytorchvideo's zoo numbers are the same networks at the test-time crop (182 / 182 / 256 / 356) counted by
    fvcore with batch norm in training mode (5 FLOPs per element): MACs alone at that crop are ~8% short."""
    frames, _ = X3D_INPUTS[size]
    gmacs, bn = _count(_classifier(size), frames, TEST_SIDE[size])
    assert gmacs + FVCORE_TRAIN_BN_FLOPS * bn == pytest.approx(PYTORCHVIDEO_GFLOPS[size], rel=0.005)
    assert gmacs < 0.95 * PYTORCHVIDEO_GFLOPS[size]  # the crop alone does not explain it


def test_the_published_architecture_widths_depths_and_parameters() -> None:
    m, large = X3D_SIZES["M"], X3D_SIZES["L"]
    assert m.widths == (24, 48, 96, 192) and m.depths == (3, 5, 11, 7) and large.depths == (5, 10, 25, 15)
    net = x3d("M")
    params = sum(p.numel() for p in net.parameters()) + 2048 * KINETICS_CLASSES + KINETICS_CLASSES
    assert params / 1e6 == pytest.approx(3.79, abs=0.02)  # pytorchvideo's zoo: 3.79 M (X3D-XS/S/M)
    assert net.feature_dim == 2048 and net.stride == 32


def test_x3d_maps_a_clip_to_features_and_rejects_frames_first() -> None:
    net = x3d("cpu").eval()
    x = torch.rand(2, 3, 4, 32, 32)  # (N, C, T, H, W)
    assert net(x).shape == (2, net.feature_dim)
    assert net.forward_features(x).shape == (2, net.map_channels, 4, 1, 1)
    with pytest.raises(ValueError, match=r"expected a clip \(N, C, T, H, W\).*looks like \(N, T, C, H, W\)"):
        net(x.transpose(1, 2))
    with pytest.raises(ValueError, match="size must be one of"):
        x3d("XXL")


# ---------------------------------------------------------------------------------------------
# Uni-AdaFocus-X3D
# ---------------------------------------------------------------------------------------------

def _video(b: int = 3, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, D.num_frames, D.channels, D.frame_size, D.frame_size, generator=g)


def test_one_box_per_clip_one_cube_one_prediction() -> None:
    torch.manual_seed(0)
    model = create_model("uni_adafocus_x3d", TINY).train()
    assert isinstance(model, UniAdaFocusX3D)
    B, n, K, tg = 3, D.num_classes, TINY.model.num_focus, TINY.model.glance_frames
    out = model(_video())
    assert out.logits.shape == (B, n) and out.exit_logits.shape == (B, 1, n)
    assert out.glance_frame_logits.shape == (B, tg, n) and out.focus_frame_logits.shape == (B, 1, n)
    assert out.boxes.shape == (B, K, 4) and torch.equal(out.boxes, out.boxes[:, :1].expand(-1, K, -1))
    assert torch.equal(out.glance_boxes, out.glance_boxes[:, :1].expand(-1, tg, -1))
    assert (out.frame_idx[:, 1:] > out.frame_idx[:, :-1]).all()  # K distinct frames, in order
    assert out.plan.glance.maps.shape[:2] == (B, tg)


def test_the_cube_is_the_box_cropped_from_each_frame() -> None:
    """One crop of the K frames stacked as channels == crop_patches frame by frame with the same box."""
    torch.manual_seed(0)
    model = create_model("uni_adafocus_x3d", TINY).eval()
    video = _video()
    with torch.no_grad():
        plan = model.plan(video)
        seen = {}
        model.focus.register_forward_pre_hook(lambda m, args: seen.update(x=args[0]))
        model.run(video, plan)
    frames = video[torch.arange(3)[:, None], plan.frame_idx]  # (B, K, C, H, W)
    ref = crop_patches(frames, plan.boxes, TINY.model.patch_size).transpose(1, 2)  # (B, C, K, P, P)
    torch.testing.assert_close(seen["x"], ref, atol=1e-5, rtol=1e-5)


def test_costs_glance_policy_cube_and_the_full_clip_baseline() -> None:
    cfg = get_config("small")
    uni, full = model_cost("uni_adafocus_x3d", cfg), model_cost("x3d_full", cfg)
    m = cfg.model
    with torch.no_grad():
        cube = count_macs(x3d(m.focus_x3d).eval(), torch.zeros(1, 3, m.num_focus, m.patch_size, m.patch_size))
        clip = count_macs(x3d(m.focus_x3d).eval(), torch.zeros(1, 3, m.full_frame_frames, 64, 64))
    assert uni["components"]["focus"] == pytest.approx(cube / 1e9) and full["components"]["focus"] == pytest.approx(
        clip / 1e9)
    assert {"glance", "spatial_policy", "temporal_policy", "classifier", "patch_extraction"} <= set(uni["components"])
    assert full["total_gmacs"] >= 4 * uni["total_gmacs"]  # the goal of issue 15: >= 4x fewer MACs


def test_a_training_step_reaches_every_part_and_the_crop_carries_the_classifier_to_the_boxes() -> None:
    from adafocus.train import TrainStep

    for name in ("uni_adafocus_x3d", "x3d_full"):
        torch.manual_seed(0)
        model = create_model(name, TINY).train()
        step = TrainStep(model, TINY.train)
        loss, logits, parts = step({"video": _video(), "label": torch.tensor([0, 1, 2])})
        assert torch.isfinite(loss) and logits.shape == (3, D.num_classes)
        expected = {"exits", "focus_frames"} | ({"glance_frames", "spatial", "temporal", "scale"}
                                                if name == "uni_adafocus_x3d" else set())
        assert set(parts) == expected, name
        loss.backward()
        for part, params in model.param_groups().items():
            if params:
                assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in params), (name, part)
    # the cpu recipe's end-to-end crop: the exit's loss alone moves the spatial policy; without it, nothing does
    for grad in (True, False):
        torch.manual_seed(0)
        model = create_model("uni_adafocus_x3d", TINY.replace(**{"model.patch_grad": grad})).train()
        nn.functional.cross_entropy(model(_video()).logits, torch.tensor([0, 1, 2])).backward()
        reached = any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.spatial_policy.parameters())
        assert reached == grad


def test_the_random_patch_branch_draws_one_box_of_side_p_per_clip() -> None:
    torch.manual_seed(0)
    model = create_model("uni_adafocus_x3d", TINY).train()
    plan = model.random_patch_plan(model.plan(_video()))
    b, P = plan.boxes, TINY.model.patch_size
    assert plan.patch_mode == "random" and torch.equal(b, b[:, :1].expand_as(b))
    torch.testing.assert_close(b[..., 2] - b[..., 0], torch.full(b.shape[:2], float(P)))


def test_bad_input_layouts_deep_cubes_and_exits_give_clear_errors() -> None:
    model = create_model("uni_adafocus_x3d", TINY).eval()
    video = _video()
    with pytest.raises(ValueError, match=r"\(B, T, C, H, W\) .* expected, got .*looks like \(B, C, T, H, W\)"):
        model(video.transpose(1, 2))  # (B, C, T, H, W) given where (B, T, C, H, W) is expected
    with pytest.raises(ValueError, match="looks like \\(N, T, C, H, W\\)"):
        model.focus(video[:, :4])  # the reverse: frames first where the 3-D network wants channels first
    with pytest.raises(ConfigError, match="model.num_focus: expected K <= the clip's T = 8"):
        get_config("tiny", **{"model.num_focus": 9})
    m = model_config("uni_adafocus_x3d", TINY)
    from dataclasses import replace
    with pytest.raises(ValueError, match="cube of 8 frames is deeper than the clip's T = 4 frames"):
        UniAdaFocusX3D(replace(m, num_focus=8), D.frame_size, 4, D.channels)
    with pytest.raises(ValueError, match="model.exits must be False"):
        UniAdaFocusX3D(replace(m, exits=True), D.frame_size, D.num_frames, D.channels)
    with pytest.raises(ValueError, match="no oracle for a space-time cube"):
        model(video, patch_mode="oracle")
    with torch.no_grad():
        plan = model.plan(video)
        with pytest.raises(ValueError, match="steps must be None"):
            model.run(video, plan, steps=1)
        boxes = plan.boxes.clone()
        boxes[:, -1] += 1.0
        with pytest.raises(ValueError, match="one box for all its"):
            model.focus_features(video, boxes, plan.frame_idx)
    with pytest.raises(ValueError, match="no step-by-step early exit"):
        exiting_forward(model, video, torch.zeros(1))
    with pytest.raises(ConfigError, match="model.focus_x3d: expected one of"):
        get_config("tiny", **{"model.focus_x3d": "XXL"})


def test_the_x3ds_pretrain_on_static_clips_of_the_image_set_and_train_loads_them(tmp_path) -> None:
    from adafocus.pretrain import SHARED_PREFIXES, load_shared_backbones
    from adafocus.pretrain_x3d import X3DBackbonePretrainer, pretrained_x3d_backbones
    from adafocus.train import backbone_pretraining

    cfg = get_config("tiny", **{"pretrain.images": 96, "pretrain.epochs": 1})
    net = X3DBackbonePretrainer(cfg).eval()
    g, f = net(torch.rand(2, D.channels, cfg.pretrain.image_size, cfg.pretrain.image_size))
    assert g.shape == f.shape == (2, D.num_classes)
    weights = pretrained_x3d_backbones(cfg, progress=False, checkpoint_dir=tmp_path)
    model = create_model("uni_adafocus_x3d", cfg)
    own = {k: v for k, v in model.state_dict().items() if k.startswith(SHARED_PREFIXES)}
    assert set(weights) == set(own) and all(weights[k].shape == own[k].shape for k in own)
    assert load_shared_backbones(model, weights) == len(own)
    assert torch.equal(model.state_dict()["focus.stem.0.weight"], weights["focus.stem.0.weight"])
    again = pretrained_x3d_backbones(cfg, progress=False, checkpoint_dir=tmp_path)  # cached: the same tensors
    assert all(torch.equal(again[k], weights[k]) for k in weights)
    # the caller's random stream is the same whether the pretraining runs now or comes from the cache (so a model
    # trained from an empty cache gets the numbers of one trained after the pretraining)
    draws = []
    for directory in (tmp_path / "empty", tmp_path):  # trains now, then loads
        torch.manual_seed(7)
        pretrained_x3d_backbones(cfg, progress=False, checkpoint_dir=directory)
        draws.append(torch.rand(4))
    torch.manual_seed(7)
    assert torch.equal(draws[0], draws[1]) and torch.equal(draws[0], torch.rand(4))
    assert backbone_pretraining(model) is pretrained_x3d_backbones  # what adafocus.train.train loads

"""Uni-AdaFocus-TSM and its shift-free twin (adafocus.models.tsm) on the motion-dependent benchmark
(``data.motion = "direction"``): shapes, the shift, costs, a training step, bad input, and the data knob's
order-blindness."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from adafocus.config import ConfigError, ModelConfig, get_config
from adafocus.data import synthetic
from adafocus.data.synthetic import class_names, generate_clip, generate_clips, label_parts
from adafocus.flops import count_macs, model_cost
from adafocus.models.backbones import BasicBlock, Bottleneck, InvertedResidual, mobilenet_v2, resnet, set_temporal_shift
from adafocus.models.registry import create_model, model_config
from adafocus.models.tsm import ClipSpatialPolicy, UniAdaFocusTSM
from adafocus.train import TrainStep

MOTION = get_config("tiny", **{"data.motion": "direction"})
D = MOTION.data
NAMES = ("uni_adafocus_tsm", "uni_adafocus_tsn")


def _video(b: int = 3, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, D.num_frames, D.channels, D.frame_size, D.frame_size, generator=g)


def _wake_residual_branches(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random non-zero gammas on every batch norm: residual branches start as zero (identity blocks), where the
    shift would have nothing to move; a trained network's do not."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.weight.data = 0.5 + torch.rand(m.weight.shape, generator=g)
    return model


# ---------------------------------------------------------------------------------------------
# the models: registered, shapes, one box per clip, K of the candidates
# ---------------------------------------------------------------------------------------------

def test_both_are_registered_with_the_tsm_class_and_differ_only_in_the_shift():
    tsm, tsn = (model_config(n, MOTION) for n in NAMES)
    assert tsm.glance_tsm and tsm.focus_tsm and not tsn.glance_tsm and not tsn.focus_tsm
    assert dataclasses.replace(tsm, glance_tsm=False, focus_tsm=False) == tsn
    # the official 3K candidates, at most the clip's T
    assert tsm.focus_candidates == min(3 * MOTION.model.num_focus, D.num_frames)
    small = get_config("small_motion")
    assert model_config("uni_adafocus_tsm", small).focus_candidates == 12  # 3 x 4 of 16 frames
    for name in NAMES:
        assert type(create_model(name, MOTION)) is UniAdaFocusTSM


@pytest.mark.parametrize("name", NAMES)
def test_shapes_one_box_per_clip_and_frames_from_the_candidates(name):
    torch.manual_seed(0)
    cfg = get_config("tiny", **{"data.motion": "direction", "data.num_frames": 12, "model.focus_candidates": 6})
    model = create_model(name, cfg)
    video = torch.rand(3, 12, 3, 32, 32)
    B, K, n, tg = 3, cfg.model.num_focus, cfg.model.num_classes, cfg.model.glance_frames
    for training in (True, False):
        model.train(training)
        out = model(video)
        assert out.logits.shape == (B, n) and out.exit_logits.shape == (B, 2, n)
        assert torch.equal(out.logits, out.exit_logits[:, -1])
        assert out.frame_idx.shape == (B, K) and (out.frame_idx[:, 1:] > out.frame_idx[:, :-1]).all()
        # every focus frame is one of the 6 candidates: one per segment of 2 frames
        segments = out.frame_idx // 2
        assert (segments[:, 1:] > segments[:, :-1]).all() and out.frame_idx.max() < 12
        if not training:
            assert set(out.frame_idx.flatten().tolist()) <= {1, 3, 5, 7, 9, 11}  # the segments' centers
        # one box for the whole clip, at every focus frame and every glance frame
        assert out.boxes.shape == (B, K, 4) and torch.equal(out.boxes, out.boxes[:, :1].expand(-1, K, -1))
        assert torch.equal(out.glance_boxes, out.glance_boxes[:, :1].expand(-1, tg, -1))
        assert (out.glance_frame_logits is None) == (not training)
        if training:
            assert out.glance_frame_logits.shape == (B, tg, n) and out.focus_frame_logits.shape == (B, K, n)


def test_the_answer_is_glance_logits_plus_focus_logits():
    torch.manual_seed(0)
    model = _wake_residual_branches(create_model("uni_adafocus_tsm", MOTION)).train()
    out = model(_video())
    glance = out.glance_frame_logits.mean(1)
    final = glance + out.focus_frame_logits.mean(1)
    assert torch.allclose(out.exit_logits[:, 0], glance, atol=1e-6)
    assert torch.allclose(out.logits, final, atol=1e-6)
    one_exit = create_model("uni_adafocus_tsm", MOTION.replace(**{"model.exits": False}))
    assert one_exit(_video()).exit_logits.shape == (3, 1, D.num_classes)


def test_the_clip_policy_reads_every_glance_frame():
    torch.manual_seed(0)
    policy = ClipSpatialPolicy(8, 4, 8, (4, 4), 32, 10, 20).eval()
    nn.init.normal_(policy.heatmap.weight)  # a heatmap that depends on the input
    maps = torch.rand(2, 4, 8, 4, 4)
    a = policy(maps)
    assert a.shape == (2, 4) and ((a >= 0) & (a <= 1)).all()
    for t in range(4):  # changing any one glance frame moves the clip's box
        other = maps.clone()
        other[:, t] = torch.rand(2, 8, 4, 4)
        assert not torch.allclose(policy(other), a)
    with pytest.raises(ValueError, match=r"\(B, T_g, C_g, h, w\) = \(B, 4, 8, h, w\)"):
        policy(torch.rand(2, 3, 8, 4, 4))


# ---------------------------------------------------------------------------------------------
# the temporal shift: mixes neighbouring frames of one clip, never two clips, costs nothing
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("net", ["resnet", "mobilenet"])
def test_the_shift_mixes_neighbouring_frames_and_only_with_tsm(net):
    torch.manual_seed(0)
    build = {"resnet": lambda: resnet(block="basic", layers=(1, 1), base_width=8, stem_stride=2),
             "mobilenet": lambda: mobilenet_v2(0.25, num_stages=3)}[net]
    T = 4
    x = torch.rand(2 * T, 3, 16, 16)  # two clips of four frames, time-major within a clip
    moved = x.clone()
    moved[0] = torch.rand(3, 16, 16)  # change frame 0 of clip 0
    for shift in (False, True):
        model = _wake_residual_branches(build()).eval()
        assert (set_temporal_shift(model, enabled=shift, segments=T) > 0) == shift
        with torch.no_grad():
            diff = (model(moved) - model(x)).abs().amax(dim=1)  # (2T,) per frame
        assert diff[0] > 0  # the frame itself
        assert (diff[T:] == 0).all()  # clip 1 never sees clip 0
        if shift:
            assert diff[1] > 0  # its neighbour sees it
        else:
            assert (diff[1:T] == 0).all()  # TSN: every frame alone


def test_set_temporal_shift_switches_every_shiftable_block():
    r = resnet(block="basic", layers=(2, 1), base_width=8, stem_stride=2)
    blocks = [m for m in r.modules() if isinstance(m, (BasicBlock, Bottleneck))]
    assert set_temporal_shift(r, enabled=True, segments=5) == len(blocks) == 3
    assert all(b.tsm and b.tsm_segments == 5 for b in blocks)
    mb = mobilenet_v2(0.25)
    skips = [m for m in mb.modules() if isinstance(m, InvertedResidual) and m.use_residual]
    assert set_temporal_shift(mb, enabled=True, segments=8) == len(skips) > 0
    assert set_temporal_shift(mb, enabled=False) == 0
    with pytest.raises(ValueError, match="frames per clip is unset"):
        set_temporal_shift(mb, enabled=True, segments=0)
        _wake_residual_branches(mb).eval()(torch.rand(2, 3, 16, 16))


def test_the_shift_costs_zero_macs():
    """The shift is a memory move: a TSM network costs what the same network costs frame by frame."""
    r = resnet(block="bottleneck", layers=(1, 1), base_width=8).eval()
    x = torch.rand(8, 3, 32, 32)
    one_frame = count_macs(r, x[:1])
    set_temporal_shift(r, enabled=True, segments=8)
    assert count_macs(r, x) == 8 * one_frame
    costs = [model_cost(name, get_config("small_motion")) for name in NAMES]
    assert costs[0]["total_gmacs"] == costs[1]["total_gmacs"] > 0  # equal MACs: the comparison is fair
    assert costs[0]["components"] == costs[1]["components"]
    assert set(costs[0]["components"]) >= {"glance", "spatial_policy", "temporal_policy", "focus", "classifier",
                                           "patch_extraction"}


def test_the_optimised_inference_copy_keeps_the_shift():
    from adafocus.models.inference import optimize_for_inference

    torch.manual_seed(0)
    model = _wake_residual_branches(create_model("uni_adafocus_tsm", MOTION)).eval()
    video = _video()
    with torch.no_grad():
        ref = model(video).exit_logits
        fast = optimize_for_inference(model)
        assert torch.allclose(fast(video).exit_logits, ref, atol=1e-4)
        for switches in ({"packed_convs": False}, {"packed_convs": False, "inplace_residual": False}):
            assert torch.allclose(optimize_for_inference(model, **switches)(video).exit_logits, ref, atol=1e-4)


# ---------------------------------------------------------------------------------------------
# training
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_a_training_step_reaches_every_part(name):
    torch.manual_seed(0)
    model = create_model(name, MOTION).train()
    step = TrainStep(model, MOTION.train)
    loss, logits, parts = step({"video": _video(), "label": torch.tensor([0, 1, 3])})
    assert torch.isfinite(loss) and logits.shape == (3, D.num_classes)
    assert {"exits", "glance_frames", "focus_frames", "spatial", "temporal", "scale"} <= set(parts)
    loss.backward()
    for part, params in model.param_groups().items():
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in params), part


def test_a_tiny_training_run_on_the_motion_benchmark(tmp_path):
    from adafocus.train import train

    cfg = get_config("tiny", **{"data.motion": "direction", "data.num_train": 32, "data.num_val": 16,
                                "pretrain.epochs": 0, "train.epochs": 1, "train.batch_size": 16})
    result = train("uni_adafocus_tsm", cfg, progress=False, checkpoint_dir=tmp_path)
    assert list(result.history["epoch"]) == [1] and np.isfinite(result.history["train_loss"]).all()
    assert result.checkpoint.name.startswith("uni_adafocus_tsm-tiny-")
    assert train("uni_adafocus_tsm", cfg, progress=False, checkpoint_dir=tmp_path).from_cache


def test_the_small_motion_preset_is_the_small_geometry_with_the_knob_and_scale_reg_half():
    small, motion = get_config("small"), get_config("small_motion")
    assert motion.model == small.model and motion.pretrain == small.pretrain
    assert dataclasses.replace(motion.data, motion="none") == small.data and motion.data.motion == "direction"
    assert motion.train.recipe == "cpu" and motion.train.scale_reg == 0.5
    assert dataclasses.replace(motion.train, scale_reg=small.train.scale_reg) == small.train
    # the same shared pretraining (a still image has no motion): one pretraining serves both
    from adafocus.pretrain import pretrain_key

    assert pretrain_key(motion) == pretrain_key(small)


# ---------------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------------

def test_a_channels_first_clip_is_refused_with_the_expected_layout():
    model = create_model("uni_adafocus_tsm", MOTION)
    with pytest.raises(ValueError, match=r"UniAdaFocusTSM: .*\(B, T, C, H, W\).*looks like \(B, C, T, H, W\)"):
        model(_video().transpose(1, 2))
    with pytest.raises(ValueError, match=r"UniAdaFocusTSM: video must be a 5-D tensor \(B, T, C, H, W\)"):
        model(_video()[0])


def test_k_larger_than_the_candidate_pool_is_refused():
    with pytest.raises(ConfigError, match=r"model.focus_candidates: expected 0 \(every frame\) or a pool of at "
                                          r"least K = model.num_focus = 3"):
        get_config("tiny", **{"model.focus_candidates": 2})
    with pytest.raises(ConfigError, match=r"model.focus_candidates: expected a candidate pool no larger than the "
                                          r"clip's T = 8"):
        get_config("tiny", **{"model.focus_candidates": 9})
    m = dataclasses.replace(model_config("uni_adafocus_tsm", MOTION), num_focus=6, focus_candidates=6)
    with pytest.raises(ValueError, match=r"num_focus = K = 6 .* must fit the clip's T = 4 frames"):
        UniAdaFocusTSM(m, 32, 4)


def test_partial_runs_and_step_by_step_early_exit_are_refused():
    from adafocus.models.exits import exiting_forward

    model = create_model("uni_adafocus_tsm", MOTION).eval()
    video = _video()
    with pytest.raises(ValueError, match="steps must be None or K = 3"):
        model.run(video, model.plan(video), steps=1)
    with pytest.raises(ValueError, match="UniAdaFocusTSM has no step-by-step early exit"):
        exiting_forward(model, video, torch.full((2,), 0.5))


def test_the_tsm_class_needs_glance_and_focus():
    m = dataclasses.replace(model_config("uni_adafocus_tsm", MOTION), use_focus=False, spatial_policy=False,
                            temporal_policy=False, patch_mode="full", frame_mode="uniform")
    with pytest.raises(ValueError, match="needs the glance and the focus network"):
        UniAdaFocusTSM(m, 32, 8)


# ---------------------------------------------------------------------------------------------
# the data knob: the class is the direction of motion; an order-blind model cannot see it
# ---------------------------------------------------------------------------------------------

def _clip(cfg, index: int, label: int, **kw):
    return generate_clip(cfg, synthetic._clip_rng(cfg, "train", index), label, "train", **kw)


@pytest.mark.parametrize("index", range(4))
def test_a_backward_clip_is_the_forward_clip_played_backwards(index):
    fwd, bwd = _clip(D, index, 2, return_layers=True), _clip(D, index, 3, return_layers=True)
    for key in ("video", "boxes", "mask", "object_alpha", "hidden_mode"):
        assert np.array_equal(bwd[key], fwd[key][::-1]), key
    # so the two clips have the same *set* of frames: anything order-blind sees the same thing
    frames = (lambda c: sorted(f.tobytes() for f in c["video"]))
    assert frames(fwd) == frames(bwd)
    assert np.array_equal(np.sort(fwd["video"], axis=0), np.sort(bwd["video"], axis=0))
    # and a shuffled clip has that same set too
    shuffled = fwd["video"][np.random.default_rng(index).permutation(D.num_frames)]
    assert frames({"video": shuffled}) == frames(fwd)


def test_an_order_blind_model_gives_both_directions_the_same_answer():
    """Per-frame features pooled over frames (TSN with max or mean pooling) cannot tell label 2d from 2d + 1."""
    torch.manual_seed(0)
    per_frame = mobilenet_v2(0.25, num_stages=3).eval()
    clips = generate_clips(D, "train", range(8), progress=False, workers=1)
    for i in range(0, 8):
        label = int(clips.labels[i])
        twin = label ^ 1  # the same digit, the other direction
        other = generate_clip(D, synthetic._clip_rng(D, "train", i), twin, "train")["video"]
        with torch.no_grad():
            a = per_frame(clips.videos[i].float() / 255)
            b = per_frame(torch.from_numpy(other).float() / 255)
        for pool in (lambda f: f.amax(0), lambda f: f.mean(0)):
            assert torch.allclose(pool(a), pool(b), atol=1e-5)


def test_forward_means_rightwards_and_the_direction_is_the_label():
    for index in range(6):
        for label in range(D.num_classes):
            c = _clip(D, index, label)
            x = (c["boxes"][:, 0] + c["boxes"][:, 2]) / 2
            slope = np.polyfit(np.arange(D.num_frames), x, 1)[0]
            digit, backward = label_parts(D, label)
            assert (slope < 0) == backward and abs(slope) > 0.2 * D.speed, (index, label, slope)
    assert class_names(D) == ["0 →", "0 ←", "1 →", "1 ←"]
    assert class_names(get_config("tiny").data) == ["0", "1", "2", "3"]
    assert synthetic.SyntheticVideoDataset(generate_clips(D, "val", [0], progress=False), D, "val").class_names[1] \
        == "0 ←"


def test_the_digit_of_a_motion_label_is_its_half():
    assert [label_parts(D, k) for k in range(4)] == [(0, False), (0, True), (1, False), (1, True)]
    assert label_parts(get_config("tiny").data, 3) == (3, False)


def test_the_default_benchmark_is_unchanged_and_keeps_its_cache_keys():
    """The knob is hashed only when set: the default data, its cache key and every checkpoint key are as before."""
    small = get_config("small")
    assert small.data.motion == "none" and small.model.focus_candidates == 0 and not small.model.glance_tsm
    assert synthetic.data_hash(small.data) == "cf3fb2b3d56a"  # the key of the cached small benchmark
    assert small.hash()[:6] == "20baff"  # the prefix of every cached small checkpoint
    motion = get_config("small_motion")
    assert synthetic.data_hash(motion.data) != synthetic.data_hash(small.data)
    assert motion.hash() != small.hash()
    # a set knob is hashed like any field, in every section
    for key, value in (("model.glance_tsm", True), ("model.focus_candidates", 12)):
        assert small.replace(**{key: value}).hash() != small.hash()


@pytest.mark.parametrize("override, field, words", [
    ({"data.motion": "sideways"}, "data.motion", "one of ('none', 'direction')"),
    ({"data.motion": "direction", "data.num_classes": 3}, "data.num_classes", "an even number"),
    ({"data.motion": "direction", "data.speed": 0.0}, "data.speed", "a positive speed whose straight path fits"),
    ({"data.motion": "direction", "data.speed": 3.0}, "data.speed", "a positive speed whose straight path fits"),
])
def test_impossible_motion_settings_name_the_field(override, field, words):
    with pytest.raises(ConfigError) as err:
        get_config("small", **override)
    assert field in str(err.value) and words in str(err.value)


def test_the_speed_bound_uses_the_generators_jitter():
    from adafocus.config import DataConfig

    assert DataConfig.max_speed_jitter == synthetic.RENDER.speed_jitter[1]
    assert ModelConfig().focus_candidates == 0


@pytest.mark.parametrize("focus, patch, published", [(8, 96, 8.8), (12, 128, 18.8)])
def test_costs_at_the_official_tsm_geometry(focus, patch, published):
    """The official Uni-AdaFocus-TSM (Sth-Sth, 8 glance frames at 224², K of 3K candidates): 8.8 GFLOPs (MACs) at
    P = 96, 8 + 8 and 18.8 at P = 128, 8 + 12 (its README). The backbones are exact (8 x 0.2995 and K x the
    ResNet-50 patch, shifts free); the total is 0.3 GMACs under the published numbers in both: the policy
    networks are not the official ones layer for layer."""
    cfg = get_config("full", **{"model.glance_frames": 8, "model.num_focus": focus, "model.patch_size": patch})
    cost = model_cost("uni_adafocus_tsm", cfg)
    c = cost["components"]
    assert c["glance"] == pytest.approx(8 * 0.2995, rel=1e-3)
    assert c["focus_per_patch"] == pytest.approx({96: 0.7507, 128: 1.3346}[patch], rel=1e-3)
    assert model_config("uni_adafocus_tsm", cfg).focus_candidates == 3 * focus
    assert cost["total_gmacs"] == pytest.approx(published, rel=0.05)
    assert published - 0.35 < cost["total_gmacs"] < published - 0.25

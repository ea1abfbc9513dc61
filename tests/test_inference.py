"""The inference copy (adafocus.models.inference): same logits, same MACs, the trained model untouched."""

import pytest
import torch
import torch.nn.functional as F

from adafocus.config import get_config
from adafocus.data.batches import ground_truth_kwargs
from adafocus.flops import count_macs, dummy_input
from adafocus.models.exits import exiting_forward
from adafocus.models.inference import fold_batchnorm, optimize_for_inference
from adafocus.models.patches import halve_frames, resize_frames
from adafocus.models.registry import create_model, list_models

TOL = dict(atol=1e-5, rtol=1e-4)  # float32: folding and pooling change the order of a few roundings


def _model(name: str, preset: str = "tiny", seed: int = 0):
    """A model in eval mode whose batch norms are not the identity (random statistics and affine terms)."""
    torch.manual_seed(seed)
    model = create_model(name, get_config(preset))
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            n = m.num_features
            m.running_mean.copy_(torch.rand(n, generator=g) - 0.5)
            m.running_var.copy_(0.5 + torch.rand(n, generator=g))
            m.weight.data.copy_(0.5 + torch.rand(n, generator=g))
            m.bias.data.copy_(0.2 * torch.rand(n, generator=g) - 0.1)
    return model.eval()


def _batch(preset: str = "tiny", batch: int = 3, seed: int = 0):
    x = dummy_input(get_config(preset), batch)
    x["video"] = torch.rand(x["video"].shape, generator=torch.Generator().manual_seed(seed))
    return x


@pytest.mark.parametrize("name", list_models())
def test_optimised_copy_gives_the_same_logits_and_the_same_macs(name: str) -> None:
    model, x = _model(name), _batch()
    gt = ground_truth_kwargs(model, x)
    fast = optimize_for_inference(model)
    torch.manual_seed(1)  # random_patch draws its boxes: the same draws for both
    with torch.no_grad():
        ref = model(x["video"], **gt)
    torch.manual_seed(1)
    with torch.inference_mode():
        out = fast(x["video"], **gt)
    torch.testing.assert_close(out.exit_logits, ref.exit_logits, **TOL)
    assert torch.equal(out.frame_idx, ref.frame_idx)
    torch.testing.assert_close(out.boxes, ref.boxes, **TOL)
    assert count_macs(fast, x["video"], **gt) == count_macs(model, x["video"], **gt)


def test_the_small_geometry_too_same_logits_same_macs() -> None:
    """The demo's geometry: the glance halves 64² frames to 32² (the average pool takes the resize's place)."""
    model, x = _model("uni_adafocus", "small"), _batch("small", 2)
    fast = optimize_for_inference(model)
    with torch.no_grad():
        ref = model(x["video"]).exit_logits
    with torch.inference_mode():
        out = fast(x["video"]).exit_logits
    torch.testing.assert_close(out, ref, **TOL)
    assert fast.exact_downsample and model.cfg.glance_size * 2 == model.frame_size
    assert count_macs(fast, x["video"]) == count_macs(model, x["video"])


@pytest.mark.parametrize("switch", ["fold_bn", "exact_downsample", "per_axis_grid", "inplace_residual", "fused_exits",
                                    "packed_convs"])
def test_every_switch_alone_keeps_the_logits_and_the_macs(switch: str) -> None:
    """The small geometry (where the exact downsample applies), the policy's boxes moved off the center (a trained
    policy's are; an untrained heatmap is flat), one switch on at a time."""
    from adafocus.models.inference import PackedConv

    model, x = _model("uni_adafocus", "small"), _batch("small", 2, seed=4)
    torch.nn.init.normal_(model.spatial_policy.heatmap.weight, std=1.0, generator=torch.Generator().manual_seed(0))
    flags = {s: s == switch for s in ("fold_bn", "exact_downsample", "per_axis_grid", "inplace_residual",
                                      "fused_exits", "packed_convs")}
    fast = optimize_for_inference(model, **flags)
    with torch.no_grad():
        ref = model(x["video"])
    with torch.inference_mode():
        out = fast(x["video"])
    assert not torch.allclose(ref.boxes, model.select_boxes("center", ref.frame_idx), atol=0.5)  # off-center boxes
    torch.testing.assert_close(out.exit_logits, ref.exit_logits, **TOL)
    assert count_macs(fast, x["video"]) == count_macs(model, x["video"])
    assert getattr(fast, switch, True) is True and getattr(model, switch, False) is False
    packed = [m for m in fast.modules() if isinstance(m, PackedConv)]
    if switch == "packed_convs" and packed:  # where oneDNN is there: the policy's 3-D convolutions too
        assert any(len(m.weight_shape) == 5 for m in packed) and not any(
            isinstance(m, torch.nn.Conv3d) for m in fast.spatial_policy.body.modules())


def test_the_trained_model_is_untouched_and_the_copy_cannot_train() -> None:
    model = _model("uni_adafocus")
    state = {k: v.clone() for k, v in model.state_dict().items()}
    n_bn = sum(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())
    fast = optimize_for_inference(model)
    assert n_bn > 0 and not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in fast.modules())
    assert model.exact_downsample is False and sum(
        isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules()) == n_bn
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in state.items())
    model.train()  # the original still trains
    assert all(p.requires_grad for p in model.parameters())
    assert not any(p.requires_grad for p in fast.parameters())
    with pytest.raises(RuntimeError, match="cannot train"):
        fast.train()
    fast.eval()  # eval stays allowed


def test_fold_batchnorm_folds_conv_bn_pairs_of_every_dimension() -> None:
    g = torch.Generator().manual_seed(0)
    for conv, bn, shape in ((torch.nn.Conv1d(4, 6, 3, padding=1), torch.nn.BatchNorm1d(6), (2, 4, 9)),
                            (torch.nn.Conv2d(4, 6, 3, groups=2), torch.nn.BatchNorm2d(6), (2, 4, 7, 7)),
                            (torch.nn.Conv3d(4, 4, 3, groups=4, bias=False), torch.nn.BatchNorm3d(4), (2, 4, 5, 5, 5))):
        bn.running_mean.uniform_(-1, 1, generator=g)
        bn.running_var.uniform_(0.5, 2, generator=g)
        seq = torch.nn.Sequential(conv, bn, torch.nn.ReLU()).eval()
        x = torch.randn(shape, generator=g)
        ref = seq(x)
        assert fold_batchnorm(seq) == 1 and len(seq) == 2
        torch.testing.assert_close(seq(x), ref, **TOL)


@pytest.mark.parametrize("channels_last", [False, True])
def test_two_by_two_average_pool_is_the_bilinear_half_size_resize(channels_last: bool) -> None:
    """Bilinear, align_corners=False, 2N -> N samples at 2j + 0.5: the mean of pixels 2j and 2j + 1 per axis."""
    g = torch.Generator().manual_seed(0)
    video = torch.randint(0, 256, (4, 6, 3, 64, 64), generator=g).float()  # frames as the cache stores them
    idx = torch.sort(torch.randint(0, 6, (4, 3), generator=g), dim=1).values
    frames = video[torch.arange(4)[:, None], idx].flatten(0, 1)
    bilinear = F.interpolate(frames, size=32, mode="bilinear", align_corners=False)
    out = halve_frames(video, idx, channels_last=channels_last)
    assert torch.equal(out, bilinear)  # exact: quarter-integers are exact floats
    assert out.is_contiguous(memory_format=torch.channels_last) == channels_last
    x = torch.rand(4, 6, 3, 32, 32, generator=g)  # the tiny geometry, any float values
    torch.testing.assert_close(halve_frames(x, idx, channels_last),
                               resize_frames(x[torch.arange(4)[:, None], idx].flatten(0, 1), 16), atol=2.5e-7, rtol=0)
    # (up to 2 ulps below 1: the four terms are added in another order than the resize's)
    assert count_macs(lambda v: halve_frames(v, idx, channels_last), video) == count_macs(
        lambda f: resize_frames(f, 32), frames) == 4 * 12 * 3 * 32 * 32
    with pytest.raises(ValueError, match="even size"):
        halve_frames(torch.zeros(1, 2, 3, 9, 9), torch.zeros(1, 1, dtype=torch.long))
    x.requires_grad_(True)  # differentiable like the resize: each input pixel gets a quarter of its block's gradient
    halve_frames(x, idx, channels_last).sum().backward()
    times = torch.zeros(4, 6).index_put_((torch.arange(4)[:, None].expand_as(idx), idx), torch.tensor(1.0),
                                         accumulate=True)  # how often each frame was picked
    assert torch.equal(x.grad, (0.25 * times)[..., None, None, None].expand_as(x))


def test_early_exit_runs_on_the_optimised_copy_with_the_same_answers() -> None:
    model, x = _model("uni_adafocus"), _batch(batch=6)
    fast = optimize_for_inference(model)
    S = model.classifier.num_exits
    for k in (S - 1, S - 2, 2):  # everyone leaves at exit k
        thr = torch.full((S,), float("inf"))
        thr[k] = float("-inf")
        ref, out = exiting_forward(model, x["video"], thr), exiting_forward(fast, x["video"], thr)
        assert torch.equal(out.exit_step, ref.exit_step) and (out.exit_step == k).all()
        torch.testing.assert_close(out.logits, ref.logits, **TOL)
        assert count_macs(lambda v: exiting_forward(fast, v, thr), x["video"]) == count_macs(
            lambda v: exiting_forward(model, v, thr), x["video"])


def test_grouped_early_exit_steps_give_the_same_answers_and_macs_as_one_step_at_a_time() -> None:
    """Steps nobody can leave at (threshold +inf) run as one call: the same exits, logits and MACs."""
    from adafocus.analysis.early_exit import calibrate_thresholds, confidences, exit_proportions

    model, x = _model("uni_adafocus"), _batch(batch=12, seed=3)
    S, G = model.classifier.num_exits, model.cfg.glance_frames
    with torch.no_grad():
        conf = confidences(model(x["video"]).exit_logits)
    usable = torch.ones(S, dtype=torch.bool)
    usable[:G - 1] = False  # as calibration does for glance exits at chance
    usable[G + 1] = False
    q = exit_proportions(0.7, int(usable.sum()))
    thr = torch.full((S,), float("inf"))
    thr[usable] = calibrate_thresholds(conf[:, usable], q)
    one = exiting_forward(model, x["video"], thr, group=False)
    grouped = exiting_forward(model, x["video"], thr)
    assert len(set(one.exit_step.tolist())) > 1  # clips leave at several exits
    assert torch.equal(grouped.exit_step, one.exit_step) and torch.equal(grouped.predictions, one.predictions)
    torch.testing.assert_close(grouped.logits, one.logits, **TOL)
    assert count_macs(lambda v: exiting_forward(model, v, thr), x["video"]) == count_macs(
        lambda v: exiting_forward(model, v, thr, group=False), x["video"])


def test_gather_frames_is_advanced_indexing() -> None:
    from adafocus.models.patches import gather_frames

    g = torch.Generator().manual_seed(0)
    video = torch.rand(5, 8, 3, 6, 6, generator=g)
    idx = torch.sort(torch.randint(0, 8, (5, 3), generator=g), dim=1).values
    assert torch.equal(gather_frames(video, idx), video[torch.arange(5)[:, None], idx])
    rows = torch.tensor([4, 1])
    assert torch.equal(gather_frames(video, idx[:2], rows), video[rows[:, None], idx[:2]])
    odd = video.transpose(0, 1).contiguous().transpose(0, 1)  # clips and frames do not merge into one axis
    assert torch.equal(gather_frames(odd, idx), video[torch.arange(5)[:, None], idx])

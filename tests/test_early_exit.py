"""Early exit: proportions, greedy calibration on validation, and exits that really save compute."""

import numpy as np
import pytest
import torch

from adafocus.config import get_config
from adafocus.analysis.early_exit import (calibrate_thresholds, confidences, early_exit_curve, evaluate_early_exit,
                                          exit_proportions, exit_steps, step_costs, usable_exits)
from adafocus.flops import count_macs
from adafocus.models.exits import exiting_forward
from adafocus.models.registry import create_model


def test_exit_proportions():
    q = exit_proportions(0.5, 4)
    assert np.isclose(q.sum(), 1) and np.allclose(q[1:] / q[:-1], 0.5)
    assert np.allclose(exit_proportions(1.0, 5), 0.2)
    with pytest.raises(ValueError, match="rho > 0"):
        exit_proportions(0.0, 3)


def test_calibration_sends_q_k_of_the_samples_out_at_each_exit():
    g = torch.Generator().manual_seed(0)
    conf = torch.rand(1000, 5, generator=g)
    q = exit_proportions(0.7, 5)
    thr = calibrate_thresholds(conf, q)
    frac = np.bincount(exit_steps(conf, thr).numpy(), minlength=5) / 1000
    assert np.abs(frac - q).max() <= 0.002
    assert thr[-1] == float("-inf")


def test_more_patience_costs_more_and_is_more_accurate_on_average():
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 4, (400,), generator=g)
    # later exits are more often right: logits move toward the label step by step
    steps = torch.arange(4).float().view(1, 4, 1)
    logits = torch.randn(400, 4, 4, generator=g) + 1.5 * steps * torch.nn.functional.one_hot(labels, 4)[:, None]
    costs = torch.tensor([1.0, 2.0, 3.0, 4.0])
    curve = early_exit_curve(logits[:200], logits[200:], labels[200:], costs, rhos=(0.25, 1.0, 4.0))
    assert curve["mmacs"].is_monotonic_increasing
    assert curve["accuracy"].iloc[-1] > curve["accuracy"].iloc[0]
    r = evaluate_early_exit(logits[:200], logits[200:], labels[200:], costs, 1.0)
    assert np.isclose(r.expected_macs, float((torch.tensor(r.exit_fraction) * costs).sum()))


def test_exits_at_chance_are_not_usable_and_get_no_videos():
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 10, (1000,), generator=g)
    guess = torch.randn(1000, 3, 10, generator=g)  # exits 0-2: noise, sometimes very confident
    guess[:, 0] *= 20
    good = torch.randn(1000, 2, 10, generator=g) + 4 * torch.nn.functional.one_hot(labels, 10)[:, None]
    logits = torch.cat([guess, good], dim=1)  # (N, 5, 10)
    usable = usable_exits(logits[:500], labels[:500])
    assert usable.tolist() == [False, False, False, True, True]
    costs = torch.arange(1.0, 6.0)
    all_exits = evaluate_early_exit(logits[:500], logits[500:], labels[500:], costs, 1.0)
    chosen = evaluate_early_exit(logits[:500], logits[500:], labels[500:], costs, 1.0, usable)
    assert chosen.exit_fraction[:3].sum() == 0 and all_exits.exit_fraction[:3].sum() > 0.5
    assert chosen.accuracy > all_exits.accuracy + 0.4  # the guesses no longer decide
    with pytest.raises(ValueError, match="last exit set"):
        evaluate_early_exit(logits[:500], logits[500:], labels[500:], costs, 1.0, torch.tensor([True] * 4 + [False]))


@pytest.fixture(scope="module")
def model_and_video():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    cfg = get_config("tiny")
    model = create_model("uni_adafocus", cfg).eval()
    d = cfg.data
    return cfg, model, torch.rand(6, d.num_frames, d.channels, d.frame_size, d.frame_size)


def test_stepwise_inference_matches_the_batched_forward(model_and_video):
    cfg, model, video = model_and_video
    S = model.classifier.num_exits
    with torch.no_grad():
        full = model(video)
    for k in (0, cfg.model.glance_frames - 1, S - 1):
        thr = torch.full((S,), float("inf"))
        thr[k] = float("-inf")
        res = exiting_forward(model, video, thr)
        assert (res.exit_step == k).all()
        # the same class, except where the two best logits tie to rounding (step by step and batched
        # forwards may sum in another order)
        top2 = full.exit_logits[:, k].topk(2, dim=-1).values
        clear = (top2[:, 0] - top2[:, 1]) > 1e-4
        assert torch.equal(res.predictions[clear], full.exit_logits[clear, k].argmax(-1))
        expected_conf = confidences(full.exit_logits)[:, k]
        assert torch.allclose(res.confidence, expected_conf, atol=1e-5)


def test_clips_that_run_to_the_end_get_the_forwards_logits(model_and_video):
    _, model, video = model_and_video
    S = model.classifier.num_exits
    with torch.no_grad():
        full = model(video)
    res = exiting_forward(model, video, torch.full((S,), float("inf")))  # nobody leaves early
    assert (res.exit_step == S - 1).all()
    assert torch.allclose(res.logits, full.logits, atol=1e-5)


def test_oracle_exits_read_the_ground_truth(tiny_cfg, tiny_split):
    torch.manual_seed(0)
    model = create_model("oracle", tiny_cfg).eval()
    c = tiny_split.clips
    video, gt = c.videos[:4].float() / 255, {"gt_boxes": c.boxes[:4], "gt_mask": c.mask[:4]}
    S = model.classifier.num_exits
    thr = torch.full((S,), float("inf"))
    with pytest.raises(ValueError, match="gt_mask|gt_boxes"):
        exiting_forward(model, video, thr)
    with torch.no_grad():
        full = model(video, **gt)
    assert torch.allclose(exiting_forward(model, video, thr, **gt).logits, full.logits, atol=1e-5)


def test_measured_macs_equal_the_expected_figure(model_and_video):
    cfg, model, video = model_and_video
    S = model.classifier.num_exits
    costs = step_costs(model, cfg)
    assert (costs[1:] >= costs[:-1]).all() and costs[-1] > 2 * costs[0]
    with torch.no_grad():
        conf = confidences(model(video).exit_logits)
    thr = calibrate_thresholds(conf, exit_proportions(0.6, S))  # some samples leave early, some late
    steps = exiting_forward(model, video, thr).exit_step
    assert len(set(steps.tolist())) > 1
    measured = count_macs(lambda v: exiting_forward(model, v, thr), video)
    expected = float(costs[steps].sum())
    assert measured == pytest.approx(expected, rel=1e-9)
    assert measured < costs[-1] * len(video)  # the samples that left really cost less


def test_thresholds_of_the_wrong_length_are_refused(model_and_video):
    _, model, video = model_and_video
    with pytest.raises(ValueError, match="thresholds"):
        exiting_forward(model, video, torch.zeros(3))


def test_the_whole_glance_first_gives_the_same_exits_and_pays_the_whole_glance(model_and_video):
    cfg, model, video = model_and_video
    S, T_g = model.classifier.num_exits, cfg.model.glance_frames
    step, whole = step_costs(model, cfg), step_costs(model, cfg, glance="whole")
    # leaving at a glance exit costs the whole glance; from the last glance exit on, the two modes run the same
    assert (whole[:T_g - 1] > step[:T_g - 1]).all()
    assert torch.allclose(whole[T_g - 1:], step[T_g - 1:])
    with torch.no_grad():
        conf = confidences(model(video).exit_logits)
    thr = calibrate_thresholds(conf, exit_proportions(0.6, S))
    a, b = exiting_forward(model, video, thr), exiting_forward(model, video, thr, glance="whole")
    assert len(set(a.exit_step.tolist())) > 1 and torch.equal(a.exit_step, b.exit_step)
    assert torch.allclose(a.logits, b.logits, atol=1e-5) and torch.equal(a.predictions, b.predictions)
    measured = count_macs(lambda v: exiting_forward(model, v, thr, glance="whole"), video)
    assert measured == pytest.approx(float(whole[b.exit_step].sum()), rel=1e-9)
    with pytest.raises(ValueError, match="glance must be one of"):
        exiting_forward(model, video, thr, glance="all")

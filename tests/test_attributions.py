"""Attributions: captum wired to the fixed-policy model, Grad-CAM as the textbook formula, pointing game."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from adafocus.analysis.attributions import (FixedPolicy, PolicyChoice, fix_policy, frame_scores, gradcam_focus,
                                            gradcam_glance, integrated_gradients, occlusion_space, occlusion_time,
                                            patch_maps_to_frames, pixel_maps, pointing_game)
from adafocus.config import get_config
from adafocus.models.patches import crop_patches
from adafocus.models.registry import create_model


@pytest.fixture(scope="module")
def video(tiny_split) -> torch.Tensor:
    return tiny_split.clips.videos[:2].float() / 255  # (2, T, C, H, W)


# ------------------------------------------------------------------------------- pointing game

def test_pointing_game_hits_and_misses():
    maps = torch.zeros(4, 20, 20)
    boxes = torch.tensor([[2.0, 3.0, 8.0, 9.0]]).expand(4, 4)
    maps[0, 5, 4] = 1.0  # row 5 (y 5.5), column 4 (x 4.5): inside
    maps[1, 15, 15] = 1.0  # far outside
    maps[2, 9, 4] = 1.0  # y 9.5: just below the box
    # maps[3] is flat: no maximum to point with
    assert pointing_game(maps[:1], boxes[:1]) == 1.0
    assert pointing_game(maps[1:2], boxes[1:2]) == 0.0
    assert pointing_game(maps, boxes) == 0.25
    assert pointing_game(maps[2:3], boxes[2:3], tolerance=1.0) == 1.0
    assert pointing_game(maps[3:], boxes[3:]) == 0.0
    with pytest.raises(ValueError, match="pointing_game"):
        pointing_game(maps, boxes[:2])


# ------------------------------------------------------------------------------- occlusion and gradients

def frame_sum_model(video: torch.Tensor) -> torch.Tensor:
    """Class 1's logit is the summed brightness of all frames (every frame counts the same)."""
    return torch.stack([torch.zeros(len(video)), video.mean(dim=(2, 3, 4)).sum(1)], dim=-1)


def test_occlusion_time_blames_the_corrupted_frame():
    video = torch.full((2, 6, 3, 8, 8), 0.1)
    video[0, 4] = 0.9  # corrupt frame 4 of clip 0
    scores = frame_scores(occlusion_time(frame_sum_model, video, target=1), reduce="mean")
    assert scores.shape == (2, 6)
    assert scores[0, 4] == pytest.approx(0.9, abs=1e-5)
    assert torch.allclose(scores[0, [0, 1, 2, 3, 5]], torch.tensor(0.1))
    assert torch.allclose(scores[1], torch.tensor(0.1))
    assert scores[0].argmax() == 4


def test_integrated_gradients_of_a_linear_model_is_weight_times_input():
    w = torch.randn(6, 3, 8, 8)
    video = torch.rand(2, 6, 3, 8, 8)

    def linear(v):
        return torch.stack([-(v * w).sum((1, 2, 3, 4)), (v * w).sum((1, 2, 3, 4))], dim=-1)

    attr = integrated_gradients(linear, video, target=1)
    assert attr.shape == video.shape and torch.allclose(attr, w * video, atol=1e-5)


def test_integrated_gradients_completeness_on_the_fixed_policy(tiny_model, video):
    choice = fix_policy(tiny_model, video)
    attr, delta = integrated_gradients(tiny_model, video, choice=choice, steps=32, return_delta=True)
    assert attr.shape == video.shape
    fixed = FixedPolicy(tiny_model)
    with torch.no_grad():
        logits = fixed(video, choice.frame_idx, choice.boxes)
        base = fixed(torch.zeros_like(video), choice.frame_idx, choice.boxes)
    rows = torch.arange(2)
    gap = logits[rows, choice.prediction] - base[rows, choice.prediction]
    assert torch.allclose(frame_scores(attr).sum(1), gap, atol=0.05 * float(gap.abs().max()) + 1e-4)
    assert delta.abs().max() < 0.05 * gap.abs().max() + 1e-4
    assert torch.equal(choice.prediction, tiny_model(video).logits.argmax(-1))


def test_occlusion_respects_the_fixed_choices():
    """A frame neither glanced at nor chosen cannot matter; glanced and chosen frames do."""
    cfg = get_config("tiny", **{"model.glance_frames": 4, "model.num_focus": 2})
    torch.manual_seed(0)
    model = create_model("uni_adafocus", cfg).eval()
    video = torch.rand(1, 8, 3, 32, 32)
    choice = PolicyChoice(torch.tensor([[2, 3]]), torch.tensor([[[4.0, 4.0, 20.0, 20.0], [8.0, 8.0, 24.0, 24.0]]]),
                          torch.tensor([0]))
    assert model.glance_idx.tolist() == [1, 3, 5, 7]
    # An unused frame changes no input of the network, so its score is zero up to rounding: captum
    # evaluates the occluded clips in batches of another size than the reference clip, and CPU kernels
    # may then sum in another order (-3.7e-9 seen on one CPU). The effects of used frames are >= 1.6e-5.
    zero = 1e-6
    scores = frame_scores(occlusion_time(model, video, target=0, choice=choice), reduce="mean")[0]
    assert scores[[0, 4, 6]].abs().max() < zero, scores
    assert scores[[1, 2, 3, 5, 7]].abs().min() > 10 * zero, scores
    space = pixel_maps(occlusion_space(model, video, target=0, choice=choice, window=8, stride=8))[0]  # (T, H, W)
    assert space.shape == (8, 32, 32) and space[[0, 4, 6]].abs().max() < zero
    outside = torch.ones(32, 32, dtype=torch.bool)
    outside[:24, :24] = False  # frame 2's box ends at 20, so 8-px windows beyond 24 never touch it
    assert space[2][~outside].abs().sum() > 10 * zero


def test_oracle_models_need_their_ground_truth(tiny_cfg, tiny_split):
    torch.manual_seed(0)
    model = create_model("oracle", tiny_cfg).eval()
    c = tiny_split.clips
    v = c.videos[:2].float() / 255
    with pytest.raises(ValueError, match="gt_mask|gt_boxes"):
        occlusion_time(model, v)
    attr = integrated_gradients(model, v, gt_boxes=c.boxes[:2], gt_mask=c.mask[:2], steps=4)
    assert attr.shape == v.shape and attr.abs().sum() > 0
    with pytest.raises(ValueError, match="target"):
        integrated_gradients(model, v, target=torch.tensor([0, 1, 2]), gt_boxes=c.boxes[:2], gt_mask=c.mask[:2])


# ------------------------------------------------------------------------------- Grad-CAM

def reference_gradcam(logits_fn, layer, target):
    """Textbook Grad-CAM: ReLU(sum_c mean_hw(dy/dA_c) A_c), from hooks."""
    store = {}
    handle = layer.register_forward_hook(lambda m, i, o: store.update(act=o))
    logits = logits_fn()
    handle.remove()
    y = logits[torch.arange(len(target)), target].sum()
    (grad,) = torch.autograd.grad(y, store["act"])
    return F.relu((grad.mean(dim=(2, 3), keepdim=True) * store["act"]).sum(1)).detach()  # (N, h, w)


def test_gradcam_focus_matches_the_formula(tiny_model, video):
    choice = fix_policy(tiny_model, video)
    layer = tiny_model.focus.stages[1]  # a 4x4 map at P = 16 (the last stage is 1x1 at tiny)
    cam = gradcam_focus(tiny_model, video, target=1, layer=layer, choice=choice)
    B, K, P = 2, tiny_model.num_focus, tiny_model.cfg.patch_size
    assert cam.shape == (B, K, P, P) and cam.min() >= 0

    frames = video[torch.arange(B)[:, None], choice.frame_idx]
    patches = crop_patches(frames, choice.boxes, P)
    glance = tiny_model.glance_features(video).feats.detach()

    def logits():
        feats = tiny_model.focus(patches.flatten(0, 1)).reshape(B, K, -1)
        return tiny_model.classify(glance, feats)[:, -1]

    ref = reference_gradcam(logits, layer, torch.tensor([1, 1]))  # (B * K, h, w)
    ref = F.interpolate(ref[:, None], size=(P, P), mode="bilinear", align_corners=False).reshape(B, K, P, P)
    assert torch.allclose(cam, ref, atol=1e-6 + 1e-4 * float(ref.abs().max()))


def test_gradcam_glance_matches_the_formula(tiny_model, video):
    choice = fix_policy(tiny_model, video)
    cam = gradcam_glance(tiny_model, video, choice=choice)
    Tg, H = len(tiny_model.glance_idx), video.shape[-1]
    assert cam.shape == (2, Tg, H, H) and cam.min() >= 0
    fixed = FixedPolicy(tiny_model)
    v = video.clone().requires_grad_(True)
    ref = reference_gradcam(lambda: fixed(v, choice.frame_idx, choice.boxes), tiny_model.glance.features[-1],
                            choice.prediction)
    ref = F.interpolate(ref[:, None], size=(H, H), mode="bilinear", align_corners=False).reshape(2, Tg, H, H)
    assert torch.allclose(cam, ref, atol=1e-7 + 1e-4 * float(ref.abs().max()))


def test_patch_maps_land_in_their_boxes():
    maps = torch.zeros(1, 2, 4, 4)
    maps[0, 0, 0, 0] = 1.0  # the patch's top-left cell
    maps[0, 1, 3, 3] = 1.0  # bottom-right
    boxes = torch.tensor([[[8.0, 4.0, 16.0, 12.0], [0.0, 20.0, 12.0, 32.0]]])
    frames = patch_maps_to_frames(maps, boxes, 32)
    assert frames.shape == (1, 2, 32, 32)
    peak0 = divmod(int(frames[0, 0].argmax()), 32)  # (row, col)
    assert 4 <= peak0[0] < 6 and 8 <= peak0[1] < 10  # the top-left quarter-cell of box 0
    peak1 = divmod(int(frames[0, 1].argmax()), 32)
    assert 29 <= peak1[0] < 32 and 9 <= peak1[1] < 12
    assert frames[0, 0, :4].abs().sum() == 0 and frames[0, 0, :, 16:].abs().sum() == 0  # nothing outside the box
    assert pointing_game(frames[0], boxes[0]) == 1.0

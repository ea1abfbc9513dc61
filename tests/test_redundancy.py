"""Redundancy studies: crops on the object beat random crops, frame counts and leave-one-out behave."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from adafocus.analysis.redundancy import (exit_summary, frame_importance, importance_correlation,
                                          placement_boxes, samplewise_redundancy, spatial_redundancy,
                                          temporal_redundancy)
from adafocus.config import DataConfig
from adafocus.data.synthetic import ClipSet, SyntheticVideoDataset
from adafocus.models.patches import crop_patches

S, T = 32, 6  # frame side and frames of the hand-made clips
SQUARE = 6  # side of the bright square in the hand-made clips


def square_clips(n: int = 24, seed: int = 0) -> SyntheticVideoDataset:
    """Black clips; label-1 clips show a white square inside their (off-center) true box, label-0 clips nothing."""
    g = torch.Generator().manual_seed(seed)
    videos = torch.zeros(n, T, 3, S, S, dtype=torch.uint8)
    labels = torch.arange(n) % 2
    boxes = torch.zeros(n, T, 4)
    for i in range(n):
        corner = (torch.randint(0, 6, (2,), generator=g) + torch.tensor([0, 20]) * (i // 2 % 2)).tolist()
        x0, y0 = corner
        boxes[i, :] = torch.tensor([x0, y0, x0 + SQUARE, y0 + SQUARE], dtype=torch.float32)
        if labels[i]:
            videos[i, :, :, y0:y0 + SQUARE, x0:x0 + SQUARE] = 255
    clips = ClipSet(videos, labels, boxes, torch.ones(n, T, dtype=torch.bool))
    return SyntheticVideoDataset(clips, DataConfig(num_classes=2, num_frames=T, frame_size=S), "test")


def brightness_classifier(video, boxes, frame_idx):
    """Class 1 when the crops contain a bright pixel: right on every clip iff it looks at the square."""
    B = video.shape[0]
    frames = video[torch.arange(B)[:, None], frame_idx]  # (B, K, C, H, W)
    peak = crop_patches(frames, boxes, SQUARE).amax(dim=(1, 2, 3, 4))  # (B,)
    return torch.stack([torch.full_like(peak, 0.5), peak], dim=-1)


def test_placement_boxes_geometry():
    gt = torch.tensor([[[20.0, 4.0, 30.0, 12.0]] * 3])  # (1, T=3, 4), center (25, 8)
    idx = torch.tensor([[0, 2]])
    oracle = placement_boxes("oracle", 8, idx, gt, S)
    assert torch.allclose(oracle[0, 0], torch.tensor([21.0, 4.0, 29.0, 12.0]))
    big = placement_boxes("oracle", 16, idx, gt, S)  # pushed back inside the frame at the right border
    assert torch.allclose(big[0, 0], torch.tensor([16.0, 0.0, 32.0, 16.0]))
    center = placement_boxes("center", 8, idx, gt, S)
    assert torch.allclose(center[0, 1], torch.tensor([12.0, 12.0, 20.0, 20.0]))
    r1 = placement_boxes("random", 8, idx.expand(50, 2), gt.expand(50, 3, 4), S, torch.Generator().manual_seed(1))
    r2 = placement_boxes("random", 8, idx.expand(50, 2), gt.expand(50, 3, 4), S, torch.Generator().manual_seed(1))
    assert torch.equal(r1, r2) and r1.min() >= 0 and r1.max() <= S and r1[..., :2].std() > 3
    assert torch.allclose(r1[..., 2:] - r1[..., :2], torch.tensor(8.0))
    with pytest.raises(ValueError, match="crop_sizes"):
        placement_boxes("oracle", 40, idx, gt, S)
    with pytest.raises(ValueError, match="placement"):
        placement_boxes("corner", 8, idx, gt, S)


def test_spatial_redundancy_with_a_known_classifier():
    """Only a crop on the square sees it: oracle is perfect, the center never is, random sometimes."""
    df = spatial_redundancy(brightness_classifier, square_clips(), [SQUARE, S], num_focus=2)
    acc = df.set_index(["placement", "crop_size"])["accuracy"]
    assert acc[("oracle", SQUARE)] == 1.0
    assert acc[("center", SQUARE)] == 0.5  # label-0 clips are right by default, label-1 clips all missed
    assert 0.5 <= acc[("random", SQUARE)] < 1.0
    for p in ("oracle", "random", "center"):  # the whole frame: every placement is the same crop
        assert acc[(p, S)] == 1.0
    iou = df.set_index(["placement", "crop_size"])["gt_iou"]
    assert iou[("oracle", SQUARE)] == pytest.approx(1.0) and iou[("random", SQUARE)] < 0.3
    with pytest.raises(ValueError, match="num_focus"):
        spatial_redundancy(brightness_classifier, square_clips(), [SQUARE])


def test_oracle_crop_beats_random_crop_on_a_trained_model(trained_oracle, easy_splits):
    test = easy_splits["test"]
    df = spatial_redundancy(trained_oracle, test, crop_sizes=[12, 32])
    acc = df.set_index(["placement", "crop_size"])["accuracy"]
    print("\n" + df.to_string())
    assert acc[("oracle", 12.0)] > acc[("random", 12.0)] + 0.15
    assert acc[("oracle", 12.0)] > acc[("center", 12.0)] + 0.15
    assert acc[("oracle", 32.0)] == acc[("random", 32.0)] == acc[("center", 32.0)]
    assert (df["clips"] == len(test)).all()


def test_temporal_redundancy_matches_the_models_own_forward(trained_oracle, easy_splits):
    test = easy_splits["test"]
    K, T = trained_oracle.num_focus, trained_oracle.num_frames
    with torch.no_grad():
        c = test.clips
        video = c.videos.float() / 255
        plan = trained_oracle.plan(video, frame_mode="uniform", gt_boxes=c.boxes, gt_mask=c.mask)
        out = trained_oracle.run(video, plan)
        # the focus network alone: its per-patch head, averaged over the K patches
        focus_logits = trained_oracle.focus_head(trained_oracle.focus_features(video, plan.boxes, plan.frame_idx))
    final_acc = float((out.logits.argmax(-1) == c.labels).float().mean())
    focus_acc = float((focus_logits.mean(1).argmax(-1) == c.labels).float().mean())
    exits = temporal_redundancy(trained_oracle, test, ks=[0, 1, K], head="exit").set_index("k")
    assert exits.loc[K, "accuracy"] == pytest.approx(final_acc)
    focus = temporal_redundancy(trained_oracle, test, ks=[1, K, T]).set_index("k")
    assert focus.loc[K, "accuracy"] == pytest.approx(focus_acc)
    assert (focus["informative_fraction"] == 1.0).all()  # the easy benchmark shows the object in every frame
    with pytest.raises(ValueError, match="ks"):
        temporal_redundancy(trained_oracle, test, ks=[K + 1], head="exit")


def test_temporal_redundancy_informative_fraction(tiny_model, tiny_split):
    T = tiny_model.num_frames
    df = temporal_redundancy(tiny_model, tiny_split, ks=[T]).set_index("k")
    assert df.loc[T, "informative_fraction"] == pytest.approx(float(tiny_split.clips.mask.float().mean()))


class FrameTwoModel(torch.nn.Module):
    """Evidence for class 1 only in frame 2's brightness (a model whose reliance we know)."""

    def forward(self, video, gt_boxes=None, gt_mask=None):
        return SimpleNamespace(logits=torch.stack([torch.zeros(len(video)), 20 * video[:, 2].mean((1, 2, 3))], -1))


def test_frame_importance_finds_the_frame_the_model_uses():
    ds = square_clips(8)
    ds.clips.videos[:] = 200  # every frame bright: class 1 is confident
    ds.clips.labels[:] = 1
    ds.clips.mask[:] = False
    ds.clips.mask[:, 2] = True
    imp = frame_importance(FrameTwoModel(), ds, fill="zero")
    assert len(imp) == 8 * T
    by_frame = imp.groupby("frame")["drop"].mean()
    assert by_frame[2] > 0.4 and np.allclose(by_frame.drop(2), 0.0)
    assert importance_correlation(imp) == pytest.approx(1.0)
    ds.clips.mask[:] = True
    assert np.isnan(importance_correlation(frame_importance(FrameTwoModel(), ds)))


def test_frame_importance_runs_on_a_model(tiny_model, tiny_split):
    imp = frame_importance(tiny_model, tiny_split)
    assert len(imp) == len(tiny_split) * tiny_model.num_frames
    assert np.isfinite(imp["drop"]).all() and imp["drop"].abs().max() <= 1


def test_samplewise_redundancy_against_difficulty(tiny_split):
    mask, boxes = tiny_split.clips.mask, tiny_split.clips.boxes
    side = ((boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])).sqrt().mean(1)  # (N,)
    steps = (side < side.median()).long() * 3  # clips with big objects leave at step 0, the rest at step 3
    df = samplewise_redundancy(steps, tiny_split, correct=torch.ones(len(side), dtype=torch.bool))
    assert np.allclose(df["object_size"], side.numpy())
    assert df.loc[0, "object_fraction"] == pytest.approx(df.loc[0, "object_size"] / tiny_split.clips.videos.shape[-1])
    assert (df["informative_frames"].to_numpy() == mask.sum(1).numpy()).all()
    summary = exit_summary(df).set_index("exit_step")
    assert summary.loc[0, "object_size"] > summary.loc[3, "object_size"]
    assert summary["clips"].sum() == len(tiny_split) and summary["fraction"].sum() == pytest.approx(1.0)
    assert (summary["accuracy"] == 1.0).all()
    with pytest.raises(ValueError, match="one per clip"):
        samplewise_redundancy(steps[:-1], tiny_split)

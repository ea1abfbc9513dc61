"""Patch trajectories: tracks, plots, plotly slider, mp4/GIF writers, and a real video (bikes.mp4)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import av  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from adafocus.models.registry import create_model  # noqa: E402
from adafocus.viz.explorers import STYLE  # noqa: E402
from adafocus.viz.trajectories import (TRAJECTORY_STYLE, policy_track, render_trajectory_frames,  # noqa: E402
                                       run_on_video, sample_video, save_trajectory_video, trajectory_figure,
                                       trajectory_plotly)

T, S = 6, 32
TRACK = np.array([[2.0 + 3 * t, 4.0 + 2 * t, 12.0 + 3 * t, 14.0 + 2 * t] for t in range(T)])  # moves right and down
GT = TRACK + np.array([1.0, 0.0, 1.0, 0.0])
MASK = np.array([True, False, True, True, False, True])
SCALE = 4
MAGENTA = np.array(STYLE.chosen_color, dtype=np.float64)


def video() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.rand(T, 3, S, S, generator=g) * 0.3  # dark noise: every frame differs, no magenta


def gif_frames(path) -> list[np.ndarray]:
    img = Image.open(path)
    frames = []
    for i in range(img.n_frames):
        img.seek(i)
        frames.append(np.asarray(img.convert("RGB"), dtype=np.float64))
    return frames


def outline_distance(img: np.ndarray, box, scale: int, color: np.ndarray) -> float:
    """Mean colour distance to ``color`` over the midpoints of the box's four edges (display pixels)."""
    x0, y0, x1, y1 = (int(round(v * scale)) for v in box)
    pts = [(y0, (x0 + x1) // 2), (y1 - 1, (x0 + x1) // 2), ((y0 + y1) // 2, x0), ((y0 + y1) // 2, x1 - 1)]
    return float(np.mean([np.linalg.norm(img[r, c] - color) for r, c in pts]))


def test_policy_track_interpolates_glance_boxes_and_keeps_real_patches():
    glance_idx = np.array([0, 4])
    glance_boxes = np.array([[0.0, 0.0, 10.0, 10.0], [8.0, 4.0, 18.0, 14.0]])
    chosen = np.array([[20.0, 20.0, 30.0, 30.0]])
    track = policy_track(6, glance_boxes, glance_idx, chosen, [3])
    assert np.allclose(track[2], [4.0, 2.0, 14.0, 12.0])  # halfway between the glance frames
    assert np.allclose(track[3], chosen[0])  # the real patch at the chosen frame
    assert np.allclose(track[5], glance_boxes[1])  # after the last glance frame: the last box
    only_chosen = policy_track(6, boxes=chosen, frame_idx=[3])
    assert np.isnan(only_chosen[[0, 1, 2, 4, 5]]).all() and np.allclose(only_chosen[3], chosen[0])
    with pytest.raises(ValueError, match="frame_idx"):
        policy_track(6, boxes=chosen, frame_idx=[7])
    with pytest.raises(ValueError, match="glance_idx"):
        policy_track(6, glance_boxes)


def test_trajectory_figure_plots_the_box_centers():
    fig = trajectory_figure(TRACK, GT, MASK, frame_idx=[1, 4], frame_size=S, title="synthetic")
    try:
        lines = {ln.get_gid(): ln for ax in fig.axes for ln in ax.lines if ln.get_gid()}
        assert np.allclose(lines["policy-x"].get_ydata(), (TRACK[:, 0] + TRACK[:, 2]) / 2)
        assert np.allclose(lines["policy-y"].get_ydata(), (TRACK[:, 1] + TRACK[:, 3]) / 2)
        assert np.allclose(lines["gt-x"].get_ydata(), (GT[:, 0] + GT[:, 2]) / 2)
        assert list(lines["chosen-x"].get_xdata()) == [1, 4]
        assert np.allclose(lines["chosen-y"].get_ydata(), (TRACK[[1, 4], 1] + TRACK[[1, 4], 3]) / 2)
        hollow = [ln for ln in fig.axes[0].lines if ln.get_markerfacecolor() == "none"]
        assert len(hollow) == 1 and list(hollow[0].get_xdata()) == [1, 4]  # the hidden frames
        assert fig.axes[1].get_ylim() == (S, 0)  # image y points down
    finally:
        plt.close(fig)
    with pytest.raises(ValueError, match="gt_boxes"):
        trajectory_figure(TRACK, GT[:2])


def test_trajectory_plotly_has_a_frame_per_frame_with_the_boxes():
    fig = trajectory_plotly(video(), TRACK, GT, MASK, frame_idx=[1, 4])
    assert len(fig.frames) == T and len(fig.layout.sliders[0].steps) == T
    for t, frame in enumerate(fig.frames):
        assert frame.name == str(t) and np.asarray(frame.data[0].z).shape == (S, S, 3)
        gt_shape, box_shape = frame.layout.shapes
        assert np.allclose([box_shape.x0, box_shape.y0, box_shape.x1, box_shape.y1], TRACK[t] - 0.5)
        assert np.allclose([gt_shape.x0, gt_shape.y0, gt_shape.x1, gt_shape.y1], GT[t] - 0.5)
        expected = TRAJECTORY_STYLE.chosen_color if t in (1, 4) else TRAJECTORY_STYLE.policy_color
        assert box_shape.line.color == expected
        assert gt_shape.line.dash == ("solid" if MASK[t] else "dash")
    assert fig.layout.shapes == fig.frames[0].layout.shapes


def test_gif_has_one_frame_per_clip_frame_with_the_box_drawn(tmp_path):
    path = save_trajectory_video(video(), TRACK, tmp_path / "track.gif", fps=5, scale=SCALE)
    frames = gif_frames(path)
    assert len(frames) == T and frames[0].shape == (S * SCALE, S * SCALE, 3)
    for t, img in enumerate(frames):
        assert outline_distance(img, TRACK[t], SCALE, MAGENTA) < 30, t
        if t + 1 < T:  # the box has moved: next frame's box is not drawn here
            assert outline_distance(img, TRACK[t + 1], SCALE, MAGENTA) > 100
    with Image.open(path) as img:
        assert img.info["duration"] == 200


def test_mp4_has_one_frame_per_clip_frame(tmp_path):
    track = TRACK.copy()
    track[2] = np.nan  # no box on frame 2
    path = save_trajectory_video(video(), track, tmp_path / "track.mp4", fps=4, scale=3, gt_boxes=GT)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [f.to_ndarray(format="rgb24").astype(np.float64) for f in container.decode(stream)]
        assert float(stream.average_rate) == pytest.approx(4.0)
    assert len(frames) == T and frames[0].shape == (96, 96, 3)
    rendered = render_trajectory_frames(video(), track, GT, scale=3)
    for img, ref in zip(frames, rendered):  # lossy, but close to what was drawn
        assert np.abs(img - ref).mean() < 12
    with pytest.raises(ValueError, match="ending in"):
        save_trajectory_video(video(), TRACK, tmp_path / "track.avi")


def test_bikes_video_patch_trajectory(tiny_cfg, tmp_path):
    """Qualitative only: the boxes drawn on the real clip are the ones the policy chose."""
    torch.manual_seed(0)
    model = create_model("uni_adafocus", tiny_cfg)
    clip, out = run_on_video(model, sample_video("bikes.mp4"), tiny_cfg)
    Tn, Sn = tiny_cfg.data.num_frames, tiny_cfg.data.frame_size
    assert clip.shape == (Tn, 3, Sn, Sn) and 0 <= clip.min() and clip.max() <= 1 and clip.std() > 0.05
    assert out.boxes.shape == (1, tiny_cfg.model.num_focus, 4)
    track = policy_track(Tn, out.glance_boxes[0], out.glance_idx[0], out.boxes[0], out.frame_idx[0])
    path = save_trajectory_video(clip, track, tmp_path / "bikes.gif", scale=SCALE)
    frames = gif_frames(path)
    assert len(frames) == Tn
    for k, t in enumerate(out.frame_idx[0].tolist()):
        assert np.allclose(track[t], out.boxes[0, k].numpy())
        assert outline_distance(frames[t], out.boxes[0, k].tolist(), SCALE, MAGENTA) < 30
    fig = trajectory_figure(track, frame_idx=out.frame_idx[0], frame_size=Sn, title="bikes.mp4")
    try:
        chosen_x = next(ln for ln in fig.axes[0].lines if ln.get_gid() == "chosen-x").get_ydata()
        assert np.allclose(chosen_x, ((out.boxes[0, :, 0] + out.boxes[0, :, 2]) / 2).numpy())
    finally:
        plt.close(fig)


def test_real_videos_refuse_oracle_models_and_unknown_names(tiny_cfg):
    with pytest.raises(ValueError, match="ground truth"):
        run_on_video(create_model("oracle", tiny_cfg), sample_video("bikes.mp4"), tiny_cfg)
    with pytest.raises(FileNotFoundError, match="bikes.mp4"):
        sample_video("no_such_clip.mp4")

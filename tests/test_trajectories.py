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
from adafocus.viz import colors  # noqa: E402
from adafocus.viz.trajectories import (policy_track, render_trajectory_frames, run_on_video,  # noqa: E402
                                       sample_video, save_trajectory_video, trajectory_figure, trajectory_plotly)

T, S = 6, 32
TRACK = np.array([[2.0 + 3 * t, 4.0 + 2 * t, 12.0 + 3 * t, 14.0 + 2 * t] for t in range(T)])  # moves right and down
GT = TRACK + np.array([1.0, 0.0, 1.0, 0.0])
MASK = np.array([True, False, True, True, False, True])
SCALE = 4
ORANGE = np.array(colors.FOCUSED.rgb, dtype=np.float64)  # the patch at a focused frame
SKY_BLUE = np.array(colors.INTERPOLATED.rgb, dtype=np.float64)  # the policy's box elsewhere


def video() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.rand(T, 3, S, S, generator=g) * 0.3  # dark noise: every frame differs, no orange or blue


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
        hollow = [ln for ln in fig.axes[0].lines if ln.get_label().startswith(colors.HIDDEN.label)]
        assert len(hollow) == 1 and list(hollow[0].get_xdata()) == [1, 4]  # the hidden frames
        assert hollow[0].get_markerfacecolor() != hollow[0].get_markeredgecolor()  # hollow markers
        assert fig.axes[1].get_ylim() == (S, 0)  # image y points down
        assert lines["chosen-x"].get_color() == colors.FOCUSED.hex and lines["gt-x"].get_color() == colors.TRUTH.hex
        legend = fig.legends[0]
        assert [t.get_text() for t in legend.get_texts()] == [
            colors.TRUTH.label, f"{colors.HIDDEN.label} (hollow)", "policy box", colors.FOCUSED.label]
        assert min(t.get_fontsize() for t in legend.get_texts()) >= 9  # readable, not 7 pt
    finally:
        plt.close(fig)
    with pytest.raises(ValueError, match="gt_boxes"):
        trajectory_figure(TRACK, GT[:2])


def test_trajectory_plotly_has_a_frame_per_frame_with_the_boxes():
    fig = trajectory_plotly(video(), TRACK, GT, MASK, frame_idx=[1, 4])
    assert len(fig.frames) == T and len(fig.layout.sliders[0].steps) == T
    for t, frame in enumerate(fig.frames):
        assert frame.name == str(t) and np.asarray(frame.data[0].z).shape == (S, S, 3)
        assert list(frame.traces) == [0], "a frame replaces the image only: the legend traces stay"
        gt_halo, gt_shape, box_halo, box_shape = frame.layout.shapes  # each box: a black halo, then the mark
        assert np.allclose([box_shape.x0, box_shape.y0, box_shape.x1, box_shape.y1], TRACK[t] - 0.5)
        assert np.allclose([gt_shape.x0, gt_shape.y0, gt_shape.x1, gt_shape.y1], GT[t] - 0.5)
        mark = colors.FOCUSED if t in (1, 4) else colors.INTERPOLATED
        assert (box_shape.line.color, box_shape.line.dash) == (mark.hex, mark.plotly_dash)
        assert gt_shape.line.dash == ("solid" if MASK[t] else "dash") and gt_shape.line.color == colors.TRUTH.hex
        assert box_halo.line.color == gt_halo.line.color == colors.hex_color(colors.HALO)
        assert box_halo.line.width > box_shape.line.width
    assert fig.layout.shapes == fig.frames[0].layout.shapes
    # every step labelled, the focused ones starred; the legend names exactly the four marks drawn
    assert [s.label for s in fig.layout.sliders[0].steps] == ["0", "1*", "2", "3", "4*", "5"]
    assert [tr.name for tr in fig.data[1:]] == [m.label for m in colors.MARKS.values()]
    # the buttons sit left of the slider, the title is short (no colour key squeezed into it)
    buttons, slider = fig.layout.updatemenus[0], fig.layout.sliders[0]
    assert buttons.x + 0.2 <= slider.x and buttons.xanchor == "left"
    assert len(fig.layout.title.text) <= 40


def test_trajectory_plotly_legend_lists_only_what_is_drawn():
    no_truth = trajectory_plotly(video(), TRACK, frame_idx=[])
    assert [tr.name for tr in no_truth.data[1:]] == [colors.INTERPOLATED.label]
    all_visible = trajectory_plotly(video(), TRACK, GT, np.ones(T, bool), frame_idx=[2])
    assert [tr.name for tr in all_visible.data[1:]] == [colors.TRUTH.label, colors.FOCUSED.label,
                                                         colors.INTERPOLATED.label]


def test_gif_has_one_frame_per_clip_frame_with_the_box_drawn(tmp_path):
    path = save_trajectory_video(video(), TRACK, tmp_path / "track.gif", fps=5, scale=SCALE, frame_idx=range(T))
    frames = gif_frames(path)
    assert len(frames) == T and frames[0].shape[1:] == (S * SCALE, 3) and frames[0].shape[0] > S * SCALE
    for t, img in enumerate(frames):
        assert outline_distance(img, TRACK[t], SCALE, ORANGE) < 30, t
        if t + 1 < T:  # the box has moved: next frame's box is not drawn here
            assert outline_distance(img, TRACK[t + 1], SCALE, ORANGE) > 100
    with Image.open(path) as img:
        assert img.info["duration"] == 200


def test_animation_frames_carry_the_legend_the_counter_and_the_palette():
    frames = render_trajectory_frames(video(), TRACK, GT, scale=SCALE, gt_mask=MASK, frame_idx=[1, 4])
    side = S * SCALE
    bands = [f[side:] for f in frames]
    assert all(b.shape == bands[0].shape and b.shape[0] >= 40 for b in bands), "one band height for the clip"
    assert all(not np.array_equal(a, b) for a, b in zip(bands, bands[1:])), "the frame counter changes"
    assert (bands[0] == colors.FOCUSED.rgb).all(-1).any() and (bands[0] == colors.INTERPOLATED.rgb).all(-1).any()
    # focused frames: a solid orange patch; other frames: a dotted sky-blue policy box
    assert outline_distance(frames[1][:side].astype(float), TRACK[1], SCALE, ORANGE) < 1
    x0, y0, x1, y1 = (int(round(v * SCALE)) for v in TRACK[0])
    top_edge = frames[0][y0, x0:x1].astype(float)
    on = (np.linalg.norm(top_edge - SKY_BLUE, axis=-1) < 1).mean()
    assert 0.3 < on < 0.7, f"a dotted edge is about half drawn, got {on:.2f}"
    # the hidden frames' true box is dashed: its top edge is partly drawn
    truth_only = render_trajectory_frames(video(), np.full((T, 4), np.nan), GT, scale=SCALE, gt_mask=MASK)
    def top_edge_share(t: int, rgb) -> float:
        gx0, gy0, gx1, _ = (int(round(v * SCALE)) for v in GT[t])
        return float((truth_only[t][gy0, gx0:gx1] == rgb).all(-1).mean())

    assert top_edge_share(0, colors.TRUTH.rgb) == 1.0  # visible: solid
    edge = top_edge_share(1, colors.HIDDEN.rgb)
    assert 0.4 < edge < 0.8, edge
    plain = render_trajectory_frames(video(), TRACK, GT, scale=SCALE, legend=False)
    assert plain[0].shape == (side, side, 3)


def test_a_halo_keeps_every_box_visible_on_an_object_of_its_own_colour():
    """The digits take any hue: a box drawn on a patch of exactly its own colour must still show (black halo)."""
    box = np.array([[8.0, 8.0, 24.0, 24.0]])
    for key, mark in colors.MARKS.items():
        same = torch.tensor(mark.rgb, dtype=torch.float32).view(1, 3, 1, 1).expand(1, 3, S, S) / 255
        policy, truth = (box, None) if key in ("focused", "interpolated") else (np.full((1, 4), np.nan), box)
        img = render_trajectory_frames(same, policy, truth, scale=SCALE, legend=False,
                                       gt_mask=[key == "truth"], frame_idx=[0] if key == "focused" else [])[0]
        black = (img == 0).all(-1)
        top = 8 * SCALE
        assert black[top - 1, top] and not black[top, top], f"{key}: a black line just outside the box's corner"
        drawn_share = 0.9 if mark.dash == "solid" else 0.4
        assert black.sum() >= 2 * 4 * (24 - 8) * SCALE * drawn_share, f"{key}: the halo rings the whole outline"
        assert black.sum() < 0.2 * black.size, key


def test_mp4_has_one_frame_per_clip_frame(tmp_path):
    track = TRACK.copy()
    track[2] = np.nan  # no box on frame 2
    path = save_trajectory_video(video(), track, tmp_path / "track.mp4", fps=4, scale=3, gt_boxes=GT)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [f.to_ndarray(format="rgb24").astype(np.float64) for f in container.decode(stream)]
        assert float(stream.average_rate) == pytest.approx(4.0)
    rendered = render_trajectory_frames(video(), track, GT, scale=3)
    h = rendered[0].shape[0]
    assert len(frames) == T and frames[0].shape[0] in (h, h + 1) and frames[0].shape[1:] == (96, 3)  # even sides
    for img, ref in zip(frames, rendered):  # lossy, but close to what was drawn
        assert np.abs(img[:h] - ref).mean() < 12
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
    path = save_trajectory_video(clip, track, tmp_path / "bikes.gif", scale=SCALE, frame_idx=out.frame_idx[0])
    frames = gif_frames(path)
    assert len(frames) == Tn
    for k, t in enumerate(out.frame_idx[0].tolist()):
        assert np.allclose(track[t], out.boxes[0, k].numpy())
        assert outline_distance(frames[t], out.boxes[0, k].tolist(), SCALE, ORANGE) < 30
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

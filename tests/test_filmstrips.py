"""Filmstrips: boxes are drawn where the policy put them (artists and rendered pixels), bars are the weights."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.colors import to_rgb  # noqa: E402

from adafocus.viz.filmstrips import FILMSTRIP_STYLE, attribution_filmstrip, drawn_boxes, policy_filmstrip  # noqa: E402
from adafocus.viz.plots import save_figure  # noqa: E402

T, S = 6, 32
GT = torch.tensor([[2.0 + t, 3.0, 14.0 + t, 15.0] for t in range(T)])
MASK = torch.tensor([True, True, False, False, True, True])
CHOSEN_IDX = torch.tensor([1, 4])
CHOSEN = torch.tensor([[16.0, 14.0, 30.0, 28.0], [12.0, 16.0, 28.0, 30.0]])
GLANCE_IDX = torch.tensor([0, 2, 4])
WEIGHTS = torch.tensor([0.2, 0.5, 0.3])


def grey_video() -> torch.Tensor:
    return torch.full((T, 3, S, S), 0.5)


def canvas(fig) -> np.ndarray:
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].astype(np.float64) / 255


def pixel_near(img: np.ndarray, ax, x: float, y: float, color: str, radius: int = 1) -> float:
    """Smallest distance to ``color`` among the rendered pixels around data point (x, y) of ``ax``."""
    xd, yd = ax.transData.transform((x, y))
    row, col = int(round(img.shape[0] - yd)), int(round(xd))
    patch = img[row - radius:row + radius + 1, col - radius:col + radius + 1]
    return float(np.linalg.norm(patch - np.array(to_rgb(color)), axis=-1).min())


def test_policy_filmstrip_draws_the_chosen_boxes_where_the_policy_said():
    fig = policy_filmstrip(grey_video(), GT, MASK, CHOSEN, CHOSEN_IDX, WEIGHTS, GLANCE_IDX, title="clip 0")
    try:
        chosen = drawn_boxes(fig, "chosen")
        assert set(chosen) == {1, 4}
        for k, t in enumerate(CHOSEN_IDX.tolist()):
            assert np.allclose(chosen[t], CHOSEN[k].numpy())
        gt = drawn_boxes(fig, "gt")
        assert set(gt) == set(range(T)) and np.allclose(gt[3], GT[3].numpy())
        # hidden frames get a dashed true box, visible ones a solid one
        styles = {p.get_gid(): p.get_linestyle() for ax in fig.axes for p in ax.patches}
        assert styles["gt-2"] == "--" and styles["gt-0"] == "-"

        img = canvas(fig)
        frame_axes = fig.axes[:T]
        magenta = FILMSTRIP_STYLE.chosen_color
        for k, t in enumerate(CHOSEN_IDX.tolist()):
            x0, y0, x1, y1 = CHOSEN[k].tolist()
            for x, y in (((x0 + x1) / 2, y0), ((x0 + x1) / 2, y1), (x0, (y0 + y1) / 2), (x1, (y0 + y1) / 2)):
                assert pixel_near(img, frame_axes[t], x, y, magenta) < 0.15, (t, x, y)
        x0, y0, x1, y1 = CHOSEN[0].tolist()  # frame 0 was not chosen: no magenta where frame 1's box is
        assert pixel_near(img, frame_axes[0], x0, (y0 + y1) / 2, magenta) > 0.3
        assert pixel_near(img, frame_axes[0], GT[0, 0].item(), 9.0, FILMSTRIP_STYLE.gt_color) < 0.15

        bars = fig.axes[T]
        rects = [p for p in bars.patches if p.get_gid() == "temporal-weights"]
        centers = sorted((r.get_x() + r.get_width() / 2, r.get_height()) for r in rects)
        assert np.allclose([c for c, _ in centers], GLANCE_IDX.numpy())
        assert np.allclose([h for _, h in centers], WEIGHTS.numpy())
    finally:
        plt.close(fig)


def test_policy_filmstrip_from_a_model(tiny_model, tiny_split, tmp_path):
    c = tiny_split.clips
    out = tiny_model(c.videos[:1].float() / 255)
    fig = policy_filmstrip(c.videos[0], c.boxes[0], c.mask[0], out.boxes[0], out.frame_idx[0],
                           out.temporal_weights[0], out.glance_idx[0])
    try:
        chosen = drawn_boxes(fig)
        assert sorted(chosen) == sorted(out.frame_idx[0].tolist())
        for k, t in enumerate(out.frame_idx[0].tolist()):
            assert np.allclose(chosen[t], out.boxes[0, k].numpy(), atol=1e-5)
        paths = save_figure(fig, tmp_path / "filmstrip")
        assert all(p.stat().st_size > 0 for p in paths)
    finally:
        plt.close(fig)


def test_policy_filmstrip_rejects_bad_shapes():
    with pytest.raises(ValueError, match="gt_boxes"):
        policy_filmstrip(grey_video(), GT[:3])
    with pytest.raises(ValueError, match="chosen_boxes"):
        policy_filmstrip(grey_video(), GT, MASK, CHOSEN[:1], CHOSEN_IDX)
    with pytest.raises(ValueError, match="frame_idx"):
        policy_filmstrip(grey_video(), GT, MASK, CHOSEN, torch.tensor([1, 9]))
    with pytest.raises(ValueError, match="glance_idx"):
        policy_filmstrip(grey_video(), temporal_weights=WEIGHTS)
    with pytest.raises(ValueError, match="video"):
        policy_filmstrip(torch.zeros(T, S, S))


def test_attribution_filmstrip_shows_the_map_on_one_scale():
    attr = torch.zeros(T, S, S)
    attr[2, 20:24, 4:8] = 3.0
    attr[5, 0:2, 0:2] = -1.0  # magnitudes are shown
    video = torch.zeros(T, 3, S, S)
    fig = attribution_filmstrip(video, attr, GT, MASK, CHOSEN, CHOSEN_IDX)
    try:
        overlays = [ax.images[-1] for ax in fig.axes[T:2 * T]]
        assert all(im.get_clim() == (0.0, 3.0) for im in overlays)
        assert np.allclose(np.asarray(overlays[5].get_array()), attr[5].abs().numpy())
        img = canvas(fig)
        ax2 = fig.axes[T + 2]
        hot = img[tuple(int(round(v)) for v in (img.shape[0] - ax2.transData.transform((6, 22))[1],
                                                  ax2.transData.transform((6, 22))[0]))]
        cold = img[tuple(int(round(v)) for v in (img.shape[0] - ax2.transData.transform((26, 6))[1],
                                                   ax2.transData.transform((26, 6))[0]))]
        assert hot.sum() > cold.sum() + 0.5  # the peak is bright, the rest of a black frame dark
        bars = [p for p in fig.axes[-1].patches if p.get_gid() == "frame-scores"]
        heights = [p.get_height() for p in sorted(bars, key=lambda p: p.get_x())]
        assert np.allclose(heights, attr.abs().sum((1, 2)).numpy())
        assert set(drawn_boxes(fig, "chosen")) == {1, 4}
    finally:
        plt.close(fig)
    with pytest.raises(ValueError, match="attribution"):
        attribution_filmstrip(video, attr[:, :8])


def test_a_long_clip_wraps_into_rows_that_fit_a_notebook():
    """16 frames would make a 2000 px strip, shrunk to half in a notebook; wrapped, it stays readable."""
    video = torch.full((16, 3, S, S), 0.5)
    gt = torch.tensor([[2.0, 3.0, 14.0, 15.0]] * 16)
    fig = policy_filmstrip(video, gt, torch.arange(16) % 3 > 0, CHOSEN, CHOSEN_IDX + 8, WEIGHTS, GLANCE_IDX * 2)
    try:
        width_px = fig.get_figwidth() * fig.dpi
        assert width_px <= 900, width_px
        frame_axes = fig.axes[:16]
        rows = sorted({round(ax.get_position().y0, 3) for ax in frame_axes})
        assert len(rows) == 2 and frame_axes[8].get_position().y0 < frame_axes[7].get_position().y0
        assert set(drawn_boxes(fig, "chosen")) == {9, 12}
        labels = [t.get_text() for t in fig.legends[0].get_texts()]
        assert labels == ["true box", "true box, object hidden", "patch (focused frame)"]
    finally:
        plt.close(fig)

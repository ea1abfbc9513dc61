"""The ipywidgets explorers: pure renderers draw boxes where they belong, sliders re-render."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from adafocus.config import get_config
from adafocus.data.synthetic import SyntheticVideoDataset, generate_clips
from adafocus.viz import colors
from adafocus.viz.explorers import (STYLE, ClipPrediction, ExplorerStyle, as_predict_fn, budget_explorer,
                                    clip_explorer, compare_explorer, display_scale, draw_box, early_exit, exit_cost,
                                    render_exit_chart, render_frame, render_strip)

NUM_CLIPS = 4


@pytest.fixture(scope="module")
def ds() -> SyntheticVideoDataset:
    cfg = get_config("tiny").data
    return SyntheticVideoDataset(generate_clips(cfg, "test", range(NUM_CLIPS), progress=False), cfg, "test")


def color_bbox(img: np.ndarray, color: tuple[int, int, int]) -> tuple[int, int, int, int]:
    """(row0, col0, row1, col1) inclusive of the pixels that have exactly ``color``."""
    rows, cols = np.nonzero((img == np.array(color, dtype=np.uint8)).all(axis=-1))
    assert len(rows), f"no pixel of colour {color}"
    return rows.min(), cols.min(), rows.max(), cols.max()


def expected_bbox(box, scale: int) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = (int(round(float(v) * scale)) for v in box)
    return y0, x0, y1 - 1, x1 - 1


def assert_outline(img: np.ndarray, box, scale: int, color) -> None:
    """The box's four edges (their midpoints and corners) are drawn in ``color``."""
    r0, c0, r1, c1 = expected_bbox(box, scale)
    rm, cm = (r0 + r1) // 2, (c0 + c1) // 2
    for r, c in ((r0, c0), (r1, c1), (r0, cm), (r1, cm), (rm, c0), (rm, c1)):
        assert tuple(img[r, c]) == tuple(color), f"pixel ({r}, {c}) of box {box} at scale {scale}"


def edge_share(img: np.ndarray, box, scale: int, color) -> float:
    """The share of the box's outermost outline pixels that have exactly ``color`` (1 = solid)."""
    r0, c0, r1, c1 = expected_bbox(box, scale)
    ring = np.concatenate([img[r0, c0:c1 + 1], img[r1, c0:c1 + 1], img[r0:r1 + 1, c0], img[r0:r1 + 1, c1]])
    return float((ring == np.array(color, dtype=np.uint8)).all(-1).mean())


# ----------------------------------------------------------------------------- pure renderers


def test_draw_box_outlines_inside_the_box_and_leaves_the_rest():
    img = np.zeros((40, 40, 3), dtype=np.uint8)
    out = draw_box(img, (2, 3, 7.5, 9), (255, 0, 0), scale=4, width=2)
    assert color_bbox(out, (255, 0, 0)) == (12, 8, 35, 29)
    assert (out[14:34, 10:28] == 0).all(), "the inside of the box stays untouched"
    assert (img == 0).all(), "draw_box must not modify its input"
    clipped = draw_box(img, (-5, -5, 3, 3), (0, 255, 0), scale=4)
    assert color_bbox(clipped, (0, 255, 0)) == (0, 0, 11, 11)


def test_draw_box_dashes_and_halo():
    img = np.full((40, 40, 3), 200, dtype=np.uint8)
    out = draw_box(img, (2, 2, 8, 8), (255, 0, 0), scale=4, width=2, dash=(4, 4), halo=(0, 0, 0))
    assert 0.4 < edge_share(out, (2, 2, 8, 8), 4, (255, 0, 0)) < 0.7, "dashed: about half of the outline"
    assert tuple(out[8, 8]) == (255, 0, 0) and tuple(out[7, 8]) == (0, 0, 0), "dashes start at the corner, haloed"
    assert tuple(out[20, 20]) == (200, 200, 200), "the inside stays untouched"


def test_render_frame_upscales_and_accepts_gray_and_uint8():
    gray = torch.linspace(0, 1, 8 * 8).reshape(1, 8, 8)
    img = render_frame(gray, scale=3)
    assert img.shape == (24, 24, 3) and img.dtype == np.uint8
    assert (img[..., 0] == img[..., 1]).all() and img[0, 0, 0] == 0 and img[-1, -1, 0] == 255
    assert (img[:3, :3] == img[0, 0]).all(), "nearest upscaling repeats each pixel scale x scale times"
    with pytest.raises(ValueError, match="frame"):
        render_frame(torch.zeros(8, 8))


def test_render_strip_wraps_long_clips_into_rows():
    s = ExplorerStyle(strip_columns=8)
    strip = render_strip(torch.zeros(16, 3, 16, 16), current=9, chosen=[3], style=s)
    col_w, col_h = s.thumb_size + 2 * s.gap, 4 * s.gap + 2 * s.bar_height + s.thumb_size
    assert strip.shape == (2 * col_h, 8 * col_w, 3)
    assert tuple(strip[col_h, col_w + col_w // 2]) == s.current_color, "frame 9: second row, second column"


def test_render_strip_marks_mask_chosen_and_current():
    video = torch.zeros(5, 3, 16, 16)
    s = STYLE
    strip = render_strip(video, current=2, mask=[True, False, True, False, False], chosen=[1, 3], style=s)
    col = s.thumb_size + 2 * s.gap
    assert strip.shape == (4 * s.gap + 2 * s.bar_height + s.thumb_size, 5 * col, 3)
    top, bottom = s.gap, 3 * s.gap + s.bar_height + s.thumb_size
    for t in range(5):
        c = t * col + col // 2
        assert tuple(strip[top, c]) == (s.informative_color if t in (0, 2) else s.uninformative_color)
        assert (tuple(strip[bottom, c]) == s.chosen_color) == (t in (1, 3))
        assert (tuple(strip[0, c]) == s.current_color) == (t == 2)


def test_early_exit_and_its_cost():
    probs = np.array([[0.5, 0.5], [0.3, 0.7], [0.1, 0.9], [0.05, 0.95]])  # S = 4: 2 glance + 2 focus
    assert early_exit(probs, 1.0) == 3, "threshold 1 disables early exit"
    assert early_exit(probs, 0.6) == 1 and early_exit(probs, 0.9) == 2 and early_exit(probs, 0.99) == 3
    cost = lambda P, K: 100 + 10 * K * P  # noqa: E731
    assert exit_cost(cost, 4, 2, exit_step=0, num_steps=4) == 100  # a glance exit pays the glance
    assert exit_cost(cost, 4, 2, exit_step=2, num_steps=4) == 140  # the first focus step
    assert exit_cost(cost, 4, 2, exit_step=3, num_steps=4) == 180
    chart = render_exit_chart(probs, 2, 0.6, 1)
    assert chart.shape[1] == 4 * STYLE.chart_bar_width
    assert (chart == np.array(STYLE.threshold_color, dtype=np.uint8)).all(-1).any(), "threshold line drawn"


# ----------------------------------------------------------------------------- clip explorer


def test_clip_slider_changes_the_rendered_clip(ds):
    w = clip_explorer(ds)
    first = w.last_render
    assert first["clip"] == 0 and w.panels[""].image.value == first["png"]
    w.clip_slider.value = 1
    assert w.last_render["clip"] == 1 and "clip 1" in w.last_render["text"]
    assert w.last_render["png"] != first["png"]
    assert w.panels[""].image.value == w.last_render["png"], "the widget shows what was rendered"
    label = int(ds[1]["label"])
    assert f"label: <b>{label}</b>" in w.last_render["text"]


def test_frame_slider_moves_the_ground_truth_box(ds):
    w = clip_explorer(ds)
    boxes = ds[0]["boxes"]  # (T, 4)
    t = int((boxes - boxes[0]).abs().sum(1).argmax())  # the frame where the box moved most
    assert (boxes[t] - boxes[0]).abs().max() >= 1, "the synthetic object should move"
    scale = display_scale(ds[0]["video"].shape[-1])
    assert color_bbox(w.last_render["frame"], STYLE.gt_color) == expected_bbox(boxes[0], scale)
    w.frame_slider.value = t
    frame = w.last_render["frame"]
    assert w.last_render["frame_index"] == t
    assert color_bbox(frame, STYLE.gt_color) == expected_bbox(boxes[t], scale)
    visible = bool(ds[0]["mask"][t])
    share = edge_share(frame, boxes[t], scale, STYLE.gt_color)
    assert share > 0.9 if visible else 0.3 < share < 0.8, "solid where the object is visible, dashed where hidden"
    assert w.last_render["marks"] == ["truth" if visible else "hidden"]


def test_the_frame_keeps_its_size_and_the_legend_lists_what_is_drawn(ds):
    w = clip_explorer(ds)
    panel = w.panels[""]
    h, wd = w.last_render["frame"].shape[:2]
    assert (panel.image.layout.width, panel.image.layout.height) == (f"{wd}px", f"{h}px")
    assert panel.image.layout.object_fit == "contain" and panel.image.layout.flex == "0 0 auto"
    sh, sw = w.last_render["strip"].shape[:2]
    assert (panel.strip.layout.width, panel.strip.layout.height) == (f"{sw}px", f"{sh}px")
    mask = ds[0]["mask"]
    expected = ["truth"] * bool(mask.any()) + ["hidden"] * bool((~mask).any())
    assert w.last_render["legend"] == expected
    text = w.last_render["text"]
    assert colors.FOCUSED.label not in text and colors.INTERPOLATED.label not in text, "no model: no policy boxes"
    # each legend item keeps its swatch and its label in one unbreakable box
    items = text.split('class="adafocus-legend-item"')[1:]
    assert len(items) >= len(expected) and all("white-space:nowrap" in it and "adafocus-swatch" in it
                                               and "adafocus-label" in it for it in items)


class StubOutput:
    """A test double with AdaFocusOutput's fields for one clip: fixed boxes at chosen frames."""

    def __init__(self, logits, frame_idx, boxes, glance_idx, glance_boxes):
        self.logits = torch.as_tensor(logits, dtype=torch.float32)[None]
        self.frame_idx = torch.as_tensor(frame_idx)[None]
        self.boxes = torch.as_tensor(boxes, dtype=torch.float32)[None]
        self.glance_idx = torch.as_tensor(glance_idx)
        self.glance_boxes = torch.as_tensor(glance_boxes, dtype=torch.float32)[None]


def test_clip_explorer_with_a_model_draws_chosen_and_interpolated_boxes(ds):
    calls = []
    glance_boxes = [[2, 2, 12, 12], [10, 4, 20, 14], [2, 2, 12, 12], [2, 2, 12, 12]]

    def predict(video):
        calls.append(tuple(video.shape))
        return StubOutput([0.0, 3.0, 0.0, 0.0], [1, 4, 6], [[4, 4, 20, 20], [8, 6, 30, 26], [0, 0, 16, 16]],
                          [0, 2, 4, 6], glance_boxes)

    w = clip_explorer(ds, predict_fn=predict)
    scale = display_scale(ds[0]["video"].shape[-1])
    assert calls == [(1, *ds[0]["video"].shape)]
    assert "prediction: <b>1</b>" in w.last_render["text"] and "chosen frames: [1, 4, 6]" in w.last_render["text"]
    w.frame_slider.value = 4  # a chosen frame: the patch box is drawn
    assert_outline(w.last_render["frame"], (8, 6, 30, 26), scale, STYLE.chosen_color)
    w.frame_slider.value = 3  # not chosen: the policy box interpolated between glance frames 2 and 4, dotted
    assert 0.3 < edge_share(w.last_render["frame"], (6, 3, 16, 13), scale, STYLE.policy_color) < 0.7
    r0, c0, _, _ = expected_bbox((8, 6, 30, 26), scale)
    assert tuple(w.last_render["frame"][r0 + scale, c0]) != STYLE.chosen_color
    assert w.last_render["marks"][-1] == "interpolated"
    assert len(calls) == 1, "the model runs once per clip, not once per frame"
    assert {"focused", "interpolated"} <= set(w.last_render["legend"])


def test_as_predict_fn_runs_in_eval_mode_without_grad_and_restores_training():
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(3, 2)
            self.seen = None

        def forward(self, video):
            self.seen = (self.training, torch.is_grad_enabled())
            return {"logits": self.lin(video.mean((1, 3, 4)))}

    net = Net().train()
    pred = ClipPrediction.from_output(as_predict_fn(net)(torch.rand(1, 4, 3, 8, 8)))
    assert net.seen == (False, False) and net.training
    assert pred.probs.shape == (2,) and abs(pred.probs.sum() - 1) < 1e-6
    with pytest.raises(ValueError, match="logits"):
        ClipPrediction.from_output({"boxes": torch.zeros(1, 2, 4)})


def test_compare_explorer_shows_each_model_side_by_side(ds):
    def model(box):
        return lambda video: StubOutput([1.0, 0, 0, 0], [0, 2], [box, box], [0, 7], [box, box])

    w = compare_explorer(ds, {"left": model([0, 0, 10, 10]), "right": model([12, 12, 30, 30])})
    scale = display_scale(ds[0]["video"].shape[-1])
    assert_outline(w.renders["left"]["frame"], (0, 0, 10, 10), scale, STYLE.chosen_color)
    assert_outline(w.renders["right"]["frame"], (12, 12, 30, 30), scale, STYLE.chosen_color)
    w.frame_slider.value = 2
    assert all(r["frame_index"] == 2 for r in w.renders.values())
    with pytest.raises(ValueError, match="models"):
        compare_explorer(ds, {})


def test_a_panel_without_a_spatial_policy_lists_no_interpolated_box(ds):
    """A random-patch model has patches but no glance boxes: its legend must not promise a policy box."""
    class NoGlance(StubOutput):
        def __init__(self):
            super().__init__([1.0, 0, 0, 0], [0, 2], [[0, 0, 10, 10]] * 2, [0, 7], [[0, 0, 10, 10]] * 2)
            self.glance_boxes = None

    w = compare_explorer(ds, {"policy": lambda v: StubOutput([1.0, 0, 0, 0], [0, 2], [[0, 0, 10, 10]] * 2, [0, 7],
                                                            [[0, 0, 10, 10]] * 2),
                              "random patch": lambda v: NoGlance()})
    assert "interpolated" in w.renders["policy"]["legend"]
    assert "interpolated" not in w.renders["random patch"]["legend"]
    assert "focused" in w.renders["random patch"]["legend"]
    assert colors.INTERPOLATED.label not in w.renders["random patch"]["text"]
    panels = w.children[1]
    assert panels.layout.flex_flow == "row wrap", "panels stack when the output area is narrow"


def test_empty_dataset_is_rejected():
    with pytest.raises(ValueError, match="dataset"):
        clip_explorer([])


# ----------------------------------------------------------------------------- budget explorer


class StubBudgetModel:
    """A test double for the budget interface: ``T_g`` glance exits, then ``K`` focus exits."""

    glance_frames, num_classes = 3, 4

    def __init__(self):
        self.calls = []

    def __call__(self, video, patch_size, num_focus):
        self.calls.append((patch_size, num_focus))
        S = self.glance_frames + num_focus
        margin = torch.linspace(0.1, 4.0, S)  # confidence grows with every step
        exit_logits = torch.zeros(1, S, self.num_classes)
        exit_logits[0, :, 2] = margin
        return {"logits": exit_logits[:, -1], "exit_logits": exit_logits,
                "frame_idx": torch.arange(num_focus)[None]}


def test_budget_explorer_k_and_threshold_change_the_macs(ds):
    model = StubBudgetModel()
    cost = lambda P, K: 2_000_000 + K * P * P * 1000  # noqa: E731
    w = budget_explorer(model, ds, cost, lambda m, video, P, K: m(video, P, K), patch_sizes=[8, 16],
                        focus_counts=[1, 2, 3])
    assert model.calls == [(w.patch_slider.value, w.k_slider.value)]
    before = w.last_render
    assert before["macs"] == cost(before["patch_size"], before["num_focus"]), "no early exit at threshold 1"
    w.k_slider.value = 3
    after = w.last_render
    assert after["macs"] == cost(after["patch_size"], 3) != before["macs"]
    assert "2.77 MMACs" in after["text"] and "2.77 MMACs" not in before["text"]
    assert after["exit_step"] == StubBudgetModel.glance_frames + 3 - 1
    w.threshold_slider.value = 0.5  # leaves during the glance: only the glance is paid for
    early = w.last_render
    assert early["exit_step"] < StubBudgetModel.glance_frames and early["macs"] == cost(16, 0)
    assert early["confidence"] >= 0.5 and early["prediction"] == 2
    assert "glance step" in early["text"] and "saved" in early["text"]
    assert len(model.calls) == 2, "a threshold change reuses the cached run"


def test_budget_explorer_needs_a_run_fn(ds):
    class FixedBudgetNet(torch.nn.Module):
        def forward(self, video):
            return {"logits": torch.zeros(1, 4)}

    cost = lambda P, K: 1.0  # noqa: E731
    with pytest.raises(TypeError, match="run_fn"):
        budget_explorer(FixedBudgetNet(), ds, cost, run_fn=None)
    w = budget_explorer(FixedBudgetNet(), ds, cost, run_fn=lambda m, video, P, K: m(video))
    assert w.last_render["exit_step"] == 0 and w.last_render["macs"] == 1.0


def test_budget_explorer_on_a_model_run_for_k_steps(ds, tiny_model):
    """A Uni-AdaFocus is built for one P and K; ``run(plan, steps=k)`` looks at its first k patches only."""
    T_g, K = tiny_model.cfg.glance_frames, tiny_model.num_focus
    runs = []

    def run_fn(model, video, P, k):
        runs.append(k)
        with torch.no_grad():
            return model.run(video, model.plan(video), steps=k)

    w = budget_explorer(tiny_model, ds, lambda P, k: 1e6 + k * 1e5, run_fn, patch_sizes=[tiny_model.cfg.patch_size],
                        focus_counts=list(range(1, K + 1)))
    w.k_slider.value = 1
    assert runs[-1] == 1 and w.last_render["exit_step"] == T_g  # threshold 1: the last exit of T_g + 1
    assert w.last_render["macs"] == 1.1e6

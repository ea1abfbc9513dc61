"""ipywidgets explorers: scrub through clips and watch where (and when) a model looks.

Three explorers, one call each in a notebook (each returns an ``ipywidgets.VBox``):

- :func:`clip_explorer` -- pick a clip, scrub (or play) its frames; the frame is drawn with its
  ground-truth box and, when a model is given, the policy's box: the real patch box at the frames
  the temporal policy chose, and between them the box interpolated from the glance frames. A strip
  of thumbnails shows the whole **patch trajectory**, the informative-frame mask (top bar) and the
  chosen frames (bottom bar).
- :func:`budget_explorer` -- sliders for the patch size ``P``, the number of focus frames ``K`` and
  the early-exit confidence threshold; shows the prediction, its confidence at every exit step and
  the MACs actually spent. The caller provides how to run a model at ``(P, K)`` (``run_fn``) and what
  that costs (``cost_fn``); the exit rule is :func:`adafocus.analysis.early_exit.exit_steps`.
- :func:`compare_explorer` -- the same clip and frame side by side for several models.

Everything drawn comes from **pure renderers** (``render_frame``, ``render_strip``,
``render_exit_chart``: arrays in, an RGB ``uint8`` array out), so tests can check that a box is
drawn where it should be. Each explorer keeps what it drew last in ``last_render`` (a dict with the
arrays, the PNG bytes and the text), which changes whenever a slider moves.

Models are duck-typed: any callable ``model(video (1, T, C, H, W) float in [0, 1])`` returning an
object (or dict) with ``logits (1, n)`` and optionally ``exit_logits (1, S, n)``, ``boxes (1, K, 4)``,
``frame_idx (1, K)``, ``glance_boxes (1, T_g, 4)``, ``glance_idx (1, T_g)`` or ``(T_g,)`` and
``temporal_weights (1, T_g)`` (the fields of ``AdaFocusOutput``). Boxes are ``(x0, y0, x1, y1)``
in continuous pixel coordinates (pixel ``i`` covers ``[i, i + 1)``).
"""

from __future__ import annotations

import html
import io
import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import ipywidgets as widgets
import numpy as np
import torch
from PIL import Image

from adafocus.analysis.early_exit import exit_steps
from adafocus.viz import colors
from adafocus.viz.colors import MARKS, RGB, Mark, legend_html
PredictFn = Callable[[torch.Tensor], Any]  # video (1, T, C, H, W) -> model output
BudgetRunFn = Callable[[Any, torch.Tensor, int, int], Any]  # (model, video, P, K) -> model output
CostFn = Callable[[int, int], float]  # (P, K) -> MACs of a run with K focus patches of P x P (K = 0: glance only)


@dataclass(frozen=True)
class ExplorerStyle:
    """Sizes and colours of everything the explorers draw (the colours are :mod:`adafocus.viz.colors`'s)."""

    display_size: int = 320  # the frame is upscaled (nearest) by an integer factor to at least this side
    thumb_size: int = 40  # side of one thumbnail in the strip
    strip_columns: int = 8  # thumbnails per row of the strip (longer clips wrap into rows)
    caption_min_px: int = 230  # the caption beside the frame; narrower output areas put it underneath
    panel_basis_px: int = 580  # a panel's width before it grows: comparison panels sit side by side where the
    # output area holds two of them, and stack where it does not
    line_width: int = 2  # box outline in display pixels (thumbnails use 1)
    bar_height: int = 5  # the strip's mask and chosen-frame bars
    gap: int = 2  # space around each thumbnail; the current frame's border
    chart_height: int = 120  # the exit chart's bar area
    chart_bar_width: int = 24
    play_interval_ms: int = 250  # Play widget: milliseconds per frame
    text_padding: str = "0 0 0 12px"  # CSS padding of the captions next to the images
    max_cached: int = 64  # model outputs kept per explorer (clip, P, K)
    gt_color: RGB = colors.TRUTH.rgb  # the ground-truth box (dashed where the object is hidden)
    policy_color: RGB = colors.INTERPOLATED.rgb  # the policy's box between chosen frames (interpolated)
    chosen_color: RGB = colors.FOCUSED.rgb  # the patch box at a frame the model chose; chosen-frame bar
    informative_color: RGB = colors.VISIBLE_RGB  # strip: top bar of frames where the object is visible
    uninformative_color: RGB = colors.HIDDEN_RGB
    current_color: RGB = (200, 200, 200)  # strip: border of the current frame
    background: RGB = colors.DARK_BACKGROUND
    glance_color: RGB = colors.GLANCE_RGB  # exit chart: glance steps
    focus_color: RGB = colors.FOCUS_RGB  # exit chart: focus steps
    threshold_color: RGB = colors.THRESHOLD_RGB


STYLE = ExplorerStyle()


# ----------------------------------------------------------------------------- pure renderers


def to_rgb(frame: torch.Tensor | np.ndarray) -> np.ndarray:
    """A frame ``(C, H, W)`` (uint8, or float in [0, 1]; C = 1 or 3) as an RGB ``(H, W, 3)`` uint8 array."""
    a = frame.detach().cpu().numpy() if isinstance(frame, torch.Tensor) else np.asarray(frame)
    if a.ndim != 3 or a.shape[0] not in (1, 3):
        raise ValueError(f"frame: expected (C, H, W) with C in (1, 3), got shape {a.shape}")
    if a.dtype != np.uint8:
        a = np.clip(np.round(a.astype(np.float32) * 255), 0, 255).astype(np.uint8)
    a = np.repeat(a, 3, axis=0) if a.shape[0] == 1 else a
    return np.ascontiguousarray(a.transpose(1, 2, 0))


def resize_nearest(img: np.ndarray, height: int, width: int) -> np.ndarray:
    """Nearest-neighbour resize of ``(H, W, ...)`` to ``(height, width, ...)`` (up or down)."""
    H, W = img.shape[:2]
    rows = np.arange(height) * H // height
    cols = np.arange(width) * W // width
    return img[rows[:, None], cols[None, :]]


def display_scale(frame_side: int, style: ExplorerStyle = STYLE) -> int:
    """The integer upscale factor that brings a frame to at least ``style.display_size`` pixels."""
    return max(1, math.ceil(style.display_size / frame_side))


def outline_mask(shape: tuple[int, int], box: Sequence[float], scale: float = 1.0, width: int = 1,
                 dash: tuple[int, int] | None = None) -> np.ndarray:
    """Boolean ``(H, W)``: the outline of ``box`` (frame pixels, times ``scale``) inside the box.

    The outline covers display rows ``round(y0 * scale) .. round(y1 * scale) - 1`` and the same for
    columns, ``width`` pixels thick; a box partly outside the image is clipped to it. ``dash = (on,
    off)`` pixels breaks each side into dashes that start at its first corner.
    """
    H, W = shape
    mask = np.zeros((H, W), dtype=bool)
    x0, y0, x1, y1 = (int(round(float(v) * scale)) for v in box)
    x0, x1 = max(0, min(x0, W)), max(0, min(x1, W))
    y0, y1 = max(0, min(y0, H)), max(0, min(y1, H))
    if x1 <= x0 or y1 <= y0:
        return mask
    w = max(1, min(width, (x1 - x0) // 2, (y1 - y0) // 2)) if min(x1 - x0, y1 - y0) > 1 else 1
    cols, rows = np.ones(x1 - x0, bool), np.ones(y1 - y0, bool)
    if dash is not None:
        cols, rows = (np.arange(x1 - x0) % sum(dash)) < dash[0], (np.arange(y1 - y0) % sum(dash)) < dash[0]
    mask[y0:y0 + w, x0:x1] |= cols  # top
    mask[y1 - w:y1, x0:x1] |= cols  # bottom
    mask[y0:y1, x0:x0 + w] |= rows[:, None]  # left
    mask[y0:y1, x1 - w:x1] |= rows[:, None]  # right
    return mask


def draw_box(img: np.ndarray, box: Sequence[float], color: RGB, scale: float = 1.0, width: int = 1,
             dash: tuple[int, int] | None = None, halo: RGB | None = None) -> np.ndarray:
    """A copy of ``img (H, W, 3)`` with the outline of ``box`` drawn in ``color`` (see :func:`outline_mask`),
    ringed one pixel wide in ``halo`` (inside and outside) when given."""
    out = img.copy()
    mask = outline_mask(out.shape[:2], box, scale, width, dash)
    if halo is not None:
        out[colors._dilate(mask) & ~mask] = halo
    out[mask] = color
    return out


BoxStyle = RGB | Mark  # a plain colour (solid, no halo) or a mark of the palette


def render_frame(frame: torch.Tensor | np.ndarray, boxes: Sequence[tuple[Sequence[float], BoxStyle]] = (),
                 scale: float = 1.0, line_width: int = 1) -> np.ndarray:
    """A frame ``(C, H, W)`` upscaled by ``scale`` with box outlines drawn in order: ``(H*s, W*s, 3)`` uint8.

    Each box comes with an RGB colour (a solid line) or a :class:`~adafocus.viz.colors.Mark` (its colour,
    line style and width, with the black halo)."""
    img = to_rgb(frame)
    H, W = img.shape[:2]
    img = resize_nearest(img, max(1, round(H * scale)), max(1, round(W * scale)))
    for box, how in boxes:
        if isinstance(how, Mark):
            w = max(1, round(line_width * how.width))
            img = draw_box(img, box, how.rgb, scale, w, how.raster_dash(w), colors.HALO)
        else:
            img = draw_box(img, box, how, scale, line_width)
    return img


def render_strip(video: torch.Tensor | np.ndarray, current: int, mask: Sequence[bool] | None = None,
                 chosen: Sequence[int] = (),
                 frame_boxes: Sequence[Sequence[tuple[Sequence[float], BoxStyle]]] | None = None,
                 style: ExplorerStyle = STYLE) -> np.ndarray:
    """Thumbnails of all ``T`` frames of ``video (T, C, H, W)``: the patch trajectory at a glance.

    Above each thumbnail a bar shows ``mask[t]`` (informative or not), below it a bar marks the
    frames in ``chosen``; the ``current`` frame gets a border. ``frame_boxes[t]`` are the boxes
    drawn on thumbnail ``t``. At most ``style.strip_columns`` thumbnails per row (longer clips wrap,
    so the strip never needs shrinking). Returns ``(rows * column height, columns * column width, 3)``.
    """
    T, side = video.shape[0], style.thumb_size
    g, bar = style.gap, style.bar_height
    col_w, col_h = side + 2 * g, 4 * g + 2 * bar + side
    cols = max(1, min(T, style.strip_columns))
    rows = math.ceil(T / cols)
    scale = side / max(video.shape[-2:])
    strip = np.empty((rows * col_h, cols * col_w, 3), dtype=np.uint8)
    strip[:] = style.background
    chosen_set = {int(k) for k in chosen}
    for t in range(T):
        r, q = divmod(t, cols)
        c = strip[r * col_h:(r + 1) * col_h, q * col_w:(q + 1) * col_w]
        if t == current:
            c[:] = style.current_color
            c[g:-g, g:-g] = style.background
        if mask is not None:
            c[g:g + bar, g:g + side] = style.informative_color if mask[t] else style.uninformative_color
        thumb = render_frame(video[t], frame_boxes[t] if frame_boxes is not None else (), scale, 1)
        c[2 * g + bar:2 * g + bar + side, g:g + side] = resize_nearest(thumb, side, side)
        if t in chosen_set:
            c[3 * g + bar + side:3 * g + 2 * bar + side, g:g + side] = style.chosen_color
    return strip


def early_exit(exit_probs: np.ndarray, threshold: float) -> int:
    """The first step whose confidence (max softmax) reaches ``threshold``; the last step if none does.

    ``exit_probs`` is ``(S, n)``; one ``threshold`` for every exit (``>= 1`` disables early exit: the
    last step). The rule is :func:`adafocus.analysis.early_exit.exit_steps`.
    """
    conf = torch.as_tensor(np.asarray(exit_probs)).amax(dim=1)  # (S,)
    thresholds = torch.full(conf.shape, float(threshold) if threshold < 1 else float("inf"), dtype=conf.dtype)
    return int(exit_steps(conf[None], thresholds)[0])


def render_exit_chart(exit_probs: np.ndarray, glance_frames: int, threshold: float, exit_step: int,
                      style: ExplorerStyle = STYLE) -> np.ndarray:
    """Bars of the confidence at each of the ``S`` exit steps (glance steps, then focus steps).

    A horizontal line marks ``threshold``; steps after ``exit_step`` (never computed) are dimmed.
    Returns ``(chart_height + 2 * gap, S * bar_width, 3)`` uint8.
    """
    conf = exit_probs.max(axis=1)
    h, w, g = style.chart_height, style.chart_bar_width, style.gap
    chart = np.empty((h + 2 * g, len(conf) * w, 3), dtype=np.uint8)
    chart[:] = style.background
    for s, c in enumerate(conf):
        color = np.array(style.glance_color if s < glance_frames else style.focus_color, dtype=np.float32)
        if s > exit_step:
            color = color * 0.35 + np.array(style.background) * 0.65
        top = g + h - int(round(float(c) * h))
        chart[top:g + h, s * w + 1:(s + 1) * w - 1] = color.astype(np.uint8)
    if threshold < 1:
        y = g + h - int(round(threshold * h))
        chart[y:y + 1, :] = style.threshold_color
    return chart


def encode_png(img: np.ndarray) -> bytes:
    """PNG bytes of an RGB ``(H, W, 3)`` uint8 array."""
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="png", compress_level=1)
    return buf.getvalue()


def interpolate_box(glance_boxes: np.ndarray, glance_idx: np.ndarray, t: int) -> np.ndarray:
    """The box at frame ``t`` linearly interpolated between the glance frames' boxes ``(T_g, 4)``.

    Approximate between glance frames: the model interpolates *actions* (position and scale), and
    a box is not linear in both together. Frames outside the glance range take the nearest box.
    """
    return np.array([np.interp(t, glance_idx, glance_boxes[:, j]) for j in range(4)], dtype=np.float32)


# ----------------------------------------------------------------------------- model outputs


def _field(out: Any, name: str) -> Any:
    return out.get(name) if isinstance(out, Mapping) else getattr(out, name, None)


def _np(x: Any) -> np.ndarray | None:
    if x is None:
        return None
    return x.detach().float().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


@dataclass
class ClipPrediction:
    """One clip's model output as numpy (batch dimension removed)."""

    probs: np.ndarray  # (n,) softmax of the final logits
    exit_probs: np.ndarray | None = None  # (S, n) softmax at every exit
    boxes: np.ndarray | None = None  # (K, 4) patch boxes in pixels at the chosen frames
    frame_idx: np.ndarray | None = None  # (K,) chosen frames
    glance_boxes: np.ndarray | None = None  # (T_g, 4) the policy's boxes at the glance frames
    glance_idx: np.ndarray | None = None  # (T_g,)
    temporal_weights: np.ndarray | None = None  # (T_g,)

    @classmethod
    def from_output(cls, out: Any) -> "ClipPrediction":
        """Reads an ``AdaFocusOutput``-like object, a dict with the same keys, or bare logits ``(1, n)``."""
        logits = out if isinstance(out, torch.Tensor) else _field(out, "logits")
        exit_logits = None if isinstance(out, torch.Tensor) else _np(_field(out, "exit_logits"))
        if logits is None and exit_logits is None:
            raise ValueError(f"model output: expected a `logits` (1, n) field, got {type(out).__name__}")
        logits = _np(logits)[0] if logits is not None else exit_logits[0, -1]
        get = (lambda k: None) if isinstance(out, torch.Tensor) else (lambda k: _np(_field(out, k)))
        glance_idx = get("glance_idx")
        pred = cls(probs=_softmax(logits), exit_probs=None if exit_logits is None else _softmax(exit_logits[0]))
        pred.boxes = None if get("boxes") is None else get("boxes")[0]
        pred.frame_idx = None if get("frame_idx") is None else get("frame_idx")[0].astype(np.int64)
        pred.glance_boxes = None if get("glance_boxes") is None else get("glance_boxes")[0]
        pred.glance_idx = None if glance_idx is None else glance_idx.reshape(-1, glance_idx.shape[-1])[0]
        pred.temporal_weights = None if get("temporal_weights") is None else get("temporal_weights")[0]
        return pred

    @property
    def label(self) -> int:
        return int(self.probs.argmax())

    @property
    def confidence(self) -> float:
        return float(self.probs.max())

    def boxes_at(self, t: int) -> tuple[np.ndarray | None, np.ndarray | None]:
        """``(chosen, policy)``: the patch box if frame ``t`` was chosen, and the interpolated policy box."""
        chosen = None
        if self.boxes is not None and self.frame_idx is not None:
            hit = np.flatnonzero(self.frame_idx == t)
            chosen = self.boxes[hit[0]] if len(hit) else None
        policy = None
        if self.glance_boxes is not None and self.glance_idx is not None:
            policy = interpolate_box(self.glance_boxes, self.glance_idx, t)
        return chosen, policy


def as_predict_fn(model: Any) -> PredictFn:
    """Wraps a model (an ``nn.Module`` or any callable) to run in eval mode without gradients."""

    def predict(video: torch.Tensor) -> Any:
        training = isinstance(model, torch.nn.Module) and model.training
        if training:
            model.eval()
        try:
            with torch.no_grad():
                return model(video)
        finally:
            if training:
                model.train()

    return predict


class _Cache(OrderedDict):
    """A small LRU cache of model outputs."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def get_or_compute(self, key: Any, fn: Callable[[], Any]) -> Any:
        if key in self:
            self.move_to_end(key)
            return self[key]
        self[key] = value = fn()
        while len(self) > self.size:
            self.popitem(last=False)
        return value


# ----------------------------------------------------------------------------- clip and compare explorers


def _px(n: int) -> str:
    return f"{int(n)}px"


def fixed_image(width: int, height: int) -> widgets.Image:
    """An image widget shown at exactly ``width x height`` CSS pixels: never stretched by its row, never
    squeezed (``object-fit: contain`` keeps the aspect ratio should a theme resize it anyway)."""
    return widgets.Image(format="png", layout=widgets.Layout(
        width=_px(width), height=_px(height), min_width=_px(width), object_fit="contain", flex="0 0 auto",
        align_self="flex-start"))


def _resize(image: widgets.Image, img: np.ndarray) -> None:
    """Fix ``image``'s shown size to the pixels of ``img`` (changes only when the clip's size does)."""
    h, w = img.shape[:2]
    if image.layout.width != _px(w) or image.layout.height != _px(h):
        image.layout.width, image.layout.min_width, image.layout.height = _px(w), _px(w), _px(h)


def _class_name(dataset: Any, k: int) -> str:
    names = getattr(dataset, "class_names", None)
    return html.escape(str(names[k])) if names is not None and 0 <= k < len(names) else str(k)


class ClipPanel(widgets.VBox):
    """One view of a clip at a frame: the frame with its boxes, the thumbnail strip and a caption."""

    def __init__(self, dataset: Any, predict_fn: PredictFn | None, title: str = "",
                 style: ExplorerStyle = STYLE) -> None:
        self.dataset, self.predict_fn, self.title, self.style = dataset, predict_fn, title, style
        self.image = fixed_image(style.display_size, style.display_size)
        self.strip = fixed_image(style.thumb_size, style.thumb_size)
        self.info = widgets.HTML(layout=widgets.Layout(padding=style.text_padding, flex=f"1 1 {style.caption_min_px}px",
                                                       min_width=_px(style.caption_min_px)))
        self.last_render: dict[str, Any] = {}
        self._cache = _Cache(style.max_cached)
        header = [widgets.HTML(f"<b>{html.escape(title)}</b>")] if title else []
        # the caption wraps under the frame when the row is too narrow for both
        body = widgets.HBox([self.image, self.info], layout=widgets.Layout(flex_flow="row wrap",
                                                                           align_items="flex-start"))
        super().__init__(header + [body, self.strip],
                         layout=widgets.Layout(flex=f"1 1 {style.panel_basis_px}px", margin="0 16px 8px 0"))

    def prediction(self, i: int, video: torch.Tensor) -> ClipPrediction | None:
        if self.predict_fn is None:
            return None
        return self._cache.get_or_compute(i, lambda: ClipPrediction.from_output(self.predict_fn(video[None])))

    def render(self, i: int, t: int) -> dict[str, Any]:
        """Draws clip ``i`` at frame ``t`` into the widgets; returns (and keeps) what was drawn."""
        item = self.dataset[i]
        video = item["video"]  # (T, C, H, W)
        gt, mask = _np(item.get("boxes")), _np(item.get("mask"))
        pred = self.prediction(i, video)
        s = self.style

        def boxes_of(k: int) -> list[tuple[np.ndarray, str]]:
            """``(box, mark key)`` on frame ``k``: the truth, then the patch (a focused frame) or the
            interpolated policy box (any other frame)."""
            drawn = []
            if gt is not None:
                drawn.append((gt[k], "truth" if mask is None or mask[k] else "hidden"))
            if pred is not None:
                chosen, policy = pred.boxes_at(k)
                if chosen is not None:
                    drawn.append((chosen, "focused"))
                elif policy is not None:
                    drawn.append((policy, "interpolated"))
            return drawn

        every = [boxes_of(k) for k in range(len(video))]
        marked = lambda boxes: [(b, MARKS[key]) for b, key in boxes]  # noqa: E731
        frame = render_frame(video[t], marked(every[t]), display_scale(max(video.shape[-2:]), s), s.line_width)
        chosen = [] if pred is None or pred.frame_idx is None else sorted(int(k) for k in pred.frame_idx)
        strip = render_strip(video, t, None if mask is None else mask.astype(bool), chosen,
                             [marked(b) for b in every], s)
        shown = {key for boxes in every for _, key in boxes}  # the legend lists only what this clip draws
        keys = [k for k in MARKS if k in shown]
        text = self._caption(i, t, int(item["label"]), mask, chosen, pred, keys)
        png = encode_png(frame)
        _resize(self.image, frame)
        _resize(self.strip, strip)
        self.image.value, self.strip.value, self.info.value = png, encode_png(strip), text
        self.last_render = {"clip": i, "frame_index": t, "frame": frame, "strip": strip, "png": png, "text": text,
                            "legend": keys,
                            "boxes": [(tuple(map(float, b)), MARKS[key].rgb) for b, key in every[t]],
                            "marks": [key for _, key in every[t]]}
        return self.last_render

    def _caption(self, i: int, t: int, label: int, mask: np.ndarray | None, chosen: list[int],
                 pred: ClipPrediction | None, legend: Sequence[str]) -> str:
        lines = [f"clip {i}, frame {t}", f"label: <b>{_class_name(self.dataset, label)}</b>"]
        if mask is not None:
            state = "object visible" if mask[t] else "object hidden"
            lines.append(f"{state} ({int(mask.sum())} of {len(mask)} frames informative)")
        if pred is not None:
            mark = "&#10003;" if pred.label == label else "&#10007;"
            lines.append(f"prediction: <b>{_class_name(self.dataset, pred.label)}</b> {mark} "
                         f"(confidence {pred.confidence:.2f})")
        if chosen:
            hits = "" if mask is None else f", {sum(bool(mask[k]) for k in chosen)} informative"
            lines.append(f"chosen frames: {chosen}{hits}")
        bars = [(self.style.informative_color, "object visible (top bar)")] if mask is not None else []
        bars += [(self.style.chosen_color, "focused frame (bottom bar)")] if chosen else []
        return "<br>".join(lines) + legend_html(legend, bars)


def _clip_controls(dataset: Any, style: ExplorerStyle) -> tuple[widgets.IntSlider, widgets.IntSlider, widgets.Play]:
    if len(dataset) == 0:
        raise ValueError("dataset: expected at least one clip, got an empty dataset")
    T = int(dataset[0]["video"].shape[0])
    clip = widgets.IntSlider(value=0, min=0, max=len(dataset) - 1, description="clip", continuous_update=False)
    frame = widgets.IntSlider(value=0, min=0, max=T - 1, description="frame")
    play = widgets.Play(value=0, min=0, max=T - 1, interval=style.play_interval_ms, description="play")
    widgets.jslink((play, "value"), (frame, "value"))
    return clip, frame, play


class ClipExplorer(widgets.VBox):
    """Clip and frame sliders driving one :class:`ClipPanel` per model (or one ground-truth panel)."""

    def __init__(self, dataset: Any, predict_fns: Mapping[str, PredictFn | None], style: ExplorerStyle = STYLE) -> None:
        self.clip_slider, self.frame_slider, self.play = _clip_controls(dataset, style)
        self.panels = {name: ClipPanel(dataset, fn, name, style) for name, fn in predict_fns.items()}
        self.clip_slider.observe(self._on_change, names="value")
        self.frame_slider.observe(self._on_change, names="value")
        controls = widgets.HBox([self.clip_slider, self.play, self.frame_slider],
                                layout=widgets.Layout(flex_flow="row wrap", align_items="center"))
        # side by side where the output area is wide enough, stacked where it is not
        panels = widgets.HBox(list(self.panels.values()), layout=widgets.Layout(flex_flow="row wrap",
                                                                                align_items="flex-start"))
        super().__init__([controls, panels])
        self.update()

    def _on_change(self, _change: dict) -> None:
        self.update()

    def update(self) -> None:
        for panel in self.panels.values():
            panel.render(self.clip_slider.value, self.frame_slider.value)

    @property
    def renders(self) -> dict[str, dict[str, Any]]:
        """What each panel drew last, by panel title."""
        return {name: p.last_render for name, p in self.panels.items()}

    @property
    def last_render(self) -> dict[str, Any]:
        """What the first panel drew last (see :meth:`ClipPanel.render`)."""
        return next(iter(self.panels.values())).last_render


def clip_explorer(dataset: Any, model: Any = None, predict_fn: PredictFn | None = None,
                  style: ExplorerStyle = STYLE) -> ClipExplorer:
    """Scrub through ``dataset``'s clips, with ground truth and (given a model) the patch trajectory.

    ``model`` is called as ``model(video (1, T, C, H, W))`` in eval mode without gradients;
    ``predict_fn`` replaces that call (e.g. to pass extra arguments). Outputs are cached per clip.
    """
    fn = predict_fn if predict_fn is not None else (as_predict_fn(model) if model is not None else None)
    return ClipExplorer(dataset, {"": fn}, style)


def compare_explorer(dataset: Any, models: Mapping[str, Any], style: ExplorerStyle = STYLE) -> ClipExplorer:
    """The same clip and frame side by side for several models: ``{"method name": model}``."""
    if not models:
        raise ValueError("models: expected a dict of at least one {name: model}, got an empty one")
    return ClipExplorer(dataset, {name: as_predict_fn(m) for name, m in models.items()}, style)


# ----------------------------------------------------------------------------- budget explorer


def format_macs(macs: float) -> str:
    """``1.23 GMACs`` / ``45.6 MMACs`` / ``789 kMACs``."""
    for unit, scale in (("GMACs", 1e9), ("MMACs", 1e6), ("kMACs", 1e3)):
        if macs >= scale:
            return f"{macs / scale:.3g} {unit}" if macs < 100 * scale else f"{macs / scale:.0f} {unit}"
    return f"{macs:.0f} MACs"


def exit_cost(cost_fn: CostFn, patch_size: int, num_focus: int, exit_step: int, num_steps: int) -> float:
    """MACs spent when a run with ``K = num_focus`` leaves at ``exit_step`` of ``num_steps`` exits.

    The steps are ``T_g = num_steps - K`` glance steps, then ``K`` focus steps. Leaving at focus step
    ``k`` (1-based) costs ``cost_fn(P, k)``; leaving during the glance costs ``cost_fn(P, 0)`` (an upper
    bound: the whole glance is charged). The last step always costs ``cost_fn(P, K)``.
    """
    if exit_step >= num_steps - 1:
        return float(cost_fn(patch_size, num_focus))
    glance_frames = num_steps - min(num_focus, num_steps)
    return float(cost_fn(patch_size, max(0, exit_step - glance_frames + 1)))


class BudgetExplorer(widgets.VBox):
    """Sliders for ``P``, ``K`` and the exit threshold; the prediction, confidences and MACs they give."""

    def __init__(self, model: Any, dataset: Any, cost_fn: CostFn, run_fn: BudgetRunFn, patch_sizes: Sequence[int],
                 focus_counts: Sequence[int], style: ExplorerStyle = STYLE) -> None:
        if not patch_sizes or not focus_counts:
            raise ValueError(f"budget_explorer: expected non-empty patch_sizes and focus_counts, "
                             f"got {list(patch_sizes)} and {list(focus_counts)}")
        if len(dataset) == 0:
            raise ValueError("dataset: expected at least one clip, got an empty dataset")
        self.model, self.dataset, self.cost_fn, self.run_fn, self.style = model, dataset, cost_fn, run_fn, style
        self.clip_slider = widgets.IntSlider(value=0, min=0, max=len(dataset) - 1, description="clip",
                                             continuous_update=False)
        self.patch_slider = widgets.SelectionSlider(options=[int(p) for p in patch_sizes],
                                                    value=int(patch_sizes[len(patch_sizes) // 2]),
                                                    description="patch P", continuous_update=False)
        self.k_slider = widgets.SelectionSlider(options=[int(k) for k in focus_counts],
                                                value=int(focus_counts[len(focus_counts) // 2]),
                                                description="frames K", continuous_update=False)
        self.threshold_slider = widgets.FloatSlider(value=1.0, min=0.0, max=1.0, step=0.01,
                                                    description="exit at conf", readout_format=".2f")
        self.chart = fixed_image(style.chart_bar_width, style.chart_height)
        self.strip = fixed_image(style.thumb_size, style.thumb_size)
        self.info = widgets.HTML(layout=widgets.Layout(padding=style.text_padding))
        self.last_render: dict[str, Any] = {}
        self._cache = _Cache(style.max_cached)
        for w in (self.clip_slider, self.patch_slider, self.k_slider, self.threshold_slider):
            w.observe(self._on_change, names="value")
        note = widgets.HTML("<small>exit threshold 1.00 = no early exit; bars: confidence (max softmax) at each "
                            "exit, dimmed = never computed</small>" +
                            legend_html([], [(style.glance_color, "glance step"), (style.focus_color, "focus step"),
                                             (style.threshold_color, "threshold")]))
        controls = widgets.VBox([self.clip_slider, self.patch_slider, self.k_slider, self.threshold_slider])
        top = widgets.HBox([controls, self.info], layout=widgets.Layout(flex_flow="row wrap"))
        super().__init__([top, self.chart, note, self.strip])
        self.update()

    def _on_change(self, _change: dict) -> None:
        self.update()

    def update(self) -> dict[str, Any]:
        i, P, K = self.clip_slider.value, self.patch_slider.value, self.k_slider.value
        tau = float(self.threshold_slider.value)
        item = self.dataset[i]
        video, label = item["video"], int(item["label"])  # (T, C, H, W)
        pred = self._cache.get_or_compute(
            (i, P, K), lambda: ClipPrediction.from_output(self.run_fn(self.model, video[None], P, K)))
        exit_probs = pred.exit_probs if pred.exit_probs is not None else pred.probs[None]  # (S, n)
        S = len(exit_probs)
        step = early_exit(exit_probs, tau)
        glance_frames = S - min(K, S)
        macs, full = exit_cost(self.cost_fn, P, K, step, S), float(self.cost_fn(P, K))
        y, conf = int(exit_probs[step].argmax()), float(exit_probs[step].max())
        chart = render_exit_chart(exit_probs, glance_frames, tau, step, self.style)
        mask = _np(item.get("mask"))
        chosen = [] if pred.frame_idx is None else sorted(int(k) for k in pred.frame_idx)
        strip = render_strip(video, -1, None if mask is None else mask.astype(bool), chosen, None, self.style)
        where = f"glance step {step + 1} of {glance_frames}" if step < glance_frames else \
            f"focus step {step - glance_frames + 1} of {S - glance_frames}"
        mark = "&#10003;" if y == label else "&#10007;"
        text = "<br>".join([
            f"label: <b>{_class_name(self.dataset, label)}</b>, "
            f"prediction: <b>{_class_name(self.dataset, y)}</b> {mark}",
            f"confidence {conf:.2f} at exit {step + 1} of {S} ({where})",
            f"MACs: <b>{format_macs(macs)}</b> (all {S} steps: {format_macs(full)}, "
            f"saved {100 * (1 - macs / full) if full > 0 else 0:.0f}%)",
            f"P = {P}, K = {K}, chosen frames {chosen}"])
        _resize(self.chart, chart)
        _resize(self.strip, strip)
        self.chart.value, self.strip.value, self.info.value = encode_png(chart), encode_png(strip), text
        self.last_render = {"clip": i, "patch_size": P, "num_focus": K, "threshold": tau, "exit_step": step,
                            "prediction": y, "confidence": conf, "macs": macs, "full_macs": full,
                            "chart": chart, "strip": strip, "text": text}
        return self.last_render


def budget_explorer(model: Any, dataset: Any, cost_fn: CostFn, run_fn: BudgetRunFn,
                    patch_sizes: Sequence[int] | None = None, focus_counts: Sequence[int] | None = None,
                    style: ExplorerStyle = STYLE, patch_step: int = 8) -> BudgetExplorer:
    """Trade compute for accuracy on one clip at a time: patch size, focus frames, exit threshold.

    ``run_fn(model, video (1, T, C, H, W), P, K)`` returns the model's output at that budget (e.g. a
    model trained at ``P`` and ``K``; a Uni-AdaFocus is built for one ``P`` and ``K``);
    ``cost_fn(P, K)`` the MACs of a run that processes ``K`` focus patches (``K = 0``: glance only).
    Defaults: ``P`` in multiples of ``patch_step`` up to the frame side, ``K`` from 1 to ``T``.
    """
    if len(dataset) == 0:
        raise ValueError("dataset: expected at least one clip, got an empty dataset")
    if not callable(run_fn):
        raise TypeError(f"budget_explorer: run_fn must be a function (model, video, P, K) -> output, "
                        f"got {type(run_fn).__name__}")
    video = dataset[0]["video"]  # (T, C, H, W)
    side = int(max(video.shape[-2:]))
    if patch_sizes is None:
        patch_sizes = list(range(patch_step, side + 1, patch_step)) or [side]
    focus_counts = list(focus_counts) if focus_counts is not None else list(range(1, int(video.shape[0]) + 1))
    return BudgetExplorer(model, dataset, cost_fn, run_fn, patch_sizes, focus_counts, style)

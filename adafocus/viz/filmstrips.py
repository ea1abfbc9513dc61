"""Filmstrips: a clip's frames in a row with where the model looked, as matplotlib figures.

- :func:`policy_filmstrip` -- every frame with the true box (solid where the object is visible,
  dashed where it is hidden) and, on the frames the temporal policy chose, the patch box the
  spatial policy chose; under the strip, the temporal policy's weights ``w`` over the glance
  frames as bars, the informative frames shaded and the chosen frames marked.
- :func:`attribution_filmstrip` -- the frames above the same frames overlaid with an attribution
  map (e.g. from :mod:`adafocus.analysis.attributions`), one colour scale for the whole clip so that
  frames compare, and the per-frame total as bars.

Frames are drawn with ``extent=(0, W, H, 0)``, so axes data coordinates are continuous pixel
coordinates (pixel ``i`` covers ``[i, i + 1)``) and a box ``(x0, y0, x1, y1)`` is drawn exactly
where it lies. Every box is a :class:`matplotlib.patches.Rectangle` with a ``gid`` of the form
``"<kind>-<frame>"`` (kinds: ``gt``, ``chosen``); :func:`drawn_boxes` reads them back.
Colours and line styles are the workbench's palette (:mod:`adafocus.viz.colors`). Long clips wrap
into rows of at most ``style.max_columns`` frames, so a filmstrip keeps its size (and its labels
stay readable) in a notebook's output area.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from adafocus.viz import colors
from adafocus.viz.colors import hex_color
from adafocus.viz.explorers import to_rgb

ArrayLike = torch.Tensor | np.ndarray | Sequence


@dataclass(frozen=True)
class FilmstripStyle:
    """Sizes and colours of the filmstrips (the colours are :mod:`adafocus.viz.colors`'s)."""

    frame_inches: float = 1.0  # side of one frame panel
    max_columns: int = 8  # frames per row: 8 x 1 in x 100 dpi + margins = 850 px, a notebook's output width
    bar_inches: float = 1.0  # height of the bar chart under the strip
    dpi: int = 100
    line_width: float = 1.6  # box outlines, points
    gt_color: str = colors.TRUTH.hex
    chosen_color: str = colors.FOCUSED.hex
    weight_color: str = hex_color(colors.GLANCE_RGB)
    informative_shade: str = colors.VISIBLE_SHADE  # background of informative frames in the bar chart
    hidden_linestyle: str = colors.HIDDEN.mpl_linestyle  # the true box where the object is not visible
    cmap: str = "inferno"
    overlay_alpha: float = 0.6  # attribution over the (greyed) frame
    title_size: float = 8.0


FILMSTRIP_STYLE = FilmstripStyle()


def _np(x: ArrayLike | None, dtype=np.float64) -> np.ndarray | None:
    if x is None:
        return None
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=dtype)


def _check_video(video: ArrayLike, fn: str) -> tuple[np.ndarray, int, int, int]:
    v = video.detach().cpu() if isinstance(video, torch.Tensor) else np.asarray(video)
    if v.ndim != 4 or v.shape[1] not in (1, 3):
        raise ValueError(f"{fn}: video must be (T, C, H, W) with C in (1, 3), got shape {tuple(v.shape)}")
    T, _, H, W = v.shape
    return v, T, H, W


def _check_shape(x: np.ndarray | None, shape: tuple[int, ...], name: str, fn: str) -> None:
    if x is not None and x.shape != shape:
        raise ValueError(f"{fn}: {name} must have shape {shape}, got {x.shape}")


def _frame_axes(fig: Figure, gs, row: int, T: int, frame_rows: int, style: FilmstripStyle) -> list[plt.Axes]:
    """Axes for the ``T`` frames of frame row ``row`` (of ``frame_rows`` per chunk of ``max_columns`` frames)."""
    cols = _columns(T, style)
    axes = [fig.add_subplot(gs[(t // cols) * frame_rows + row, t % cols]) for t in range(T)]
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    return axes


def _show(ax: plt.Axes, frame, H: int, W: int, grey: bool = False) -> None:
    img = to_rgb(frame)
    if grey:
        img = np.repeat(img.mean(axis=-1, keepdims=True), 3, axis=-1).astype(np.uint8)
    ax.imshow(img, extent=(0, W, H, 0), interpolation="nearest")
    ax.set_xlim(0, W)
    ax.set_ylim(H, 0)


def _box(ax: plt.Axes, box: np.ndarray, color: str, gid: str, style: FilmstripStyle, linestyle: str = "-",
         zorder: float = 3) -> None:
    x0, y0, x1, y1 = (float(v) for v in box)
    ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor=color, linewidth=style.line_width,
                           linestyle=linestyle, gid=gid, zorder=zorder,
                           path_effects=colors.halo_effects(style.line_width)))


def _draw_frame_boxes(ax: plt.Axes, t: int, gt_boxes: np.ndarray | None, gt_mask: np.ndarray | None,
                      chosen: dict[int, np.ndarray], style: FilmstripStyle) -> None:
    if gt_boxes is not None:
        visible = True if gt_mask is None else bool(gt_mask[t])
        _box(ax, gt_boxes[t], style.gt_color, f"gt-{t}", style, "-" if visible else style.hidden_linestyle, 3)
    if t in chosen:
        _box(ax, chosen[t], style.chosen_color, f"chosen-{t}", style, "-", 4)
        for side in ax.spines.values():  # a chosen frame gets a coloured frame border
            side.set_edgecolor(style.chosen_color)
            side.set_linewidth(style.line_width * 1.5)


def _chosen_map(chosen_boxes: np.ndarray | None, frame_idx: np.ndarray | None, T: int,
                fn: str) -> dict[int, np.ndarray]:
    if frame_idx is None:
        return {}
    idx = frame_idx.astype(int).reshape(-1)
    if idx.min(initial=0) < 0 or idx.max(initial=0) >= T:
        raise ValueError(f"{fn}: frame_idx must index the clip's {T} frames, got {idx.tolist()}")
    if chosen_boxes is None:
        raise ValueError(f"{fn}: frame_idx given without chosen_boxes (K, 4)")
    _check_shape(chosen_boxes, (len(idx), 4), "chosen_boxes", fn)
    return {int(t): chosen_boxes[k] for k, t in enumerate(idx)}


def _bar_axes(fig: Figure, gs, T: int, gt_mask: np.ndarray | None, chosen: dict[int, np.ndarray],
              style: FilmstripStyle) -> plt.Axes:
    ax = fig.add_subplot(gs[-1, :])  # the last row, under every frame
    ax.set_xlim(-0.5, T - 0.5)  # frame t's column is centered on x = t
    ax.set_xticks(range(T))
    ax.tick_params(labelsize=style.title_size)
    if gt_mask is not None:
        for t in np.flatnonzero(gt_mask):
            ax.axvspan(t - 0.5, t + 0.5, color=style.informative_shade, zorder=0, lw=0)
    for t in chosen:
        ax.axvline(t, color=style.chosen_color, linewidth=style.line_width, linestyle=":", zorder=3)
    ax.set_xlabel(f"frame (shaded: object visible; {colors.FOCUSED.color_name} dotted line: focused)",
                  fontsize=style.title_size)
    return ax


def _columns(T: int, style: FilmstripStyle) -> int:
    return max(1, min(T, style.max_columns))


def _figure(T: int, frame_rows: int, style: FilmstripStyle) -> tuple[Figure, object]:
    """A figure with ``frame_rows`` rows of frames per chunk of ``max_columns`` frames, then the bar chart."""
    cols = _columns(T, style)
    chunks = math.ceil(T / cols)
    heights = [style.frame_inches] * (frame_rows * chunks) + [style.bar_inches]
    height = sum(heights) * 1.25 + 1.3  # room for the title, the legend and the x label
    fig = plt.figure(figsize=(cols * style.frame_inches + 0.4, height), dpi=style.dpi)
    gs = fig.add_gridspec(frame_rows * chunks + 1, cols, height_ratios=heights, hspace=0.3, wspace=0.04,
                          top=1 - 0.85 / height, bottom=0.5 / height, left=0.4 / fig.get_figwidth(), right=0.98)
    return fig, gs


def _key(fig: Figure, gt: np.ndarray | None, mask: np.ndarray | None, chosen: dict, style: FilmstripStyle) -> None:
    """The legend of the boxes drawn, under the title."""
    keys = []
    if gt is not None:
        keys += ["truth"] if mask is None or mask.any() else []
        keys += ["hidden"] if mask is not None and not mask.all() else []
    keys += ["focused"] if chosen else []
    if keys:
        fig.legend(handles=colors.legend_handles(keys, style.line_width), loc="upper center", ncol=len(keys),
                   fontsize=style.title_size, frameon=False, bbox_to_anchor=(0.5, 1 - 0.3 / fig.get_figheight()))


def policy_filmstrip(video: ArrayLike, gt_boxes: ArrayLike | None = None, gt_mask: ArrayLike | None = None,
                     chosen_boxes: ArrayLike | None = None, frame_idx: ArrayLike | None = None,
                     temporal_weights: ArrayLike | None = None, glance_idx: ArrayLike | None = None, *,
                     title: str | None = None, style: FilmstripStyle = FILMSTRIP_STYLE) -> Figure:
    """One clip and the policy's choices as a figure.

    ``video (T, C, H, W)`` (uint8 or float in [0, 1]); ``gt_boxes (T, 4)`` and ``gt_mask (T,)`` from
    the benchmark (optional: real videos have none); ``chosen_boxes (K, 4)`` at ``frame_idx (K,)``;
    ``temporal_weights (T_g,)`` at glance frames ``glance_idx (T_g,)`` drawn as bars.
    """
    fn = "policy_filmstrip"
    v, T, H, W = _check_video(video, fn)
    gt, mask = _np(gt_boxes), _np(gt_mask, bool)
    _check_shape(gt, (T, 4), "gt_boxes", fn)
    _check_shape(mask, (T,), "gt_mask", fn)
    chosen = _chosen_map(_np(chosen_boxes), _np(frame_idx, np.int64), T, fn)
    weights, gidx = _np(temporal_weights), _np(glance_idx, np.int64)
    if weights is not None:
        if gidx is None or gidx.shape != weights.shape or weights.ndim != 1:
            raise ValueError(f"{fn}: temporal_weights (T_g,) need glance_idx (T_g,) of the same length, got "
                             f"{weights.shape} and {None if gidx is None else gidx.shape}")

    fig, gs = _figure(T, 1, style)
    for t, ax in enumerate(_frame_axes(fig, gs, 0, T, 1, style)):
        _show(ax, v[t], H, W)
        _draw_frame_boxes(ax, t, gt, mask, chosen, style)
        ax.set_title(f"t={t}", fontsize=style.title_size, color=style.chosen_color if t in chosen else "black")
    bars = _bar_axes(fig, gs, T, mask, chosen, style)
    if weights is not None:
        bars.bar(gidx, weights, width=0.6, color=style.weight_color, zorder=2, gid="temporal-weights")
        bars.set_ylim(0, max(float(weights.max()) * 1.15, 1e-6))
    bars.set_ylabel("w", fontsize=style.title_size)
    if title:
        fig.suptitle(title, fontsize=style.title_size + 2)
    _key(fig, gt, mask, chosen, style)
    return fig


def attribution_filmstrip(video: ArrayLike, attribution: ArrayLike, gt_boxes: ArrayLike | None = None,
                          gt_mask: ArrayLike | None = None, chosen_boxes: ArrayLike | None = None,
                          frame_idx: ArrayLike | None = None, *, scores: ArrayLike | None = None,
                          title: str | None = None, style: FilmstripStyle = FILMSTRIP_STYLE) -> Figure:
    """Frames (with boxes) above the same frames overlaid with ``attribution (T, H, W)``.

    One colour scale spans the clip (``[0, max |attribution|]``; the overlay shows magnitudes).
    Bars: ``scores (T,)`` when given (e.g. the drops from occlusion over time), else each frame's
    summed ``|attribution|``.
    """
    fn = "attribution_filmstrip"
    v, T, H, W = _check_video(video, fn)
    attr = _np(attribution)
    _check_shape(attr, (T, H, W), "attribution", fn)
    gt, mask = _np(gt_boxes), _np(gt_mask, bool)
    _check_shape(gt, (T, 4), "gt_boxes", fn)
    _check_shape(mask, (T,), "gt_mask", fn)
    chosen = _chosen_map(_np(chosen_boxes), _np(frame_idx, np.int64), T, fn)
    per_frame = _np(scores) if scores is not None else np.abs(attr).sum(axis=(1, 2))
    _check_shape(per_frame, (T,), "scores", fn)

    magnitude = np.abs(attr)
    vmax = max(float(magnitude.max()), 1e-12)
    fig, gs = _figure(T, 2, style)
    top, bottom = _frame_axes(fig, gs, 0, T, 2, style), _frame_axes(fig, gs, 1, T, 2, style)
    for t in range(T):
        _show(top[t], v[t], H, W)
        _draw_frame_boxes(top[t], t, gt, mask, chosen, style)
        top[t].set_title(f"t={t}", fontsize=style.title_size, color=style.chosen_color if t in chosen else "black")
        _show(bottom[t], v[t], H, W, grey=True)
        image = bottom[t].imshow(magnitude[t], extent=(0, W, H, 0), cmap=style.cmap, vmin=0, vmax=vmax,
                                 alpha=style.overlay_alpha, interpolation="nearest")
        if gt is not None:
            visible = True if mask is None else bool(mask[t])
            _box(bottom[t], gt[t], style.gt_color, f"attr-gt-{t}", style, "-" if visible else style.hidden_linestyle)
    cax = bottom[_columns(T, style) - 1].inset_axes([1.05, 0.0, 0.08, 1.0])  # outside the strip: columns align
    fig.colorbar(image, cax=cax).ax.tick_params(labelsize=style.title_size)
    bars = _bar_axes(fig, gs, T, mask, chosen, style)
    bars.bar(np.arange(T), per_frame, width=0.6, color=style.weight_color, zorder=2, gid="frame-scores")
    bars.set_ylabel("per frame", fontsize=style.title_size)
    if title:
        fig.suptitle(title, fontsize=style.title_size + 2)
    _key(fig, gt, mask, chosen, style)
    return fig


def drawn_boxes(fig: Figure, kind: str = "chosen") -> dict[int, tuple[float, float, float, float]]:
    """The boxes of ``kind`` (``gt``, ``chosen``, ``attr-gt``) drawn on ``fig``: ``{frame: (x0, y0, x1, y1)}``."""
    out = {}
    for ax in fig.axes:
        for patch in ax.patches:
            gid = patch.get_gid() or ""
            head, _, frame = gid.rpartition("-")
            if head == kind and frame.isdigit():
                x, y = patch.get_xy()
                out[int(frame)] = (x, y, x + patch.get_width(), y + patch.get_height())
    return out

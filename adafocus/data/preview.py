"""Look at the synthetic benchmark: a filmstrip (PNG + SVG) and an mp4, ground-truth boxes drawn in.

Boxes are solid in informative frames (the digit is visible) and dashed elsewhere (the digit is
hidden, but the box still marks where it is), in the workbench's palette (:mod:`adafocus.viz.colors`).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Sequence

import av
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from adafocus.checks import output_dir
from adafocus.config import Config, DataConfig
from adafocus.data.synthetic import ClipSet, SyntheticVideoDataset, generate_clips, split_labels
from adafocus.viz import colors

VIDEO_SCALE = 4  # nearest-neighbour upscaling of the mp4 frames
MAX_FILMSTRIP_FRAMES = 16  # longer clips show this many evenly spaced frames
MAX_COLUMNS = 8  # frames per filmstrip row (a longer clip wraps): 8 x 1 in at 100 dpi fits a notebook
FRAME_INCHES = 1.0  # width of one frame in a filmstrip figure


def _as_clipset(data: SyntheticVideoDataset | ClipSet) -> ClipSet:
    if isinstance(data, SyntheticVideoDataset):
        return data.clips
    if isinstance(data, ClipSet):
        return data
    raise TypeError(f"expected a SyntheticVideoDataset or a ClipSet, got {type(data).__name__}")


def _show_frame(ax, frame: np.ndarray, box: Sequence[float], shown: bool) -> None:
    """Draw one frame ``(H, W, C)`` uint8 and its box (solid if informative, dashed if not)."""
    ax.imshow(frame[..., 0] if frame.shape[-1] == 1 else frame, cmap="gray", vmin=0, vmax=255)
    x0, y0, x1, y1 = box
    mark = colors.TRUTH if shown else colors.HIDDEN
    ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, linewidth=1.0,
                           linestyle=mark.mpl_linestyle, edgecolor=mark.hex, path_effects=colors.halo_effects(1.0)))
    ax.set_xticks([])
    ax.set_yticks([])


def _frame_grid(rows: int, cols: int) -> tuple[Figure, np.ndarray]:
    """A figure of ``rows x cols`` square frames with room for row labels and column titles."""
    width, height = FRAME_INCHES * cols + 0.5, 1.2 * FRAME_INCHES * rows + 0.45
    fig = Figure(figsize=(width, height), dpi=100)
    axes = fig.subplots(rows, cols, squeeze=False)
    fig.subplots_adjust(left=0.45 / width, right=0.995, top=1 - 0.4 / height, bottom=0.01, wspace=0.04, hspace=0.2)
    return fig, axes


def filmstrip_figure(data: SyntheticVideoDataset | ClipSet, indices: Sequence[int],
                     max_frames: int = MAX_FILMSTRIP_FRAMES) -> Figure:
    """A grid of clips x frames with the ground-truth box drawn on every frame; a clip longer than
    ``MAX_COLUMNS`` frames wraps into several rows (the figure stays about a notebook's width)."""
    clips = _as_clipset(data)
    T = clips.videos.shape[1]
    frames = np.unique(np.linspace(0, T - 1, min(T, max_frames)).round().astype(int))
    cols = min(len(frames), MAX_COLUMNS)
    chunks = -(-len(frames) // cols)  # rows per clip
    fig, axes = _frame_grid(len(indices) * chunks, cols)
    for r, i in enumerate(indices):
        video = clips.videos[i].permute(0, 2, 3, 1).numpy()  # (T, H, W, C)
        for k, t in enumerate(frames):
            ax = axes[r * chunks + k // cols, k % cols]
            _show_frame(ax, video[t], clips.boxes[i, t].tolist(), bool(clips.mask[i, t]))
            ax.set_title(f"t={t}", fontsize=7, pad=2)
        for k in range(len(frames), chunks * cols):  # the last row's unused panels
            axes[r * chunks + k // cols, k % cols].set_visible(False)
        axes[r * chunks, 0].set_ylabel(f"#{i}: class {int(clips.labels[i])}", fontsize=7)
    fig.legend(handles=colors.legend_handles(["truth", "hidden"], 1.0), loc="upper center", ncol=2, fontsize=7,
               frameon=False)
    return fig


def knob_figure(cfg: DataConfig | Config, field: str, values: Sequence[object], index: int = 0,
                max_frames: int = 8) -> Figure:
    """The same training clip (same seed) rendered with ``cfg.<field>`` set to each of ``values``."""
    cfg = cfg.data if isinstance(cfg, Config) else cfg
    T = cfg.num_frames
    frames = np.unique(np.linspace(0, T - 1, min(T, max_frames)).round().astype(int))
    fig, axes = _frame_grid(len(values), len(frames))
    for r, value in enumerate(values):
        clips = generate_clips(dataclasses.replace(cfg, **{field: value}), "train", [index], progress=False)
        video = clips.videos[0].permute(0, 2, 3, 1).numpy()
        for c, t in enumerate(frames):
            _show_frame(axes[r, c], video[t], clips.boxes[0, t].tolist(), bool(clips.mask[0, t]))
            if r == 0:
                axes[r, c].set_title(f"t={t}", fontsize=7)
        axes[r, 0].set_ylabel(f"{field}=\n{value}", fontsize=7)
    return fig


def save_filmstrip(data: SyntheticVideoDataset | ClipSet, indices: Sequence[int],
                   path_png: str | os.PathLike) -> dict[str, Path]:
    """Save :func:`filmstrip_figure` as ``path_png`` and the same name with ``.svg``."""
    path_png = Path(path_png)
    path_png.parent.mkdir(parents=True, exist_ok=True)
    fig = filmstrip_figure(data, indices)
    path_svg = path_png.with_suffix(".svg")
    fig.savefig(path_png, dpi=150)
    fig.savefig(path_svg)
    return {"filmstrip_png": path_png, "filmstrip_svg": path_svg}


def preview_frames(clips: SyntheticVideoDataset | ClipSet, indices: Sequence[int],
                   scale: int = VIDEO_SCALE) -> np.ndarray:
    """The clips side by side, upscaled, boxes drawn, over a band with the frame counter and the legend:
    uint8 ``(T, H', W', 3)`` with even ``H', W'``."""
    from adafocus.viz.explorers import draw_box

    clips = _as_clipset(clips)
    T, C, S = clips.videos.shape[1], clips.videos.shape[2], clips.videos.shape[-1]
    tiles = []
    for i in indices:
        video = clips.videos[i].permute(0, 2, 3, 1).numpy()  # (T, S, S, C)
        video = np.repeat(np.repeat(video, scale, axis=1), scale, axis=2)
        video = np.ascontiguousarray(np.broadcast_to(video, video.shape[:3] + (3,)) if C == 1 else video)
        for t in range(T):
            mark = colors.TRUTH if bool(clips.mask[i, t]) else colors.HIDDEN
            video[t] = draw_box(video[t], clips.boxes[i, t].tolist(), mark.rgb, scale, 1, mark.raster_dash(2),
                                colors.HALO)
        tiles.append(video)
        tiles.append(np.zeros((T, S * scale, scale, 3), dtype=np.uint8))  # a thin black separator
    grid = np.concatenate(tiles[:-1], axis=2)
    grid = np.stack([colors.with_legend(grid[t], ["truth", "hidden"], f"frame {t}/{T - 1}") for t in range(T)])
    pad_h, pad_w = grid.shape[1] % 2, grid.shape[2] % 2  # yuv420p needs even sides
    return np.pad(grid, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)))


def save_preview_video(clips: SyntheticVideoDataset | ClipSet, indices: Sequence[int],
                       path_mp4: str | os.PathLike, fps: int = 8) -> Path:
    """Write the clips side by side (boxes drawn) as an H.264 mp4 (MPEG-4 Part 2 if x264 is absent)."""
    frames = preview_frames(clips, indices)
    path_mp4 = Path(path_mp4)
    path_mp4.parent.mkdir(parents=True, exist_ok=True)
    tmp = path_mp4.with_name(f".{path_mp4.stem}.{os.getpid()}.tmp.mp4")
    with av.open(str(tmp), mode="w", format="mp4") as container:
        try:
            stream = container.add_stream("libx264", rate=fps)
        except Exception:  # an FFmpeg build without x264
            stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        for rgb in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        container.mux(stream.encode(None))
    os.replace(tmp, path_mp4)
    return path_mp4


def preview(cfg: DataConfig | Config, out_dir: Path, n: int = 4) -> dict[str, Path]:
    """Render ``n`` training clips of different classes; write a filmstrip (PNG, SVG) and an mp4."""
    out_dir = output_dir(out_dir, "out_dir")  # a wrong folder fails now, not after rendering
    cfg = cfg.data if isinstance(cfg, Config) else cfg
    if cfg.num_train < n * cfg.num_classes:  # e.g. the `full` preset has no splits: preview anyway
        cfg = dataclasses.replace(cfg, num_train=n * cfg.num_classes)
    labels = split_labels(cfg, "train")
    picks = [int(np.flatnonzero(labels == k % cfg.num_classes)[k // cfg.num_classes]) for k in range(n)]
    clips = generate_clips(cfg, "train", picks, progress=False)
    paths = save_filmstrip(clips, range(n), out_dir / "filmstrip.png")
    paths["video_mp4"] = save_preview_video(clips, range(n), out_dir / "preview.mp4")
    return paths

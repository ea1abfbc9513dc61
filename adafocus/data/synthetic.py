"""A synthetic video benchmark with per-frame ground truth (docs/design.md, "The synthetic benchmark").

Each clip shows one small handwritten digit (``sklearn.datasets.load_digits``, upsampled smoothly
and drawn in a bright colour) gliding along a curved path over a cluttered background: a dimmed,
slowly panning crop of ``sklearn.datasets.load_sample_images``, pixel noise, and distractor
glyphs (digits cut into quadrants that are shuffled and rotated: strokes, but never a digit).
The digit's class is the clip's label.

The two redundancies AdaFocus exploits are built in and known exactly:

- **spatial**: the digit covers ``object_scale`` of the frame side (13-17 px of 64), so most
  pixels carry no label information; ``boxes[t] = (x0, y0, x1, y1)`` is the tight pixel box of the
  rendered digit in every frame (its true position, even where it is hidden);
- **temporal**: the digit is visible only in ``mask[t]`` frames (``round(informative_fraction * T)``
  of them, in a few contiguous runs, every frame equally likely); in the other frames it is absent,
  occluded by a textured patch, or faded to a ghost that cannot be recognised.

Determinism: clip ``i`` of a split is drawn from ``np.random.default_rng([seed, split, i])``, so a
split is byte-identical whatever the number of worker processes. Pixels are built with
elementwise arithmetic (no BLAS) and geometry, colours and assets are rounded to fixed grids
first, so last-bit differences between CPUs cannot change a byte. Digit instances are split too
(train/val/test never share a handwritten sample), so val/test measure unseen handwriting.

Layout: ``generate_clip`` returns the video as uint8 ``(T, C, H, W)``, the layout of the tensors.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import multiprocessing
import sys
import warnings
import zlib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from adafocus.checks import as_index
from adafocus.config import Config, ConfigError, DataConfig, hashed_fields
from adafocus.paths import atomic_torch_save, cache_dir

SPLITS = ("train", "val", "test")
GENERATOR_VERSION = 1  # bump when the rendering changes: it is part of the cache key


@dataclass(frozen=True)
class RenderParams:
    """Fixed rendering constants (the tunable knobs live in :class:`DataConfig`)."""

    template_res: int = 32  # digits are upsampled once from 8x8 to this side (bicubic)
    alpha_floor: float = 0.1  # template values below this are transparent (gives tight boxes)
    quantum: float = 1 / 256  # geometry is rounded to this many pixels (cross-machine determinism)
    # object
    object_value: tuple[float, float] = (0.85, 1.0)  # HSV value (brightness) of the digit
    object_saturation: tuple[float, float] = (0.6, 1.0)
    speed_jitter: tuple[float, float] = (0.7, 1.3)  # per-clip speed = cfg.speed * U(jitter)
    turn_rate: float = 0.25  # max heading change in radians per frame (curved paths)
    scale_drift: float = 0.2  # max phase speed of the size oscillation (radians per frame)
    fade_alpha: float = 0.06  # opacity of the digit in "faded" non-informative frames
    occluder_margin: int = 2  # pixels the occluding patch extends beyond the digit's box
    max_runs: int = 3  # informative frames come in 1..max_runs runs (one more if a run wraps around)
    # background
    bg_zoom: tuple[float, float] = (2.0, 3.5)  # photo short side ~ zoom * frame side
    bg_base: tuple[float, float] = (0.12, 0.35)  # mean background brightness
    bg_contrast: float = 0.8  # texture contrast at clutter = 1 (0 at clutter = 0)
    pan_speed: float = 0.4  # max background pan in pixels per frame
    noise_std: tuple[float, float] = (0.015, 0.05)  # pixel noise std at clutter 0 and 1
    # distractors
    max_distractors: int = 6  # Binomial(max_distractors, clutter) per clip
    distractor_scale: tuple[float, float] = (0.6, 1.0)  # relative to the digit's mean side
    distractor_alpha: tuple[float, float] = (0.45, 0.85)
    distractor_saturation: tuple[float, float] = (0.1, 0.6)
    distractor_value: tuple[float, float] = (0.5, 0.9)
    distractor_speed: float = 0.5  # relative to the digit's speed
    # handwritten instances per split: the j-th instance of a class goes to instance_folds[j % 5]
    instance_folds: tuple[str, ...] = ("train", "train", "train", "val", "test")


RENDER = RenderParams()
CHUNK_SIZE = 50  # clips per worker task
PARALLEL_MIN_CLIPS = 1000  # below this, starting worker processes costs more than it saves
DEFAULT_WORKERS = 2
# fork (as torch's DataLoader on Linux): workers only run numpy, and scripts need no __main__ guard
_START_METHOD = "fork" if sys.platform == "linux" else "spawn"


# ----------------------------------------------------------------------------- assets


def _q(x: np.ndarray | float, quantum: float = RENDER.quantum) -> np.ndarray:
    """Round to a fixed grid so that last-bit differences between machines cannot propagate."""
    return np.round(np.asarray(x, dtype=np.float64) / quantum) * quantum


def _cubic_upsample_1d(x: np.ndarray, factor: int, axis: int) -> np.ndarray:
    """Bicubic (Keys, a = -0.5) upsampling along one axis with zero padding, 4 explicit taps."""
    x = np.moveaxis(x, axis, -1)
    n = x.shape[-1]
    pad = np.concatenate([np.zeros(x.shape[:-1] + (2,)), x, np.zeros(x.shape[:-1] + (2,))], axis=-1)
    u = (np.arange(n * factor) + 0.5) / factor - 0.5  # output pixel centers in input pixels
    i0 = np.floor(u).astype(int)
    f = u - i0
    out = np.zeros(x.shape[:-1] + (n * factor,))
    for k in (-1, 0, 1, 2):  # fixed order: the same sums everywhere
        d = np.abs(f - k)
        w = np.where(d <= 1, 1.5 * d**3 - 2.5 * d**2 + 1, -0.5 * d**3 + 2.5 * d**2 - 4 * d + 2)
        out = out + w * pad[..., i0 + k + 2]
    return np.moveaxis(out, -1, axis)


@lru_cache(maxsize=1)
def _digits() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All 1,797 digits as smooth ``(N, R, R)`` alpha templates, their classes, their split folds."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = d.images.astype(np.float64) / 16.0  # (N, 8, 8) in [0, 1]
    factor = RENDER.template_res // 8
    x = _cubic_upsample_1d(_cubic_upsample_1d(x, factor, 1), factor, 2)
    x = np.clip((x - RENDER.alpha_floor) / (1 - RENDER.alpha_floor), 0.0, 1.0)  # exact zeros outside
    target = d.target.astype(np.int64)
    fold = np.zeros(len(target), dtype=np.int64)
    for k in range(10):
        idx = np.flatnonzero(target == k)
        fold[idx] = [SPLITS.index(RENDER.instance_folds[j % len(RENDER.instance_folds)]) for j in range(len(idx))]
    return _q(x).astype(np.float32), target, fold


@lru_cache(maxsize=8)
def _backgrounds(frame_size: int, channels: int) -> tuple[np.ndarray, ...]:
    """The sample photos block-averaged to a few zoom levels: float32 ``(C, H', W')`` in [0, 1]."""
    from sklearn.datasets import load_sample_images

    out = []
    for img in load_sample_images().images:
        img = img.astype(np.float64) / 255.0
        if channels == 1:
            img = img[..., 0:1] * 0.299 + img[..., 1:2] * 0.587 + img[..., 2:3] * 0.114
        for zoom in RENDER.bg_zoom:
            k = max(1, int(min(img.shape[:2]) // (zoom * frame_size)))
            h, w = img.shape[0] // k * k, img.shape[1] // k * k
            small = img[:h, :w].reshape(h // k, k, w // k, k, channels).sum(axis=(1, 3)) / (k * k)
            if min(small.shape[:2]) < 2 * frame_size:  # frames larger than the photos: mirror-tile
                reps = 2 * frame_size // min(small.shape[:2]) + 1
                small = np.pad(small, ((0, small.shape[0] * reps), (0, small.shape[1] * reps), (0, 0)), "symmetric")
            out.append(np.ascontiguousarray(_q(small, 1 / 1024).astype(np.float32).transpose(2, 0, 1)))
    return tuple(out)


def _hsv_color(rng: np.random.Generator, channels: int, sat: tuple[float, float],
               val: tuple[float, float]) -> np.ndarray:
    """A random colour ``(C,)``: any hue, given saturation and value ranges (gray: the value)."""
    h, s, v = rng.uniform(0, 1), rng.uniform(*sat), rng.uniform(*val)
    if channels == 1:
        return _q(np.array([v])).astype(np.float32)
    k = (np.array([5.0, 3.0, 1.0]) + h * 6) % 6
    rgb = v - v * s * np.clip(np.minimum(k, 4 - k), 0, 1)
    return _q(rgb).astype(np.float32)


# ----------------------------------------------------------------------------- geometry


def _fold(x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Reflect ``x`` into ``[lo, hi]`` (a ball bouncing between walls), elementwise."""
    span = np.maximum(hi - lo, 1e-9)
    u = np.mod(x - lo, 2 * span)
    return lo + span - np.abs(u - span)


def _sizes(rng: np.random.Generator, cfg: DataConfig) -> np.ndarray:
    """The digit's side per frame ``(T,)``: a slow oscillation inside ``object_scale``."""
    lo, hi = cfg.object_scale
    t = np.arange(cfg.num_frames, dtype=np.float64)
    phase, rate = rng.uniform(0, 2 * np.pi), rng.uniform(-RENDER.scale_drift, RENDER.scale_drift)
    return _q(cfg.frame_size * (lo + (hi - lo) * (0.5 + 0.5 * np.sin(phase + rate * t))))


def _paths(rng: np.random.Generator, side: np.ndarray, S: int, speed: float) -> tuple[np.ndarray, np.ndarray]:
    """Top-left corners ``x0, y0`` ``(G, T)`` of ``G`` glyphs of sides ``side`` ``(G, T)`` pixels.

    Each center moves ``speed`` (jittered) pixels per frame along a curve of constant turn rate
    and bounces off the frame's edges, so the glyph always lies inside the frame.
    """
    G, T = side.shape
    t = np.arange(T, dtype=np.float64)
    heading = rng.uniform(0, 2 * np.pi, (G, 1)) + rng.uniform(-RENDER.turn_rate, RENDER.turn_rate, (G, 1)) * t
    step = speed * rng.uniform(*RENDER.speed_jitter, (G, 1))
    start = rng.uniform(0, S, (2, G, 1))
    corner = []
    for axis, trig in enumerate((np.cos, np.sin)):
        moves = _q(step * trig(heading))  # (G, T)
        center = start[axis] + np.concatenate([np.zeros((G, 1)), np.cumsum(moves[:, :-1], axis=1)], axis=1)
        corner.append(_q(_fold(center, side / 2, S - side / 2) - side / 2))
    return corner[0], corner[1]


def _directed_path(rng: np.random.Generator, side: np.ndarray, S: int, speed: float) -> tuple[np.ndarray, np.ndarray]:
    """Top-left corners ``x0, y0`` ``(1, T)`` of a glyph of sides ``side`` ``(1, T)`` moving *forwards*: in a
    straight line at ``speed`` (jittered) pixels per frame, heading within 45 degrees of the +x axis (rightwards),
    never touching an edge (no bounce, so the direction never flips). ``data.motion = "direction"``: the
    backward classes are these clips played backwards (:func:`generate_clip`)."""
    T = side.shape[1]
    heading = rng.uniform(-np.pi / 4, np.pi / 4)
    step = speed * rng.uniform(*RENDER.speed_jitter)
    reach = _q(np.array([np.cos(heading), np.sin(heading)]) * step * (T - 1))  # (dx, dy) start to end
    big = float(side.max())
    lo = big / 2 - np.minimum(reach, 0)  # the first center's range keeps every center in [big/2, S - big/2]
    hi = S - big / 2 - np.maximum(reach, 0)
    start = lo + rng.uniform(0, 1, 2) * np.maximum(hi - lo, 0)
    t = np.arange(T, dtype=np.float64)
    corner = [_q(start[axis] + _q(reach[axis] / max(T - 1, 1)) * t - side[0] / 2)[None] for axis in (0, 1)]
    return corner[0], corner[1]


def _render_glyphs(templates: np.ndarray, x0: np.ndarray, y0: np.ndarray, side: np.ndarray,
                   S: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bilinear resampling of ``G`` templates ``(G, R, R)`` into a small window of each frame.

    Glyph ``g`` occupies ``[x0, x0 + side) x [y0, y0 + side)`` (arrays ``(G, T)``, inside the frame).
    Returns alpha ``(G, T, w, w)`` float32 and the windows' integer top-left corners ``ox, oy`` ``(G, T)``.
    """
    G, R = templates.shape[:2]
    w = min(S, int(math.ceil(side.max())) + 2)
    ox = np.clip(np.floor(x0).astype(np.int64) - 1, 0, S - w)
    oy = np.clip(np.floor(y0).astype(np.int64) - 1, 0, S - w)
    j = np.arange(w, dtype=np.float64)

    def taps(origin: np.ndarray, corner: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        c = ((origin[..., None] + j + 0.5) - corner[..., None]) / side[..., None] * R - 0.5  # (G, T, w)
        inside = (c > -1) & (c < R)
        i = np.clip(np.floor(c), -1, R - 1).astype(np.int64) + 1  # index into the zero-padded template
        return i, np.where(inside, c - np.floor(c), 0.0).astype(np.float32)

    ix, fx = taps(ox, x0)
    iy, fy = taps(oy, y0)
    Rp = R + 2
    pad = np.pad(templates, ((0, 0), (1, 1), (1, 1))).reshape(-1)  # (G * Rp * Rp,)
    row = (np.arange(G)[:, None, None] * Rp + iy)[..., :, None] * Rp  # (G, T, w, 1)
    col = ix[..., None, :]  # (G, T, 1, w)
    wy, wx = fy[..., :, None], fx[..., None, :]
    alpha = ((pad[row + col] * (1 - wx) + pad[row + col + 1] * wx) * (1 - wy)
             + (pad[row + Rp + col] * (1 - wx) + pad[row + Rp + col + 1] * wx) * wy)
    return alpha, ox, oy


def _window_index(ox: np.ndarray, oy: np.ndarray, W: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Advanced indices ``(t, y, x)`` selecting each frame's ``W x W`` window."""
    r = np.arange(W)
    t = np.arange(len(ox))[:, None, None]
    return t, (oy[:, None] + r)[:, :, None], (ox[:, None] + r)[:, None, :]


def _blend(frames: np.ndarray, alpha: np.ndarray, ox: np.ndarray, oy: np.ndarray, color: np.ndarray) -> None:
    """Alpha-composite a coloured glyph (alpha ``(T, W, W)``) over ``frames`` ``(T, C, H, W)`` in place."""
    T, C, H, W = frames.shape
    if not frames.flags.c_contiguous:
        raise ValueError("_blend: frames must be C-contiguous (it writes through a flat view)")
    t, y, x = _window_index(ox, oy, alpha.shape[1])
    flat, idx = frames.reshape(-1), (t * C * H + y) * W + x  # (T, w, w) offsets into channel 0
    keep = 1 - alpha
    for c in range(C):  # one channel plane at a time: no broadcasting over a length-3 axis
        flat[idx + c * H * W] = flat[idx + c * H * W] * keep + color[c] * alpha


def _tight_boxes(alpha: np.ndarray, ox: np.ndarray, oy: np.ndarray) -> np.ndarray:
    """``(T, 4)`` boxes ``(x0, y0, x1, y1)`` around the non-zero alpha ``(T, w, w)`` of each window."""
    w = alpha.shape[1]
    cols, rows = alpha.max(axis=1) > 0, alpha.max(axis=2) > 0  # (T, w) each
    x0, y0 = ox + np.argmax(cols, axis=1), oy + np.argmax(rows, axis=1)
    x1, y1 = ox + w - np.argmax(cols[:, ::-1], axis=1), oy + w - np.argmax(rows[:, ::-1], axis=1)
    return np.stack([x0, y0, x1, y1], axis=1).astype(np.float32)


def _composition(rng: np.random.Generator, total: int, parts: int) -> np.ndarray:
    """``parts`` non-negative ints summing to ``total``, uniform over all such splits (stars and bars)."""
    bars = np.sort(rng.choice(total + parts - 1, size=parts - 1, replace=False))
    return np.diff(np.concatenate([[-1], bars, [total + parts - 1]])) - 1


def _informative_mask(rng: np.random.Generator, T: int, fraction: float) -> np.ndarray:
    """``(T,)`` bool with exactly ``round(fraction * T)`` (at least 1) True frames.

    Runs of visible and hidden frames alternate around a circle of ``T`` frames (1..max_runs of
    each), which is then rotated by a random offset: every frame is equally likely to be
    informative, so no position in the clip is a free prior. A run may wrap around the clip's end.
    """
    n = int(min(T, max(1, round(fraction * T))))
    if n == T:
        return np.ones(T, dtype=bool)
    runs = int(rng.integers(1, min(RENDER.max_runs, n, T - n) + 1))
    shown = 1 + _composition(rng, n - runs, runs)  # run lengths, each >= 1
    hidden = 1 + _composition(rng, T - n - runs, runs)  # gap lengths, each >= 1
    pattern = np.repeat(np.tile([True, False], runs), np.stack([shown, hidden], axis=1).reshape(-1))
    return np.roll(pattern, int(rng.integers(T)))


def _scrambled_template(rng: np.random.Generator, templates: np.ndarray) -> np.ndarray:
    """A distractor: a random digit cut into quadrants, shuffled and each rotated by 90/180/270 degrees."""
    t = templates[rng.integers(len(templates))]
    h = t.shape[0] // 2
    quads = [t[:h, :h], t[:h, h:], t[h:, :h], t[h:, h:]]
    order, turns = rng.permutation(4), rng.integers(1, 4, size=4)
    q = [np.rot90(quads[o], k) for o, k in zip(order, turns)]
    return np.block([[q[0], q[1]], [q[2], q[3]]])


# ----------------------------------------------------------------------------- one clip


def _validate(cfg: DataConfig) -> None:
    _as_data_config(cfg).validate()  # types first (data.num_frames=2.5), then ranges; names the field


def generate_clip(cfg: DataConfig, rng: np.random.Generator, label: int, split: str = "train", *,
                  draw_object: bool = True, return_layers: bool = False) -> dict[str, Any]:
    """Render one clip of class ``label``.

    Returns ``video`` uint8 ``(T, C, H, W)``, ``boxes`` float32 ``(T, 4)`` as ``(x0, y0, x1, y1)``
    pixels (the digit's tight box in every frame, hidden or not), ``mask`` bool ``(T,)`` (frames
    where the digit is visible) and ``label``. ``split`` picks the pool of handwritten instances.
    ``draw_object=False`` renders the same clip without the digit (same random draws);
    ``return_layers=True`` adds ``object_alpha`` float32 ``(T, H, W)`` (the digit's visible opacity)
    and ``hidden_mode`` int ``(T,)`` (-1 visible, 0 absent, 1 occluded, 2 faded).
    """
    _validate(cfg)
    if as_index(label) is None or not 0 <= as_index(label) < cfg.num_classes:
        raise ConfigError(f"label: expected an int in [0, {cfg.num_classes}), got {label!r}")
    if not isinstance(rng, np.random.Generator):
        raise ConfigError(f"rng: expected a numpy Generator (np.random.default_rng(seed)), got "
                          f"{type(rng).__name__} {rng!r}")
    if split not in SPLITS:
        raise ConfigError(f"split: expected one of {SPLITS}, got {split!r}")
    T, S, C = cfg.num_frames, cfg.frame_size, cfg.channels
    templates, target, fold = _digits()

    # background: a dimmed, slowly panning photo crop; texture contrast grows with clutter
    photos = _backgrounds(S, C)
    photo = photos[rng.integers(len(photos))]
    max_pan = min(RENDER.pan_speed, (min(photo.shape[1:]) - S) / max(T - 1, 1))
    pan = rng.uniform(-max_pan, max_pan, size=2)
    shift = np.round(np.arange(T)[:, None] * pan).astype(np.int64)  # (T, 2) integer pan (dx, dy)
    lo, hi = -shift.min(axis=0), np.array([photo.shape[2], photo.shape[1]]) - S - shift.max(axis=0)
    origin = np.array([rng.integers(lo[0], max(lo[0], hi[0]) + 1), rng.integers(lo[1], max(lo[1], hi[1]) + 1)])
    crops = np.stack([photo[:, y: y + S, x: x + S] for x, y in origin + shift])  # (T, C, S, S)
    base = _q(rng.uniform(*RENDER.bg_base) * rng.uniform(0.8, 1.2, size=C)).astype(np.float32)
    gain = _q(cfg.clutter * RENDER.bg_contrast)
    base = base - _q(crops[0].reshape(C, -1).mean(axis=1), 1 / 1024).astype(np.float32) * np.float32(gain)
    frames = base[None, :, None, None] + np.float32(gain) * crops

    # the digit: size and path, a handwritten instance of the class, a bright colour
    digit_class, backward = label_parts(cfg, label)
    side = _sizes(rng, cfg)[None]  # (1, T)
    if cfg.motion == "direction":  # forwards here; reversed in time at the end when backward
        x0, y0 = _directed_path(rng, side, S, cfg.speed)
    else:
        x0, y0 = _paths(rng, side, S, cfg.speed)  # (1, T) each
    pool = np.flatnonzero((target == digit_class) & (fold == SPLITS.index(split)))
    digit = templates[pool[rng.integers(len(pool))]]
    color = _hsv_color(rng, C, RENDER.object_saturation, RENDER.object_value)

    # which frames show the digit; the others hide it (absent, occluded or faded), one mode per run
    mask = _informative_mask(rng, T, cfg.informative_fraction)
    run_id = np.concatenate([[0], np.cumsum(mask[1:] != mask[:-1])])
    run_mode = rng.integers(0, 3, size=run_id[-1] + 1)  # 0 absent, 1 occluded, 2 faded
    mode = np.where(mask, -1, run_mode[run_id])
    visibility = np.where(mask, 1.0, np.where(mode == 2, RENDER.fade_alpha, 0.0)).astype(np.float32)

    # distractors: scrambled strokes, smaller, duller and slower than the digit, drawn under it
    n = int(rng.binomial(RENDER.max_distractors, cfg.clutter))
    d_side = np.repeat(_q(side.mean() * rng.uniform(*RENDER.distractor_scale, (n, 1))), T, axis=1)  # (n, T)
    dx, dy = _paths(rng, d_side, S, cfg.speed * RENDER.distractor_speed)
    d_templates = [_scrambled_template(rng, templates) for _ in range(n)]
    d_colors = [_hsv_color(rng, C, RENDER.distractor_saturation, RENDER.distractor_value) for _ in range(n)]
    d_opacity = rng.uniform(*RENDER.distractor_alpha, n).astype(np.float32)

    # render every glyph at once (the digit is glyph 0), composite distractors first
    alpha, ox, oy = _render_glyphs(np.stack([digit, *d_templates]), np.concatenate([x0, dx]),
                                   np.concatenate([y0, dy]), np.concatenate([side, d_side]), S)
    for g in range(1, n + 1):
        _blend(frames, alpha[g] * d_opacity[g - 1], ox[g], oy[g], d_colors[g - 1])
    alpha, ox, oy, x0, y0, side = alpha[0], ox[0], oy[0], x0[0], y0[0], side[0]
    boxes = _tight_boxes(alpha, ox, oy)
    empty = boxes[:, 2] <= boxes[:, 0]  # a glyph too small to leave any pixel: use its geometric box
    boxes[empty] = np.stack([x0, y0, x0 + side, y0 + side], 1)[empty].astype(np.float32)
    visible = alpha * visibility[:, None, None] * np.float32(draw_object)
    _blend(frames, visible, ox, oy, color)

    # occluders: a textured patch (another photo crop) covering the digit's box plus a margin
    occ_photo = photos[rng.integers(len(photos))]
    occ_xy = rng.integers(0, np.array(occ_photo.shape[:0:-1]) - S + 1)
    occ_tex = occ_photo[:, occ_xy[1]: occ_xy[1] + S, occ_xy[0]: occ_xy[0] + S]  # (C, S, S)
    occ_color = _hsv_color(rng, C, RENDER.distractor_saturation, RENDER.bg_base)
    occluder = occ_color[:, None, None] + np.float32(0.5) * (occ_tex - np.float32(0.5))
    m = RENDER.occluder_margin
    covered = []  # (t, rows, cols) of each occluded frame
    for t in np.flatnonzero(mode == 1):
        x_a, y_a, x_b, y_b = boxes[t].astype(int) + np.array([-m, -m, m, m])
        rows, cols = slice(max(0, y_a), min(S, y_b)), slice(max(0, x_a), min(S, x_b))
        frames[t, :, rows, cols] = occluder[:, rows, cols]
        covered.append((t, rows, cols))

    noise_std = RENDER.noise_std[0] + cfg.clutter * (RENDER.noise_std[1] - RENDER.noise_std[0])
    frames += np.float32(noise_std) * rng.standard_normal((T, 1, S, S), dtype=np.float32)  # luminance noise
    frames *= np.float32(255)
    frames += np.float32(0.5)
    video = np.clip(frames, 0, 255, out=frames).astype(np.uint8)  # (T, C, S, S), rounded half up
    out = {"video": video, "boxes": boxes, "mask": mask, "label": int(label)}
    if return_layers:
        full = np.zeros((T, S, S), dtype=np.float32)
        full[_window_index(ox, oy, alpha.shape[1])] = visible
        for t, rows, cols in covered:
            full[t, rows, cols] = 0.0
        out["object_alpha"] = full
        out["hidden_mode"] = mode  # (T,) int: -1 visible, 0 absent, 1 occluded, 2 faded
    if backward:  # the same clip (the same random draws) played backwards: the same frames in reverse order
        for key in ("video", "boxes", "mask", "object_alpha", "hidden_mode"):
            if key in out:
                out[key] = np.ascontiguousarray(out[key][::-1])
    return out


def label_parts(cfg: DataConfig, label: int) -> tuple[int, bool]:
    """``(digit, backward)`` of a label: the digit is the label itself unless ``cfg.motion == "direction"``,
    where label ``2 * digit + backward`` means that digit moving forwards (rightwards) or backwards."""
    if cfg.motion == "direction":
        return int(label) // 2, bool(int(label) % 2)
    return int(label), False


def class_names(cfg: DataConfig | Config) -> list[str]:
    """A name per class: the digit (``"7"``), or with ``motion="direction"`` the digit and its direction of
    motion (``"3 →"`` forwards, ``"3 ←"`` backwards)."""
    cfg = _as_data_config(cfg)
    names = []
    for k in range(cfg.num_classes):
        digit, backward = label_parts(cfg, k)
        names.append(f"{digit} {'←' if backward else '→'}" if cfg.motion == "direction" else str(digit))
    return names


# ----------------------------------------------------------------------------- splits


@dataclass
class ClipSet:
    """One split in memory."""

    videos: torch.Tensor  # uint8 (N, T, C, H, W)
    labels: torch.Tensor  # int64 (N,)
    boxes: torch.Tensor  # float32 (N, T, 4) as x0, y0, x1, y1 pixels
    mask: torch.Tensor  # bool (N, T): frames where the object is visible

    def __post_init__(self) -> None:
        N, T = self.videos.shape[:2]
        for name, t, shape, dtype in (("videos", self.videos, None, torch.uint8),
                                      ("labels", self.labels, (N,), torch.int64),
                                      ("boxes", self.boxes, (N, T, 4), torch.float32),
                                      ("mask", self.mask, (N, T), torch.bool)):
            if t.dtype != dtype or (shape is not None and tuple(t.shape) != shape) or (shape is None and t.ndim != 5):
                raise ValueError(f"ClipSet.{name}: expected {dtype} {shape or '(N, T, C, H, W)'}, "
                                 f"got {t.dtype} {tuple(t.shape)}")

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, indices: Sequence[int]) -> "ClipSet":
        idx = torch.as_tensor(list(indices), dtype=torch.long)
        return ClipSet(self.videos[idx], self.labels[idx], self.boxes[idx], self.mask[idx])


def redundancy_summary(clips: ClipSet) -> dict[str, float]:
    """How much of a set of clips matters, from the ground truth.

    ``box_fraction``: mean fraction of a frame's pixels inside the object's box (spatial);
    ``informative_fraction``: fraction of frames where the object is visible (temporal);
    ``useful_fraction``: fraction of all the clips' pixels that are inside the box of a visible object.
    """
    H, W = clips.videos.shape[-2:]
    area = ((clips.boxes[..., 2] - clips.boxes[..., 0]) * (clips.boxes[..., 3] - clips.boxes[..., 1])) / (H * W)
    return {"box_fraction": float(area.mean()), "informative_fraction": float(clips.mask.float().mean()),
            "useful_fraction": float((area * clips.mask).mean())}


def _as_data_config(cfg: DataConfig | Config) -> DataConfig:
    if isinstance(cfg, Config):
        return cfg.data
    if not isinstance(cfg, DataConfig):
        raise ConfigError(f"cfg: expected a DataConfig or a Config (e.g. get_config('tiny').data), got "
                          f"{type(cfg).__name__}{f' {cfg!r}' if isinstance(cfg, str) else ''}")
    return cfg


def _clip_indices(indices: Sequence[int], n: int, split: str) -> list[int]:
    """``indices`` as a list of ints in ``[0, n)``, or a ConfigError listing the bad ones."""
    expected = f"a sequence of ints in [0, {n}) (the {split!r} split has {n} clips)"
    try:
        items = list(indices)
    except TypeError:
        raise ConfigError(f"indices: expected {expected}, got {indices!r}") from None
    bad = [i for i in items if as_index(i) is None or not 0 <= as_index(i) < n]
    if bad:
        raise ConfigError(f"indices: expected {expected}, got {bad[:10]!r}{' ...' if len(bad) > 10 else ''}")
    return [as_index(i) for i in items]


def split_size(cfg: DataConfig, split: str) -> int:
    if split not in SPLITS:
        raise ConfigError(f"split: expected one of {SPLITS}, got {split!r}")
    return getattr(cfg, f"num_{split}")


def split_labels(cfg: DataConfig, split: str) -> np.ndarray:
    """Balanced labels ``(N,)`` in a seeded random order (class counts differ by at most one)."""
    n = split_size(cfg, split)
    order = np.random.default_rng([cfg.seed, SPLITS.index(split), 2**31]).permutation(n)
    return (order % cfg.num_classes).astype(np.int64)


def _clip_rng(cfg: DataConfig, split: str, index: int) -> np.random.Generator:
    return np.random.default_rng([cfg.seed, SPLITS.index(split), int(index)])


def _generate_chunk(cfg: DataConfig, split: str, indices: list[int], labels: list[int]) -> tuple[np.ndarray, ...]:
    clips = [generate_clip(cfg, _clip_rng(cfg, split, i), y, split) for i, y in zip(indices, labels)]
    return tuple(np.stack([c[k] for c in clips]) for k in ("video", "boxes", "mask"))


def run_chunks(fn, tasks: list[tuple], sizes: list[int], workers: int, desc: str, progress: bool,
               assets: tuple[int, int]):
    """Yield ``fn(*task)`` for every task, in order, in ``workers`` processes when the job is large.

    ``sizes``: items per task (for the progress bar); ``assets``: ``(frame_size, channels)`` of the
    assets to load once before forking. Each item's random draws depend only on its own seed, so
    any worker count gives the same bytes.
    """
    bar = tqdm(total=sum(sizes), desc=desc, unit="clip", disable=not progress)
    pool = None
    if workers <= 1 or sum(sizes) < PARALLEL_MIN_CLIPS:
        results = (fn(*task) for task in tasks)
    else:
        _digits(), _backgrounds(*assets)  # load the assets once, before forking
        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(_START_METHOD))
        results = pool.map(fn, *zip(*tasks))
    try:
        for size, result in zip(sizes, results):
            yield result
            bar.update(size)
    finally:
        bar.close()
        if pool is not None:
            pool.shutdown(cancel_futures=True)


def generate_clips(cfg: DataConfig, split: str, indices: Sequence[int], progress: bool = True,
                   workers: int | None = None) -> ClipSet:
    """Clips ``indices`` of a split (identical to the same rows of :func:`generate_split`)."""
    cfg = _as_data_config(cfg)
    _validate(cfg)
    labels = split_labels(cfg, split)
    indices = _clip_indices(indices, len(labels), split)
    T, S, C = cfg.num_frames, cfg.frame_size, cfg.channels
    videos = np.zeros((len(indices), T, C, S, S), dtype=np.uint8)
    boxes = np.zeros((len(indices), T, 4), dtype=np.float32)
    mask = np.zeros((len(indices), T), dtype=bool)
    starts = list(range(0, len(indices), CHUNK_SIZE))
    tasks = [(cfg, split, indices[a: a + CHUNK_SIZE], labels[indices[a: a + CHUNK_SIZE]].tolist()) for a in starts]
    workers = DEFAULT_WORKERS if workers is None else workers
    results = run_chunks(_generate_chunk, tasks, [len(t[2]) for t in tasks], workers, f"generating {split}",
                         progress, (S, C))
    for a, (v, b, m) in zip(starts, results):
        videos[a: a + len(v)], boxes[a: a + len(v)], mask[a: a + len(v)] = v, b, m
    return ClipSet(torch.from_numpy(videos), torch.from_numpy(labels[indices]), torch.from_numpy(boxes),
                   torch.from_numpy(mask))


def generate_split(cfg: DataConfig, split: str, progress: bool = True, workers: int | None = None) -> ClipSet:
    """A whole split, deterministic from ``cfg.seed`` and ``split`` (independent of ``workers``)."""
    cfg = _as_data_config(cfg)
    _validate(cfg)
    return generate_clips(cfg, split, range(split_size(cfg, split)), progress=progress, workers=workers)


# ----------------------------------------------------------------------------- cache and dataset


def data_hash(cfg: DataConfig) -> str:
    """Cache key: the config, the rendering constants and the generator version."""
    blob = json.dumps({"config": hashed_fields(_as_data_config(cfg)), "render": dataclasses.asdict(RENDER),
                       "version": GENERATOR_VERSION}, sort_keys=True, default=list).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def cache_path(cfg: DataConfig, split: str) -> Path:
    return cache_dir("data", data_hash(cfg)) / f"{split}.pt"


_FIELDS = ("videos", "labels", "boxes", "mask")
# cache files at least this large are memory-mapped rather than read whole (the small preset's
# splits are 94-750 MiB, the tiny preset's well under 1 MiB)
STREAM_MIN_BYTES = 64 * 2**20


def _checksums(clips: ClipSet) -> dict[str, int]:
    return {k: zlib.crc32(getattr(clips, k).contiguous().numpy()) for k in _FIELDS}


def _read_cache(path: Path, cfg: DataConfig, split: str) -> ClipSet | None:
    """The cached split, or None when the file is missing, truncated, corrupt or for another config."""
    if not path.exists():
        return None
    try:
        stream = path.stat().st_size >= STREAM_MIN_BYTES  # large: pages are read as batches need them
        blob = torch.load(path, weights_only=True, mmap=stream)
        clips = ClipSet(*(blob[k] for k in _FIELDS))
        expected = (split_size(cfg, split), cfg.num_frames, cfg.channels, cfg.frame_size, cfg.frame_size)
        ok = (blob["version"] == GENERATOR_VERSION and blob["hash"] == data_hash(cfg) and blob["split"] == split
              and tuple(clips.videos.shape) == expected and blob["checksums"] == _checksums(clips))
    except Exception as e:  # a truncated zip, a missing key, a bad shape: regenerate
        warnings.warn(f"{path}: unreadable cache ({type(e).__name__}: {e}); regenerating", stacklevel=3)
        return None
    if not ok:
        warnings.warn(f"{path}: cache does not match its checksum or config; regenerating", stacklevel=3)
        return None
    return clips


class SyntheticVideoDataset(torch.utils.data.Dataset):
    """A split as a map-style dataset; items are dicts of tensors (video scaled to [0, 1])."""

    def __init__(self, clips: ClipSet, config: DataConfig, split: str) -> None:
        self.clips, self.config, self.split = clips, config, split
        self.class_names = class_names(config)

    def __len__(self) -> int:
        return len(self.clips)

    def fingerprint(self) -> str:
        """A short hash of the clips' config, split and ground truth (labels, boxes, masks)."""
        c = self.clips
        crc = [zlib.crc32(t.contiguous().numpy()) for t in (c.labels, c.boxes, c.mask)]
        return hashlib.sha256(repr((data_hash(self.config), self.split, len(c), crc)).encode()).hexdigest()[:12]

    def is_default_split(self, cfg: DataConfig) -> bool:
        """True when these are exactly the clips :func:`load_split` gives for ``cfg`` and the split."""
        return (self.config == _as_data_config(cfg) and self.split in SPLITS
                and len(self) == split_size(self.config, self.split))

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"video": self.clips.videos[i].float().div_(255),  # (T, C, H, W) float32 in [0, 1]
                "label": self.clips.labels[i], "boxes": self.clips.boxes[i], "mask": self.clips.mask[i],
                "index": int(i)}


def load_split(cfg: DataConfig, split: str, cache: bool = True, progress: bool = True) -> SyntheticVideoDataset:
    """A split from the on-disk cache (``cache_dir("data", data_hash(cfg))``), generated if needed.

    Large cached splits (``STREAM_MIN_BYTES``) are memory-mapped, not read whole: a batch reads
    only its own clips' pages, and several processes (data-parallel ranks, benchmark workers) share
    one copy in the page cache. Do not rewrite a cache file in place while it is in use; the cache
    itself only ever replaces files atomically.
    """
    cfg = _as_data_config(cfg)
    _validate(cfg)
    split_size(cfg, split)
    path = cache_path(cfg, split) if cache else None
    clips = _read_cache(path, cfg, split) if cache else None
    if clips is None:
        clips = generate_split(cfg, split, progress=progress)
        if cache:
            atomic_torch_save({"version": GENERATOR_VERSION, "hash": data_hash(cfg), "split": split,
                               "config": json.dumps(dataclasses.asdict(cfg), default=list),
                               "checksums": _checksums(clips), **{k: getattr(clips, k) for k in _FIELDS}}, path)
            clips = _read_cache(path, cfg, split) or clips  # memory-mapped: the generated copy is freed
    return SyntheticVideoDataset(clips, cfg, split)


def load_splits(cfg: DataConfig, **kw: Any) -> dict[str, SyntheticVideoDataset]:
    """``{"train": ..., "val": ..., "test": ...}`` via :func:`load_split`."""
    return {split: load_split(cfg, split, **kw) for split in SPLITS}

"""Write clips to mp4 files plus an annotation file, so that any clip set (e.g. the synthetic
benchmark) can be read back by the real-video loader (:class:`adafocus.data.video.VideoFolderDataset`).

Layout written under ``out_dir``::

    videos/clip_000000.mp4 ...   one file per clip (H.264 4:4:4 at a low CRF: near lossless)
    annotations.csv              header "path,label", paths relative to out_dir   (fmt="csv"; CSV quoting)
    annotations.txt              lines "path num_frames label"                    (fmt="list")
    classes.txt                  one name per line, only when class_names are given

The encoder is libx264 with ``yuv444p`` (no chroma subsampling, so small coloured objects keep their
colour) at ``crf`` (default 4: about 0.5/255 mean error on smooth content, about 1/255 on noise). Where
libx264 is missing, MPEG-4 part 2 at the finest quantiser is used (4:2:0 only, needs even sizes).
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import tempfile
from fractions import Fraction
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from adafocus.checks import as_path, is_int, output_dir
from adafocus.data.video import class_name_problem, inferred_label_limit

DEFAULT_CRF = 4  # libx264 constant rate factor: 0 = lossless (large files), 18 = "visually lossless"
MPEG4_QSCALE = 1  # the fallback encoder's finest quantiser (ffmpeg's -q:v 1)
FF_QP2LAMBDA = 118  # ffmpeg's scale from a quantiser to its "global_quality" lambda
FORMATS = ("csv", "list")
CODECS = ("auto", "libx264", "mpeg4")


def export_clips(
    videos: torch.Tensor | np.ndarray,
    labels: Sequence[int] | np.ndarray | torch.Tensor,
    out_dir: str | os.PathLike,
    class_names: Sequence[str] | None = None,
    fps: int = 8,
    fmt: str = "csv",
    crf: int = DEFAULT_CRF,
    codec: str = "auto",
) -> Path:
    """Encode uint8 clips ``(N, T, C, H, W)`` (C = 1 or 3) as mp4 files; return the annotation path.

    With ``class_names`` the annotation stores names (and ``classes.txt`` keeps their order);
    without, integer labels. Grayscale clips are written as RGB with equal channels.

    Every argument is checked before anything is written. The files are encoded into a temporary
    folder inside ``out_dir`` and moved into place only when all of them are done, so a failure
    (a bad argument, a full disk, an interrupt) leaves ``out_dir`` as it was.
    """
    videos = videos.numpy() if isinstance(videos, torch.Tensor) else np.asarray(videos)
    labels = np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels)
    if videos.dtype != np.uint8 or videos.ndim != 5 or videos.shape[2] not in (1, 3):
        raise ValueError(f"videos: expected uint8 (N, T, C, H, W) with C in (1, 3), got {videos.dtype} "
                         f"{videos.shape}")
    N, T, C, H, W = videos.shape
    if N == 0:
        raise ValueError(f"videos: expected at least one clip, got shape {videos.shape}")
    if min(T, H, W) == 0:
        raise ValueError(f"videos: expected at least one frame of at least 1x1 pixels, got shape {videos.shape}")
    if fmt not in FORMATS:
        raise ValueError(f"fmt: expected one of {list(FORMATS)}, got {fmt!r}")
    if class_names is not None:
        if isinstance(class_names, str) or not all(isinstance(n, str) for n in class_names):
            raise ValueError(f"class_names: expected a list of class names (strings), got {class_names!r}")
        class_names = list(class_names)
        if not class_names:
            raise ValueError("class_names: expected at least one class name, got an empty list")
        bad = [(n, why) for n in class_names if (why := class_name_problem(n, fmt)) is not None]
        if bad:
            listed = "; ".join(f"{n!r} {why}" for n, why in bad[:5])
            raise ValueError(f"class_names: expected names that read back as written (no line breaks or other "
                             f"control characters, no surrounding spaces), got {listed}")
        dupes = sorted({n for n in class_names if class_names.count(n) > 1})
        if dupes:
            raise ValueError(f"class_names: expected unique names (the reader refuses duplicates), got {dupes[:5]} "
                             "more than once")
    if labels.shape != (N,) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels: expected {N} integers (one per clip), got {labels.dtype} {labels.shape}")
    top = len(class_names) - 1 if class_names is not None else None
    if labels.size and (labels.min() < 0 or (top is not None and labels.max() > top)):
        expected = f"[0, {top}] (one per class name)" if top is not None else ">= 0"
        raise ValueError(f"labels: expected integers {expected}, got min {labels.min()} max {labels.max()}")
    if class_names is None and labels.size and labels.max() >= inferred_label_limit(N):
        raise ValueError(f"labels: expected integers below {inferred_label_limit(N)} without class_names (the "
                         f"reader takes integer labels as indices 0 .. max and refuses larger ones), got max "
                         f"{labels.max()}; pass class_names")
    if not (is_int(fps) and fps >= 1):
        raise ValueError(f"fps: expected an int >= 1, got {fps!r}")
    codec = _encoder(codec, crf, H, W)
    out_dir = output_dir(out_dir, "out_dir")

    text = io.StringIO()
    table = csv.writer(text, lineterminator="\n")  # quotes a name with a comma or a quote
    if fmt == "csv":
        table.writerow(["path", "label"])
    files: dict[str, bytes | None] = {}  # relative path -> text to write (None: an encoded clip)
    for i in range(N):
        rel = f"videos/clip_{i:06d}.mp4"
        files[rel] = None
        label = class_names[labels[i]] if class_names is not None else str(int(labels[i]))
        if fmt == "csv":
            table.writerow([rel, label])
        else:
            text.write(f"{rel} {T} {label}\n")
    if class_names is not None:
        files["classes.txt"] = ("\n".join(class_names) + "\n").encode()
    annotation = "annotations.csv" if fmt == "csv" else "annotations.txt"
    files[annotation] = text.getvalue().encode()  # last: it appears only when the clips are there

    created = [p for p in (out_dir / "videos", out_dir, *out_dir.parents) if not p.exists()]  # deepest first
    out_dir.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".export-", suffix=".tmp", dir=out_dir))
    try:
        (stage / "videos").mkdir()
        for i in tqdm(range(N), desc="writing mp4", leave=False, disable=N < 50):
            write_mp4(videos[i], stage / f"videos/clip_{i:06d}.mp4", fps=fps, crf=crf, codec=codec)
        for rel, text in files.items():
            if text is not None:
                (stage / rel).write_bytes(text)
        (out_dir / "videos").mkdir(exist_ok=True)
        for rel in files:
            os.replace(stage / rel, out_dir / rel)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        for d in created:  # the folders this call made, if still empty
            try:
                d.rmdir()
            except OSError:
                break
        raise
    shutil.rmtree(stage, ignore_errors=True)
    return out_dir / annotation


def _encoder(codec: str, crf: int, height: int, width: int) -> str:
    """Check the encoder settings; resolve ``codec="auto"`` to libx264 when PyAV has it, else mpeg4."""
    import av

    if codec not in CODECS:
        raise ValueError(f"codec: expected one of {list(CODECS)}, got {codec!r}")
    if not (is_int(crf) and 0 <= crf <= 51):
        raise ValueError(f"crf: expected an int in [0, 51] (libx264's quality scale, 0 = lossless), got {crf!r}")
    if codec == "auto":
        codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    if codec == "mpeg4" and (height % 2 or width % 2):
        raise ValueError(f"codec 'mpeg4': the MPEG-4 encoder (4:2:0) needs even frame sizes, got {height}x{width}")
    return codec


def write_mp4(clip: np.ndarray, path: str | os.PathLike, fps: int = 8, crf: int = DEFAULT_CRF,
              codec: str = "auto") -> None:
    """Encode one uint8 clip ``(T, C, H, W)`` to ``path`` (its folder is created if needed).

    ``codec="auto"`` picks libx264 (4:4:4, ``crf``) when PyAV has it, else MPEG-4 part 2 (4:2:0).
    The file is encoded under a temporary name and renamed when complete: ``path`` never holds a
    partial video.
    """
    import av

    clip = np.asarray(clip)
    if clip.dtype != np.uint8 or clip.ndim != 4 or clip.shape[1] not in (1, 3) or 0 in clip.shape:
        raise ValueError(f"clip: expected uint8 (T, C, H, W) with C in (1, 3) and T, H, W >= 1, got {clip.dtype} "
                         f"{clip.shape}")
    if not (is_int(fps) and fps >= 1):
        raise ValueError(f"fps: expected an int >= 1, got {fps!r}")
    T, C, H, W = clip.shape
    codec = _encoder(codec, crf, H, W)
    path = as_path(path, "path")
    frames = np.ascontiguousarray(clip.transpose(0, 2, 3, 1))  # (T, H, W, C)
    if C == 1:
        frames = np.repeat(frames, 3, axis=-1)  # (T, H, W, 3) gray as RGB
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")  # keeps the suffix: the container format
    try:
        with av.open(str(tmp), mode="w") as container:
            stream = container.add_stream(codec, rate=fps)
            stream.width, stream.height = W, H
            stream.time_base = Fraction(1, fps)
            if codec == "libx264":
                stream.pix_fmt = "yuv444p"
                stream.options = {"crf": str(crf)}
            else:
                stream.pix_fmt = "yuv420p"
                stream.options = {"flags": "+qscale", "global_quality": str(MPEG4_QSCALE * FF_QP2LAMBDA)}
            for t in range(T):
                frame = av.VideoFrame.from_ndarray(frames[t], format="rgb24")  # (H, W, 3)
                frame.pts = t
                container.mux(stream.encode(frame))
            container.mux(stream.encode())  # flush the encoder
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise

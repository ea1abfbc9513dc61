"""Real videos: a folder of video files plus an annotation file, decoded at sampling time.

The pipeline for one clip (docs/design.md, "The synthetic benchmark": real videos are first-class too):

1. **Annotations.** :func:`read_annotations` reads either a CSV with a header ``path,label`` or the
   common whitespace list formats ``path label`` and ``path num_frames label``. Paths are relative
   to ``video_root`` (default: the annotation file's folder) or absolute. A label is a class name
   or an integer class index. Class names come from the ``classes`` argument, else from a
   ``classes.txt`` (one name per line) next to the annotation file, else from the labels themselves:
   all-integer labels keep their value (names ``"0" .. "max"``), otherwise the sorted unique names.
2. **Frame sampling (TSN style).** :func:`sample_segment_indices` splits the video's ``n`` frames
   into ``T`` equal segments and takes one frame per segment: a random one in training, the
   center one at test. Only those ``T`` frames are decoded.
3. **Decoding.** :func:`read_clip` opens a file once, counts its frames, asks a sampler which
   indices to decode and decodes only those, with decord (``VideoReader.get_batch``, one thread) or
   PyAV (sequential decode keeping the wanted frames; no seeking, fine for short clips).
   ``backend="auto"`` prefers decord and falls back to PyAV when decord is missing or fails on a
   file. :func:`read_frames`, :func:`video_num_frames` and :func:`check_video` are thin wrappers.
4. **Resizing.** :func:`resize_frames` center-crops the short side to a square, then resizes to
   ``frame_size`` with bilinear ``interpolate(antialias=True)``, giving float32 ``(T, C, H, W)``
   in [0, 1].

:class:`VideoFolderDataset` ties the steps together and returns the same keys as the synthetic
dataset (``video``, ``label``, ``index``, ``path``; no ``boxes``/``mask``: real videos have no
ground truth). Every problem raises :class:`VideoError` naming the file (or ``file:line``) and what
was expected; with ``on_error="skip"`` broken videos are found up front and left out with a warning.
"""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata
import warnings
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from adafocus.checks import as_index, as_path, is_int, path_problem

BACKENDS = ("auto", "decord", "av")
ON_ERROR = ("raise", "skip")
PADS = ("error", "repeat")
CLASSES_FILE = "classes.txt"  # looked for next to the annotation file
MAX_LISTED = 20  # problems listed by name in one error or warning message


class VideoError(ValueError):
    """A video, an annotation line or an argument that cannot be used. The message names the file
    (or ``file:line``) and what was expected."""


class _BackendFailure(Exception):
    """One backend could not decode a file (``auto`` mode then tries the next backend)."""


# ---------------------------------------------------------------------------------------------
# Annotations
# ---------------------------------------------------------------------------------------------

PathLike = str | os.PathLike


def read_annotations(
    path: PathLike, video_root: PathLike | None = None, classes: Sequence[str] | None = None
) -> tuple[list[tuple[Path, int]], list[str]]:
    """Parse an annotation file into ``([(video_path, class_index), ...], class_names)``.

    Formats (detected from a ``.csv`` suffix or a first line starting with ``path,``):

    - CSV with a header containing ``path`` and ``label`` (other columns are ignored). Fields may be
      quoted (``"a, b.mp4"``; ``""`` for a quote inside quotes); spaces around fields are removed;
      a field may not span lines;
    - whitespace lists ``path label`` or ``path num_frames label`` (``num_frames`` is checked to be
      an integer and otherwise ignored: the decoder counts frames itself). Paths may not contain
      spaces in this format; use the CSV format for those. A first line such as ``path label`` or
      ``video num_frames class`` is recognised as a header and skipped.

    Text is UTF-8, with or without a byte-order mark, with ``\\n``, ``\\r\\n`` or ``\\r`` line ends
    (the same holds for ``classes.txt``). Blank lines and lines starting with ``#`` are skipped (a
    quoted CSV path starting with ``#`` is a path). A video listed twice must have the same label
    both times. All-integer labels without class names are class indices; one far beyond the number
    of entries (:func:`inferred_label_limit`) is an error rather than that many class names.
    Existence of the video files is not checked here (see :class:`VideoFolderDataset`).
    """
    path = as_path(path, "annotation_file", VideoError)
    expected = "a CSV with header 'path,label' or a list file with lines 'path label' / 'path num_frames label'"
    if path.is_dir():
        raise VideoError(f"annotation file {path} is a directory; expected an annotation file: {expected}")
    if not path.is_file():
        problem = path_problem(path)
        if problem is not None:
            raise VideoError(f"annotation file {path} {problem}; expected {expected}")
        raise VideoError(f"annotation file not found: {path}; expected {expected}")
    root = path.parent if video_root is None else as_path(video_root, "video_root", VideoError)
    if not root.is_dir():
        problem = path_problem(root) or "is not a directory"
        raise VideoError(f"video_root {root} {problem}; expected the folder the paths in {path} are relative to")
    if classes is not None and (isinstance(classes, str) or not all(isinstance(c, str) for c in classes)):
        raise VideoError(f"classes: expected a list of class names (strings), got {classes!r}")
    lines = _read_lines(path, expected)
    entries = [(n, ln) for n, ln in enumerate(lines, start=1) if ln.strip() and not ln.lstrip().startswith("#")]
    if not entries:
        raise VideoError(f"{path}: no annotation entries found (nothing but blank lines and # comments); "
                         f"expected {expected}")
    first = entries[0][1].split(",")[0].strip().strip('"').strip().lower()
    is_csv = path.suffix.lower() == ".csv" or first == "path"
    rows = _parse_csv(path, entries) if is_csv else _parse_list(path, entries)
    if not rows:
        raise VideoError(f"{path}: no annotation entries found; expected one line per video")

    source = "the classes argument"
    if classes is None and (path.parent / CLASSES_FILE).is_file():
        classes = _read_classes_file(path.parent / CLASSES_FILE)
        source = str(path.parent / CLASSES_FILE)
    names = list(classes) if classes is not None else _infer_classes(path, rows)
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise VideoError(f"class names from {source} contain duplicates {dupes[:MAX_LISTED]}; expected unique names")

    index = {name: i for i, name in enumerate(names)}
    items = []
    seen: dict[str, tuple[int, str, int]] = {}  # normalised video path -> (line, label, class index)
    for lineno, vpath, label in rows:
        number = _int_value(label)
        if label in index:
            target = index[label]
        elif number is not None and 0 <= number < len(names):
            target = number
        else:
            known = names if len(names) <= MAX_LISTED else names[:MAX_LISTED] + ["..."]
            raise VideoError(f"{path}:{lineno}: unknown label {label[:100]!r}; expected a class name from "
                             f"{source if classes is not None else 'the labels'} {known} or an integer in "
                             f"[0, {len(names) - 1}]")
        p = Path(vpath)
        full = p if p.is_absolute() else root / p
        key = os.path.normpath(full)
        if key in seen and seen[key][2] != target:
            first_line, first_label, _ = seen[key]
            raise VideoError(f"{path}:{lineno}: video {vpath!r} has label {label!r} here but {first_label!r} at line "
                             f"{first_line}; expected one label per video")
        seen.setdefault(key, (lineno, label, target))
        items.append((full, target))
    return items, names


_LINE_END = re.compile(r"\r\n|\r|\n")


def _read_lines(path: Path, expected: str) -> list[str]:
    """The lines of a UTF-8 text file: a byte-order mark dropped, ``\\n``, ``\\r\\n`` and ``\\r`` ends."""
    data = path.read_bytes()
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise VideoError(f"{path}: saved as UTF-16 text; expected UTF-8 (save it as 'CSV UTF-8' or plain UTF-8 "
                         f"text): {expected}")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise VideoError(f"{path}: not a text file (byte {e.start} is not UTF-8); expected {expected}") from None
    lines = _LINE_END.split(text)
    return lines[:-1] if lines and lines[-1] == "" else lines


def _split_csv_line(line: str) -> list[str]:
    """One CSV line split into fields, each stripped of surrounding whitespace.

    A field may be quoted (RFC 4180: ``"a, b"``, with ``""`` for a quote inside); spaces around the
    quotes are allowed; a quote inside an unquoted field is literal. ``ValueError`` for a quote that
    is never closed and for text after a closing quote.
    """
    fields, i, n = [], 0, len(line)
    while True:
        while i < n and line[i] in " \t":
            i += 1
        if i < n and line[i] == '"':
            opened, i, parts = i, i + 1, []
            while True:
                j = line.find('"', i)
                if j < 0:
                    raise ValueError(f"unbalanced quote: the quote at column {opened + 1} is never closed (a quote "
                                     "inside a quoted field is written twice: \"\")")
                parts.append(line[i:j])
                if line.startswith('""', j):
                    parts.append('"')
                    i = j + 2
                    continue
                i = j + 1
                break
            closed = i  # (1-based column of the closing quote)
            while i < n and line[i] in " \t":
                i += 1
            if i < n and line[i] != ",":
                raise ValueError(f"text {line[i:i + 20]!r} after the closing quote at column {closed}; expected a "
                                 "comma or the end of the line")
            fields.append("".join(parts).strip())
        else:
            j = line.find(",", i)
            j = n if j < 0 else j
            fields.append(line[i:j].strip())
            i = j
        if i >= n:
            return fields
        i += 1  # past the comma


def _csv_fields(path: Path, lineno: int, line: str) -> list[str]:
    try:
        return _split_csv_line(line)
    except ValueError as e:
        raise VideoError(f"{path}:{lineno}: malformed CSV line ({e}): {line[:200]!r}") from None


def _parse_csv(path: Path, entries: list[tuple[int, str]]) -> list[tuple[int, str, str]]:
    header_line, header_text = entries[0]
    header = [h.lower() for h in _csv_fields(path, header_line, header_text)]
    if "path" not in header or "label" not in header:
        raise VideoError(f"{path}:{header_line}: CSV header {header} lacks a column; expected at least 'path,label'")
    ip, il = header.index("path"), header.index("label")
    rows = []
    for lineno, line in entries[1:]:
        row = _csv_fields(path, lineno, line)
        if not "".join(row):
            continue
        if len(row) != len(header):
            raise VideoError(f"{path}:{lineno}: {len(row)} fields {row}; expected {len(header)} "
                             f"comma-separated fields ({','.join(header)})")
        vpath, label = row[ip], row[il]
        if not vpath or not label:
            raise VideoError(f"{path}:{lineno}: empty path or label in {row}; expected both")
        rows.append((lineno, vpath, label))
    return rows


# words that make the first line of a list file a header rather than a video
_HEADER_PATH = {"path", "video", "video_path", "videos", "file", "filename", "file_name", "name", "clip"}
_HEADER_COUNT = {"num_frames", "frames", "n_frames", "nframes", "length", "count"}
_HEADER_LABEL = {"label", "labels", "class", "class_name", "classname", "category", "target", "class_id",
                 "class_index"}


def _is_list_header(fields: list[str]) -> bool:
    words = [f.lower() for f in fields]
    return (len(words) in (2, 3) and words[0] in _HEADER_PATH and words[-1] in _HEADER_LABEL
            and (len(words) == 2 or words[1] in _HEADER_COUNT))


def _parse_list(path: Path, entries: list[tuple[int, str]]) -> list[tuple[int, str, str]]:
    rows = []
    for k, (lineno, line) in enumerate(entries):
        fields = line.split()
        if k == 0 and _is_list_header(fields):
            continue
        if len(fields) == 2:
            vpath, label = fields
        elif len(fields) == 3:
            vpath, count, label = fields
            if _int_value(count) is None:
                raise VideoError(f"{path}:{lineno}: num_frames {count[:50]!r} is not a non-negative integer; "
                                 "expected 'path num_frames label'")
        else:
            raise VideoError(f"{path}:{lineno}: {len(fields)} fields in {line.strip()[:200]!r}; expected "
                             "'path label' or 'path num_frames label' separated by whitespace")
        rows.append((lineno, vpath, label))
    return rows


def _read_classes_file(path: Path) -> list[str]:
    names = [ln.strip() for ln in _read_lines(path, "one class name per line") if ln.strip()]
    if not names:
        raise VideoError(f"{path} is empty; expected one class name per line")
    return names


def inferred_label_limit(num_entries: int) -> int:
    """Integer labels without class names are class indices ``0 .. max``; a label at or above this
    limit (a hundred times the number of entries, at least 1000) is refused as a likely mistake (a
    swapped column, a video id) rather than turned into that many class names."""
    return max(1000, 100 * num_entries)


def _infer_classes(path: Path, rows: list[tuple[int, str, str]]) -> list[str]:
    """All-integer labels keep their value (names "0" .. "max"); all-name labels are sorted."""
    ints = [(lineno, lbl) for lineno, _, lbl in rows if _int_value(lbl.removeprefix("-")) is not None]
    if len(ints) == len(rows):
        limit = inferred_label_limit(len(rows))
        for lineno, lbl in ints:
            if lbl.startswith("-"):
                raise VideoError(f"{path}:{lineno}: label {lbl[:30]}; expected a non-negative class index")
            if _int_value(lbl) >= limit:
                raise VideoError(
                    f"{path}:{lineno}: label {lbl[:30]} is far beyond the {len(rows)} entries (integer labels without "
                    f"class names are class indices 0 .. max); expected labels below {limit}, or pass classes "
                    f"(or put a {CLASSES_FILE} next to the file) to name the classes")
        return [str(i) for i in range(max(_int_value(lbl) for _, lbl in ints) + 1)]
    if ints:
        lineno, lbl = ints[0]
        raise VideoError(f"{path}:{lineno}: integer label {lbl!r} among class-name labels; expected one kind "
                         f"(or pass classes / a {CLASSES_FILE} to say which names the integers index)")
    return sorted({lbl for _, _, lbl in rows})


_HUGE = 10**18  # stands for any integer with more digits (no int() of a 5000-digit string)


def _int_value(s: str) -> int | None:
    """A non-negative decimal integer written in ASCII digits, else None."""
    if not (s.isascii() and s.isdigit()):
        return None
    return int(s) if len(s) <= 18 else _HUGE


def class_name_problem(name: str, fmt: str = "csv") -> str | None:
    """Why :func:`read_annotations` could not read ``name`` back as written (in an annotation file
    of format ``fmt`` and a ``classes.txt``), or None. :func:`adafocus.data.export_clips` refuses
    such names before writing anything."""
    if not isinstance(name, str):
        return f"is a {type(name).__name__}, not a string"
    if not name.strip():
        return "is empty or blank"
    if name != name.strip():
        return "has leading or trailing whitespace (the reader strips it)"
    bad = next((c for c in name if c == "\ufeff" or unicodedata.category(c) in ("Cc", "Cs")), None)
    if bad is not None:
        return f"contains the control character {bad!r} (line breaks, tabs, NUL, byte-order marks cannot be read back)"
    if fmt == "list" and any(c.isspace() for c in name):
        return "contains whitespace, which separates the fields of fmt='list' (use fmt='csv')"
    return None


# ---------------------------------------------------------------------------------------------
# Decoding backends
# ---------------------------------------------------------------------------------------------


def _has_decord() -> bool:
    try:
        import decord  # noqa: F401
    except ImportError:
        return False
    return True


def _backends_to_try(backend: str) -> list[str]:
    if backend not in BACKENDS:
        raise VideoError(f"backend {backend!r} is not supported; expected one of {list(BACKENDS)}")
    if backend == "decord" and not _has_decord():
        raise VideoError("backend 'decord' requested but decord is not installed; expected backend='av' "
                         "or 'auto'")
    if backend == "auto":
        return ["decord", "av"] if _has_decord() else ["av"]
    return [backend]


def _check_file(path: Path) -> None:
    """Cheap checks that give clearer messages than a decoder would."""
    if not path.exists():
        problem = path_problem(path)
        if problem is not None:  # a link loop, a broken link: not the same as a missing file
            raise VideoError(f"video file {path} {problem}; expected an existing video file")
        raise VideoError(f"video file not found: {path}; expected an existing video file")
    if not path.is_file():
        raise VideoError(f"video path {path} is not a regular file; expected a video file")
    if path.stat().st_size == 0:
        raise VideoError(f"video file {path} is empty (0 bytes); expected an encoded video")


ChooseIndices = Callable[[int], np.ndarray]  # frame count n -> frame indices to decode


def _decord_clip(path: Path, choose: ChooseIndices) -> np.ndarray:
    import decord
    from decord._ffi.base import DECORDError

    try:
        vr = decord.VideoReader(str(path), num_threads=1)
        n = len(vr)
    except (RuntimeError, DECORDError) as e:
        raise _BackendFailure(f"could not open it ({_short(e)})") from e
    idx = _chosen(path, n, choose)
    if len(idx) == 0:
        return np.zeros((0, 0, 0, 3), np.uint8)
    try:
        frames = vr.get_batch(idx.tolist()).asnumpy()  # (T, H, W, 3) uint8
    except (RuntimeError, DECORDError) as e:
        raise _BackendFailure(f"failed to decode frames {idx.tolist()} of {n} ({_short(e)})") from e
    if frames.shape[0] != len(idx):
        raise _BackendFailure(f"returned {frames.shape[0]} frames; expected {len(idx)}")
    return frames


def _av_clip(path: Path, choose: ChooseIndices) -> np.ndarray:
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise _BackendFailure("no video stream in the file")
            n = container.streams.video[0].frames or _av_count_frames(path)
            idx = _chosen(path, n, choose)
            wanted, frames = set(idx.tolist()), {}
            decoded = 0
            if wanted:
                for i, frame in enumerate(container.decode(video=0)):
                    decoded = i + 1
                    if i in wanted:
                        frames[i] = frame.to_ndarray(format="rgb24")  # (H, W, 3) uint8
                    if len(frames) == len(wanted):
                        break
    except (av.FFmpegError, OSError) as e:
        raise _BackendFailure(f"could not decode it ({_short(e)})") from e
    if len(frames) < len(wanted):
        raise _BackendFailure(f"decoded only {decoded} frames but the file claims {n} and frame "
                              f"{max(wanted)} was requested (truncated file?)")
    if not wanted:
        return np.zeros((0, 0, 0, 3), np.uint8)
    return np.stack([frames[i] for i in idx.tolist()])  # (T, H, W, 3)


def _av_count_frames(path: Path) -> int:
    """Frame count from the packets, for containers whose header does not store it."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return sum(1 for packet in container.demux(stream) if packet.size > 0)


def _chosen(path: Path, n: int, choose: ChooseIndices) -> np.ndarray:
    if n <= 0:
        raise VideoError(f"video file {path} has no frames; expected at least one decodable frame")
    try:
        idx = np.asarray(choose(n), dtype=np.int64)
    except VideoError as e:
        raise VideoError(f"{path}: {e}") from None
    if idx.ndim != 1 or (len(idx) and (idx.min() < 0 or idx.max() >= n)):
        raise VideoError(f"{path}: frame indices {idx.tolist()} out of range; expected a 1-D list of "
                         f"integers in [0, {n - 1}] (the video has {n} frames)")
    return idx


_DECODERS = {"decord": _decord_clip, "av": _av_clip}


def read_clip(path: PathLike, choose: ChooseIndices, backend: str = "auto") -> np.ndarray:
    """Open ``path`` once, pick frame indices with ``choose(num_frames)``, decode them.

    Returns uint8 ``(T, H, W, 3)`` RGB. In ``auto`` mode a decord failure falls back to PyAV; if
    every backend fails, the :class:`VideoError` lists each one's reason.
    """
    path = as_path(path, "path", VideoError)
    order = _backends_to_try(backend)
    _check_file(path)
    reasons = []
    for name in order:
        try:
            return _DECODERS[name](path, choose)
        except _BackendFailure as e:
            reasons.append(f"{name}: {e}")
    raise VideoError(f"cannot read video file {path} ({'; '.join(reasons)}); expected a complete, "
                     "readable video (is the file truncated or not a video?)")


def read_frames(path: PathLike, indices: Sequence[int] | np.ndarray, backend: str = "auto") -> np.ndarray:
    """Decode the frames at ``indices`` (any order, repeats allowed): uint8 ``(T, H, W, 3)`` RGB."""
    given = np.asarray(indices)
    if given.size and given.dtype.kind not in "iu":
        raise VideoError(f"indices: expected integer frame indices, got {given.tolist()!r}"[:300])
    indices = given.astype(np.int64)
    return read_clip(path, lambda n: indices, backend)


def video_num_frames(path: PathLike, backend: str = "auto") -> int:
    """The number of frames in a video (from the container's header; decord or PyAV)."""
    counts: list[int] = []

    def count_only(n: int) -> np.ndarray:
        counts.append(n)
        return np.zeros(0, np.int64)  # decode nothing

    read_clip(path, count_only, backend)
    return counts[-1]


def check_video(path: PathLike, backend: str = "auto") -> int:
    """Open a video, read its frame count and decode its first and last frames; return the count.

    Catches empty, truncated and non-video files before training does. With decord the last
    frame is reached by seeking; PyAV decodes sequentially, so this reads the whole file.
    """
    counts: list[int] = []

    def first_and_last(n: int) -> np.ndarray:
        counts.append(n)
        return np.array([0, n - 1], np.int64)

    read_clip(path, first_and_last, backend)
    return counts[-1]


def _short(e: BaseException) -> str:
    """The first line of an exception message (decord's include long C++ stack traces)."""
    text = str(e).strip().splitlines()
    return (text[0] if text else type(e).__name__)[:300]


# ---------------------------------------------------------------------------------------------
# Frame sampling and resizing
# ---------------------------------------------------------------------------------------------


def sample_segment_indices(
    num_frames: int, num_segments: int, train: bool, rng: np.random.Generator | None = None,
    pad: str = "error",
) -> np.ndarray:
    """TSN-style sampling: one frame from each of ``num_segments`` equal segments of the video.

    Segment ``i`` holds frames ``[floor(i n / T), floor((i + 1) n / T))``. Training draws a frame
    uniformly inside each segment (``rng``, default ``np.random.default_rng()``); test takes the
    center frame ``start + len // 2``. Indices are strictly increasing when ``n >= T``.

    A video shorter than ``T`` frames raises :class:`VideoError` unless ``pad="repeat"``: then frame
    ``floor((i + u) n / T)`` is used (``u`` = 0.5 at test, uniform in training), so every frame is
    repeated about ``T / n`` times in order.
    """
    n, T = int(num_frames), int(num_segments)
    if T < 1:
        raise VideoError(f"num_segments: expected an int >= 1, got {num_segments!r}")
    if pad not in PADS:
        raise VideoError(f"pad: expected one of {list(PADS)}, got {pad!r}")
    if n < 1:
        raise VideoError(f"the video has {n} frames; expected at least 1")
    if n < T and pad == "error":
        raise VideoError(f"the video has {n} frames, fewer than the {T} requested; expected at least {T} "
                         "frames (or pad='repeat' to repeat frames)")
    if train and rng is None:
        rng = np.random.default_rng()
    seg = np.arange(T)
    if n < T:  # pad="repeat"
        u = rng.random(T) if train else np.full(T, 0.5)
        return np.minimum(np.floor((seg + u) * n / T).astype(np.int64), n - 1)
    start = seg * n // T  # (T,) first frame of each segment
    end = (seg + 1) * n // T  # (T,) one past the last frame; end > start because n >= T
    if train:
        return rng.integers(start, end).astype(np.int64)
    return (start + (end - start) // 2).astype(np.int64)


def resize_frames(frames: np.ndarray, size: int, channels: int = 3) -> torch.Tensor:
    """uint8 ``(T, H, W, 3)`` -> float32 ``(T, channels, size, size)`` in [0, 1].

    Center-crops the short side to a square (no aspect distortion), then resizes with bilinear
    ``interpolate(antialias=True)`` (antialiasing matters when shrinking, e.g. 720p to 64²).
    ``channels=1`` averages R, G and B.
    """
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise VideoError(f"frames: expected uint8 (T, H, W, 3), got {frames.dtype} {frames.shape}")
    if not (is_int(size) and size >= 1):
        raise VideoError(f"size: expected an int >= 1, got {size!r}")
    if channels not in (1, 3):
        raise VideoError(f"channels: expected 1 or 3, got {channels!r}")
    T, H, W, _ = frames.shape
    side = min(H, W)
    top, left = (H - side) // 2, (W - side) // 2
    x = torch.from_numpy(np.ascontiguousarray(frames[:, top:top + side, left:left + side]))
    x = x.permute(0, 3, 1, 2).float().div_(255.0)  # (T, 3, side, side)
    if side != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    if channels == 1:
        x = x.mean(dim=1, keepdim=True)  # (T, 1, size, size)
    return x.clamp_(0.0, 1.0).contiguous()


# ---------------------------------------------------------------------------------------------
# Dataset
# ---------------------------------------------------------------------------------------------


class VideoFolderDataset(torch.utils.data.Dataset):
    """Videos listed in an annotation file, decoded and sampled on the fly.

    ``ds[i]`` is ``dict(video=(T, C, H, W) float32 in [0, 1], label=int64 scalar tensor, index=i,
    path=str)`` with ``T = num_frames`` and ``H = W = frame_size``.

    - ``train=True`` samples a random frame per segment; the draw for sample ``i`` comes from
      ``np.random.default_rng([seed, epoch, i])``, so it is reproducible and independent of
      DataLoader workers. Call :meth:`set_epoch` to get new draws each epoch.
    - ``on_error="raise"`` checks at construction that every file exists and is non-empty, and
      raises on the first unreadable video when it is loaded. ``on_error="skip"`` opens every file
      up front (:meth:`validate`), leaves out the broken ones (and, with ``pad="error"``, those
      shorter than ``num_frames``), warns with the list, and keeps ``[(path, reason)]`` in
      ``.skipped``.
    - ``pad="repeat"`` lets videos shorter than ``num_frames`` repeat frames (see
      :func:`sample_segment_indices`).
    """

    def __init__(
        self,
        annotation_file: PathLike,
        video_root: PathLike | None = None,
        num_frames: int = 16,
        frame_size: int = 64,
        train: bool = False,
        backend: str = "auto",
        on_error: str = "raise",
        classes: Sequence[str] | None = None,
        seed: int = 0,
        pad: str = "error",
        channels: int = 3,
    ) -> None:
        _backends_to_try(backend)  # fail early on a bad name
        for name, value, ok, expected in [
            ("num_frames", num_frames, is_int(num_frames) and num_frames >= 1, "an int >= 1"),
            ("frame_size", frame_size, is_int(frame_size) and frame_size >= 1, "an int >= 1"),
            ("seed", seed, is_int(seed) and seed >= 0, "a non-negative int"),
            ("on_error", on_error, on_error in ON_ERROR, f"one of {list(ON_ERROR)}"),
            ("pad", pad, pad in PADS, f"one of {list(PADS)}"),
            ("channels", channels, channels in (1, 3), "1 or 3"),
        ]:
            if not ok:
                raise VideoError(f"{name}: expected {expected}, got {value!r}")
        self.annotation_file = as_path(annotation_file, "annotation_file", VideoError)
        self.num_frames, self.frame_size, self.channels = num_frames, frame_size, channels
        self.train, self.backend, self.on_error, self.pad = train, backend, on_error, pad
        self.seed, self.epoch = seed, 0
        items, self.classes = read_annotations(annotation_file, video_root, classes)
        self.skipped: list[tuple[str, str]] = []
        if on_error == "skip":
            self.items = self.validate(items)
        else:
            self._check_files(items)
            self.items = items

    @classmethod
    def from_config(cls, annotation_file: PathLike, data_cfg, **kwargs) -> "VideoFolderDataset":
        """Take ``num_frames``, ``frame_size``, ``channels`` and ``seed`` from a ``DataConfig``."""
        geometry = dict(num_frames=data_cfg.num_frames, frame_size=data_cfg.frame_size,
                        channels=data_cfg.channels, seed=data_cfg.seed)
        return cls(annotation_file, **{**geometry, **kwargs})

    def _check_files(self, items: list[tuple[Path, int]]) -> None:
        problems = []
        for path, _ in items:
            try:
                _check_file(path)
            except VideoError as e:
                problems.append(str(e))
        if problems:
            listed = "\n  ".join(problems[:MAX_LISTED])
            raise VideoError(f"{len(problems)} of {len(items)} videos listed in {self.annotation_file} are "
                             f"missing or empty (on_error='skip' would leave them out):\n  {listed}")

    def validate(self, items: list[tuple[Path, int]]) -> list[tuple[Path, int]]:
        """Open every video (:func:`check_video`); return the usable ones, record the rest in
        ``self.skipped`` and warn."""
        kept = []
        for path, label in tqdm(items, desc="checking videos", leave=False, disable=len(items) < 100):
            try:
                n = check_video(path, self.backend)
                if n < self.num_frames and self.pad == "error":
                    raise VideoError(f"video file {path} has {n} frames, fewer than num_frames="
                                     f"{self.num_frames}; expected at least {self.num_frames} (or pad='repeat')")
            except VideoError as e:
                self.skipped.append((str(path), str(e)))
                continue
            kept.append((path, label))
        if self.skipped:
            listed = "\n  ".join(f"{p}: {r}" for p, r in self.skipped[:MAX_LISTED])
            more = f"\n  ... and {len(self.skipped) - MAX_LISTED} more" if len(self.skipped) > MAX_LISTED else ""
            warnings.warn(f"VideoFolderDataset: skipped {len(self.skipped)} of {len(items)} videos listed in "
                          f"{self.annotation_file} (see .skipped):\n  {listed}{more}", stacklevel=3)
        if not kept:
            raise VideoError(f"no readable videos in {self.annotation_file}: all {len(items)} were skipped")
        return kept

    def set_epoch(self, epoch: int) -> None:
        """New random frame draws for training (reproducible per ``(seed, epoch, index)``)."""
        self.epoch = int(epoch)

    def fingerprint(self) -> str:
        """A short hash of what a model trained on this dataset depends on: each file's path, size,
        modification time and label, the clip geometry and the sampling mode."""
        h = hashlib.sha256(repr((self.num_frames, self.frame_size, self.channels, self.train, self.pad,
                                 self.seed, self.classes)).encode())
        for path, label in self.items:
            st = path.stat()
            h.update(f"{path}|{st.st_size}|{st.st_mtime_ns}|{label}\n".encode())
        return h.hexdigest()[:12]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        if as_index(i) is None:
            raise TypeError(f"index: expected an int, got {i!r}")
        i = as_index(i)
        if not 0 <= i < len(self.items):
            raise IndexError(f"index {i} out of range for a dataset of {len(self.items)} videos")
        path, label = self.items[i]
        rng = np.random.default_rng([self.seed, self.epoch, i]) if self.train else None

        def choose(n: int) -> np.ndarray:
            return sample_segment_indices(n, self.num_frames, self.train, rng, self.pad)

        frames = read_clip(path, choose, self.backend)  # (T, H, W, 3) uint8
        video = resize_frames(frames, self.frame_size, self.channels)  # (T, C, S, S) float32
        return dict(video=video, label=torch.tensor(label, dtype=torch.int64), index=i, path=str(path))

    def __repr__(self) -> str:
        return (f"VideoFolderDataset({len(self)} videos, {len(self.classes)} classes, T={self.num_frames}, "
                f"{self.frame_size}x{self.frame_size}, train={self.train}, backend={self.backend!r}, "
                f"skipped={len(self.skipped)})")

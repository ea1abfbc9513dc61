"""Where cached data, checkpoints and results live.

``ADAFOCUS_CACHE`` (set by the Makefile to ``<repo>/.cache``) overrides the default
``~/.cache/adafocus``. Notebooks, the CLI and the benchmarks all read the same cache.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
from pathlib import Path

CHECKED_FORMAT = "adafocus-checked-v1"  # the wrapper written by :func:`checked_torch_save`


class CorruptFileError(ValueError):
    """A file that is truncated, altered or not in the expected format."""


def cache_dir(*parts: str) -> Path:
    """``$ADAFOCUS_CACHE/<parts>`` (created if missing)."""
    root = Path(os.environ.get("ADAFOCUS_CACHE", Path.home() / ".cache" / "adafocus"))
    path = root.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a reader never sees a partial file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def atomic_torch_save(obj: object, path: str | os.PathLike) -> None:
    """``torch.save`` through a temporary file and an atomic rename."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def remove_stale_temporaries(path: str | os.PathLike) -> int:
    """Delete temporaries of ``path`` left by writers that were killed mid-write. Returns how many."""
    path = Path(path)
    stale = list(path.parent.glob(f".{path.name}.*.tmp")) if path.parent.exists() else []
    for tmp in stale:
        tmp.unlink(missing_ok=True)
    return len(stale)


def checked_torch_save(obj: object, path: str | os.PathLike) -> None:
    """``torch.save`` with a SHA-256 of the payload, written atomically.

    ``torch.load`` does not notice a flipped bit inside a tensor; :func:`checked_torch_load` does.
    """
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    payload = buf.getvalue()
    atomic_torch_save({"format": CHECKED_FORMAT, "sha256": hashlib.sha256(payload).hexdigest(),
                       "payload": payload}, path)


def checked_torch_load(path: str | os.PathLike) -> object:
    """Load a file written by :func:`checked_torch_save`; raise :class:`CorruptFileError` naming the
    file when it is empty, truncated, altered or not such a file."""
    import torch

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(errno.ENOENT, "no such file", str(path))
    if not path.is_file():
        raise CorruptFileError(f"{path}: is a directory or a special file, expected a file")
    if path.stat().st_size == 0:
        raise CorruptFileError(f"{path}: the file is empty (0 bytes)")
    try:
        wrapper = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise CorruptFileError(f"{path}: unreadable as a torch file ({type(e).__name__}: "
                               f"{str(e).splitlines()[0][:160] if str(e) else ''})") from e
    if not isinstance(wrapper, dict) or wrapper.get("format") != CHECKED_FORMAT:
        raise CorruptFileError(f"{path}: not a checksummed file of format {CHECKED_FORMAT!r}")
    payload = wrapper.get("payload")
    if not isinstance(payload, bytes) or hashlib.sha256(payload).hexdigest() != wrapper.get("sha256"):
        raise CorruptFileError(f"{path}: contents do not match their SHA-256 (the file was altered or damaged)")
    return torch.load(io.BytesIO(payload), map_location="cpu", weights_only=False)

"""Where cached data, checkpoints and results live.

``ADAFOCUS_CACHE`` (set by the Makefile to ``<repo>/.cache``) overrides the default
``~/.cache/adafocus``. Notebooks, the CLI and the benchmarks all read the same cache.
"""

from __future__ import annotations

import collections
import errno
import hashlib
import io
import os
import pickle
import re
from pathlib import Path

from adafocus.checks import InputError, expand_path, output_dir, path_problem

CHECKED_FORMAT = "adafocus-checked-v1"  # the wrapper written by :func:`checked_torch_save`
CACHE_ENV = "ADAFOCUS_CACHE"


class CorruptFileError(ValueError):
    """A file that is truncated, altered or not in the expected format."""


def cache_root() -> Path:
    """The cache folder: ``$ADAFOCUS_CACHE`` (``~`` and ``$VARS`` expanded) or ``~/.cache/adafocus``.

    An empty or unexpandable ``ADAFOCUS_CACHE`` is an :class:`~adafocus.checks.InputError`: it would
    otherwise write into the current folder, or into a literal ``./~/...``.
    """
    value = os.environ.get(CACHE_ENV)
    if value is None:
        try:
            return Path.home() / ".cache" / "adafocus"
        except RuntimeError:  # no HOME and no passwd entry (some containers)
            raise InputError(f"{CACHE_ENV}: the home folder cannot be determined; expected {CACHE_ENV} set to a "
                             "folder for the cache") from None
    if not value.strip():
        raise InputError(f"{CACHE_ENV}: expected a folder path, got an empty string {value!r} (unset it to use "
                         "~/.cache/adafocus)")
    return expand_path(value, CACHE_ENV)


def cache_dir(*parts: str) -> Path:
    """``$ADAFOCUS_CACHE/<parts>`` (created if missing); see :func:`cache_root`."""
    path = cache_root().joinpath(*parts)
    output_dir(path, CACHE_ENV if not parts else f"{CACHE_ENV} folder")  # a file, a loop: a clear message
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

    check_plain(obj)
    buf = io.BytesIO()
    torch.save(obj, buf)
    payload = buf.getvalue()
    atomic_torch_save({"format": CHECKED_FORMAT, "sha256": hashlib.sha256(payload).hexdigest(),
                       "payload": payload}, path)


def checked_torch_load(path: str | os.PathLike) -> object:
    """Load a file written by :func:`checked_torch_save`; raise :class:`CorruptFileError` naming the
    file when it is empty, truncated, altered or not such a file.

    Both the file and its payload are read with ``weights_only=True``: only tensors and plain values
    (see :func:`check_plain`) are rebuilt, never arbitrary objects, so a checkpoint cannot run code
    when it is loaded. The SHA-256 only detects damage (anyone can write a matching one); this is
    what makes a checkpoint from someone else safe to load.
    """
    path = Path(path)
    if not path.exists():
        problem = path_problem(path)  # a link loop, a dangling link: not the same as a missing file
        if problem is not None:
            raise CorruptFileError(f"{path}: {problem}; expected a checkpoint file")
        raise FileNotFoundError(errno.ENOENT, "no such file", str(path))
    if not path.is_file():
        raise CorruptFileError(f"{path}: is a directory or a special file, expected a file")
    if path.stat().st_size == 0:
        raise CorruptFileError(f"{path}: the file is empty (0 bytes)")
    wrapper = _load_weights_only(path, path)
    if not isinstance(wrapper, dict) or wrapper.get("format") != CHECKED_FORMAT:
        raise CorruptFileError(f"{path}: not a checksummed file of format {CHECKED_FORMAT!r}")
    payload = wrapper.get("payload")
    if not isinstance(payload, bytes) or hashlib.sha256(payload).hexdigest() != wrapper.get("sha256"):
        raise CorruptFileError(f"{path}: contents do not match their SHA-256 (the file was altered or damaged)")
    return _load_weights_only(io.BytesIO(payload), path)


def _load_weights_only(source: str | os.PathLike | io.BytesIO, path: Path) -> object:
    """``torch.load(source, weights_only=True)``; a clear :class:`CorruptFileError` naming ``path``
    when the file is not a torch file or needs arbitrary unpickling (which is never done)."""
    import torch

    try:
        return torch.load(source, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        found = re.search(r"Unsupported (?:global|operand)[^\n]*?(?=\s+was not|\.?\s*$|\n)", str(e), re.M)
        what = f" ({found.group(0).strip()})" if found else ""
        raise CorruptFileError(
            f"{path}: refused to load: it contains pickled Python objects{what} that only arbitrary unpickling "
            "could rebuild, which can run code; expected a checkpoint of tensors and plain values "
            "(loaded with weights_only=True). Do not load it unless you wrote it yourself") from None
    except Exception as e:
        raise CorruptFileError(f"{path}: unreadable as a torch file ({type(e).__name__}: "
                               f"{str(e).splitlines()[0][:160] if str(e) else ''})") from e


_PLAIN = (type(None), bool, int, float, complex, str, bytes)  # exactly these types


def check_plain(obj: object, where: str = "checkpoint") -> None:
    """Raise ``TypeError`` naming a value that ``torch.load(weights_only=True)`` would refuse.

    Allowed: tensors, ``torch.Size``/``dtype``/``device``, None, bool, int, float, str, bytes, and
    dicts, lists and tuples of them. Checked before anything is written, so that a checkpoint that
    could not be loaded safely is never made.
    """
    import torch

    stack, seen = [(obj, where)], set()
    while stack:
        value, at = stack.pop()
        if type(value) in _PLAIN or type(value) in (torch.Tensor, torch.nn.Parameter) or isinstance(
                value, (torch.Size, torch.dtype, torch.device)):  # exact types: np.float64 is a float subclass
            continue
        if id(value) in seen:  # shared (or self-referencing) containers: walked once
            continue
        if type(value) in (dict, collections.OrderedDict):
            seen.add(id(value))
            for k, v in value.items():
                if type(k) not in (str, int):
                    raise TypeError(f"{at}: key {k!r} of type {type(k).__name__}; expected str or int keys")
                stack.append((v, f"{at}[{k!r}]"))
        elif type(value) in (list, tuple):
            seen.add(id(value))
            stack.extend((v, f"{at}[{i}]") for i, v in enumerate(value))
        else:
            raise TypeError(f"{at}: a {type(value).__module__}.{type(value).__qualname__} cannot be stored in a "
                            "checkpoint (loading it would need arbitrary unpickling); expected tensors and plain "
                            "values (None, bool, int, float, str, bytes, and dicts, lists, tuples of them)")


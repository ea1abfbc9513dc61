"""Small argument checks shared by the entry points, so that a user mistake gives one clear message.

Messages follow the style used everywhere in the package: ``"<field or path>: expected X, got Y"``.
The path helpers take the error class to raise, so that every module keeps its own
(``ConfigError``, ``VideoError``); the default is :class:`InputError`.
"""

from __future__ import annotations

import errno
import math
import numbers
import operator
import os
import re
from pathlib import Path
from typing import Any


class InputError(ValueError):
    """A bad argument (a path, a name, a value) given by the user. The message names it and what was
    expected; the command line prints it as a one-line error."""


def is_int(value: Any) -> bool:
    """An integer (Python or numpy), but not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """A finite real number (int or float, Python or numpy), but not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def as_path(value: Any, name: str, error: type[Exception] = InputError) -> Path:
    """``value`` as a :class:`Path` with ``~`` expanded; a clear error for ``None``, a non-path
    object, an empty (or blank) string, or a ``~user`` that does not exist."""
    text = os.fspath(value) if isinstance(value, (str, os.PathLike)) else None
    if not isinstance(text, str) or not text.strip():  # (bytes paths are not supported either)
        raise error(f"{name}: expected a path (str or os.PathLike), got {value!r}")
    return expand_path(text, name, error, variables=False)


_UNSET_VARIABLE = re.compile(r"\$(\w+|\{[^}]*\})")


def expand_path(text: str, name: str, error: type[Exception] = InputError, variables: bool = True) -> Path:
    """``text`` with a leading ``~`` / ``~user`` (and, with ``variables``, ``$VAR`` / ``${VAR}``)
    expanded. Anything left unexpanded is an error rather than a folder named ``~`` or ``$VAR``."""
    expanded = os.path.expandvars(text) if variables else text
    if variables and _UNSET_VARIABLE.search(expanded):
        raise error(f"{name}: {text!r} uses the environment variable {_UNSET_VARIABLE.search(expanded).group(0)}, "
                    "which is not set; expected a folder path")
    if expanded.startswith("~"):
        try:
            expanded = os.path.expanduser(expanded)
        except RuntimeError:  # no HOME and no passwd entry
            expanded = text
        if expanded.startswith("~"):
            raise error(f"{name}: cannot expand {text!r} (no such user, or no home folder); expected a path "
                        "starting with an existing home folder, or an absolute path")
    return Path(expanded)


def path_problem(path: Path) -> str | None:
    """Why ``path`` cannot be opened although something may be there: a symbolic link loop, a broken
    link, a parent that is a file, no permission; None when it exists or plainly does not."""
    try:
        os.stat(path)
    except OSError as e:
        if e.errno == errno.ELOOP:
            return "is a symbolic link loop (a link that points, directly or through other links, back to itself)"
        if e.errno == errno.ENOENT and os.path.islink(path):
            return f"is a broken symbolic link (to {os.readlink(path)!r}, which does not exist)"
        if e.errno == errno.ENOTDIR:
            return "cannot exist: a folder in its path is a file"
        if e.errno == errno.EACCES:
            return "cannot be reached: permission denied"
        if e.errno == errno.ENAMETOOLONG:
            return "is too long a path for this system"
        return None
    return None


def output_dir(value: Any, name: str, error: type[Exception] = InputError) -> Path:
    """A folder to write into: it may not exist yet, but neither it nor a parent may be a file, a
    symbolic link loop or a broken link.

    Checked before any work starts, so a wrong path fails at once and nothing is written.
    """
    path = as_path(value, name, error)
    for p in (path, *path.parents):
        if not os.path.lexists(p):  # (a link counts as there, even a broken one or a loop)
            continue
        what = name if p == path else f"{name} {path}: its parent"
        problem = path_problem(p)
        if problem is not None:
            raise error(f"{what} {p} {problem}; expected a folder to write into")
        if not p.is_dir():
            raise error(f"{what} {p} is not a directory; expected a folder to write into")
        break
    return path


def total_memory_bytes() -> int | None:
    """The memory this process may use: physical memory, lowered by a cgroup (container) limit.
    None where neither can be read (then size checks are skipped)."""
    sizes = []
    try:
        sizes.append(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        try:
            with open("/proc/meminfo") as f:
                kib = next(int(ln.split()[1]) for ln in f if ln.startswith("MemTotal:"))
            sizes.append(kib * 1024)
        except (OSError, StopIteration, ValueError, IndexError):
            pass
    for limit_file in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(limit_file) as f:
                text = f.read().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 2**60:  # "max" or a huge number: no limit
            sizes.append(int(text))
        break
    sizes = [s for s in sizes if s > 0]
    return min(sizes) if sizes else None


def format_bytes(n: float) -> str:
    """``1536`` -> ``'1.5 KiB'``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"


def as_index(value: Any) -> int | None:
    """``value`` as an int index (Python, numpy or a 0-d integer tensor), or None if it is not one
    (floats, strings, bools)."""
    if isinstance(value, bool):
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None

"""Small argument checks shared by the entry points, so that a user mistake gives one clear message.

Messages follow the style used everywhere in the package: ``"<field or path>: expected X, got Y"``.
The path helpers take the error class to raise, so that every module keeps its own
(``ConfigError``, ``VideoError``); the default is :class:`InputError`.
"""

from __future__ import annotations

import math
import numbers
import operator
import os
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
    """``value`` as a :class:`Path`; a clear error for ``None`` or a non-path object."""
    if not isinstance(value, (str, os.PathLike)) or (isinstance(value, str) and not value):
        raise error(f"{name}: expected a path (str or os.PathLike), got {value!r}")
    return Path(value)


def output_dir(value: Any, name: str, error: type[Exception] = InputError) -> Path:
    """A folder to write into: it may not exist yet, but neither it nor a parent may be a file.

    Checked before any work starts, so a wrong path fails at once and nothing is written.
    """
    path = as_path(value, name, error)
    for p in (path, *path.parents):
        if p.exists():
            if not p.is_dir():
                what = name if p == path else f"{name} {path}: its parent"
                raise error(f"{what} {p} is not a directory; expected a folder to write into")
            break
    return path


def as_index(value: Any) -> int | None:
    """``value`` as an int index (Python, numpy or a 0-d integer tensor), or None if it is not one
    (floats, strings, bools)."""
    if isinstance(value, bool):
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None

"""Rebuild every notebook in notebooks/ from its builder in scripts/notebooks/.

    python scripts/build_notebooks.py            # all of them
    python scripts/build_notebooks.py 04 07      # only those whose name starts with 04 or 07
    python scripts/build_notebooks.py --check    # exit 1 if a notebook differs from its builder

Notebooks are written with empty outputs, so a rebuild of unchanged builders changes nothing.
"""

from __future__ import annotations

import argparse
import runpy
import sys
from pathlib import Path

import nbformat

BUILDERS = Path(__file__).resolve().parent / "notebooks"
sys.path.insert(0, str(BUILDERS))  # the builders' shared helpers (_nb.py)


def builders(prefixes: list[str] | None = None) -> list[Path]:
    """The builder scripts (``NN_name.py``), optionally only those whose name starts with a prefix."""
    paths = sorted(p for p in BUILDERS.glob("[0-9][0-9]_*.py"))
    return [p for p in paths if not prefixes or any(p.name.startswith(x) for x in prefixes)]


def cells_of(builder: Path) -> tuple[str, list[nbformat.NotebookNode]]:
    """Run a builder without writing: its notebook name and cells."""
    module = runpy.run_path(str(builder), run_name="builder")
    return module["NAME"], module["CELLS"]


def build(builder: Path) -> Path:
    """Write the builder's notebook."""
    from _nb import write

    name, cells = cells_of(builder)
    return write(name, cells)


def differs(builder: Path) -> bool:
    """Whether the committed notebook's cells (type, source, tags) differ from the builder's."""
    from _nb import NOTEBOOK_DIR

    name, cells = cells_of(builder)
    path = NOTEBOOK_DIR / f"{name}.ipynb"
    if not path.exists():
        return True
    nb = nbformat.read(path, as_version=4)
    key = lambda c: (c.cell_type, c.source, c.metadata.get("tags", []))  # noqa: E731
    return [key(c) for c in nb.cells] != [key(c) for c in cells]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("prefixes", nargs="*", help="only builders whose file name starts with one of these")
    parser.add_argument("--check", action="store_true", help="report notebooks that differ from their builder")
    args = parser.parse_args(argv)
    selected = builders(args.prefixes)
    if not selected:
        parser.error(f"no builder in {BUILDERS} matches {args.prefixes}")
    if args.check:
        stale = [p.name for p in selected if differs(p)]
        print("\n".join(f"out of date: {name}" for name in stale) or "all notebooks match their builders")
        return 1 if stale else 0
    for path in selected:
        print(build(path))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Write every notebook in notebooks/ from its jupytext source (``notebooks/NN_name.py``, percent format).

    python scripts/build_notebooks.py            # all of them (what `make notebooks` runs)
    python scripts/build_notebooks.py 04 07      # only those whose name starts with 04 or 07
    python scripts/build_notebooks.py --check    # exit 1 if a notebook differs from its source

The ``.py`` files are the sources people edit and diff; each is paired with its ``.ipynb``
(``notebooks/jupytext.toml``), so JupyterLab with jupytext, or ``jupytext --sync``, keeps the two in
step as well. This script writes the ``.ipynb`` the way the repository keeps them: no outputs, no
execution counts, and deterministic cell ids (``cell-00``, ``cell-01``, ...), so that rebuilding
unchanged sources changes nothing. It also enforces the notebook rules (short code cells, short lines),
and collapses every exercise solution: a code cell whose source starts with ``# Solution`` gets
``jupyter.source_hidden`` (JupyterLab shows it folded), so a learner tries first.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import jupytext
import nbformat

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
MAX_CODE_LINES = 15  # longer code belongs in the library
MAX_LINE_LENGTH = 120  # characters, as in the library
SOLUTION_MARKER = "# Solution"  # first line of an exercise's solution cell: written collapsed
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


def sources(prefixes: list[str] | None = None, directory: Path = NOTEBOOK_DIR) -> list[Path]:
    """The jupytext sources (``NN_name.py``), optionally only those whose name starts with a prefix."""
    paths = sorted(directory.glob("[0-9][0-9]_*.py"))
    return [p for p in paths if not prefixes or any(p.name.startswith(x) for x in prefixes)]


def rule_violations(nb: nbformat.NotebookNode) -> list[str]:
    """Code cells longer than ``MAX_CODE_LINES`` lines, lines longer than ``MAX_LINE_LENGTH`` characters."""
    problems = []
    for i, cell in enumerate(nb.cells):
        lines = cell.source.splitlines()
        if cell.cell_type == "code" and len(lines) > MAX_CODE_LINES:
            problems.append(f"cell {i}: {len(lines)} lines of code (max {MAX_CODE_LINES}): move the logic into "
                            "the library")
        problems += [f"cell {i}: line of {len(line)} characters (max {MAX_LINE_LENGTH}): {line[:60]!r}..."
                     for line in lines if len(line) > MAX_LINE_LENGTH]
    return problems


def notebook_of(source: Path) -> nbformat.NotebookNode:
    """The notebook of a jupytext source, as the repository keeps it (no outputs, ids ``cell-NN``)."""
    nb = jupytext.read(source)
    nb.metadata = {"jupytext": {"formats": "ipynb,py:percent"}, "kernelspec": KERNELSPEC,
                   "language_info": {"name": "python"}}
    for i, cell in enumerate(nb.cells):
        cell.id = f"cell-{i:02d}"
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
            if cell.source.startswith(SOLUTION_MARKER):
                cell.metadata["jupyter"] = {**cell.metadata.get("jupyter", {}), "source_hidden": True}
    nbformat.validate(nb)
    return nb


def cell_key(cell: nbformat.NotebookNode) -> tuple:
    """What must agree between a source and its notebook: type, source, tags and the ``jupyter`` metadata."""
    return cell.cell_type, cell.source, list(cell.metadata.get("tags", [])), dict(cell.metadata.get("jupyter", {}))


def differs(source: Path) -> bool:
    """Whether the ``.ipynb`` next to ``source`` is missing or its cells differ from the source's."""
    path = source.with_suffix(".ipynb")
    if not path.exists():
        return True
    committed = nbformat.read(path, as_version=4)
    return [cell_key(c) for c in committed.cells] != [cell_key(c) for c in notebook_of(source).cells]


def build(source: Path) -> Path:
    """Write ``source``'s ``.ipynb`` (after checking the notebook rules)."""
    nb = notebook_of(source)
    problems = rule_violations(nb)
    if problems:
        raise SystemExit(f"{source}:\n  " + "\n  ".join(problems))
    path = source.with_suffix(".ipynb")
    nbformat.write(nb, path)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("prefixes", nargs="*", help="only sources whose file name starts with one of these")
    parser.add_argument("--check", action="store_true", help="report notebooks that differ from their source")
    args = parser.parse_args(argv)
    selected = sources(args.prefixes)
    if not selected:
        parser.error(f"no source in {NOTEBOOK_DIR} matches {args.prefixes}")
    if args.check:
        stale = [p.name for p in selected if differs(p)]
        print("\n".join(f"out of date: {name}" for name in stale) or "all notebooks match their sources")
        return 1 if stale else 0
    for path in selected:
        print(build(path))
    return 0


if __name__ == "__main__":
    sys.exit(main())

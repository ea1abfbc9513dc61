"""Helpers shared by the notebook builders: cells, the parameters cell, and writing a notebook.

Each ``scripts/notebooks/NN_name.py`` lists its cells with :func:`md` and :func:`code` and calls
:func:`write`; ``scripts/build_notebooks.py`` runs them all. Notebooks are written with empty
outputs, deterministic cell ids (so a rebuild without changes gives identical files) and the
``parameters`` cell tagged for papermill / nbmake.
"""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

NOTEBOOK_DIR = Path(__file__).resolve().parents[2] / "notebooks"
MAX_CODE_LINES = 15  # longer code belongs in the library
MAX_LINE_LENGTH = 120  # characters, as in the library

# The parameters cell holds FAST only; what depends on it is computed in the next cell, so that a
# parameter injected after the parameters cell (papermill -p FAST False) reaches it too.
FAST_PARAMETERS = """
FAST = True  # True: the tiny preset and a toy schedule (seconds; what CI runs). False: the small preset
"""

# The same FAST schedule in every notebook, so that they share one set of cached checkpoints.
PRESET_CELL = """
%matplotlib inline
PRESET = "tiny" if FAST else "small"  # False reads the models that `make demo` trained and cached
# FAST: more clips and epochs than the bare tiny preset (sized for unit tests), exact oracle crops in the
# pretraining (the jittered ones learn too slowly for a toy schedule)
OVERRIDES = {"data.num_train": 512, "data.num_test": 128, "model.oracle_jitter": False, "train.batch_size": 16,
             "train.pretrain_epochs": 5, "train.phase2_epochs": 3} if FAST else {}
"""

KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


def md(text: str) -> nbformat.NotebookNode:
    """A markdown cell (indentation of a triple-quoted string removed)."""
    return new_markdown_cell(dedent(text).strip("\n"))


def code(text: str) -> nbformat.NotebookNode:
    """A code cell of at most ``MAX_CODE_LINES`` lines of at most ``MAX_LINE_LENGTH`` characters."""
    source = dedent(text).strip("\n")
    lines = source.count("\n") + 1
    if lines > MAX_CODE_LINES:
        raise ValueError(f"code cell of {lines} lines (max {MAX_CODE_LINES}): move the logic into the library\n"
                         f"{source}")
    long = [line for line in source.splitlines() if len(line) > MAX_LINE_LENGTH]
    if long:
        raise ValueError(f"code line longer than {MAX_LINE_LENGTH} characters: {long[0]!r}")
    return new_code_cell(source)


def parameters(text: str = FAST_PARAMETERS) -> nbformat.NotebookNode:
    """The cell papermill and nbmake override, tagged ``parameters``."""
    cell = code(text)
    cell.metadata["tags"] = ["parameters"]
    return cell


def presets() -> nbformat.NotebookNode:
    """The cell after the parameters: ``%matplotlib inline``, ``PRESET`` and ``OVERRIDES`` from ``FAST``."""
    return code(PRESET_CELL)


def write(name: str, cells: list[nbformat.NotebookNode], directory: Path = NOTEBOOK_DIR) -> Path:
    """Write ``directory/name.ipynb`` with empty outputs and cell ids ``cell-00``, ``cell-01``, ..."""
    nb = new_notebook(cells=cells, metadata={"kernelspec": KERNELSPEC, "language_info": {"name": "python"}})
    for i, cell in enumerate(nb.cells):
        cell.id = f"cell-{i:02d}"
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nbformat.validate(nb)
    path = Path(directory) / f"{name}.ipynb"
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path

"""The notebooks are built from scripts/notebooks/ and follow the workbench's notebook rules.

Executing them is the job of ``pytest --nbmake notebooks`` (``make test``); these checks read the
files only, so they take a second.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import build_notebooks  # noqa: E402  (it puts scripts/notebooks/ on the path for the builders' helpers)
import _nb  # noqa: E402
from _nb import MAX_CODE_LINES, code  # noqa: E402

BUILDERS = build_notebooks.builders()
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def test_every_notebook_has_a_builder_and_the_other_way_round():
    built = {build_notebooks.cells_of(b)[0] for b in BUILDERS}
    assert built == {p.stem for p in NOTEBOOKS}


@pytest.mark.parametrize("builder", BUILDERS, ids=lambda p: p.stem)
def test_committed_notebook_matches_its_builder(builder: Path):
    assert not build_notebooks.differs(builder), \
        f"notebooks/{builder.stem}.ipynb is out of date: run python scripts/build_notebooks.py {builder.stem[:2]}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_rules(path: Path):
    nb = _read(path)
    codes = [c for c in nb.cells if c.cell_type == "code"]
    params = [c for c in codes if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1 and re.fullmatch(r"FAST = True\b[^\n]*", params[0].source), \
        "one tagged cell, FAST only: what depends on FAST is computed later, so papermill -p FAST False reaches it"
    assert codes[0] is params[0], "the parameters cell comes first"
    assert codes[1].source.startswith("%matplotlib inline"), "the setup cell starts with %matplotlib inline"
    assert all(not c.outputs and c.execution_count is None for c in codes), "outputs must be stripped"
    assert all(c.source.count("\n") < MAX_CODE_LINES for c in codes), f"code cells of at most {MAX_CODE_LINES} lines"
    solutions = [c for c in codes if c.source.startswith("# Solution")]
    assert len(solutions) >= 2, "each notebook ends with exercises and worked solutions"
    assert nb.cells.index(solutions[0]) > len(nb.cells) / 2
    for c in codes:  # data and checkpoints come from the cache, results relative to the repository
        assert not re.search(r"['\"](/work|/tmp|/home|/root|~/)", c.source), f"hard-coded path in {c.source!r}"


def test_code_helper_rejects_long_cells():
    with pytest.raises(ValueError, match="move the logic into the library"):
        code("\n".join(f"x{i} = {i}" for i in range(MAX_CODE_LINES + 1)))


def test_check_mode_reports_a_stale_notebook(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    name, cells = build_notebooks.cells_of(BUILDERS[0])
    _nb.write(name, cells, tmp_path)
    monkeypatch.setattr(_nb, "NOTEBOOK_DIR", tmp_path)
    assert not build_notebooks.differs(BUILDERS[0])
    stale = _read(tmp_path / f"{name}.ipynb")
    stale.cells[0].source += "\nedited by hand"
    nbformat.write(stale, tmp_path / f"{name}.ipynb")
    assert build_notebooks.differs(BUILDERS[0])

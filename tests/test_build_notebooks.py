"""The notebooks: jupytext sources (notebooks/NN_name.py) paired with the .ipynb, and the notebook rules.

Executing them is the job of ``pytest --nbmake notebooks`` (``make test``); these checks read the
files only, so they take a second. What the notebooks claim (numbers in prose, exercises that assert their
answer) is checked by tests/test_notebook_claims.py.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import jupytext
import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import build_notebooks  # noqa: E402
from build_notebooks import MAX_CODE_LINES, MAX_LINE_LENGTH, cell_key, notebook_of, rule_violations  # noqa: E402

SOURCES = build_notebooks.sources()
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))

def _read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def test_every_notebook_has_a_source_and_the_other_way_round():
    assert {p.stem for p in SOURCES} == {p.stem for p in NOTEBOOKS}
    assert not (ROOT / "scripts" / "notebooks").exists(), "the old builder scripts are replaced by notebooks/*.py"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_notebook_is_in_sync_with_its_jupytext_source(source: Path):
    """Building the .py (jupytext, then the builder's metadata) gives the committed .ipynb's cells (type, source,
    tags, metadata)."""
    committed = _read(source.with_suffix(".ipynb"))
    converted = notebook_of(source)
    assert [cell_key(c) for c in committed.cells] == [cell_key(c) for c in converted.cells], \
        f"notebooks/{source.stem}.ipynb is out of date: run `make notebooks` (or jupytext --sync {source.name})"
    assert committed.metadata.get("jupytext", {}).get("formats") == "ipynb,py:percent", "paired with its .py"


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
    assert not rule_violations(nb), rule_violations(nb)
    for c in codes:  # data and checkpoints come from the cache, results relative to the repository
        assert not re.search(r"['\"](/work|/tmp|/home|/root|~/)", c.source), f"hard-coded path in {c.source!r}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_setup_is_one_library_call(path: Path):
    """The setup cell is ``notebook_setup(FAST)`` from the library, not a pasted block (01 shows the small
    preset's data in both modes and sets itself up)."""
    setup = [c for c in _read(path).cells if c.cell_type == "code"][1].source
    assert "notebook_setup(FAST)" in setup or path.stem == "01_the_data"
    assert "OVERRIDES" not in setup and "torch.set_num_threads" not in setup


def test_rules_reject_long_cells_and_lines(tmp_path: Path):
    source = tmp_path / "99_bad.py"
    body = "\n".join(f"x{i} = {i}" for i in range(MAX_CODE_LINES + 1))
    source.write_text(f"# %% tags=[\"parameters\"]\nFAST = True\n\n# %%\n{body}\n\n# %%\ny = '{'a' * MAX_LINE_LENGTH}'\n")
    problems = rule_violations(notebook_of(source))
    assert any("move the logic into the library" in p for p in problems)
    assert any(f"max {MAX_LINE_LENGTH}" in p for p in problems)


def test_check_mode_reports_a_stale_notebook(tmp_path: Path):
    source = tmp_path / SOURCES[0].name
    source.write_text(SOURCES[0].read_text())
    nbformat.write(notebook_of(source), source.with_suffix(".ipynb"))
    assert not build_notebooks.differs(source)
    stale = _read(source.with_suffix(".ipynb"))
    stale.cells[0].source += "\nedited by hand"
    nbformat.write(stale, source.with_suffix(".ipynb"))
    assert build_notebooks.differs(source)


def test_pytest_collects_only_the_ipynb_in_notebooks():
    """`make test` runs `pytest tests notebooks --nbmake`: the jupytext sources must not be imported as tests."""
    out = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "--nbmake", "-p", "no:cacheprovider",
                          "notebooks"], cwd=ROOT, capture_output=True, text=True, timeout=120).stdout
    collected = [line for line in out.splitlines() if line.startswith("notebooks/")]
    assert sorted(collected) == sorted(f"notebooks/{p.name}::{p.name}" for p in NOTEBOOKS), out[-2000:]

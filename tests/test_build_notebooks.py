"""The notebooks: jupytext sources (notebooks/NN_name.py) paired with the .ipynb, and the notebook rules.

Executing them is the job of ``pytest --nbmake notebooks`` (``make test``); these checks read the
files only, so they take a second.
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

# Figures quoted from the literature in the notebooks' prose, each with the citation that must stand in
# the same markdown cell. Any other number next to a result word must be computed by the notebook.
PAPER = "Wang et al., TPAMI 2024"  # Uni-AdaFocus
QUOTED_FIGURES: dict[str, str] = {
    "80.7%": PAPER, "27.2": PAPER, "76.9%": PAPER, "21.7": PAPER, "78.3%": PAPER, "9.1": PAPER,  # ActivityNet
    "80.4%": PAPER, "18.1": PAPER, "4.8x": PAPER, "47.5%": PAPER, "8.8": PAPER, "46.1%": PAPER,  # and SSv2
    "32.7": PAPER, "569": PAPER, "218": PAPER, "2.6x": PAPER,  # throughput, TSM backbone
    "27.23": PAPER, "1.3346": PAPER, "0.7507": PAPER,  # GMACs per video / per ResNet-50 patch
    "0.2": PAPER, "0.5": PAPER, "20": PAPER,  # the paper's learning-rate multipliers
}
RESULT_WORDS = re.compile(r"accura|recall|\bIoU\b|MACs|\bmAP\b|fewer|faster|videos per second|hit rate|%",
                          re.IGNORECASE)
NUMBER = re.compile(r"(?<![\w.²/-])\d+(?:\.\d+)?(?:%|x(?![\w²]))?(?![\w²])")


def _read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def _exercises(nb: nbformat.NotebookNode) -> list[tuple[nbformat.NotebookNode, nbformat.NotebookNode]]:
    """(exercise markdown, solution code) pairs: a markdown cell with ``**Exercise N`` then its solution."""
    pairs = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown" and re.search(r"\*\*Exercise \d", cell.source):
            following = [c for c in nb.cells[i + 1:] if c.cell_type == "code"]
            pairs.append((cell, following[0] if following else None))
    return pairs


def unverified_numbers(markdown: str) -> list[str]:
    """Numbers next to a result word in prose that are not a quoted figure with its citation. Left alone:
    code spans (names, settings), headings and tables, list markers such as ``(3)``, notebook and exercise
    numbers, and criteria stated by the text (``within 5 points``, ``at least 95%``): they are not results."""
    found = []
    prose = [line for line in markdown.splitlines() if not line.lstrip().startswith(("#", "|"))]
    text = re.sub(r"`[^`]*`", " ", " ".join(prose))
    for citation in set(QUOTED_FIGURES.values()):
        text = text.replace(citation, " ")
    text = re.sub(r"\(\d+\)|\b(?:notebooks?|[Ee]xercises?|within|at least|at most|more than|less than) \d+(?:\.\d+)?%?",
                  " ", text)
    for sentence in re.split(r"(?<=[.;:!?])\s+", text):
        if not RESULT_WORDS.search(sentence):
            continue
        for m in NUMBER.finditer(sentence):
            number = m.group()
            window = sentence[max(0, m.start() - 60): m.end() + 60]
            if not (number.endswith(("%", "x")) or RESULT_WORDS.search(window)):
                continue
            if QUOTED_FIGURES.get(number) and QUOTED_FIGURES[number] in markdown.replace("\n# ", " ").replace("\n", " "):
                continue
            found.append(f"{number!r} in {sentence.strip()[:100]!r}")
    return found


def test_every_notebook_has_a_source_and_the_other_way_round():
    assert {p.stem for p in SOURCES} == {p.stem for p in NOTEBOOKS}
    assert not (ROOT / "scripts" / "notebooks").exists(), "the old builder scripts are replaced by notebooks/*.py"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_notebook_is_in_sync_with_its_jupytext_source(source: Path):
    """Converting the .py with jupytext gives the committed .ipynb's cells (type, source, tags, metadata)."""
    committed = _read(source.with_suffix(".ipynb"))
    converted = jupytext.read(source)
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


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_three_exercises_with_checked_collapsed_solutions(path: Path):
    nb = _read(path)
    pairs = _exercises(nb)
    assert len(pairs) == 3, f"{len(pairs)} exercises (expected 3)"
    assert nb.cells.index(pairs[0][0]) > len(nb.cells) / 2, "the exercises come at the end"
    for exercise, solution in pairs:
        assert solution is not None and solution.source.startswith("# Solution"), exercise.source[:60]
        assert solution.metadata.get("jupyter", {}).get("source_hidden") is True, "solutions start collapsed"
        lines = [line for line in solution.source.splitlines() if line.strip() and not line.lstrip().startswith("#")]
        last = max(i for i, line in enumerate(lines) if not line.startswith((" ", ")", "]", "}")))
        statement = "\n".join(lines[last:])  # the last top-level statement, or the body of a final loop
        checked = statement.startswith("assert ") or lines[-1].strip().startswith("assert ") or \
            (statement.strip() in ("fig", "fig.show()") and "assert " in lines[-2])  # a figure shown after its check
        assert checked, f"the solution of {exercise.source.splitlines()[0][:50]!r} must end with an assertion"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_no_unverified_result_numbers_in_prose(source: Path):
    """Numbers from a run are computed by the notebook (f-strings, tables) or asserted; prose may only quote
    the literature, with the citation in the same cell (QUOTED_FIGURES)."""
    nb = jupytext.read(source)
    bad = [f"cell {i}: {n}" for i, c in enumerate(nb.cells) if c.cell_type == "markdown"
           for n in unverified_numbers(c.source)]
    assert not bad, "unverified numbers in prose (compute them, or quote the paper with its citation):\n" + \
        "\n".join(bad)


# phrases that contradict the code's defaults (label-free, detached crop, one stage after the pretraining)
STALE = ["two-phase", "phase 1", "phase 2", "phase2", "stage 0", "pretrain_epochs", "pretrain_config", "stages_for",
         "87.8", "same number of epochs", "within 1% of uniform", "center supervision", "**OVERRIDES"]


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_no_stale_claims(source: Path):
    text = source.read_text()
    assert not [p for p in STALE if p.lower() in text.lower()], [p for p in STALE if p.lower() in text.lower()]


def test_the_number_check_catches_a_typed_result():
    assert unverified_numbers("Uni-AdaFocus reaches 95.7% at 16.3 MMACs, 8.0x fewer than full frames.")
    assert unverified_numbers("its frame recall stayed at 0.49 after training")
    assert not unverified_numbers("On ActivityNet 80.7% mAP at 27.2 GMACs (Wang et al., TPAMI 2024).")
    assert not unverified_numbers("clips of 16 frames at 64² pixels, K = 4 patches; see notebook 04")
    assert unverified_numbers("80.7% mAP without a citation")


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

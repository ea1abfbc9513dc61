"""Notebooks that check themselves: numbers in prose are computed or asserted, exercises assert their answer.

These checks read the notebook sources only (a second); executing the notebooks, and so their assertions,
is the job of ``pytest --nbmake notebooks``. The scanner is deliberately simple: it flags a number (or a
spelled-out multiple such as ``twice`` or ``three times``) in a sentence that also names a result
(accuracy, recall, IoU, MACs, ``x fewer``, ``%`` ...). Such a number must be

- produced by the notebook (a ``Markdown(f"...")`` cell or a table: then it is not in the prose at all), or
- a figure quoted from the literature, listed in :data:`QUOTED_FIGURES` with its citation, which must stand
  in the same markdown cell, or
- a claim that the notebook asserts against the run's values, listed in :data:`ASSERTED_CLAIMS` with the
  assertion that must appear in one of its code cells.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import jupytext
import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import build_notebooks  # noqa: E402
from build_notebooks import SOLUTION_MARKER, notebook_of  # noqa: E402

SOURCES = build_notebooks.sources()
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))

# Figures quoted from the literature in the notebooks' prose, each with the citation that must stand in
# the same markdown cell. Any other number next to a result word must be computed by the notebook.
PAPER = "Wang et al., TPAMI 2024"  # Uni-AdaFocus
QUOTED_FIGURES: dict[str, str] = {
    "80.7%": PAPER, "27.2": PAPER, "76.9%": PAPER, "21.7": PAPER, "78.3%": PAPER, "9.1": PAPER,  # ActivityNet mAP
    "80.4%": PAPER, "18.1": PAPER, "4.8x": PAPER, "47.5%": PAPER, "8.8": PAPER, "46.1%": PAPER,  # and SSv2 top-1
    "32.7": PAPER, "569": PAPER, "218": PAPER, "2.6x": PAPER,  # throughput, TSM backbone
    "27.23": PAPER, "1.3346": PAPER, "0.7507": PAPER,  # GMACs per video / per ResNet-50 patch
    "0.2": PAPER, "0.5": PAPER, "20": PAPER,  # the paper's learning-rate multipliers
}
# Claims in prose that the notebook asserts against its own run: notebook -> [(phrase in a markdown cell,
# assertion that must appear in a code cell of the same notebook)]. The assertion states the tolerance.
ASSERTED_CLAIMS: dict[str, list[tuple[str, str]]] = {
    "02_spatial_redundancy": [("about three times as much on a whole 224² frame",
                               "assert 2.5 < frame_vs_patch < 3.5")],
}
RESULT_WORDS = re.compile(r"accura|recall|\bIoU\b|MACs|\bmAP\b|fewer|faster|videos per second|hit rate|%",
                          re.IGNORECASE)
NUMBER = re.compile(r"(?<![\w.²/-])\d+(?:\.\d+)?(?:%|x(?![\w²]))?(?![\w²])"
                    r"|\b(?:twice|half|(?:two|three|four|five|six|seven|eight|nine|ten) times)\b", re.IGNORECASE)
# criteria stated by the text, list markers and cross-references: not results
NOT_RESULTS = re.compile(r"\(\d+\)|\b(?:notebooks?|[Ee]xercises?|within|at least|at most|more than|less than) "
                         r"\d+(?:\.\d+)?%?")


def unverified_numbers(markdown: str, asserted: tuple[str, ...] = ()) -> list[str]:
    """Numbers next to a result word in prose that are not a quoted figure with its citation, nor inside one
    of the ``asserted`` phrases. Left alone: code spans (names, settings), headings and tables, list markers
    such as ``(3)``, notebook and exercise numbers, and criteria stated by the text (``within 5 points``,
    ``at least 95%``): they are not results."""
    found = []
    prose = [line for line in markdown.splitlines() if not line.lstrip().startswith(("#", "|"))]
    text = re.sub(r"`[^`]*`", " ", " ".join(prose))
    flat = markdown.replace("\n# ", " ").replace("\n", " ")
    for phrase in (*set(QUOTED_FIGURES.values()), *asserted):
        text = text.replace(phrase, " ")
    text = NOT_RESULTS.sub(" ", text)
    for sentence in re.split(r"(?<=[.;:!?])\s+", text):
        if not RESULT_WORDS.search(sentence):
            continue
        for m in NUMBER.finditer(sentence):
            number = m.group()
            window = sentence[max(0, m.start() - 60): m.end() + 60]
            if not (number.endswith(("%", "x")) or RESULT_WORDS.search(window)):
                continue
            if QUOTED_FIGURES.get(number) and QUOTED_FIGURES[number] in flat:
                continue
            found.append(f"{number!r} in {sentence.strip()[:100]!r}")
    return found


def _read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def _exercises(nb: nbformat.NotebookNode) -> list[tuple[nbformat.NotebookNode, nbformat.NotebookNode | None]]:
    """(exercise markdown, solution code) pairs: a markdown cell with ``**Exercise N`` then its solution."""
    pairs = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown" and re.search(r"\*\*Exercise \d", cell.source):
            following = [c for c in nb.cells[i + 1:] if c.cell_type == "code"]
            pairs.append((cell, following[0] if following else None))
    return pairs


def ends_with_assertion(code: str) -> bool:
    """Whether ``code`` ends with an ``assert`` (its last top-level statement, or the last line of a final
    loop's body), or shows a figure (``fig`` / ``fig.show()``) right after one."""
    lines = [line for line in code.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    if not lines:
        return False
    last = max(i for i, line in enumerate(lines) if not line.startswith((" ", ")", "]", "}")))
    statement = "\n".join(lines[last:])  # the last top-level statement, or the body of a final loop
    return statement.startswith("assert ") or lines[-1].strip().startswith("assert ") or \
        (statement.strip() in ("fig", "fig.show()") and len(lines) > 1 and lines[-2].startswith("assert "))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_three_exercises_with_checked_collapsed_solutions(path: Path):
    nb = _read(path)
    pairs = _exercises(nb)
    assert len(pairs) == 3, f"{len(pairs)} exercises (expected 3)"
    assert nb.cells.index(pairs[0][0]) > len(nb.cells) / 2, "the exercises come at the end"
    for exercise, solution in pairs:
        assert solution is not None and solution.source.startswith(SOLUTION_MARKER), exercise.source[:60]
        assert solution.metadata.get("jupyter", {}).get("source_hidden") is True, "solutions start collapsed"
        assert ends_with_assertion(solution.source), \
            f"the solution of {exercise.source.splitlines()[0][:50]!r} must end with an assertion of its answer"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_no_unverified_result_numbers_in_prose(source: Path):
    """Numbers from a run are computed by the notebook (f-strings, tables) or asserted; prose may only quote
    the literature, with the citation in the same cell (QUOTED_FIGURES)."""
    nb = jupytext.read(source)
    asserted = tuple(phrase for phrase, _ in ASSERTED_CLAIMS.get(source.stem, []))
    bad = [f"cell {i}: {n}" for i, c in enumerate(nb.cells) if c.cell_type == "markdown"
           for n in unverified_numbers(c.source, asserted)]
    assert not bad, "unverified numbers in prose (compute them, assert them, or quote the paper with its " \
        "citation):\n" + "\n".join(bad)


@pytest.mark.parametrize("stem", sorted(ASSERTED_CLAIMS))
def test_asserted_claims_stand_in_prose_and_are_asserted(stem: str):
    """Each allow-listed claim is still in the prose (else the entry is stale) and its assertion in the code."""
    nb = jupytext.read(ROOT / "notebooks" / f"{stem}.py")
    prose = " ".join(c.source.replace("\n# ", " ").replace("\n", " ") for c in nb.cells if c.cell_type == "markdown")
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    for phrase, assertion in ASSERTED_CLAIMS[stem]:
        assert phrase in prose, f"{stem}: the claim {phrase!r} is no longer in the prose: drop it from the list"
        assert assertion in code, f"{stem}: {phrase!r} must be checked by `{assertion}`"


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
    assert unverified_numbers("the learned `w` kept frame recall at 0.85, as the uniform grid does")
    assert unverified_numbers("the patches need three times fewer MACs than the full frames")
    assert unverified_numbers("early exit halves the MACs at twice the speed: twice faster")
    assert not unverified_numbers("On ActivityNet 80.7% mAP at 27.2 GMACs (Wang et al., TPAMI 2024).")
    assert not unverified_numbers("clips of 16 frames at 64² pixels, K = 4 patches; see notebook 04")
    assert not unverified_numbers("the smallest crop within 5 points of the best accuracy")
    assert unverified_numbers("80.7% mAP without a citation")


def test_an_asserted_claim_is_exempt_only_where_listed():
    text = "A 224² frame costs about three times as much MACs as a patch."
    assert unverified_numbers(text)
    assert not unverified_numbers(text, asserted=("about three times as much",))


def test_ends_with_assertion():
    assert ends_with_assertion("x = f()\nassert x > 0  # the answer")
    assert ends_with_assertion("for r in rows:\n    print(r)\n    assert r > 0")
    assert ends_with_assertion("fig = plot()\nassert len(fig.data) > 1\nfig")
    assert not ends_with_assertion("assert x > 0\nprint(x)")
    assert not ends_with_assertion("x = 1\nprint(x)  # assert x == 1")


def test_the_builder_collapses_solution_cells(tmp_path: Path):
    """A code cell that starts with the marker is written collapsed (``jupyter.source_hidden``), even when the
    .py source does not say so; other cells are left open."""
    source = tmp_path / "99_demo.py"
    source.write_text('# %% tags=["parameters"]\nFAST = True\n\n# %% [markdown]\n# **Exercise 1: x.**\n\n'
                      f"# %%\n{SOLUTION_MARKER}\nx = 1\nassert x == 1\n\n# %%\ny = 2\n")
    nb = notebook_of(source)
    hidden = [c.metadata.get("jupyter", {}).get("source_hidden", False) for c in nb.cells]
    assert hidden == [False, False, True, False]

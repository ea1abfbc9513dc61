"""Which budget? adafocus.analysis.budgets and its figure, on hand-made tables."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pandas as pd
import pytest

from adafocus.analysis.budgets import best_budget, pareto_front
from adafocus.viz.plots import budget_grid

# (P, K, MMACs, accuracy): (16, 4) is beaten by (24, 2), cheaper and more accurate; (32, 4) ties (24, 4)'s accuracy
TABLE = pd.DataFrame([(16, 2, 4.0, 0.80), (24, 2, 7.0, 0.93), (16, 4, 8.0, 0.90), (24, 4, 15.0, 0.98),
                      (32, 4, 21.0, 0.98), (32, 8, 40.0, 0.99)],
                     columns=["patch_size", "num_focus", "mmacs", "accuracy"])


def test_the_pareto_front_drops_beaten_and_tied_but_dearer_budgets():
    front = pareto_front(TABLE)
    assert list(zip(front["patch_size"], front["num_focus"])) == [(16, 2), (24, 2), (24, 4), (32, 8)]
    assert front["mmacs"].is_monotonic_increasing and front["accuracy"].is_monotonic_increasing


@pytest.mark.parametrize("max_mmacs, expected", [(4.0, (16, 2)), (7.5, (24, 2)), (14.9, (24, 2)), (21.0, (24, 4)),
                                                 (100.0, (32, 8))])
def test_best_budget_is_the_most_accurate_that_fits_and_the_cheaper_on_a_tie(max_mmacs, expected):
    row = best_budget(TABLE, max_mmacs)
    assert (row["patch_size"], row["num_focus"]) == expected and row["mmacs"] <= max_mmacs


def test_no_budget_fits_names_the_cheapest():
    with pytest.raises(ValueError, match=r"max_mmacs: no budget costs at most 3.0 MMACs.*P=16, K=2 at 4.00"):
        best_budget(TABLE, 3.0)


@pytest.mark.parametrize("table, words", [(TABLE.drop(columns="mmacs"), "missing \\['mmacs'\\]"),
                                          (TABLE.iloc[:0], "at least one row")])
def test_a_wrong_table_gets_a_clear_error(table, words):
    with pytest.raises(ValueError, match=words):
        pareto_front(table)


def test_the_figure_has_a_cell_per_budget_and_the_front():
    fig = budget_grid(TABLE)
    heat, scatter = fig.axes[:2]
    cells = [t.get_text() for t in heat.texts]
    assert len(cells) == len(TABLE) and "98.0%\n15.0 MMACs" in cells
    assert "MMACs" in scatter.get_xlabel() and len(scatter.collections) == len(TABLE)
    assert [line.get_label() for line in scatter.lines] == ["Pareto front"]

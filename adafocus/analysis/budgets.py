"""Which budget? The patch size P and the number of focus frames K against accuracy and MACs.

A budget table has one row per trained (P, K): columns ``patch_size``, ``num_focus``, ``mmacs`` (per video) and
``accuracy`` (``benchmarks/budget_grid.py`` writes ``benchmarks/results/budget_grid.csv``). Two questions a
practitioner asks of it: which budgets are worth training at all (:func:`pareto_front`: no other budget is both
cheaper and more accurate), and, for a MACs budget, which (P, K) to choose (:func:`best_budget`).
"""

from __future__ import annotations

import pandas as pd

COLUMNS = ("patch_size", "num_focus", "mmacs", "accuracy")


def _check(table: pd.DataFrame) -> None:
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"budget table: expected columns {list(COLUMNS)}, missing {missing}")
    if table.empty:
        raise ValueError("budget table: expected at least one row, got none")


def pareto_front(table: pd.DataFrame) -> pd.DataFrame:
    """The rows no other row beats on both counts (at most as many MMACs and a higher accuracy, or fewer MMACs
    and at least the accuracy), cheapest first."""
    _check(table)
    rows = table.sort_values(["mmacs", "accuracy"], ascending=[True, False])
    keep, best = [], float("-inf")
    for index, row in rows.iterrows():
        if row["accuracy"] > best:
            keep.append(index)
            best = row["accuracy"]
    return rows.loc[keep]


def best_budget(table: pd.DataFrame, max_mmacs: float) -> pd.Series:
    """The most accurate row whose cost is at most ``max_mmacs`` MMACs per video (the cheaper one on a tie).
    Raises a ValueError naming the cheapest budget when none fits."""
    _check(table)
    fits = table[table["mmacs"] <= max_mmacs]
    if fits.empty:
        cheapest = table.loc[table["mmacs"].idxmin()]
        p, k = int(cheapest["patch_size"]), int(cheapest["num_focus"])
        raise ValueError(f"max_mmacs: no budget costs at most {max_mmacs} MMACs per video; the cheapest is "
                         f"P={p}, K={k} at {cheapest['mmacs']:.2f} MMACs")
    return fits.sort_values(["accuracy", "mmacs"], ascending=[False, True]).iloc[0]


def train_budget_grid(cfg, grid: list[tuple[int, int]], splits: dict | None = None, progress: bool = False
                      ) -> pd.DataFrame:
    """Train (or load from the cache) label-free ``uni_adafocus`` under ``cfg`` at every ``(P, K)`` of ``grid`` and
    evaluate each on the test split (:func:`adafocus.evaluate.evaluate_model`): one row per budget, with
    :data:`COLUMNS`, the policy metrics and ``budget`` ("P=..,K=..")."""
    from adafocus.evaluate import evaluate_model

    rows = []
    for p, k in grid:
        run_cfg = cfg.replace(**{"model.patch_size": p, "model.num_focus": k})
        rows.append({"budget": f"P={p},K={k}", **evaluate_model("uni_adafocus", run_cfg, splits, progress=progress)})
    return pd.DataFrame(rows)

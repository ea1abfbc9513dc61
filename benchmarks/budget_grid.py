"""The budget a practitioner turns first: patch size P x number of focus frames K, label-free Uni-AdaFocus.

    python benchmarks/budget_grid.py [--preset small] [--workers 2]

Trains ``uni_adafocus`` (recipe ``cpu``, seed 0) at every (P, K) of :data:`GRID` (the benchmark's K = 4 models are
reused from the cache), evaluates each on the test split and writes ``benchmarks/results/budget_grid.csv``: one
:func:`adafocus.evaluate.evaluate_model` row per budget (P, K, MMACs per video, test accuracy, box IoU beside random
boxes of the same size, frame recall beside the uniform grid, ...) and the training seconds its checkpoint recorded. ``make figures`` draws
``figures/budget_grid.png`` from it; notebook 06 answers "for a MACs budget, which (P, K)?".
"""

from __future__ import annotations

from adafocus.benchmark import variants_main

GRID = [(p, k) for k in (2, 4, 8) for p in (16, 24, 32)]
VARIANTS = {f"P={p},K={k}": {"model.patch_size": p, "model.num_focus": k} for p, k in GRID}


def run(args: tuple[str, str, dict]) -> dict:
    """Worker: train (or load) one budget and evaluate it (:func:`adafocus.analysis.budgets.train_budget_grid`)."""
    from adafocus.analysis.budgets import train_budget_grid
    from adafocus.config import get_config
    from adafocus.train import train

    preset, _, overrides = args
    cfg = get_config(preset)
    p, k = overrides["model.patch_size"], overrides["model.num_focus"]
    row = train_budget_grid(cfg, [(p, k)]).iloc[0].to_dict()
    history = train("uni_adafocus", get_config(preset, **overrides), progress=False).history  # cached now
    return {**row, "train_seconds": float(history["seconds"].sum())}  # as measured when it trained


if __name__ == "__main__":
    variants_main(run, VARIANTS, "budget_grid.csv", __doc__)

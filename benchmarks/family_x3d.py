"""Uni-AdaFocus-X3D against the full-clip X3D on the small preset (issue 15, part 2).

    python benchmarks/family_x3d.py [--preset small] [--workers 2]

Trains ``uni_adafocus_x3d`` (a 3-D glance, one box per clip, a K x P x P space-time cube for a 3-D focus X3D)
and ``x3d_full`` (the same focus X3D on whole frames) label-free (recipe ``cpu``), both from the X3Ds'
pretraining on the image set (:func:`adafocus.pretrain_x3d.pretrained_x3d_backbones`, run once first), cached like
every model (a second run reads them back), and evaluates both on the test split with
:func:`adafocus.evaluate.evaluate_model`. Writes ``benchmarks/results/family_x3d.csv``: method, accuracy, mmacs,
train_seconds (the training's own measured seconds, also when read from the cache), epochs, val accuracy,
the policy metrics (box IoU, frame recall, beside random boxes and the uniform grid) and the MACs ratio.

``make family`` (``benchmarks/family.py``) runs :func:`evaluate_one` as its jobs, then :func:`x3d_table`.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from adafocus.benchmark import RESULTS_DIR, map_in_workers, study_arguments

METHODS = ("uni_adafocus_x3d", "x3d_full")
CSV_NAME = "family_x3d.csv"
FIRST = ["method", "accuracy", "mmacs", "train_seconds", "epochs", "val_accuracy"]


def evaluate_one(args: tuple[str, str]) -> dict:
    """Train (or load) ``method`` at ``preset`` (with its longer budget, if any) and score it on the test split."""
    from adafocus.evaluate import evaluate_model
    from adafocus.family import member_config
    from adafocus.train import train

    preset, method = args
    cfg = member_config(method, preset)
    row = evaluate_model(method, cfg, progress=False)
    h = train(method, cfg, progress=False).history  # cached now: its recorded epochs and seconds
    return {**row, "train_seconds": float(h["seconds"].sum()), "epochs": int(h["epoch"].iloc[-1]),
            "val_accuracy": float(h["val_acc"].iloc[-1])}


def run_family_x3d(preset: str = "small", workers: int = 2, results_dir: Path = RESULTS_DIR) -> pd.DataFrame:
    """Train both models (in ``workers`` processes, one thread each), write ``<results_dir>/family_x3d.csv`` and
    print the table and the goal's two numbers. Returns the table."""
    from adafocus.data.synthetic import load_splits
    from adafocus.family import member_config
    from adafocus.pretrain_x3d import pretrained_x3d_backbones

    cfg = member_config(METHODS[0], preset)  # both models: the same X3D budget
    load_splits(cfg.data)  # the data once, before the workers start
    if cfg.pretrain.epochs:
        pretrained_x3d_backbones(cfg)  # the X3Ds' pretraining once, shared by both
    jobs = [(preset, m) for m in METHODS]
    return x3d_table(map_in_workers(evaluate_one, jobs, workers), results_dir)


def x3d_table(rows: list[dict], results_dir: Path = RESULTS_DIR) -> pd.DataFrame:
    """:func:`evaluate_one`'s rows as ``<results_dir>/family_x3d.csv``; prints the table and the goal's two numbers."""
    df = pd.DataFrame(rows)
    df = df[FIRST + [c for c in df.columns if c not in FIRST]]
    results_dir.mkdir(parents=True, exist_ok=True)
    df.to_csv(results_dir / CSV_NAME, index=False)
    print(df[FIRST].round(4).to_string(index=False))
    row = df.set_index("method")
    gap = 100 * (row.loc["x3d_full", "accuracy"] - row.loc["uni_adafocus_x3d", "accuracy"])
    ratio = row.loc["x3d_full", "mmacs"] / row.loc["uni_adafocus_x3d", "mmacs"]
    print(f"full-clip X3D minus Uni-AdaFocus-X3D: {gap:+.1f} points of accuracy; {ratio:.1f}x the MACs "
          "(goal: at most 2 points at >= 4x)")
    return df


def main() -> None:
    args = study_arguments(__doc__, "small")
    run_family_x3d(args.preset, args.workers)


if __name__ == "__main__":
    main()

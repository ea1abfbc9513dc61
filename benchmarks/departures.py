"""Each departure of the ``cpu`` recipe from the ``paper`` recipe, measured one switch at a time.

    python benchmarks/departures.py [--preset small] [--workers 2]

The two recipes differ in two switches (docs/design.md, "Recipes"): the optimiser (AdamW at 3e-3 with
learning-rate multipliers 1 / 0.5 / 1 / 1, against SGD at 0.01 with the paper's 0.2 / 0.5 / 1 / 20)
and the scale regulariser's weight (0.1 against 1.0). Trains label-free Uni-AdaFocus at the main
budget (P = 24, K = 4) under each step from ``paper`` to ``cpu`` and at a longer schedule, reusing
the benchmark's cached models where they exist, and writes ``benchmarks/results/departures.csv``:
test accuracy, box IoU beside random boxes of the same size, frame recall beside the uniform grid,
training seconds.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import time

import pandas as pd

from adafocus.benchmark import MAIN_BUDGET, RESULTS_DIR

STEPS = {
    "paper (SGD, scale_reg 1.0)": {"train.recipe": "paper"},
    "cpu optimiser (AdamW), scale_reg 1.0": {"train.scale_reg": 1.0},
    "cpu (AdamW, scale_reg 0.1: the default)": {},
    "cpu, 12 epochs instead of 8": {"train.epochs": 12},
}


def run(args: tuple[str, str, dict]) -> dict:
    from adafocus.config import get_config
    from adafocus.data.synthetic import load_splits
    from adafocus.evaluate import policy_report, predict
    from adafocus.train import train

    preset, name, overrides = args
    p, k = MAIN_BUDGET
    cfg = get_config(preset, **{"model.patch_size": p, "model.num_focus": k, **overrides})
    t0 = time.time()
    result = train("uni_adafocus", cfg, progress=False)
    seconds = 0.0 if result.from_cache else time.time() - t0
    test = predict(result.model, load_splits(cfg.data, progress=False)["test"])
    report = policy_report(test, cfg.data.num_frames, cfg.data.frame_size)
    return {"step": name, "recipe": cfg.train.recipe, "optimizer": cfg.train.optimizer,
            "scale_reg": cfg.train.scale_reg, "epochs": cfg.train.epochs, "accuracy": test.accuracy,
            **{key: report[key] for key in ("box_iou", "random_box_iou", "frame_recall", "uniform_frame_recall")},
            "train_seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="small")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    from adafocus.config import get_config
    from adafocus.pretrain import pretrain

    pretrain(get_config(args.preset), progress=False)  # shared by every step, once
    jobs = [(args.preset, name, ov) for name, ov in STEPS.items()]
    with mp.get_context("spawn").Pool(args.workers) as pool:
        rows = pool.map(run, jobs)
    df = pd.DataFrame(rows)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    df.to_csv(RESULTS_DIR / "departures.csv", index=False)
    print(df.round(3).to_string(index=False))


if __name__ == "__main__":
    main()

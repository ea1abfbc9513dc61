"""Each departure of the ``cpu`` recipe from the ``paper`` recipe, measured one switch at a time.

    python benchmarks/departures.py [--preset small] [--workers 2]

The two recipes differ in three switches (docs/design.md, "Recipes"): the optimiser (AdamW at 3e-3 with
learning-rate multipliers 1 / 0.5 / 1 / 1, against SGD at 0.01 with the paper's 0.2 / 0.5 / 1 / 20),
the scale regulariser's weight (0.1 against 1.0) and the gradient through the pixel crop into the
boxes (``model.patch_grad``, AdaFocusV2's end-to-end crop; the paper's Uni-AdaFocus detaches it). Trains
label-free Uni-AdaFocus at the main budget (P = 24, K = 4) at each step from ``paper`` to ``cpu``, one
switch at a time, and at a longer schedule, reusing the benchmark's cached models where they exist,
and writes ``benchmarks/results/departures.csv``: test accuracy, box IoU beside random boxes of the
same size, frame recall beside the uniform grid, training seconds.
"""

from __future__ import annotations

import time

from adafocus.benchmark import MAIN_BUDGET, variants_main

STEPS = {
    "paper (SGD, scale_reg 1.0, detached crop)": {"train.recipe": "paper"},
    "+ AdamW": {"model.patch_grad": False, "train.scale_reg": 1.0},
    "+ scale_reg 0.1": {"model.patch_grad": False},
    "+ gradients through the crop (cpu, the default)": {},
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
            "scale_reg": cfg.train.scale_reg, "patch_grad": cfg.model.patch_grad, "epochs": cfg.train.epochs,
            "accuracy": test.accuracy,
            **{key: report[key] for key in ("box_iou", "random_box_iou", "frame_recall", "uniform_frame_recall")},
            "train_seconds": seconds}


if __name__ == "__main__":
    variants_main(run, STEPS, "departures.csv", __doc__)

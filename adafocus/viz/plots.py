"""Paper-style result figures: accuracy against MACs, learning curves, early-exit curves.

Static figures are saved as PNG and SVG (:func:`save_figure`), interactive ones as HTML
(:func:`save_plotly`). Every cost axis is labelled in MMACs or GMACs.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np
import pandas as pd

# one colour and marker per method, so every figure of the workbench agrees
METHOD_STYLE: dict[str, tuple[str, str, str]] = {  # name: (label, colour, marker)
    "uni_adafocus": ("Uni-AdaFocus (label-free)", "#d62728", "o"),
    "uni_adafocus:seed1": ("Uni-AdaFocus (label-free, seed 1)", "#d62728", "$1$"),
    "uni_adafocus:paper": ("Uni-AdaFocus, paper's recipe (label-free)", "#ff9896", "d"),
    "uni_adafocus:hinted": ("Uni-AdaFocus, hinted (ablation: true boxes in the loss)", "#7f0000", "X"),
    "uni_adafocus+exit": ("Uni-AdaFocus + early exit", "#ff7f0e", "*"),
    "uni_adafocus+exit_whole_glance": ("Uni-AdaFocus + early exit (whole glance first)", "#ffbb78", "*"),
    "uni_adafocus_paper_head": ("Uni-AdaFocus (paper's conv head)", "#e377c2", "o"),
    "adafocus_v2": ("AdaFocusV2", "#9467bd", "s"),
    "adafocus_v1": ("AdaFocus V1 (grid policy, PPO, 3 stages)", "#8c6d31", "p"),
    "uni_adafocus_tsm": ("Uni-AdaFocus-TSM (temporal shift)", "#e6550d", "H"),
    "uni_adafocus_tsn": ("Uni-AdaFocus-TSN (no shift)", "#fdae6b", "h"),
    "uni_adafocus_x3d": ("Uni-AdaFocus-X3D (space-time cube)", "#31a354", "8"),
    "x3d_full": ("X3D, whole clip", "#74c476", "D"),
    "full_frame": ("full frame", "#1f77b4", "D"),
    "lowres_full_frame": ("low-res full frame", "#17becf", "v"),
    "glance_only": ("glance only", "#7f7f7f", "x"),
    "random_patch": ("random patch", "#8c564b", "^"),
    "center_patch": ("center patch", "#bcbd22", "<"),
    "oracle": ("oracle (given the true box + frames)", "#2ca02c", "P"),
    "temporal_only": ("temporal only", "#aec7e8", ">"),
    "exits_only": ("exits only (FrameExit-like)", "#98df8a", "h"),
}


def method_label(name: str) -> str:
    return METHOD_STYLE.get(name, (name, "", ""))[0]


def save_figure(fig: plt.Figure, stem: str | Path, formats: tuple[str, ...] = ("png", "svg")) -> list[Path]:
    """Save ``fig`` as ``stem.png`` and ``stem.svg`` (folders created). Returns the paths."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        path = stem.with_suffix(f".{fmt}")
        fig.savefig(path, dpi=150, bbox_inches="tight")
        paths.append(path)
    return paths


def save_plotly(fig, stem: str | Path) -> Path:
    """Save a plotly figure as a self-contained ``stem.html`` (plotly.js inlined: works offline)."""
    path = Path(stem).with_suffix(".html")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.write_html(path, include_plotlyjs=True, full_html=True)
    return path


def _cost_column(df: pd.DataFrame) -> tuple[str, str]:
    """Use MMACs for small models (CPU presets), GMACs for paper-sized ones."""
    if "mmacs" in df and df["mmacs"].max() < 1000:
        return "mmacs", "MMACs per video"
    return "gmacs", "GMACs per video"


def _curves(df: pd.DataFrame, col: str):
    """``(curve, rows, first)`` per curve, sorted by cost: one per ``curve`` key (the method, or the method
    and its recipe / seed; ``method`` when there is no ``curve`` column) through its budgets, except
    early-exit rows (``budget`` like ``"P=24,K=4, rho=2.0"``), which give one curve per base budget."""
    key = "curve" if "curve" in df else "method"
    for method, rows in df.groupby(key, sort=False):
        base = rows["budget"].astype(str).str.split(", rho=").str[0] if "budget" in rows else None
        if base is None or "rho" not in rows or rows["rho"].isna().all():
            yield method, rows.sort_values(col), True
            continue
        for i, (_, part) in enumerate(rows.groupby(base, sort=False)):
            yield method, part.sort_values(col), i == 0


def accuracy_vs_macs(df: pd.DataFrame, title: str = "Accuracy vs cost (synthetic benchmark, test split)",
                     ax: plt.Axes | None = None) -> plt.Figure:
    """One curve per method through its budgets: columns ``method, accuracy`` and ``mmacs``/``gmacs``."""
    col, label = _cost_column(df)
    if ax is None:
        fig, ax = plt.subplots(figsize=(10, 5))
    else:
        fig = ax.figure
    for method, rows, first in _curves(df, col):
        name, color, marker = METHOD_STYLE.get(method, (method, None, "o"))
        ax.plot(rows[col], 100 * rows["accuracy"], marker=marker, color=color or None,
                label=name if first else None, linewidth=1.8, markersize=7)
    ax.set_xscale("log")
    ax.set_xlabel(f"{label} (log scale)")
    ax.set_ylabel("top-1 accuracy (%)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)  # beside: no point hidden
    return fig


def accuracy_vs_macs_plotly(df: pd.DataFrame, title: str = "Accuracy vs cost"):
    """Interactive version: hover shows the method, budget and numbers."""
    import plotly.graph_objects as go

    col, label = _cost_column(df)
    fig = go.Figure()
    for method, rows, first in _curves(df, col):
        name, color, _ = METHOD_STYLE.get(method, (method, None, "o"))
        budget = rows["budget"] if "budget" in rows else [""] * len(rows)
        fig.add_trace(go.Scatter(
            x=rows[col], y=100 * rows["accuracy"], mode="lines+markers", name=name, legendgroup=method,
            showlegend=first, line={"color": color} if color else None, text=list(budget),
            hovertemplate=f"{name}<br>%{{text}}<br>%{{x:.2f}} {label.split()[0]}<br>%{{y:.1f}}%<extra></extra>"))
    fig.update_layout(title=title, xaxis_title=f"{label} (log scale)", yaxis_title="top-1 accuracy (%)",
                      xaxis_type="log", template="plotly_white", width=850, height=520)
    return fig


def learning_curves(history: pd.DataFrame, title: str = "Learning curves") -> plt.Figure:
    """Validation accuracy per epoch, one line per model (``history`` rows from training; grouped by
    ``curve`` when present, else by ``model``)."""
    fig, ax = plt.subplots(figsize=(7, 4.2))
    key = "curve" if "curve" in history else "model"
    for model, rows in history.groupby(key, sort=False):
        name, color, marker = METHOD_STYLE.get(model, (model, None, "o"))
        ax.plot(rows["epoch"], 100 * rows["val_acc"], marker=marker, color=color or None, label=name)
    ax.set_xlabel("epoch (one end-to-end stage, after the shared pretraining)")
    ax.set_ylabel("validation accuracy (%)")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def training_signal_bars(quality: pd.DataFrame, title: str = "The training signal") -> plt.Figure:
    """Accuracy, box IoU (beside random boxes of the same size) and frame recall (beside the uniform
    grid) of one model under each recipe: rows of ``policy_quality.csv`` with a ``curve`` column."""
    rows = quality.reset_index(drop=True)
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.6))
    short = {"uni_adafocus:paper": "paper recipe\n(label-free)", "uni_adafocus": "cpu recipe\n(label-free)",
             "uni_adafocus:seed1": "cpu recipe, seed 1\n(label-free)",
             "uni_adafocus:hinted": "hinted\n(ablation: true\nboxes and frames)"}
    labels = [short.get(c, METHOD_STYLE.get(c, (c, "", ""))[0]) for c in rows["curve"]]
    colors = [METHOD_STYLE.get(c, (c, "#777777", ""))[1] for c in rows["curve"]]
    x = np.arange(len(rows))
    panels = [("accuracy", None, "test accuracy (%)", 100), ("box_iou", "random_box_iou", "box IoU with the truth", 1),
              ("frame_recall", "uniform_frame_recall", "recall of informative frames", 1)]
    for ax, (col, ref, ylabel, scale) in zip(axes, panels):
        ax.bar(x, scale * rows[col], color=colors)
        for i, v in enumerate(scale * rows[col]):
            ax.text(i, v, f"{v:.1f}" if scale == 100 else f"{v:.2f}", ha="center", va="bottom", fontsize=7)
        if ref is not None:
            ax.scatter(x, rows[ref], marker="_", s=400, color="black", zorder=3,
                       label="random boxes, same size" if ref == "random_box_iou" else "uniform frame grid")
            ax.legend(fontsize=7, loc="upper left")
        ax.set_xticks(x, labels, fontsize=6)
        ax.set_ylabel(ylabel)
        ax.set_ylim(0, 105 if scale == 100 else 1.05)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def family_learning_curves(v1: pd.DataFrame, others: pd.DataFrame,
                           title: str = "AdaFocus V1 (reinforcement learning) vs the end-to-end family",
                           seconds: str = "seconds", seconds_label: str = "training time (minutes, 1 thread)"
                           ) -> plt.Figure:
    """Validation accuracy against training epochs (left) and training time (right: the running sum of column
    ``seconds`` per epoch): AdaFocus V1 over its three stages (``v1`` rows: ``stage``, ``epoch``, ``val_acc``; the
    stages shaded and named) beside end-to-end models (``others`` rows: ``method``, ``epoch``, ``val_acc``). With a
    ``seed`` column every seed is drawn, the first solid and the others thin and dashed (the spread between seeds)."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.4), sharey=True)
    v1 = v1.assign(method="adafocus_v1")
    curves = [(key, rows) for frame in (others, v1)
              for key, rows in frame.groupby(["method", "seed"] if "seed" in frame else ["method"], sort=False)]
    first = {key[0]: min(k[-1] for k, _ in curves if k[0] == key[0]) for key, _ in curves}
    for ax, x in zip(axes, ("epoch", "wall")):
        for key, rows in curves:
            method, seed = key[0], key[-1]
            name, color, marker = METHOD_STYLE.get(method, (method, None, "o"))
            main = seed == first[method]
            xs = rows["epoch"] if x == "epoch" else rows[seconds].cumsum() / 60
            ax.plot(xs, 100 * rows["val_acc"], marker=marker, color=color or None, ls="-" if main else "--",
                    lw=1.5 if main else 1.0, ms=6 if main else 3, alpha=1.0 if main else 0.6,
                    label=name if main else f"{name}, seed {seed}")
        if x == "epoch":  # V1's stages as shaded bands
            ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
            for i, (stage, rows) in enumerate(v1.groupby("stage", sort=False)):
                lo, hi = rows["epoch"].min() - 0.5, rows["epoch"].max() + 0.5
                ax.axvspan(lo, hi, color="#8c6d31", alpha=0.06 + 0.06 * (i % 2), lw=0)
                ax.text((lo + hi) / 2, 0.02, f"V1: {stage}", transform=ax.get_xaxis_transform(), ha="center",
                        va="bottom", fontsize=8, color="#8c6d31")
        ax.set_xlabel("training epoch" if x == "epoch" else seconds_label)
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel("validation accuracy (%)")
    axes[1].legend(fontsize=8, loc="lower right")
    fig.suptitle(title, fontsize=10)
    return fig


def family_accuracy_vs_macs(table: pd.DataFrame, title: str = "The AdaFocus family (test split, label-free)"
                            ) -> plt.Figure:
    """Accuracy against MMACs per video for the family's members (:func:`adafocus.family.family_table` rows:
    ``method``, ``benchmark``, ``generation``, ``accuracy`` in [0, 1], ``mmacs``), one panel per benchmark
    (a model is only compared with models trained on the same data), each point labelled by its generation
    (the labels of points that nearly coincide stacked), the legend under each panel."""
    benchmarks = list(dict.fromkeys(table["benchmark"]))
    fig, axes = plt.subplots(1, len(benchmarks), figsize=(5.6 * len(benchmarks), 4.8), squeeze=False)
    for ax, bench in zip(axes[0], benchmarks):
        rows = table[table["benchmark"] == bench].sort_values("accuracy", ascending=False)  # of two close points,
        placed: list[tuple[float, float]] = []  # the higher is labelled first (above it), the lower below it
        for _, r in rows.iterrows():
            name, color, marker = METHOD_STYLE.get(r["method"], (r["method"], None, "o"))
            ax.scatter(r["mmacs"], 100 * r["accuracy"], marker=marker, s=70, color=color or None, label=name,
                       edgecolor="black", linewidth=0.5, zorder=3)
            x, y = float(np.log10(r["mmacs"])), 100 * float(r["accuracy"])
            crowd = sum(abs(x - px) < 0.05 and abs(y - py) < 4 for px, py in placed)  # labels already there
            placed.append((x, y))
            ax.annotate(r["generation"], (r["mmacs"], y), textcoords="offset points", xytext=(7, 5 - 11 * crowd),
                        fontsize=8)
        ax.set_xscale("log")
        ax.set(xlabel="MMACs per video (log scale)", ylabel="test accuracy (%)", title=f"benchmark: {bench}")
        ax.grid(True, alpha=0.3, which="both")
        ax.margins(x=0.15, y=0.1)
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=2, frameon=False)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def budget_grid(table: pd.DataFrame, title: str = "Which budget? Label-free Uni-AdaFocus over P x K") -> plt.Figure:
    """Left: test accuracy (%) as a heat map over the patch size P (rows) and the number of focus frames K
    (columns), each cell annotated with its accuracy and MMACs per video. Right: accuracy against MMACs, one point
    per (P, K), the Pareto front (:func:`adafocus.analysis.budgets.pareto_front`) joined by a line. ``table``: rows
    with ``patch_size``, ``num_focus``, ``mmacs``, ``accuracy`` in [0, 1]."""
    from adafocus.analysis.budgets import pareto_front

    acc = table.pivot_table(index="patch_size", columns="num_focus", values="accuracy")
    macs = table.pivot_table(index="patch_size", columns="num_focus", values="mmacs")
    fig, (heat, scatter) = plt.subplots(1, 2, figsize=(11.5, 4.2))
    image = heat.imshow(100 * acc.values, cmap="viridis", aspect="auto", origin="lower")
    for i, p in enumerate(acc.index):
        for j, k in enumerate(acc.columns):
            if not np.isnan(acc.loc[p, k]):
                heat.text(j, i, f"{100 * acc.loc[p, k]:.1f}%\n{macs.loc[p, k]:.1f} MMACs", ha="center",
                          va="center", fontsize=8, color="white" if acc.loc[p, k] < acc.values.mean() else "black")
    heat.set(xticks=range(len(acc.columns)), xticklabels=acc.columns, yticks=range(len(acc.index)),
             yticklabels=acc.index, xlabel="focus frames K", ylabel="patch size P (pixels)")
    fig.colorbar(image, ax=heat, label="test accuracy (%)")
    front = pareto_front(table)
    scatter.plot(front["mmacs"], 100 * front["accuracy"], color="#7f7f7f", lw=1, zorder=1, label="Pareto front")
    for _, r in table.iterrows():
        scatter.scatter(r["mmacs"], 100 * r["accuracy"], color="#d62728", s=30, zorder=2)
        scatter.annotate(f"P={int(r['patch_size'])},K={int(r['num_focus'])}", (r["mmacs"], 100 * r["accuracy"]),
                         textcoords="offset points", xytext=(5, -10), fontsize=7)
    scatter.set(xscale="log", xlabel="MMACs per video (log scale)", ylabel="test accuracy (%)")
    plain = matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}")  # 6, 10, 20 rather than 6x10^0
    scatter.xaxis.set_major_formatter(plain)
    scatter.xaxis.set_minor_formatter(plain)
    scatter.grid(True, alpha=0.3, which="both")
    scatter.legend(fontsize=8, loc="lower right")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig

"""The early-exit gallery: which clips leave first, which run to the last exit, and why.

:func:`exit_groups` picks the clips (pure function of the exit logits and thresholds);
:func:`early_exit_gallery` draws them as filmstrips, one row per clip: every frame of the clip, greyed
where the model never computed anything before the clip left, a blue border on the glance frames it
had read and the magenta patch on the frames it had focused on (the true box in green, dashed where
the object is hidden, as in :func:`adafocus.viz.filmstrips.policy_filmstrip`); beside the frames, the
clip's confidence (max softmax probability) at every exit against the calibrated thresholds, with the
exit it took marked. A clip leaves at the first exit where its confidence reaches the threshold
(:func:`adafocus.analysis.early_exit.exit_steps`), so the chart shows why.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.patheffects import Normal, Stroke
from torch import Tensor

from adafocus.analysis.early_exit import confidences, exit_steps
from adafocus.viz.explorers import STYLE as EXPLORER_STYLE
from adafocus.viz.filmstrips import FILMSTRIP_STYLE, FilmstripStyle, _box, _show, hex_color


class ExitGroups(NamedTuple):
    """Clip indices: ``first`` exit earliest (most confident first), ``last`` run to the last exit (least
    confident first); ``steps (N,)`` the exit each clip takes, ``confidence (N, S)`` at every exit."""

    first: list[int]
    last: list[int]
    steps: Tensor
    confidence: Tensor


def exit_groups(exit_logits: Tensor, thresholds: Tensor, per_group: int = 3) -> ExitGroups:
    """The ``per_group`` clips that leave first (earliest exit; among equals the most confident) and the
    ``per_group`` that run to the last exit (the least confident first: the hardest), from the exit logits
    ``(N, S, n)`` of every exit and the thresholds ``(S,)``. A group has fewer clips when fewer qualify."""
    if exit_logits.dim() != 3 or thresholds.shape != exit_logits.shape[1:2]:
        raise ValueError(f"exit_groups: expected exit_logits (N, S, n) and thresholds (S,), got "
                         f"{tuple(exit_logits.shape)} and {tuple(thresholds.shape)}")
    conf = confidences(exit_logits)  # (N, S)
    steps = exit_steps(conf, thresholds)  # (N,)
    at_exit = conf.gather(1, steps[:, None])[:, 0]
    S = conf.shape[1]
    order = sorted(range(len(steps)), key=lambda i: (int(steps[i]), -float(at_exit[i])))
    last = sorted((i for i in range(len(steps)) if int(steps[i]) == S - 1), key=lambda i: float(at_exit[i]))
    first = [i for i in order if int(steps[i]) < S - 1][:per_group]
    return ExitGroups(first, last[:per_group], steps, conf)


def _seen_frames(step: int, glance_idx: np.ndarray, frame_idx: np.ndarray) -> tuple[set[int], set[int]]:
    """Frames read by the glance and frames focused on before leaving at exit ``step`` (0-based)."""
    Tg = len(glance_idx)
    glanced = {int(t) for t in glance_idx[:step + 1]}
    focused = {int(t) for t in frame_idx[:max(0, step - Tg + 1)]}
    return glanced, focused


def early_exit_gallery(videos: Tensor, preds: Any, thresholds: Tensor, glance_idx: Tensor, per_group: int = 3,
                       title: str | None = None, style: FilmstripStyle = FILMSTRIP_STYLE) -> Figure:
    """Filmstrips of the clips that exit first and of those that run to the last exit (:func:`exit_groups`).

    ``videos (N, T, C, H, W)`` (uint8 or float in [0, 1]); ``preds``: the model's predictions on them
    (:class:`adafocus.evaluate.Predictions`: ``exit_logits``, ``labels``, ``frame_idx``, ``boxes`` and, when
    the data has them, ``gt_boxes`` and ``gt_mask``); ``thresholds (S,)`` calibrated on the validation split;
    ``glance_idx (T_g,)`` the glance frames in the order the glance reads them.
    """
    groups = exit_groups(preds.exit_logits, thresholds, per_group)
    N, T, H, W = videos.shape[0], videos.shape[1], videos.shape[-2], videos.shape[-1]
    if len(preds.labels) != N:
        raise ValueError(f"early_exit_gallery: {N} videos but predictions for {len(preds.labels)}")
    S, Tg = groups.confidence.shape[1], len(glance_idx)
    rows = [("leave first", groups.first), ("run to the last exit", groups.last)]
    chart_cols = 4
    heights = []
    for _, clips in rows:
        heights += [0.3] + [style.frame_inches] * max(len(clips), 1)
    fig = Figure(figsize=((T + chart_cols) * style.frame_inches, sum(heights) + 0.5), dpi=style.dpi)
    gs = fig.add_gridspec(len(heights), T + chart_cols, height_ratios=heights, hspace=0.5, wspace=0.05,
                          left=0.03, right=0.97, top=1 - 0.9 / sum(heights), bottom=0.35 / sum(heights))
    glance_color, focus_color = hex_color(EXPLORER_STYLE.glance_color), hex_color(EXPLORER_STYLE.focus_color)
    r = 0
    for name, clips in rows:
        head = fig.add_subplot(gs[r, :])
        head.axis("off")
        head.text(0, 0.5, f"{name} ({len(clips)} clip{'s' * (len(clips) != 1)})", fontsize=style.title_size + 3,
                  fontweight="bold", va="center")
        r += 1
        if not clips:
            fig.add_subplot(gs[r, :]).text(0.5, 0.5, "no clip", ha="center", va="center")
            r += 1
        for i in clips:
            step = int(groups.steps[i])
            glanced, focused = _seen_frames(step, glance_idx.cpu().numpy(), preds.frame_idx[i].cpu().numpy())
            patch_of = {int(t): preds.boxes[i, k].cpu().numpy() for k, t in enumerate(preds.frame_idx[i].tolist())}
            for t in range(T):
                ax = fig.add_subplot(gs[r, t])
                ax.set_xticks([])
                ax.set_yticks([])
                _show(ax, videos[i, t], H, W, grey=t not in glanced | focused)
                if preds.gt_boxes is not None:
                    visible = preds.gt_mask is None or bool(preds.gt_mask[i, t])
                    _box(ax, preds.gt_boxes[i, t].cpu().numpy(), style.gt_color, f"gt-{i}-{t}", style,
                         "-" if visible else style.hidden_linestyle)
                if t in focused:
                    _box(ax, patch_of[t], style.chosen_color, f"chosen-{i}-{t}", style, zorder=4)
                border = style.chosen_color if t in focused else glance_color if t in glanced else None
                for side in ax.spines.values():
                    side.set_edgecolor(border or "#bbbbbb")
                    side.set_linewidth(style.line_width * (1.5 if border else 0.5))
                if t == 0:
                    said = int(preds.exit_logits[i, step].argmax())
                    ax.set_ylabel(f"clip {i}\nlabel {int(preds.labels[i])}, said {said}", fontsize=style.title_size)
            chart = fig.add_subplot(gs[r, T + 1:])
            exits = np.arange(1, S + 1)
            thr = thresholds.cpu().numpy().astype(float)
            finite = np.isfinite(thr)
            chart.axvspan(0.5, Tg + 0.5, color=glance_color, alpha=0.12, lw=0)
            chart.axvspan(Tg + 0.5, S + 0.5, color=focus_color, alpha=0.12, lw=0)
            chart.step(exits[finite], thr[finite], where="mid", color="#d62728", lw=1, label="threshold")
            chart.plot(exits, groups.confidence[i].cpu().numpy(), "o-", color="k", ms=2.5, lw=1, label="confidence")
            c = float(groups.confidence[i, step])
            chart.plot(step + 1, c, "o", ms=8, mfc="none", mec=style.chosen_color, mew=2)
            ok = int(preds.exit_logits[i, step].argmax()) == int(preds.labels[i])
            chart.set_title(f"exit {step + 1} of {S} ({'glance' if step < Tg else 'focus'}), confidence {c:.2f}, "
                            f"{'right' if ok else 'wrong'}", fontsize=style.title_size)
            chart.set(xlim=(0.5, S + 0.5), ylim=(0, 1.05), ylabel="confidence")
            chart.yaxis.set_label_position("right")
            if i != clips[-1]:
                chart.set_xticklabels([])
            else:
                chart.set_xlabel(f"exit (1..{Tg}: glance steps, then focus steps)", fontsize=style.title_size)
            chart.tick_params(labelsize=style.title_size - 1)
            chart.yaxis.tick_right()
            r += 1
    key = [Patch(facecolor="none", edgecolor=glance_color, lw=2, label="frame read by the glance before the exit"),
           Patch(facecolor="none", edgecolor=style.chosen_color, lw=2, label="frame focused on (its patch drawn)"),
           Patch(facecolor="#888888", edgecolor="#bbbbbb", label="never computed (the clip had left)"),
           Line2D([], [], color=style.gt_color, path_effects=[Stroke(linewidth=3, foreground="k"), Normal()],
                  label="true box (dashed: object hidden)")]
    fig.legend(handles=key + chart.get_legend_handles_labels()[0], loc="upper right", ncol=3,
               fontsize=style.title_size, frameon=False)
    fig.suptitle(title or "Early exit: the clips that leave first and those that run to the last exit",
                 fontsize=style.title_size + 3, x=0.01, ha="left")
    return fig


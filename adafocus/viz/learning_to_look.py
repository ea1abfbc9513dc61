"""Watch a policy learn to look: its boxes and frame weights on fixed clips after every epoch.

The trainer records, with ``train.record_policy``, what the model looks at on a few fixed validation
clips before training and after every epoch (:func:`adafocus.train.record_policy`): the glance
frames, the spatial policy's box at each of them and the temporal policy's ``w``. Drawn here:

- :func:`learning_to_look_grid` -- one clip, epochs down, glance frames across: each cell is the
  glance frame with the policy's box (and the true box, where the data has one), titled with ``w``
  for that frame; the informative frames' titles are bold. A label-free policy moves from wide,
  centered boxes and a flat ``w`` to the object and the frames where it is visible.
- :func:`learning_to_look_frames` -- the same as one image per epoch (for a GIF or MP4).
"""

from __future__ import annotations

from typing import Any, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from adafocus.viz import colors
from adafocus.viz.colors import HIDDEN, INTERPOLATED, TRUTH, describe
from adafocus.viz.explorers import render_frame, to_rgb

POLICY = "interpolated"  # the policy's box at a glance frame is drawn as the policy's box (no patch was cut)


def _check(trace: Sequence[dict[str, Any]], clip: int) -> None:
    if not trace:
        raise ValueError("learning_to_look: the trace is empty (train with train.record_policy > 0)")
    n = len(trace[0]["glance_idx"])
    if not 0 <= clip < n or "glance_boxes" not in trace[0]:
        raise ValueError(f"learning_to_look: expected a clip in [0, {n}) of a trace with glance_boxes (a model "
                         f"with a spatial policy), got clip {clip} and keys {sorted(trace[0])}")


def learning_to_look_grid(video: torch.Tensor, trace: Sequence[dict[str, Any]], clip: int = 0,
                          gt_boxes: torch.Tensor | None = None, gt_mask: torch.Tensor | None = None,
                          epochs: Sequence[int] | None = None, title: str | None = None) -> Figure:
    """``video`` ``(T, C, H, W)`` of recorded clip ``clip``; ``trace``: the recordings (one dict per epoch).

    ``gt_boxes`` ``(T, 4)`` / ``gt_mask`` ``(T,)``: the truth, drawn for reference only (the policy never
    saw it). ``epochs``: which recorded epochs to show (default all).
    """
    _check(trace, clip)
    rows = [r for r in trace if epochs is None or r["epoch"] in set(epochs)]
    idx = trace[0]["glance_idx"][clip].tolist()
    fig, axes = plt.subplots(len(rows), len(idx), figsize=(1.15 * len(idx) + 0.6, 1.2 * len(rows) + 0.6),
                             squeeze=False)
    H, W = video.shape[-2:]
    for r, rec in enumerate(rows):
        w = rec["weights"][clip].tolist() if "weights" in rec else [float("nan")] * len(idx)
        for c, t in enumerate(rec["glance_idx"][clip].tolist()):
            ax = axes[r, c]
            ax.imshow(to_rgb(video[t]), extent=(0, W, H, 0), interpolation="nearest")
            if gt_boxes is not None:
                x0, y0, x1, y1 = gt_boxes[t].tolist()
                mark = TRUTH if gt_mask is None or bool(gt_mask[t]) else HIDDEN
                ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, lw=1, ec=mark.hex,
                                       ls=mark.mpl_linestyle, path_effects=colors.halo_effects(1)))
            x0, y0, x1, y1 = rec["glance_boxes"][clip, c].tolist()
            ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, lw=1.6, ec=INTERPOLATED.hex,
                                   ls=INTERPOLATED.mpl_linestyle, path_effects=colors.halo_effects(1.6)))
            bold = gt_mask is not None and bool(gt_mask[t])
            ax.set_title(f"t={t}  w={w[c]:.2f}", fontsize=6, fontweight="bold" if bold else "normal", pad=2)
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(f"epoch {rec['epoch']}", fontsize=7)
    fig.suptitle(title or f"Learning to look: the policy's box ({describe(POLICY)}) and w at each glance frame, "
                 f"by epoch (truth {describe('truth')}, {HIDDEN.dash} where hidden; bold: informative frames)",
                 fontsize=8)
    fig.tight_layout()
    return fig


def learning_to_look_frames(video: torch.Tensor, trace: Sequence[dict[str, Any]], clip: int = 0,
                            gt_boxes: torch.Tensor | None = None, scale: int = 3,
                            gt_mask: torch.Tensor | None = None) -> list[np.ndarray]:
    """One RGB ``uint8`` image per recorded epoch: the glance frames side by side with the policy's boxes,
    over a band with the epoch counter and the legend (:func:`adafocus.viz.colors.with_legend`)."""
    _check(trace, clip)
    images = []
    hidden = gt_mask is not None and not bool(torch.as_tensor(gt_mask).all())
    keys = ([] if gt_boxes is None else ["truth"] + (["hidden"] if hidden else [])) + [POLICY]
    for n, rec in enumerate(trace):
        tiles = []
        for c, t in enumerate(rec["glance_idx"][clip].tolist()):
            boxes = []
            if gt_boxes is not None:
                boxes.append((gt_boxes[t].tolist(), TRUTH if gt_mask is None or bool(gt_mask[t]) else HIDDEN))
            boxes.append((rec["glance_boxes"][clip, c].tolist(), colors.MARKS[POLICY]))
            tiles.append(render_frame(video[t], boxes, scale, 2))
        gap = np.full((tiles[0].shape[0], 4, 3), 255, dtype=np.uint8)
        row = np.concatenate([x for tile in tiles for x in (tile, gap)][:-1], axis=1)
        images.append(colors.with_legend(row, keys, f"epoch {rec['epoch']} ({n + 1} of {len(trace)})"))
    return images

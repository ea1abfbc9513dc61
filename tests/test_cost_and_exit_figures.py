"""The cost anatomy at the paper's sizes (figures/paper_costs.png) and the early-exit gallery
(figures/early_exit_gallery.png): what they compute and draw, on the committed table and on toy exits."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import matplotlib
import pandas as pd
import pytest
import torch

matplotlib.use("Agg")

from adafocus.figures import FigureSet, fig_paper_costs, paper_cost_components, paper_costs_figure  # noqa: E402
from adafocus.viz.gallery import _seen_frames, early_exit_gallery, exit_groups  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
COSTS = ROOT / "benchmarks" / "results" / "paper_costs.csv"


def test_components_add_up_to_the_counted_total():
    costs = pd.read_csv(COSTS)
    parts = paper_cost_components(costs)
    assert list(parts.index) == [96, 128, 160, 192]
    assert (parts.sum(axis=1) - costs.set_index("patch_size")["total_gmacs"]).abs().max() < 1e-9
    focus = parts["focus (16 patches)"]
    assert focus.is_monotonic_increasing and (focus / parts.sum(axis=1) > 0.6).all()  # the patches dominate
    assert 0 <= parts["patch extraction"].min() and parts["patch extraction"].max() < 0.02  # bilinear crops: MMACs
    with pytest.raises(ValueError, match="do not add up"):
        paper_cost_components(costs, glance_frames=8)  # not the table's count: the parts miss the total


def test_paper_costs_figure_is_drawn_from_the_table(tmp_path: Path):
    fig = paper_costs_figure(pd.read_csv(COSTS))
    bars = fig.axes[0].containers
    assert len(bars) == 5 and all(len(b) == 4 for b in bars)  # five components, four patch sides
    assert "GMACs" in fig.axes[0].get_ylabel()
    results = tmp_path / "results"
    results.mkdir()
    assert fig_paper_costs(FigureSet(results_dir=results, fig_dir=tmp_path)) == []  # no table: no figure
    shutil.copy(COSTS, results / "paper_costs.csv")
    paths = fig_paper_costs(FigureSet(results_dir=results, fig_dir=tmp_path))
    assert sorted(p.name for p in paths) == ["paper_costs.png", "paper_costs.svg"]
    assert all(p.stat().st_size for p in paths)


def _logits(confident_at: list[int | None], S: int, n: int = 4) -> torch.Tensor:
    """Exit logits (N, S, n): clip i is confident (p ~ 0.99) from exit confident_at[i] on, unsure (uniform) before."""
    logits = torch.zeros(len(confident_at), S, n)
    for i, s in enumerate(confident_at):
        if s is not None:
            logits[i, s:, i % n] = 8.0
    return logits


def test_exit_groups_pick_the_first_leavers_and_the_clips_that_run_to_the_end():
    S = 4
    logits = _logits([2, 0, None, 1, None, 0], S)
    thresholds = torch.tensor([0.9, 0.9, 0.9, 0.9])
    groups = exit_groups(logits, thresholds, per_group=2)
    assert groups.steps.tolist() == [2, 0, 3, 1, 3, 0]  # unsure clips run to the last exit
    assert groups.first == [1, 5] and sorted(groups.last) == [2, 4]
    assert exit_groups(logits, thresholds, per_group=10).first == [1, 5, 3, 0]  # earliest first
    with pytest.raises(ValueError, match="thresholds"):
        exit_groups(logits, thresholds[:3])


def test_seen_frames_follow_the_order_of_the_steps():
    glance_idx, frame_idx = torch.tensor([1, 3, 5]).numpy(), torch.tensor([4, 0]).numpy()
    assert _seen_frames(0, glance_idx, frame_idx) == ({1}, set())
    assert _seen_frames(2, glance_idx, frame_idx) == ({1, 3, 5}, set())
    assert _seen_frames(3, glance_idx, frame_idx) == ({1, 3, 5}, {4})
    assert _seen_frames(4, glance_idx, frame_idx) == ({1, 3, 5}, {4, 0})


def test_gallery_draws_patches_only_where_a_clip_had_focused():
    N, T, Tg, K = 4, 6, 3, 2
    S = Tg + K
    preds = SimpleNamespace(exit_logits=_logits([0, None, 1, None], S), labels=torch.tensor([0, 1, 2, 0]),
                            frame_idx=torch.tensor([[0, 2]] * N), boxes=torch.tensor([[[2.0, 2, 10, 10]] * K] * N),
                            gt_boxes=torch.tensor([[[3.0, 3, 9, 9]] * T] * N),
                            gt_mask=torch.ones(N, T, dtype=torch.bool))
    videos = torch.rand(N, T, 3, 16, 16)
    fig = early_exit_gallery(videos, preds, torch.full((S,), 0.9), torch.tensor([1, 3, 5]), per_group=2)
    gids = [p.get_gid() for ax in fig.axes for p in ax.patches if p.get_gid()]
    chosen = sorted(g for g in gids if g.startswith("chosen-"))
    assert chosen == ["chosen-1-0", "chosen-1-2", "chosen-3-0", "chosen-3-2"]  # only the clips that ran to the end
    assert sum(g.startswith("gt-") for g in gids) == 4 * T  # the true box in every frame of the four rows
    titles = [ax.get_title() for ax in fig.axes if ax.get_title().startswith("exit")]
    assert titles[0].startswith("exit 1 of 5 (glance)") and titles[-1].startswith(f"exit {S} of {S} (focus)")
    with pytest.raises(ValueError, match="videos"):
        early_exit_gallery(videos[:3], preds, torch.full((S,), 0.9), torch.tensor([1, 3, 5]))

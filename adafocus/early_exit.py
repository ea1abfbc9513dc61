"""Sample-wise adaptive computation: early exit with calibrated confidence thresholds.

The classifier makes a prediction after every step (the glance, then each focus patch). A video
stops at the first exit whose confidence (max softmax probability) clears that exit's threshold,
so easy videos leave after the glance and never pay for a patch.

Calibration (DESIGN.md 1): choose exit proportions ``q_k ∝ ρ^k`` over the usable exits for a
sweep of ``ρ``; on the **validation** split (never train, never test) walk the exits in order and
set each threshold so that ``q_k · N`` of the samples still remaining leave there (greedy).
An exit is usable (:func:`usable_exits`) when its validation accuracy is clearly above chance: the
others (e.g. glance exits that cannot read the digits) get a threshold of ``+inf``, since a
fixed share of videos leaving there would only be guesses.
Expected cost per video = ``Σ_k q_k · cost(k)`` with ``cost(k)`` the MACs spent up to exit ``k``.
Small ``ρ`` sends most videos out early (cheap); ``ρ → ∞`` keeps them to the last exit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import Tensor


def exit_proportions(rho: float, num_exits: int) -> np.ndarray:
    """``q_k ∝ ρ^k`` for ``k = 0..num_exits-1``, normalised to sum to 1."""
    if rho <= 0 or num_exits < 1:
        raise ValueError(f"exit_proportions: expected rho > 0 and num_exits >= 1, got {rho}, {num_exits}")
    q = np.power(float(rho), np.arange(num_exits, dtype=np.float64))
    return q / q.sum()


def usable_exits(val_logits: Tensor, val_labels: Tensor, num_se: float = 3.0) -> Tensor:
    """Exits ``(S,)`` bool whose validation accuracy beats chance (1 / classes) by more than
    ``num_se`` standard errors of a proportion at chance. The last exit is always usable."""
    N, S, n = val_logits.shape
    acc = (val_logits.argmax(-1) == val_labels.view(-1, 1)).double().mean(0)  # (S,)
    chance = 1.0 / n
    usable = acc > chance + num_se * (chance * (1 - chance) / max(N, 1)) ** 0.5
    usable[-1] = True
    return usable


def _proportions(rho: float, usable: Tensor | None, S: int) -> np.ndarray:
    """``q`` (S,): ``q_k ∝ ρ^k`` over the usable exits (all when ``usable`` is None), 0 elsewhere."""
    if usable is None:
        return exit_proportions(rho, S)
    if usable.shape != (S,) or not bool(usable[-1]):
        raise ValueError(f"usable: expected a bool mask of shape ({S},) with the last exit set, "
                         f"got {tuple(usable.shape)}")
    q = np.zeros(S)
    q[usable.numpy()] = exit_proportions(rho, int(usable.sum()))
    return q


def confidences(exit_logits: Tensor) -> Tensor:
    """Max softmax probability per exit: ``(N, S, n)`` -> ``(N, S)``."""
    return exit_logits.float().softmax(dim=-1).amax(dim=-1)


def calibrate_thresholds(conf: Tensor, q: np.ndarray) -> Tensor:
    """Greedy thresholds ``(S,)`` so that about ``q_k · N`` validation samples exit at exit ``k``.

    ``conf``: (N, S) confidences on the validation split. The last threshold is ``-inf``
    (everyone left exits there).
    """
    N, S = conf.shape
    if len(q) != S:
        raise ValueError(f"calibrate_thresholds: {len(q)} proportions for {S} exits")
    remaining = torch.ones(N, dtype=torch.bool)
    thresholds = torch.full((S,), float("-inf"))
    target = np.rint(np.cumsum(q) * N).astype(int)  # cumulative number that should have left
    left = 0
    for k in range(S - 1):
        n_exit = int(target[k] - left)
        if n_exit <= 0:
            thresholds[k] = float("inf")
            continue
        c = conf[remaining, k]
        n_exit = min(n_exit, len(c))
        thr = torch.sort(c, descending=True).values[n_exit - 1]
        thresholds[k] = thr
        leaving = remaining & (conf[:, k] >= thr)
        remaining &= ~leaving
        left += int(leaving.sum())
    return thresholds


def exit_steps(conf: Tensor, thresholds: Tensor) -> Tensor:
    """Index of the exit each sample leaves at: the first ``k`` with ``conf[:, k] >= thr[k]``."""
    passed = conf >= thresholds.view(1, -1)
    passed[:, -1] = True
    return passed.float().argmax(dim=1)


@dataclass
class ExitResult:
    rho: float
    thresholds: Tensor  # (S,)
    exit_fraction: np.ndarray  # (S,) on the evaluated split
    accuracy: float
    expected_macs: float  # Σ_k fraction_k · cost_k


def evaluate_early_exit(val_logits: Tensor, test_logits: Tensor, test_labels: Tensor, step_macs: Tensor,
                        rho: float, usable: Tensor | None = None) -> ExitResult:
    """Calibrate on validation exit logits (N_val, S, n), apply to test (N, S, n).

    ``step_macs`` (S,): MACs spent by a video that leaves at each exit (cumulative).
    ``usable`` (S,) bool: the exits videos may leave at (default: all; see :func:`usable_exits`).
    """
    S = val_logits.shape[1]
    if step_macs.shape != (S,):
        raise ValueError(f"step_macs: expected shape ({S},), got {tuple(step_macs.shape)}")
    thr = calibrate_thresholds(confidences(val_logits), _proportions(rho, usable, S))
    steps = exit_steps(confidences(test_logits), thr)
    preds = test_logits[torch.arange(len(steps)), steps].argmax(-1)
    frac = np.bincount(steps.numpy(), minlength=S) / len(steps)
    return ExitResult(rho, thr, frac, float((preds == test_labels).float().mean()),
                      float((torch.as_tensor(frac, dtype=torch.float64) * step_macs.double()).sum()))


def early_exit_curve(val_logits: Tensor, test_logits: Tensor, test_labels: Tensor, step_macs: Tensor,
                     rhos: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 4.0),
                     usable: Tensor | None = None) -> pd.DataFrame:
    """Accuracy against expected MACs for a sweep of ``ρ``: one row per ``ρ`` (exits: see
    :func:`evaluate_early_exit`)."""
    rows = []
    for rho in rhos:
        r = evaluate_early_exit(val_logits, test_logits, test_labels, step_macs, rho, usable)
        rows.append({"rho": rho, "accuracy": r.accuracy, "gmacs": r.expected_macs / 1e9,
                     "mmacs": r.expected_macs / 1e6,
                     "exit_fractions": " ".join(f"{f:.2f}" for f in r.exit_fraction)})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------
# real early exit: samples that left are not computed any further
# ---------------------------------------------------------------------------------------------

@dataclass
class ExitInference:
    predictions: Tensor  # (B,) class predicted at each sample's exit
    exit_step: Tensor  # (B,) index of the exit taken (0 .. S-1)
    confidence: Tensor  # (B,) max softmax probability at that exit


@torch.no_grad()
def exiting_forward(model, video: Tensor, thresholds: Tensor) -> ExitInference:
    """Run ``model`` step by step and drop every sample at its first confident exit.

    The glance frames are processed one at a time, then the policies run once for the samples
    still there, then the focus patches one at a time. A sample that has left is not processed by
    any later step, so counting MACs around this call measures what early exit really costs.
    ``video``: (B, T, C, H, W); ``thresholds``: (S,) confidence thresholds, one per exit.
    """
    model.eval()
    model.check_input(video)
    cls, cfg = model.classifier, model.cfg
    if not cls.exits:
        raise ValueError("exiting_forward: the model was built without exits (model.exits=False)")
    if cfg.focus_tsm:
        raise ValueError("exiting_forward: a temporal-shift focus network needs all K patches at once")
    S = cls.num_exits
    if thresholds.shape != (S,):
        raise ValueError(f"exiting_forward: expected {S} thresholds (one per exit), got {tuple(thresholds.shape)}")
    B = video.shape[0]
    pred = torch.full((B,), -1, dtype=torch.long)
    step_taken = torch.full((B,), S - 1, dtype=torch.long)
    conf_taken = torch.zeros(B)
    alive = torch.arange(B)  # indices into the batch of the samples still running
    state = cls.init_state()
    step = 0

    def settle(logits: Tensor) -> Tensor:
        """Record the samples that exit at ``step``; return the mask of those that stay."""
        nonlocal alive, state
        p = logits.softmax(-1)
        conf, cls_idx = p.max(-1)
        leave = conf >= thresholds[step] if step < S - 1 else torch.ones_like(conf, dtype=torch.bool)
        done = alive[leave]
        pred[done], step_taken[done], conf_taken[done] = cls_idx[leave], step, conf[leave]
        alive, state = alive[~leave], state.select(~leave)
        return ~leave

    maps: list[Tensor] = []
    for t in range(cls.num_glance):
        if len(alive) == 0:
            break
        g = model.glance_features(video[alive], positions=torch.tensor([t]))
        logits, state = cls.glance_step(g.feats[:, 0], state)
        stay = settle(logits)
        maps = [m[stay] for m in maps] + [g.maps[stay]]
        step += 1
    if cls.num_focus and len(alive):
        v = video[alive]
        glance_maps = torch.cat(maps, dim=1) if maps else None  # (b, T_g, C_g, h, w)
        pm, fm = model._modes(None, None)
        actions = model.spatial_actions(glance_maps) if pm == "policy" else None
        weights = model.temporal_weights(glance_maps.mean(dim=(-2, -1))) if fm == "policy" else None
        frame_idx = model.select_frames(len(alive), fm, weights)
        boxes = model.select_boxes(pm, frame_idx, actions)
        for k in range(cls.num_focus):
            if len(alive) == 0:
                break
            feats = model.focus_features(v, boxes[:, k:k + 1], frame_idx[:, k:k + 1], full=pm == "full")
            logits, state = cls.focus_step(feats[:, 0], state)
            stay = settle(logits)
            v, boxes, frame_idx = v[stay], boxes[stay], frame_idx[stay]
            step += 1
    return ExitInference(pred, step_taken, conf_taken)


def step_costs(model, cfg) -> Tensor:
    """Measured MACs (S,) of one video that leaves at each exit (counting what really runs)."""
    from adafocus.evaluate import dummy_input
    from adafocus.flops import count_macs

    S = model.classifier.num_exits
    video = dummy_input(cfg)["video"]
    costs = []
    for k in range(S):
        thr = torch.full((S,), float("inf"))
        thr[k] = float("-inf")
        costs.append(count_macs(lambda v: exiting_forward(model, v, thr), video))
    return torch.tensor(costs, dtype=torch.float64)

"""Sample-wise adaptive computation: calibrated exit thresholds and the accuracy-cost curves they give.

(docs/design.md, "Early exit".) The classifier predicts after every step (the glance frames, then
each focus patch). A video stops at the first exit whose confidence (max softmax probability)
clears that exit's threshold, so easy videos leave after the glance and never pay for a patch.
Everything here is a pure function of exit logits ``(N, S, n)`` and per-exit costs ``(S,)``,
except :func:`step_costs`, which measures those costs with :mod:`adafocus.flops` around the real
step-by-step inference (:func:`adafocus.models.exits.exiting_forward`).

Calibration: choose exit proportions ``q_k ∝ ρ^k`` over the usable exits for a sweep of ``ρ``
(:data:`EXIT_RHOS`); on the **validation** split (never train, never test) walk the exits in order
and set each threshold so that ``q_k · N`` of the samples still remaining leave there (greedy).
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

from adafocus.config import Config
from adafocus.data.batches import ground_truth_kwargs
from adafocus.flops import count_macs, dummy_input
from adafocus.models.adafocus import UniAdaFocus
from adafocus.models.exits import exiting_forward

EXIT_RHOS = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 4.0)  # the benchmark's sweep of ρ, cheap to patient


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
    """The exit ``(N,)`` each sample leaves at: the first ``k`` with ``conf[:, k] >= thresholds[k]`` (the last
    exit when none does). ``conf``: ``(N, S)`` confidences; ``thresholds``: ``(S,)``."""
    passed = conf >= thresholds.view(1, -1)
    passed[:, -1] = True
    return passed.float().argmax(dim=1)


@dataclass
class ExitResult:
    """One operating point: thresholds calibrated for ``rho``, and what they give on the evaluated split."""

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
                     rhos: tuple[float, ...] = EXIT_RHOS,
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


def step_costs(model: UniAdaFocus, cfg: Config, glance: str = "stepwise") -> Tensor:
    """Measured MACs ``(S,)`` of one video that leaves at each exit (cumulative: what really runs).

    Counted by :func:`adafocus.flops.count_macs` around :func:`~adafocus.models.exits.exiting_forward`
    (in its ``glance`` mode) on :func:`adafocus.flops.dummy_input` (costs do not depend on the content), with
    the thresholds set so that the video leaves at exit ``k``.
    """
    S = model.classifier.num_exits
    x = dummy_input(cfg)  # video (1, T, C, H, W)
    gt = ground_truth_kwargs(model, x)
    costs = []
    for k in range(S):
        thresholds = torch.full((S,), float("inf"))
        thresholds[k] = float("-inf")
        costs.append(count_macs(lambda v: exiting_forward(model, v, thresholds, glance=glance, **gt), x["video"]))
    return torch.tensor(costs, dtype=torch.float64)

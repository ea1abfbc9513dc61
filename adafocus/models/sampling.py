"""Which frames to focus on: stratified inverse-CDF sampling (docs/design.md, "The method", step 3).

The temporal policy outputs a distribution ``w`` over the ``T_g`` glance positions. Read it as a
piecewise-constant density over the clip's time axis [0, 1]: bin ``i`` covers
``[i / T_g, (i + 1) / T_g)`` and holds mass ``w_i``. Its CDF is piecewise linear, so its inverse is
too, and ``K`` frames are drawn by *stratified* sampling:

1. split [0, 1] into ``K`` equal strata and take one quantile in each,
   ``u_k = (k + r_k) / K`` with ``r_k ~ U[0, 1)`` in training and ``r_k = 1/2`` (the midpoint) at test;
2. map each quantile through the inverse CDF to a time ``t_k`` in [0, 1]
   (bins with much mass stretch over many quantiles, so more frames land there);
3. turn the time into a frame index ``floor(t_k * T)``;
4. make the indices distinct: a collision is pushed to the next free index
   (``idx_k = max(idx_k, idx_{k-1} + 1)``), and the last slots are clamped
   (``idx_k <= T - K + k``) so all ``K`` indices stay in ``[0, T)``.

A uniform ``w`` at test gives the uniform grid ``floor((k + 1/2) * T / K)`` (:func:`uniform_indices`).
Stratification keeps the ``K`` frames spread out even when ``w`` is peaked, and the test-time
midpoints make inference deterministic.

The sampling is **not differentiable**: an index is an integer. Gradients reach the temporal
policy only through the surrogate loss (a ``w``-weighted average of glance features, see
:mod:`adafocus.models.adafocus`).
"""

from __future__ import annotations

import torch
from torch import Tensor

ROUNDING_SLACK = 1e-9  # in frames; float64 error of the inverse CDF is ~1e-15


def uniform_indices(num_frames: int, k: int, device: torch.device | str | None = None) -> Tensor:
    """The uniform grid of ``k`` frame indices out of ``num_frames``: ``floor((j + 1/2) * T / k)``, ``(k,)``."""
    if not 1 <= k <= num_frames:
        raise ValueError(f"uniform_indices: expected 1 <= k <= num_frames, got k={k}, num_frames={num_frames}")
    j = torch.arange(k, device=device, dtype=torch.float64)
    return torch.floor((j + 0.5) * num_frames / k).long()


def segment_indices(num_frames: int, k: int, batch: int, jitter: bool, generator: torch.Generator | None = None,
                    device: torch.device | str | None = None) -> Tensor:
    """One frame per segment: ``(batch, k)`` indices. Segment ``j`` covers frames
    ``[floor(j T / k), floor((j + 1) T / k))``; ``jitter=False`` takes the frame of the uniform grid
    (:func:`uniform_indices`), ``jitter=True`` a uniformly random frame of the segment for every clip
    (the paper's glance sampling in training)."""
    grid = uniform_indices(num_frames, k, device=device).expand(batch, -1)
    if not jitter:
        return grid.clone()
    j = torch.arange(k + 1, device=device, dtype=torch.float64)
    edges = torch.floor(j * num_frames / k).long()  # (k + 1,)
    length = (edges[1:] - edges[:-1]).clamp(min=1)  # (k,)
    u = torch.rand(batch, k, generator=generator, dtype=torch.float64,
                   device=generator.device if generator is not None else device).to(edges.device)
    return edges[:-1] + torch.floor(u * length).long().clamp(max=length - 1)


def make_distinct(idx: Tensor, num_frames: int) -> Tensor:
    """Sorted indices ``(B, K)`` -> strictly increasing indices in ``[0, num_frames)``.

    Pushes each collision to the next free index and clamps the last slots so that ``K`` distinct
    indices fit: ``idx_k <= T - K + k``. Both steps keep the order.
    """
    k = idx.shape[-1]
    if k > num_frames:
        raise ValueError(f"make_distinct: cannot pick K={k} distinct frames out of T={num_frames}")
    offset = torch.arange(k, device=idx.device)
    idx = torch.cummax(idx - offset, dim=-1).values + offset  # idx_k >= idx_{k-1} + 1
    idx = torch.minimum(idx, num_frames - k + offset)  # idx_k <= T - K + k
    return idx.clamp(min=0)


def inverse_cdf(weights: Tensor, u: Tensor) -> Tensor:
    """Times ``(B, K)`` in [0, 1] for quantiles ``u`` ``(B, K)`` of the piecewise-constant density ``weights`` ``(B, T_g)``."""
    T_g = weights.shape[-1]
    cdf = torch.cumsum(weights, dim=-1)  # (B, T_g): C_1 .. C_{T_g}
    cdf = cdf / cdf[:, -1:]  # exactly 1 at the end
    # bin i such that C_i <= u < C_{i+1} (C_0 = 0); empty bins are never chosen
    bins = torch.searchsorted(cdf[:, :-1].contiguous(), u.contiguous(), right=True)  # (B, K) in [0, T_g)
    start = torch.cat([torch.zeros_like(cdf[:, :1]), cdf[:, :-1]], dim=-1).gather(1, bins)  # C_i
    mass = weights.gather(1, bins) / weights.sum(-1, keepdim=True)  # w_i (normalised)
    frac = ((u - start) / mass.clamp(min=1e-12)).clamp(0.0, 1.0)
    return (bins.to(u.dtype) + frac) / T_g


def sample_frames(weights: Tensor, num_frames: int, k: int, train: bool,
                  generator: torch.Generator | None = None) -> Tensor:
    """Draw ``k`` distinct, sorted frame indices ``(B, k)`` in ``[0, num_frames)`` from ``weights`` ``(B, T_g)``.

    ``weights`` are non-negative (they need not sum to 1; a row of zeros means uniform).
    ``train=True`` draws a random quantile in each stratum; ``train=False`` takes the midpoints.
    """
    if weights.dim() != 2:
        raise ValueError(f"sample_frames: weights must be (B, T_g), got shape {tuple(weights.shape)}")
    if not 1 <= k <= num_frames:
        raise ValueError(f"sample_frames: expected 1 <= K <= T, got K={k}, T={num_frames}")
    if bool((weights < 0).any()) or not bool(torch.isfinite(weights).all()):
        raise ValueError("sample_frames: weights must be finite and non-negative")
    w = weights.detach().to(torch.float64)
    empty = w.sum(-1, keepdim=True) <= 0
    w = torch.where(empty, torch.ones_like(w), w)
    b = w.shape[0]
    if train:
        r = torch.rand(b, k, generator=generator, dtype=torch.float64,
                       device=generator.device if generator is not None else w.device).to(w.device)
    else:
        r = torch.full((b, k), 0.5, dtype=torch.float64, device=w.device)
    u = (torch.arange(k, dtype=torch.float64, device=w.device) + r) / k  # (B, K), one quantile per stratum
    t = inverse_cdf(w, u)  # (B, K) in [0, 1], non-decreasing in k
    # + a hair: a midpoint that lands exactly on a frame boundary must not round down by float error
    idx = torch.floor(t * num_frames + ROUNDING_SLACK).long().clamp(0, num_frames - 1)
    return make_distinct(idx, num_frames)


def sample_without_replacement(weights: Tensor, k: int, num_draws: int,
                               generator: torch.Generator | None = None) -> Tensor:
    """``num_draws`` Monte Carlo draws of ``k`` distinct positions from ``weights`` ``(B, T_g)``: ``(B, num_draws, k)``.

    Used by the temporal surrogate (not differentiable: the weights are detached here, the
    gradient comes from re-weighting the drawn positions with the live ``w``).
    """
    b, T_g = weights.shape
    if not 1 <= k <= T_g:
        raise ValueError(f"sample_without_replacement: expected 1 <= k <= T_g = {T_g}, got {k}")
    p = weights.detach().float().clamp(min=0) + 1e-8  # every position stays drawable
    p = p.repeat_interleave(num_draws, dim=0)  # (B * D, T_g)
    draws = torch.multinomial(p, k, replacement=False, generator=generator)  # (B * D, k)
    return draws.view(b, num_draws, k)

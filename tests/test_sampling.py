"""Stratified inverse-CDF frame sampling (adafocus.models.sampling), with property-based tests."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from adafocus.models.sampling import (inverse_cdf, make_distinct, sample_frames, sample_without_replacement,
                                      segment_indices, uniform_indices)

PROPERTY = settings(max_examples=150, deadline=None)


@st.composite
def problems(draw):
    """(weights (B, T_g), T, K, train, seed) with K <= T."""
    tg = draw(st.integers(1, 12))
    t = draw(st.integers(1, 40))
    k = draw(st.integers(1, t))
    b = draw(st.integers(1, 4))
    seed = draw(st.integers(0, 2**31 - 1))
    g = torch.Generator().manual_seed(seed)
    w = torch.rand(b, tg, generator=g) ** draw(st.sampled_from([1.0, 4.0, 16.0]))  # from flat to peaked
    w[torch.rand(b, tg, generator=g) < draw(st.sampled_from([0.0, 0.5]))] = 0.0  # some empty bins
    return w, t, k, draw(st.booleans()), seed


@PROPERTY
@given(problems())
def test_indices_are_sorted_distinct_and_in_range(p) -> None:
    w, t, k, train, seed = p
    idx = sample_frames(w, t, k, train, torch.Generator().manual_seed(seed))
    assert idx.shape == (w.shape[0], k) and idx.dtype == torch.long
    assert (idx >= 0).all() and (idx < t).all()
    assert (idx[:, 1:] > idx[:, :-1]).all()  # strictly increasing: sorted and distinct


@PROPERTY
@given(problems())
def test_k_equal_t_takes_every_frame(p) -> None:
    w, t, _, train, _ = p
    idx = sample_frames(w, t, t, train)
    assert torch.equal(idx, torch.arange(t).expand_as(idx))


@PROPERTY
@given(st.integers(1, 12), st.integers(1, 40), st.data())
def test_uniform_weights_at_test_give_the_uniform_grid(tg: int, t: int, data) -> None:
    k = data.draw(st.integers(1, t))
    idx = sample_frames(torch.ones(3, tg), t, k, train=False)
    expected = torch.tensor([int((j + 0.5) * t / k) for j in range(k)])
    assert torch.equal(idx, expected.expand(3, k))
    assert torch.equal(uniform_indices(t, k), expected)


@PROPERTY
@given(st.integers(2, 8), st.integers(1, 6), st.data())
def test_mass_on_one_bin_puts_every_frame_there(tg: int, frames_per_bin: int, data) -> None:
    t = tg * frames_per_bin
    k = data.draw(st.integers(1, frames_per_bin))
    i = data.draw(st.integers(0, tg - 1))
    w = torch.zeros(2, tg)
    w[:, i] = 1.0
    for train in (False, True):
        idx = sample_frames(w, t, k, train)
        assert (idx >= i * frames_per_bin).all() and (idx < (i + 1) * frames_per_bin).all()


def test_more_mass_means_more_frames() -> None:
    w = torch.tensor([[0.05, 0.05, 0.8, 0.1]])  # most of the mass in the third quarter of the clip
    idx = sample_frames(w, 32, 8, train=False)[0]
    in_third_quarter = ((idx >= 16) & (idx < 24)).sum()
    assert in_third_quarter >= 6


def test_training_draws_are_random_but_reproducible_and_cover_each_stratum() -> None:
    w = torch.ones(1, 4)
    a = sample_frames(w.expand(500, 4), 16, 2, train=True, generator=torch.Generator().manual_seed(1))
    b = sample_frames(w.expand(500, 4), 16, 2, train=True, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    assert set(a[:, 0].tolist()) == set(range(8)) and set(a[:, 1].tolist()) == set(range(8, 16))


def test_zero_weights_mean_uniform_and_bad_input_is_rejected() -> None:
    assert torch.equal(sample_frames(torch.zeros(1, 4), 16, 4, False), uniform_indices(16, 4)[None])
    with pytest.raises(ValueError, match="K <= T"):
        sample_frames(torch.ones(1, 4), 4, 5, False)
    with pytest.raises(ValueError, match="non-negative"):
        sample_frames(torch.tensor([[1.0, -1.0]]), 4, 2, False)
    with pytest.raises(ValueError, match=r"\(B, T_g\)"):
        sample_frames(torch.ones(4), 4, 2, False)


def test_inverse_cdf_and_make_distinct() -> None:
    w = torch.tensor([[1.0, 3.0]], dtype=torch.float64)  # CDF: 0.25 at t = 0.5
    t = inverse_cdf(w, torch.tensor([[0.125, 0.25, 0.625]], dtype=torch.float64))
    assert torch.allclose(t, torch.tensor([[0.25, 0.5, 0.75]], dtype=torch.float64))
    assert make_distinct(torch.tensor([[3, 3, 3, 9, 9]]), 10).tolist() == [[3, 4, 5, 8, 9]]


def test_sample_without_replacement_draws_distinct_positions() -> None:
    w = torch.softmax(torch.randn(3, 6), -1)
    d = sample_without_replacement(w, 4, 5, torch.Generator().manual_seed(0))
    assert d.shape == (3, 5, 4)
    assert all(len(set(row.tolist())) == 4 for row in d.flatten(0, 1))


# ---- glance frames: one per segment ---------------------------------------------------------------

@PROPERTY
@given(st.integers(1, 40), st.data())
def test_segment_indices_pick_one_frame_in_each_segment(t: int, data) -> None:
    k = data.draw(st.integers(1, t))
    b = data.draw(st.integers(1, 4))
    seed = data.draw(st.integers(0, 2**31 - 1))
    grid = segment_indices(t, k, b, jitter=False)
    assert torch.equal(grid, uniform_indices(t, k).expand(b, k))  # at test: the center of each segment
    idx = segment_indices(t, k, b, jitter=True, generator=torch.Generator().manual_seed(seed))
    assert idx.shape == (b, k) and idx.dtype == torch.long
    j = torch.arange(k)
    lo, hi = (j * t) // k, ((j + 1) * t) // k  # segment j covers [floor(jT/k), floor((j+1)T/k))
    assert ((idx >= lo) & (idx < hi)).all()
    assert (idx[:, 1:] > idx[:, :-1]).all()  # strictly increasing: one frame per segment
    again = segment_indices(t, k, b, jitter=True, generator=torch.Generator().manual_seed(seed))
    assert torch.equal(idx, again)


def test_jittered_segment_indices_cover_every_frame_of_each_segment_uniformly() -> None:
    idx = segment_indices(16, 4, 4000, jitter=True, generator=torch.Generator().manual_seed(0))
    for j in range(4):
        counts = torch.bincount(idx[:, j] - 4 * j, minlength=4)
        assert counts.numel() == 4 and (counts > 800).all(), counts  # about 1000 each
    assert not torch.equal(idx[0], idx[1]) or not torch.equal(idx[1], idx[2])  # each clip its own draw
    # without a generator it draws from torch's global RNG: reproducible under a seed
    torch.manual_seed(3)
    a = segment_indices(16, 4, 5, jitter=True)
    torch.manual_seed(3)
    assert torch.equal(a, segment_indices(16, 4, 5, jitter=True))


def test_segment_indices_reject_more_segments_than_frames() -> None:
    with pytest.raises(ValueError, match="k <= num_frames"):
        segment_indices(4, 5, 1, jitter=False)

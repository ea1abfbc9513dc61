"""Batches of clips for training and evaluation, and which ground truth a model may see.

:func:`iterate_batches` slices the synthetic benchmark's cached clips directly (much faster than a
DataLoader on 2 cores) and uses a DataLoader for other datasets (video folders); data-parallel, each
rank gets its share of every global batch. :func:`ground_truth_kwargs` hands the true boxes and
masks to a model only when its own modes read them (the oracle): no other model ever sees them.
"""

from __future__ import annotations

import math
from typing import Iterator

import torch
from torch import Tensor, nn

from adafocus import distributed
from adafocus.distributed import Dist


def iterate_batches(dataset, batch_size: int, shuffle: bool, seed: int = 0, d: Dist = Dist(),
                    pad: bool = True) -> Iterator[dict[str, Tensor]]:
    """Batches of ``dict(video (B,T,C,H,W) float in [0,1], label (B,), boxes?, mask?)``.

    Global batches of ``batch_size`` clips in a seeded order; data-parallel, each is cut to this
    rank's share (:func:`adafocus.distributed.shard`; ``pad=False`` for evaluation, so no clip
    counts twice). Synthetic splits (with a ``clips`` attribute, in memory or memory-mapped) are
    sliced directly, much faster than a DataLoader on 2 cores; other datasets use a DataLoader.
    """
    n = len(dataset)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)) if shuffle else torch.arange(n)
    batches = [distributed.shard(order[a:a + batch_size], d, pad) for a in range(0, n, batch_size)]
    batches = [b for b in batches if len(b)]
    clips = getattr(dataset, "clips", None)
    if clips is not None:
        for idx in batches:
            yield {"video": clips.videos[idx].float().div_(255), "label": clips.labels[idx],
                   "boxes": clips.boxes[idx], "mask": clips.mask[idx], "index": idx}
        return
    yield from torch.utils.data.DataLoader(dataset, batch_sampler=[b.tolist() for b in batches])


def num_batches(dataset, batch_size: int) -> int:
    return math.ceil(len(dataset) / batch_size)


def ground_truth_kwargs(model: nn.Module, batch: dict) -> dict[str, Tensor]:
    """``gt_boxes`` / ``gt_mask`` for a model whose own modes read them (the oracle); ``{}`` for every other."""
    if not getattr(model, "needs_ground_truth", False):
        return {}
    return {"gt_boxes": batch.get("boxes"), "gt_mask": batch.get("mask")}

"""Data-parallel training across processes: the few collective operations the trainer needs.

The trainer runs unchanged in one process. Under ``torchrun`` (which sets ``RANK``,
``WORLD_SIZE``, ``MASTER_ADDR`` ...) it joins the process group, wraps its training step in
:class:`~torch.nn.parallel.DistributedDataParallel` and gives every rank a slice of each batch:

    torchrun --standalone --nproc_per_node=2 -m adafocus train --model uni_adafocus --preset small

The backend is ``gloo`` on CPU and ``nccl`` when each process has a GPU; several machines join
through torchrun's rendezvous (``--nnodes=2 --rdzv-backend=c10d --rdzv-endpoint=HOST:PORT``).
Only rank 0 writes checkpoints, logs and progress bars.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from dataclasses import dataclass
from typing import Any, Iterator

import torch
import torch.distributed as dist
from torch import Tensor, nn


@dataclass(frozen=True)
class Dist:
    """Where this process stands: ``rank`` of ``world_size`` (1 = no process group)."""

    rank: int = 0
    world_size: int = 1

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup() -> Dist:
    """Join the process group when launched by torchrun (``WORLD_SIZE`` > 1); else a 1-process Dist."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() and dist.is_nccl_available() else "gloo"
        dist.init_process_group(backend)
    return Dist(dist.get_rank(), dist.get_world_size())


def current() -> Dist:
    """The process group this process is in (1-process Dist when there is none)."""
    if dist.is_available() and dist.is_initialized():
        return Dist(dist.get_rank(), dist.get_world_size())
    return Dist()


def barrier(d: Dist) -> None:
    if d.enabled:
        dist.barrier()


@contextlib.contextmanager
def main_first(d: Dist) -> Iterator[None]:
    """Rank 0 runs the block first (e.g. generating a cache), then the others (reading it)."""
    if not d.is_main:
        barrier(d)
    yield
    if d.is_main:
        barrier(d)


def shard(indices: Tensor, d: Dist, pad: bool = True) -> Tensor:
    """This rank's share of one global batch of ``indices``: every ``world_size``-th element.

    With ``pad`` (training), a global batch smaller than the world (the last one) is cycled so
    every rank gets a sample and takes the same number of steps; without it a rank may get none.
    """
    if not d.enabled:
        return indices
    if pad and len(indices) < d.world_size:
        indices = indices[torch.arange(d.world_size) % len(indices)]
    return indices[d.rank::d.world_size]


def sum_all(values: dict[str, float], d: Dist) -> dict[str, float]:
    """Sum each value over the ranks (a no-op in one process)."""
    if not d.enabled or not values:
        return values
    t = torch.tensor(list(values.values()), dtype=torch.float64)
    dist.all_reduce(t)
    return dict(zip(values, t.tolist()))


def gather_objects(obj: Any, d: Dist) -> list[Any]:
    """``[obj of rank 0, obj of rank 1, ...]`` on every rank."""
    if not d.enabled:
        return [obj]
    out: list[Any] = [None] * d.world_size
    dist.all_gather_object(out, obj)
    return out


def broadcast_module(module: nn.Module, d: Dist) -> None:
    """Copy rank 0's parameters and buffers (e.g. BatchNorm running statistics) to every rank."""
    if d.enabled:
        for t in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(t.data, src=0)


def parameters_agree(module: nn.Module, d: Dist) -> bool:
    """True when every rank holds bit-identical parameters (compares a float64 checksum)."""
    if not d.enabled:
        return True
    with torch.no_grad():
        total = sum((p.double() * (i + 1)).sum() for i, p in enumerate(module.parameters()))
    sums = gather_objects(float(total), d)
    return all(s == sums[0] for s in sums)


def wrap(module: nn.Module, d: Dist) -> nn.Module:
    """``module`` in DistributedDataParallel when there are several ranks (unchanged otherwise)."""
    if not d.enabled:
        return module
    # channels_last convolution weights get gradients whose strides differ from DDP's flat buckets:
    # PyTorch warns that this may cost speed, and copies; the gradients are correct.
    warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")
    return nn.parallel.DistributedDataParallel(module, find_unused_parameters=True)


def cleanup(d: Dist) -> None:
    if d.enabled and dist.is_initialized():
        dist.destroy_process_group()

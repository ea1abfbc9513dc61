"""Data-parallel training: sharding, and a 2-process torchrun (gloo, CPU) against 1 process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from adafocus.distributed import Dist, parameters_agree, shard, sum_all
from adafocus.train import load_checkpoint

# 3 epochs of uni_adafocus on the tiny preset (after its 1-epoch shared pretraining)
EPOCHS = 3
ARGS = ["train", "--model", "uni_adafocus", "--preset", "tiny", "--set", f"train.epochs={EPOCHS}"]


def test_shard_splits_a_batch_across_ranks_without_loss_or_overlap():
    batch = torch.arange(10, 17)  # 7 clips over 2 ranks
    parts = [shard(batch, Dist(r, 2)) for r in range(2)]
    assert sorted(torch.cat(parts).tolist()) == batch.tolist()
    assert [len(p) for p in parts] == [4, 3]


def test_shard_cycles_a_last_batch_smaller_than_the_world_so_every_rank_steps():
    parts = [shard(torch.tensor([5]), Dist(r, 3)) for r in range(3)]
    assert [p.tolist() for p in parts] == [[5], [5], [5]]
    assert [len(shard(torch.tensor([5]), Dist(r, 3), pad=False)) for r in range(3)] == [1, 0, 0]


def test_one_process_helpers_are_no_ops():
    d = Dist()
    assert not d.enabled and d.is_main
    assert shard(torch.arange(4), d).tolist() == [0, 1, 2, 3]
    assert sum_all({"a": 2.0}, d) == {"a": 2.0}
    assert parameters_agree(torch.nn.Linear(2, 2), d)


def _train(cache: Path, data: Path, launcher: list[str]) -> subprocess.CompletedProcess:
    cache.mkdir()
    (cache / "data").symlink_to(data)  # one generated tiny benchmark for both runs
    env = {**os.environ, "ADAFOCUS_CACHE": str(cache), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([*launcher, "-m", "adafocus", *ARGS], env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.mark.slow
def test_torchrun_two_processes_train_like_one(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    one = _train(tmp_path / "one", data, [sys.executable])
    two = _train(tmp_path / "two", data, [sys.executable, "-m", "torch.distributed.run", "--standalone",
                                          "--nproc_per_node=2"])
    assert "(2 processes)" in two.stdout and two.stdout.count("checkpoint:") == 1  # only rank 0 reports
    ckpts = {p.name for p in (tmp_path / "two" / "checkpoints").iterdir()}
    assert ckpts == {p.name for p in (tmp_path / "one" / "checkpoints").iterdir()}  # same files, no extras
    name = next(n for n in ckpts if n.startswith("uni_adafocus"))
    key = name.removesuffix(".pt").rsplit("-", 1)[1]
    a = load_checkpoint(tmp_path / "one" / "checkpoints" / name, "uni_adafocus", key)
    b = load_checkpoint(tmp_path / "two" / "checkpoints" / name, "uni_adafocus", key)
    assert a["done"] and b["done"] and b["world_size"] == 2 and a["world_size"] == 1
    # the same global batch of 32 clips, split 16 + 16: the losses agree closely but not bit for bit,
    # because BatchNorm normalises each rank's half with its own statistics
    la = [h["train_loss"] for h in a["history"]]
    lb = [h["train_loss"] for h in b["history"]]
    assert len(la) == len(lb) == EPOCHS
    assert all(abs(x - y) <= 0.01 * abs(x) for x, y in zip(la, lb)), (la, lb)
    assert la != lb  # two processes really did something different from one
    # the shared pretraining is the same whatever the launcher (it is not data-parallel: one image
    # set, one seed), and only one file is written
    [pre] = [n for n in ckpts if n.startswith("pretrain-")]
    pkey = pre.removesuffix(".pt").rsplit("-", 1)[1]
    pa = load_checkpoint(tmp_path / "one" / "checkpoints" / pre, "pretrain", pkey)
    pb = load_checkpoint(tmp_path / "two" / "checkpoints" / pre, "pretrain", pkey)
    assert pa["model"].keys() == pb["model"].keys()
    assert all(torch.equal(pa["model"][k], pb["model"][k]) for k in pa["model"])

"""Shared fixtures: the tiny config, a few tiny clips, and one small model trained once per session.

Nothing here touches the user's cache: clips are generated in memory, checkpoints go to a session
temporary folder, and ``ADAFOCUS_CACHE`` points to that folder for the whole session (autouse), so
that what the library caches by itself (the pretraining's image set, a split loaded with
``cache=True``) never lands in ``~/.cache/adafocus`` or the repository's ``.cache``.
"""

from __future__ import annotations

import pytest
import torch

from adafocus.config import Config, get_config
from adafocus.data.synthetic import SyntheticVideoDataset, generate_clips, load_split

TINY_CLIPS = 8  # clips in the tiny in-memory test split
# An easier tiny benchmark (no clutter, the object visible in every frame) on which a tiny oracle
# model learns well above chance in ~10 s, so tests can compare placements on a trained network.
# The oracle is trained on the exact true boxes (no jitter augmentation), from random weights (no
# shared pretraining): it learns faster.
EASY_OVERRIDES = {"data.clutter": 0.0, "data.informative_fraction": 1.0, "data.num_val": 16,
                  "model.oracle_jitter": False, "pretrain.epochs": 0, "train.epochs": 10}


@pytest.fixture(scope="session")
def session_cache(tmp_path_factory: pytest.TempPathFactory):
    """A temporary ``ADAFOCUS_CACHE`` for the whole session."""
    path = tmp_path_factory.mktemp("adafocus_cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ADAFOCUS_CACHE", str(path))
        yield path


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(session_cache):
    """Every test runs with ``ADAFOCUS_CACHE`` in the session's temporary folder."""
    yield session_cache


@pytest.fixture(scope="session", autouse=True)
def _one_thread():
    """One intra-op thread, as the trainer uses (``train.num_threads = 1``): small tensors run faster,
    a busy machine does not slow the tests down, and sums happen in one order. (Several threads are
    tested on purpose where they matter: tests/test_backbones.py, tests/test_distributed.py.)"""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_cfg() -> Config:
    return get_config("tiny")


@pytest.fixture(scope="session")
def tiny_split(tiny_cfg: Config) -> SyntheticVideoDataset:
    """``TINY_CLIPS`` clips of the tiny test split, generated in memory (no cache)."""
    torch.set_num_threads(1)
    clips = generate_clips(tiny_cfg.data, "test", range(TINY_CLIPS), progress=False)
    return SyntheticVideoDataset(clips, tiny_cfg.data, "test")


@pytest.fixture(scope="session")
def easy_cfg() -> Config:
    return get_config("tiny", **EASY_OVERRIDES)


@pytest.fixture(scope="session")
def easy_splits(easy_cfg: Config) -> dict[str, SyntheticVideoDataset]:
    return {split: load_split(easy_cfg.data, split, cache=False, progress=False) for split in ("train", "val", "test")}


@pytest.fixture(scope="session")
def trained_oracle(easy_cfg: Config, easy_splits, session_cache):
    """The ``oracle`` model trained on the easy tiny benchmark (once per session, ~10 s)."""
    from adafocus.train import train

    torch.set_num_threads(1)
    result = train("oracle", easy_cfg, easy_splits, progress=False, checkpoint_dir=session_cache / "checkpoints")
    return result.model.eval()


@pytest.fixture()
def tiny_model(tiny_cfg: Config):
    """An untrained tiny ``uni_adafocus`` (fixed seed), in eval mode."""
    from adafocus.models.registry import create_model

    torch.set_num_threads(1)
    torch.manual_seed(0)
    return create_model("uni_adafocus", tiny_cfg).eval()

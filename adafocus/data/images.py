"""An object-centric image set: the workbench's stand-in for ImageNet.

The paper starts every network from ImageNet weights: before any video is seen, the glance and
focus networks already know what objects look like, from class labels alone. Here the same role is
played by a generated set of **images**, each one handwritten digit over the benchmark's clutter
(background photos, noise, distractor strokes), labelled with its class and nothing else:

- object-centric, as ImageNet photos are: the digit covers ``pretrain.object_scale`` of the image
  side (40-85% by default), at a random position, in a random colour;
- rendered by the video generator itself (:func:`adafocus.data.synthetic.generate_clip`), so the
  clutter is the benchmark's;
- from the **training fold** of handwritten instances only: no digit instance of the video
  validation or test split appears here, so pretraining cannot leak the test handwriting;
- no boxes and no masks are stored: pretraining is label-only.

Image ``i`` is drawn from ``np.random.default_rng([seed, IMAGE_STREAM, i])`` (the video splits use
streams 0, 1, 2), so the set is byte-identical whatever the number of worker processes. Images
are cached in ``cache_dir("images", key)`` like the video splits.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from adafocus.config import Config, ConfigError, DataConfig, PretrainConfig
from adafocus.data.synthetic import (CHUNK_SIZE, DEFAULT_WORKERS, GENERATOR_VERSION, RENDER, data_hash,
                                     generate_clip, run_chunks)
from adafocus.paths import atomic_torch_save, cache_dir

IMAGE_STREAM = 1000  # random stream of the image set (the video splits use 0, 1, 2)
INSTANCE_FOLD = "train"  # handwritten instances the images are drawn from


@dataclass
class ImageSet:
    """Labelled images in memory: ``images`` uint8 ``(N, C, S, S)``, ``labels`` int64 ``(N,)``."""

    images: torch.Tensor
    labels: torch.Tensor

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise ValueError(f"ImageSet.images: expected uint8 (N, C, S, S), got {self.images.dtype} "
                             f"{tuple(self.images.shape)}")
        if self.labels.dtype != torch.int64 or tuple(self.labels.shape) != (len(self.images),):
            raise ValueError(f"ImageSet.labels: expected int64 ({len(self.images)},), got {self.labels.dtype} "
                             f"{tuple(self.labels.shape)}")

    def __len__(self) -> int:
        return len(self.labels)


def image_config(data: DataConfig, pretrain: PretrainConfig) -> DataConfig:
    """The generator settings of one image: a two-frame, always-visible, still clip of
    ``pretrain.image_size``² whose first frame is kept (the generator needs T >= 2). Its class is the digit
    whatever ``data.motion`` says (a still image has no motion)."""
    return replace(data, num_frames=2, frame_size=pretrain.image_size, object_scale=pretrain.object_scale,
                   informative_fraction=1.0, speed=0.0, num_train=0, num_val=0, num_test=0, motion="none")


def image_set_key(cfg: Config) -> str:
    """Cache key of the image set: its generator settings, size, seed and the generator's version."""
    icfg = image_config(cfg.data, cfg.pretrain)
    blob = json.dumps({"image": data_hash(icfg), "images": cfg.pretrain.images, "seed": cfg.pretrain.seed,
                       "render": dataclasses.asdict(RENDER), "version": GENERATOR_VERSION},
                      sort_keys=True, default=list).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def image_labels(num_images: int, num_classes: int, seed: int) -> np.ndarray:
    """Balanced labels ``(N,)`` in a seeded random order."""
    order = np.random.default_rng([seed, IMAGE_STREAM, 2**31]).permutation(num_images)
    return (order % num_classes).astype(np.int64)


def _render_chunk(icfg: DataConfig, seed: int, indices: list[int], labels: list[int]) -> np.ndarray:
    frames = [generate_clip(icfg, np.random.default_rng([seed, IMAGE_STREAM, i]), y, INSTANCE_FOLD)["video"][0]
              for i, y in zip(indices, labels)]
    return np.stack(frames) if frames else np.zeros((0, icfg.channels, icfg.frame_size, icfg.frame_size), np.uint8)


def generate_images(cfg: Config, progress: bool = True, workers: int | None = None) -> ImageSet:
    """The image set of ``cfg.pretrain`` with the clutter, channels and classes of ``cfg.data``."""
    if not isinstance(cfg, Config):
        raise ConfigError(f"cfg: expected an adafocus.config.Config, got {type(cfg).__name__}")
    cfg.pretrain.validate()
    icfg = image_config(cfg.data, cfg.pretrain)
    icfg.validate("pretrain (image generator)")
    n, S, C = cfg.pretrain.images, icfg.frame_size, icfg.channels
    labels = image_labels(n, icfg.num_classes, cfg.pretrain.seed)
    starts = list(range(0, n, CHUNK_SIZE))
    tasks = [(icfg, cfg.pretrain.seed, list(range(a, min(a + CHUNK_SIZE, n))), labels[a: a + CHUNK_SIZE].tolist())
             for a in starts]
    images = np.zeros((n, C, S, S), dtype=np.uint8)
    results = run_chunks(_render_chunk, tasks, [len(t[2]) for t in tasks],
                         DEFAULT_WORKERS if workers is None else workers, "generating images", progress, (S, C))
    for a, chunk in zip(starts, results):
        images[a: a + len(chunk)] = chunk
    return ImageSet(torch.from_numpy(images), torch.from_numpy(labels))


def images_cache_path(cfg: Config) -> Path:
    return cache_dir("images", image_set_key(cfg)) / "images.pt"


def load_images(cfg: Config, cache: bool = True, progress: bool = True) -> ImageSet:
    """The image set from the on-disk cache, generated (and cached atomically) if missing or damaged."""
    path = images_cache_path(cfg) if cache else None
    if path is not None and path.exists():
        try:
            blob = torch.load(path, weights_only=True)
            if blob.get("key") == image_set_key(cfg):
                return ImageSet(blob["images"], blob["labels"])
        except Exception:  # a truncated or foreign file: regenerate it
            pass
    images = generate_images(cfg, progress=progress)
    if path is not None:
        atomic_torch_save({"key": image_set_key(cfg), "images": images.images, "labels": images.labels}, path)
    return images

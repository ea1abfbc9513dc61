"""The shared pretraining: the workbench's analogue of ImageNet weights.

Before any video, the glance and focus backbones learn what the classes look like from the
object-centric image set of :mod:`adafocus.data.images` (one digit over clutter per image, class
labels only, handwriting of the training fold only). Each backbone sees the images the way it will
see the videos:

- the **glance** sees the whole image at the pixel scale at which it sees video frames (resized by
  ``glance_size / frame_size``), pooled as in the model (``glance_pool``), then a linear head;
- the **focus** sees random resized crops of the image (a side of 60-100% of the image, anywhere in
  it; the whole image at evaluation) resampled to ``pretrain.crop_size``, then a linear head.

The two cross-entropies are summed. No box, no mask and no video is used, so every model that
starts from these weights is label-free. The weights are trained once per backbone geometry
(:func:`pretrain_key`), cached like any checkpoint, and copied into every method
(:func:`load_shared_backbones`), so comparisons between methods start from the same place.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from adafocus.config import Config, TrainConfig, backbone_fields
from adafocus.data.images import ImageSet, image_set_key, load_images
from adafocus.models.adafocus import UniAdaFocus
from adafocus.models.patches import crop_patches
from adafocus.fit import FitJob, checkpoint_file, fit, resume_state

PRETRAIN_NAME = "pretrain"  # the checkpoint's model name
SHARED_PREFIXES = ("glance.", "focus.")  # parameters copied into every model
CROP_SCALE = (0.6, 1.0)  # side of the focus network's random crops, as a fraction of the image side
VAL_FRACTION = 0.1  # the last tenth of the image set is held out to report the pretraining's accuracy


class BackbonePretrainer(nn.Module):
    """The glance and the focus backbone of ``cfg`` (built exactly as in the model) with a linear head each."""

    def __init__(self, cfg: Config) -> None:
        super().__init__()
        # images are not clips: the focus network is built without its temporal shift (same weights)
        m = replace(cfg.model, use_glance=True, use_focus=True, spatial_policy=False, temporal_policy=False,
                    patch_mode="random", frame_mode="uniform", focus_tsm=False)
        net = UniAdaFocus(m, cfg.data.frame_size, cfg.data.num_frames, cfg.data.channels)
        self.glance, self.focus, self.pool = net.glance, net.focus, cfg.model.glance_pool
        self.glance_head = nn.Linear(net.glance.feature_dim, m.num_classes)
        self.focus_head = nn.Linear(net.focus.feature_dim, m.num_classes)
        self.channels_last = m.channels_last
        S, d = cfg.pretrain.image_size, cfg.data
        self.glance_view = max(8, round(S * m.glance_size / d.frame_size))  # the glance's scale for video frames
        self.crop_size = cfg.pretrain.crop_size

    def _2d(self, x: Tensor) -> Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """``images`` ``(B, C, S, S)`` float in [0, 1] -> (glance logits ``(B, n)``, focus logits ``(B, n)``)."""
        B, _, S, _ = images.shape
        g = images if self.glance_view == S else F.interpolate(images, size=self.glance_view, mode="bilinear",
                                                               align_corners=False)
        maps = self.glance(self._2d(g))
        feats = maps.amax(dim=(-2, -1)) if self.pool == "max" else maps.mean(dim=(-2, -1))
        patches = crop_patches(images, crop_boxes(B, S, self.training, images.device), self.crop_size)
        return self.glance_head(feats), self.focus_head(self.focus(self._2d(patches)))

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        return {"glance": list(self.glance.parameters()), "focus": list(self.focus.parameters()),
                "classifier": [*self.glance_head.parameters(), *self.focus_head.parameters()]}


def crop_boxes(batch: int, side: int, training: bool, device: torch.device | str | None = None) -> Tensor:
    """The focus network's views of ``side``² images, ``(batch, 4)`` x0, y0, x1, y1: random resized crops in
    training (a side in CROP_SCALE of the image, anywhere in it), the whole image at evaluation."""
    if not training:
        return torch.tensor([0.0, 0.0, side, side], device=device).expand(batch, 4)
    s = side * (CROP_SCALE[0] + (CROP_SCALE[1] - CROP_SCALE[0]) * torch.rand(batch, device=device))
    corner = (side - s)[:, None] * torch.rand(batch, 2, device=device)
    return torch.cat([corner, corner + s[:, None]], dim=1)


class PretrainStep(nn.Module):
    """batch -> (glance CE + focus CE, focus logits, {"glance": ..., "focus": ...})."""

    def __init__(self, net: BackbonePretrainer) -> None:
        super().__init__()
        self.net = net

    def forward(self, batch: dict[str, Tensor]):
        g, f = self.net(batch["video"])
        lg, lf = F.cross_entropy(g, batch["label"]), F.cross_entropy(f, batch["label"])
        return lg + lf, f, {"glance": float(lg.detach()), "focus": float(lf.detach())}


class PretrainFamily(NamedTuple):
    """A kind of backbones pretrained on the image set: checkpoint name, cache key, ``build(cfg) -> network``
    (whose forward maps images ``(B, C, S, S)`` to (glance logits, focus logits))."""

    name: str
    key: str
    build: Callable[[Config], nn.Module]


def pretrain_key(cfg: Config) -> str:
    """Cache key of the shared pretraining: the image set, the backbone geometry, the pretraining settings."""
    parts = {"images": image_set_key(cfg), "frame_size": cfg.data.frame_size, "channels": cfg.data.channels,
             "backbone": {f: getattr(cfg.model, f) for f in backbone_fields()},
             "pretrain": cfg.to_dict()["pretrain"], "grad_clip": cfg.train.grad_clip,
             "weight_decay": cfg.train.weight_decay}
    return "pre" + hashlib.sha256(json.dumps(parts, sort_keys=True, default=list).encode()).hexdigest()[:9]


def pretrain_train_config(cfg: Config) -> TrainConfig:
    """The optimiser settings of the pretraining run: AdamW at ``pretrain.lr`` for every part."""
    p = cfg.pretrain
    return replace(cfg.train, batch_size=p.batch_size, epochs=p.epochs, optimizer="adamw", lr=p.lr,
                   lr_policy=1.0, lr_glance=1.0, lr_focus=1.0, lr_classifier=1.0, seed=p.seed, max_minutes=0.0)


def _image_batches(images: ImageSet, batch_size: int, seed: int | None):
    n = len(images)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)) if seed is not None else torch.arange(n)
    for a in range(0, n, batch_size):
        idx = order[a:a + batch_size]
        yield {"video": images.images[idx].float().div_(255), "label": images.labels[idx]}


@torch.no_grad()
def image_accuracy(net: BackbonePretrainer, images: ImageSet, batch_size: int = 256) -> dict[str, float]:
    """Glance and focus accuracy on held-out images (eval mode: the whole image)."""
    net.eval()
    correct = torch.zeros(2)
    for batch in _image_batches(images, batch_size, None):
        g, f = net(batch["video"])
        correct += torch.stack([(g.argmax(-1) == batch["label"]).sum(), (f.argmax(-1) == batch["label"]).sum()])
    acc = (correct / max(len(images), 1)).tolist()
    return {"val_acc": acc[1], "val_glance_acc": acc[0]}


def pretrain(cfg: Config, progress: bool = True, checkpoint_dir: Path | None = None,
             retrain: bool = False, family: "PretrainFamily | None" = None) -> tuple[nn.Module, "object"]:
    """Train (or load from the cache) the shared backbones of ``cfg``. Returns the network and its history.
    ``family``: backbones of another kind on the same image set (e.g. the X3Ds of :mod:`adafocus.models.x3d`):
    its checkpoint name, key and network; default the 2-D glance and focus of :class:`BackbonePretrainer`."""
    import pandas as pd

    torch.set_num_threads(cfg.train.num_threads)
    images = load_images(cfg, progress=progress)
    n_val = int(len(images) * VAL_FRACTION)
    train_set = ImageSet(images.images[: len(images) - n_val], images.labels[: len(images) - n_val])
    val_set = ImageSet(images.images[len(images) - n_val:], images.labels[len(images) - n_val:])
    name, key, build = family or PretrainFamily(PRETRAIN_NAME, pretrain_key(cfg), BackbonePretrainer)
    # one file per key, whatever the preset: presets that differ only in what the pretraining does not read
    # (``small`` and ``small_motion``: the same images and backbones) share one pretraining
    path = checkpoint_file(name, None, key, checkpoint_dir)
    torch.manual_seed(cfg.pretrain.seed)
    net = build(cfg)
    state = resume_state(path, name, key, net, retrain)
    if state is not None and state["done"]:
        return net.eval(), pd.DataFrame(state["history"])
    t = pretrain_train_config(cfg)
    job = FitJob(name, net, PretrainStep(net), lambda seed: _image_batches(train_set, t.batch_size, seed),
                 -(-len(train_set) // t.batch_size), lambda: image_accuracy(net, val_set), t, path, key,
                 {"pretrain": cfg.to_dict()["pretrain"], "key": key})
    history, _, _ = fit(job, state, progress)
    return net.eval(), pd.DataFrame(history)


def pretrained_backbones(cfg: Config, progress: bool = True, checkpoint_dir: Path | None = None,
                         family: "PretrainFamily | None" = None) -> dict[str, Tensor]:
    """Glance and focus weights from the shared pretraining (trained once, then cached); ``family``: backbones of
    another kind (as in :func:`pretrain`, e.g. the X3Ds of :mod:`adafocus.pretrain_x3d`).

    The caller's random stream is left as it was, whether the pretraining runs now or comes from the
    cache: a model trained from an empty cache gets the same numbers as one trained after it."""
    with torch.random.fork_rng():
        net, _ = pretrain(cfg, progress, checkpoint_dir, family=family)
    return {k: v for k, v in net.state_dict().items() if k.startswith(SHARED_PREFIXES)}


def load_shared_backbones(model: nn.Module, weights: dict[str, Tensor]) -> int:
    """Copy pretrained glance/focus tensors whose name and shape match. Returns how many."""
    own = model.state_dict()
    matched = {k: v for k, v in weights.items() if k in own and own[k].shape == v.shape}
    model.load_state_dict(matched, strict=False)
    return len(matched)

"""The X3Ds' pretraining: their analogue of ImageNet weights (docs/design.md, "X3D and space-time cubes").

The 2-D backbones' pretraining (:mod:`adafocus.pretrain`) does not fit a 3-D network, so the X3Ds of
:class:`~adafocus.models.x3d.UniAdaFocusX3D` learn on the same object-centric image set (labels only, the
training fold's handwriting only), each image seen as a **static clip** (the image repeated over time, as
2-D weights are inflated into 3-D networks). The loop, the checkpoints and the held-out accuracy are
:func:`adafocus.pretrain.pretrain`'s; cached once per X3D geometry as ``pretrain_x3d``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

from torch import Tensor, nn

from adafocus.config import Config
from adafocus.data.images import image_set_key
from adafocus.models.patches import crop_patches, resize_frames
from adafocus.models.x3d import UniAdaFocusX3D
from adafocus.pretrain import PretrainFamily, crop_boxes, pretrained_backbones

X3D_PRETRAIN_NAME = "pretrain_x3d"


class X3DBackbonePretrainer(nn.Module):
    """The glance and focus X3Ds of ``cfg`` (built as in :class:`UniAdaFocusX3D`) with a linear head each, on the
    object-centric image set of :mod:`adafocus.pretrain`, each image seen as a *static clip* (the image repeated
    over time, as 2-D weights are inflated into 3-D networks): the glance sees ``T_g`` frames at its pixel scale,
    the focus a cube of ``K`` random resized crops (:func:`adafocus.pretrain.crop_boxes`) at ``pretrain.crop_size``."""

    def __init__(self, cfg: Config) -> None:
        super().__init__()
        m = replace(cfg.model, use_glance=True, use_focus=True, spatial_policy=False, temporal_policy=False,
                    patch_mode="random", frame_mode="uniform", exits=False)
        d = cfg.data
        net = UniAdaFocusX3D(m, d.frame_size, d.num_frames, d.channels)
        self.glance, self.focus, self.prepare_3d = net.glance, net.focus, net.prepare_3d
        self.glance_head = nn.Linear(net.glance.feature_dim, m.num_classes)
        self.focus_head = nn.Linear(net.focus.feature_dim, m.num_classes)
        self.pool, self.glance_frames, self.cube_frames = m.glance_pool, m.glance_frames, m.num_focus
        self.glance_view = max(8, round(cfg.pretrain.image_size * m.glance_size / d.frame_size))
        self.crop_size = cfg.pretrain.crop_size

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """``images`` ``(B, C, S, S)`` in [0, 1] -> (glance logits ``(B, n)``, focus logits ``(B, n)``)."""
        B, _, S, _ = images.shape
        g = images if self.glance_view == S else resize_frames(images, self.glance_view)
        clip = g[:, :, None].expand(-1, -1, self.glance_frames, -1, -1)  # (B, C, T_g, s, s): a static clip
        maps = self.glance(self.prepare_3d(clip))  # (B, C_g, T_g, h, w)
        feats = (maps.amax(dim=(-2, -1)) if self.pool == "max" else maps.mean(dim=(-2, -1))).mean(-1)  # (B, C_g)
        patches = crop_patches(images, crop_boxes(B, S, self.training, images.device), self.crop_size)
        cube = patches[:, :, None].expand(-1, -1, self.cube_frames, -1, -1)  # (B, C, K, P, P)
        return self.glance_head(feats), self.focus_head(self.focus(self.prepare_3d(cube)))

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        return {"glance": list(self.glance.parameters()), "focus": list(self.focus.parameters()),
                "classifier": [*self.glance_head.parameters(), *self.focus_head.parameters()]}


def x3d_pretrain_key(cfg: Config) -> str:
    """Cache key of the X3Ds' pretraining: the image set, the X3D geometry, the pretraining settings."""
    m = cfg.model
    parts = {"images": image_set_key(cfg), "frame_size": cfg.data.frame_size, "channels": cfg.data.channels,
             "x3d": {f: getattr(m, f) for f in ("glance_x3d", "focus_x3d", "glance_stride", "glance_feature_dim",
                                                 "glance_size", "glance_pool", "glance_frames", "num_focus",
                                                 "num_classes", "channels_last")},
             "pretrain": cfg.to_dict()["pretrain"], "grad_clip": cfg.train.grad_clip,
             "weight_decay": cfg.train.weight_decay}
    return "x3d" + hashlib.sha256(json.dumps(parts, sort_keys=True, default=list).encode()).hexdigest()[:9]


def x3d_pretrain_family(cfg: Config) -> PretrainFamily:
    """What :func:`adafocus.pretrain.pretrain` needs to pretrain (or load) the X3Ds of ``cfg``: their checkpoint
    name, key and network."""
    return PretrainFamily(X3D_PRETRAIN_NAME, x3d_pretrain_key(cfg), X3DBackbonePretrainer)


def pretrained_x3d_backbones(cfg: Config, progress: bool = True,
                             checkpoint_dir: Path | None = None) -> dict[str, Tensor]:
    """Glance and focus X3D weights pretrained on the image set (trained once per geometry, then cached): what
    :func:`adafocus.train.train` loads into a :class:`~adafocus.models.x3d.UniAdaFocusX3D` (its ``pretraining``).
    The caller's random stream is left as it was, whether the pretraining runs now or comes from the cache
    (:func:`adafocus.pretrain.pretrained_backbones` with the X3Ds' family)."""
    return pretrained_backbones(cfg, progress, checkpoint_dir, family=x3d_pretrain_family(cfg))

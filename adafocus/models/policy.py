"""The two policies: *where* to look (spatial) and *when* to look (temporal). docs/design.md, "The method".

The spatial policy reads the glance maps **detached** (as in the paper; ``model.policy_trains_glance``
lets its gradients reach the glance); the temporal policy reads the pooled glance features as
they are (as in the paper: its surrogate's gradients also train the glance). Their decisions (a box,
a set of frame indices) crop the real patches, which is not differentiable with respect to the
policies (the boxes are detached and the indices are integers), so the policies learn only through
the differentiable *surrogate* losses (:mod:`adafocus.models.surrogates`, :mod:`adafocus.losses`).

:class:`SpatialPolicy` -- a small 3-D conv stack over the glance feature maps of all glance frames
``(B, T_g, C_g, h, w)`` (1x1x1 conv to ``policy_channels``, then two 3x3x3 convs, each with batch
norm and ReLU: neighbouring frames inform each other, so the box can follow the object; with
``separable=True``, the CPU default, each 3x3x3 conv is depthwise followed by a 1x1x1 conv), then a
location head giving per glance frame the action ``(y, x, sy, sx)`` in [0, 1] (top-left
position and scale; see :mod:`adafocus.models.patches`):

- ``location_head="conv"`` (the paper's): a ``(1, h, w)`` valid conv to 4 numbers + sigmoid. It
  must learn a map from "where the activation is" to a coordinate through a dense layer, which
  on small CPU budgets did not localise at all (docs/design.md, "Departures").
- ``location_head="softargmax"`` (the CPU default): a 1x1x1 conv to a one-channel heatmap,
  a spatial softmax, and the expected cell position as the box *center* (which is translation
  equivariant: a peak under the object puts the box on the object from the first step). A
  separate sigmoid output from the spatially pooled features gives the scale (1 number for
  square boxes, 2 otherwise). The center is converted to the top-left-corner action so that
  :func:`~adafocus.models.patches.boxes_from_actions` serves both heads.

:class:`TemporalPolicy` -- two 3-tap temporal convs over the pooled glance features
``(B, T_g, C_g)`` (``C_g -> temporal_channels -> temporal_channels``, batch norm, ReLU) and a 1x1
conv to one logit per glance frame; a softmax over time gives the distribution ``w`` ``(B, T_g)``
that :func:`~adafocus.models.sampling.sample_frames` samples from.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from adafocus.models.patches import actions_from_centers


class ConvBNReLU3d(nn.Sequential):
    """Conv3d (no bias) -> BatchNorm3d -> ReLU."""

    def __init__(self, c_in: int, c_out: int, kernel: int) -> None:
        super().__init__(nn.Conv3d(c_in, c_out, kernel, padding=kernel // 2, bias=False),
                         nn.BatchNorm3d(c_out), nn.ReLU(inplace=True))


class SeparableConvBNReLU3d(nn.Sequential):
    """Depthwise ``kernel``³ conv -> BN -> ReLU -> pointwise conv -> BN -> ReLU: a 3x3x3 conv's reach at a
    fraction of its MACs (``k³·C + C²`` instead of ``k³·C²`` per position)."""

    def __init__(self, channels: int, kernel: int) -> None:
        super().__init__(nn.Conv3d(channels, channels, kernel, padding=kernel // 2, groups=channels, bias=False),
                         nn.BatchNorm3d(channels), nn.ReLU(inplace=True),
                         nn.Conv3d(channels, channels, 1, bias=False), nn.BatchNorm3d(channels), nn.ReLU(inplace=True))


class ConvBNReLU1d(nn.Sequential):
    """Conv1d (no bias) -> BatchNorm1d -> ReLU."""

    def __init__(self, c_in: int, c_out: int, kernel: int) -> None:
        super().__init__(nn.Conv1d(c_in, c_out, kernel, padding=kernel // 2, bias=False),
                         nn.BatchNorm1d(c_out), nn.ReLU(inplace=True))


class SpatialPolicy(nn.Module):
    """Glance maps ``(B, T_g, C_g, h, w)`` -> actions ``(B, T_g, 4)`` = ``(y, x, sy, sx)`` in [0, 1].

    ``map_size`` ``(h, w)`` is needed by the conv head (its kernel covers the whole map); the
    soft-argmax head works on any map size. ``frame_size``, ``box_min``, ``box_max`` and
    ``square`` describe the box geometry, used by the soft-argmax head to turn a center into a
    top-left-corner action. With ``square=True`` the scale output has one number and ``sx = sy``.
    """

    def __init__(self, in_channels: int, channels: int, map_size: tuple[int, int], frame_size: int,
                 box_min: float, box_max: float, square: bool = False, head: str = "softargmax",
                 kernel: int = 3, separable: bool = False) -> None:
        super().__init__()
        if head not in ("softargmax", "conv"):
            raise ValueError(f"SpatialPolicy: head must be 'softargmax' or 'conv', got {head!r}")
        self.head, self.square, self.map_size = head, square, tuple(map_size)
        self.frame_size, self.box_min, self.box_max = frame_size, box_min, box_max
        block = (lambda: SeparableConvBNReLU3d(channels, kernel)) if separable else (
            lambda: ConvBNReLU3d(channels, channels, kernel))
        self.body = nn.Sequential(ConvBNReLU3d(in_channels, channels, 1), block(), block())
        if head == "conv":  # the paper's: one valid conv over the whole (h, w) map, per frame
            self.location = nn.Conv3d(channels, 4, kernel_size=(1, *self.map_size))
        else:
            self.heatmap = nn.Conv3d(channels, 1, kernel_size=1)  # one logit per cell per frame
            self.scale = nn.Linear(channels, 1 if square else 2)  # from spatially pooled features
            nn.init.zeros_(self.heatmap.weight)  # start from a flat heatmap: the center of the frame
            nn.init.zeros_(self.heatmap.bias)

    def forward(self, maps: Tensor) -> Tensor:
        if maps.dim() != 5:
            raise ValueError(f"SpatialPolicy: maps must be (B, T_g, C_g, h, w), got shape {tuple(maps.shape)}")
        if self.head == "conv" and tuple(maps.shape[-2:]) != self.map_size:
            raise ValueError(f"SpatialPolicy(head='conv'): expected {self.map_size} maps, got "
                             f"{tuple(maps.shape[-2:])}")
        x = self.body(maps.transpose(1, 2))  # (B, C, T_g, h, w): Conv3d wants channels before time
        if self.head == "conv":
            actions = torch.sigmoid(self.location(x).flatten(3).squeeze(-1))  # (B, 4, T_g)
            actions = actions.transpose(1, 2)  # (B, T_g, 4)
            if self.square:
                actions = torch.cat([actions[..., :3], actions[..., 2:3]], dim=-1)
            return actions
        return self._softargmax(x)

    def heatmap_probs(self, x: Tensor) -> Tensor:
        """Spatial softmax of the heatmap: ``(B, C, T_g, h, w)`` features -> ``(B, T_g, h, w)`` probabilities."""
        logits = self.heatmap(x).squeeze(1)  # (B, T_g, h, w)
        b, t, h, w = logits.shape
        return F.softmax(logits.reshape(b, t, h * w), dim=-1).reshape(b, t, h, w)

    def _softargmax(self, x: Tensor) -> Tensor:
        p = self.heatmap_probs(x)  # (B, T_g, h, w)
        h, w = p.shape[-2:]
        # cell centers as fractions of the frame: (i + 0.5) / h
        ys = (torch.arange(h, device=p.device, dtype=p.dtype) + 0.5) / h
        xs = (torch.arange(w, device=p.device, dtype=p.dtype) + 0.5) / w
        cy = (p.sum(-1) * ys).sum(-1)  # (B, T_g) expected row
        cx = (p.sum(-2) * xs).sum(-1)  # (B, T_g) expected column
        pooled = x.mean(dim=(3, 4)).transpose(1, 2)  # (B, T_g, C)
        s = torch.sigmoid(self.scale(pooled))  # (B, T_g, 1 or 2)
        scales = s.expand(-1, -1, 2) if self.square else s
        return actions_from_centers(torch.stack([cy, cx], -1), scales, self.frame_size, self.box_min,
                                    self.box_max, self.square)


class TemporalPolicy(nn.Module):
    """Pooled glance features ``(B, T_g, C_g)`` -> a distribution ``w`` ``(B, T_g)`` over the glance positions."""

    def __init__(self, in_channels: int, channels: int, kernel: int = 3) -> None:
        super().__init__()
        self.body = nn.Sequential(ConvBNReLU1d(in_channels, channels, kernel),
                                  ConvBNReLU1d(channels, channels, kernel))
        self.logit = nn.Conv1d(channels, 1, kernel_size=1)
        nn.init.zeros_(self.logit.weight)  # start uniform: the uniform frame grid
        nn.init.zeros_(self.logit.bias)

    def logits(self, feats: Tensor) -> Tensor:
        """Unnormalised scores ``(B, T_g)``."""
        if feats.dim() != 3:
            raise ValueError(f"TemporalPolicy: features must be (B, T_g, C_g), got shape {tuple(feats.shape)}")
        return self.logit(self.body(feats.transpose(1, 2))).squeeze(1)

    def forward(self, feats: Tensor) -> Tensor:
        return F.softmax(self.logits(feats), dim=-1)

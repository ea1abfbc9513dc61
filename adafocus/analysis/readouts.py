"""Which logits an analysis reads from a Uni-AdaFocus: the last exit, or the focus or glance alone.

The redundancy studies and the attributions both ask "what does *this* part of the model know?";
they read one of three heads (:data:`HEADS`), computed from features through the model's public
API only (docs/design.md, "The method" and "Training signal"):

- ``final``: the last exit of the classifier (:meth:`~adafocus.models.adafocus.UniAdaFocus.classify`),
  which reads the focus features next to the glance's summary of the whole frames;
- ``focus``: the focus network alone: its per-patch head (``model.focus_head``, trained on every
  patch) averaged over the patches given;
- ``glance``: the glance network alone: its per-frame head (``model.glance_head``) averaged over the
  glance frames.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

HEADS = ("final", "focus", "glance")


def is_adafocus(model: Any) -> bool:
    """Whether ``model`` offers the stage methods of :class:`~adafocus.models.adafocus.UniAdaFocus`."""
    return all(hasattr(model, name) for name in ("focus_features", "classify", "glance_features"))


def check_head(model: Any, head: str, caller: str) -> None:
    """Raise unless ``head`` is one of :data:`HEADS` and ``model`` has the network it reads."""
    if head not in HEADS:
        raise ValueError(f"{caller}: head: expected one of {HEADS}, got {head!r}")
    if head in ("focus", "glance") and getattr(model, head, None) is None:
        raise ValueError(f"{caller}: head={head!r} but the model has no {head} network")


def readout(model: Any, glance_feats: Tensor | None, focus_feats: Tensor | None, head: str = "final") -> Tensor:
    """Logits ``(B, n)`` of ``head`` from glance features ``(B, T_g, C_g)`` and focus features ``(B, k, C_f)``.

    ``final`` needs ``k <= K`` focus steps (the exit after the ``k``-th step, or the single head
    with ``k = K``); ``focus`` takes any ``k >= 1``.
    """
    if head == "focus":
        return model.focus_head(focus_feats).mean(dim=1)  # (B, k, n) -> (B, n)
    if head == "glance":
        return model.glance_head(glance_feats).mean(dim=1)  # (B, T_g, n) -> (B, n)
    if head != "final":
        raise ValueError(f"readout: head: expected one of {HEADS}, got {head!r}")
    return model.classify(glance_feats, focus_feats)[:, -1]  # exit logits (B, S, n) -> the last (B, n)

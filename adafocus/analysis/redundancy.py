"""Redundancy studies: how much of a clip does a classifier really need? (docs/design.md, "The method")

Uni-AdaFocus bets on three redundancies. Each study below measures one of them on the synthetic
benchmark, whose ground truth (the object's box in every frame, the mask of informative frames)
says exactly where the information is. Every function returns a :class:`pandas.DataFrame`.

- **spatial** -- :func:`spatial_redundancy`: accuracy of a classifier that sees only a square crop
  of side ``s`` per frame, placed on the object (``oracle``), at random, or in the center, as
  ``s`` shrinks. If a small crop on the object is as good as the whole frame, most pixels are
  redundant; the gap between oracle and random placement is what a spatial policy can win.
- **temporal** -- :func:`temporal_redundancy`: accuracy against the number ``k`` of (uniformly
  spaced) frames seen; :func:`frame_importance`: the drop in the true class's probability when one
  frame is blanked out, per frame position, and :func:`importance_correlation` of that drop with
  the informative mask.
- **sample-wise** -- :func:`samplewise_redundancy`: which clips leave at which early exit, next
  to the benchmark's difficulty knobs per clip (object size, number of informative frames; clutter
  is one value per split); :func:`exit_summary` groups it by exit step.

The spatial study runs a trained model's *focus network and classifier* on boxes we place
ourselves (the stage methods :meth:`~adafocus.models.adafocus.UniAdaFocus.focus_features` and
:meth:`~adafocus.models.adafocus.UniAdaFocus.classify`), always at the ``K`` truly informative
frames, so only the crop's placement and size change between rows. By default it reads the
focus network's own per-patch head (``head="focus"``, :mod:`adafocus.analysis.readouts`): the final
exit also sees the glance's summary of the whole frame, which would hide what the crop alone
carries. Any other classifier can be studied too: pass a function ``(video (B, T, C, H, W), boxes (B, K, 4), frame_idx (B, K)) ->
logits (B, n)`` (see :func:`crop_classifier`).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from adafocus.analysis.policy_metrics import box_iou, gather_frames
from adafocus.analysis.readouts import is_adafocus, readout
from adafocus.data.batches import ground_truth_kwargs, iterate_batches, num_batches
from adafocus.models.adafocus import GlanceOutput
from adafocus.models.patches import box_centers
from adafocus.models.sampling import sample_frames, uniform_indices

PLACEMENTS = ("oracle", "random", "center")
CROP_HEADS = ("focus", "final")  # spatial study: the focus network's per-patch head, or the model's final exit
TEMPORAL_HEADS = ("focus", "exit")  # temporal study: the per-patch head on k frames, or the exit after k steps
FILLS = ("mean", "zero")  # what replaces a frame that is left out
BATCH_SIZE = 64

# (video (B, T, C, H, W) float in [0, 1], boxes (B, K, 4) pixels, frame_idx (B, K)) -> logits (B, n)
CropClassifier = Callable[[Tensor, Tensor, Tensor], Tensor]


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------

def _check_choice(name: str, value: str, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise ValueError(f"{name}: expected one of {tuple(allowed)}, got {value!r}")


def _batches(dataset, batch_size: int, caller: str, progress: bool, desc: str):
    """The dataset's batches, checked to carry the ground truth the studies need."""
    total = num_batches(dataset, batch_size)
    for batch in tqdm(iterate_batches(dataset, batch_size, shuffle=False), total=total, desc=desc,
                      disable=not progress, leave=False):
        if batch.get("boxes") is None or batch.get("mask") is None:
            raise ValueError(f"{caller}: the dataset ({type(dataset).__name__}) has no ground-truth 'boxes' and "
                             "'mask'; expected the synthetic benchmark (adafocus.data.synthetic.load_split)")
        yield batch


def _clip_ground_truth(dataset, caller: str) -> tuple[Tensor, Tensor, Tensor, int]:
    """``boxes (N, T, 4)``, ``mask (N, T)``, ``labels (N,)`` and the frame side of a synthetic split."""
    clips = getattr(dataset, "clips", None)
    if clips is None:
        raise ValueError(f"{caller}: expected a synthetic split with ground truth (a dataset with .clips, from "
                         f"adafocus.data.synthetic.load_split), got {type(dataset).__name__}")
    return clips.boxes, clips.mask, clips.labels, int(clips.videos.shape[-1])


def crop_classifier(model: nn.Module, head: str = "focus") -> CropClassifier:
    """A trained model's focus network and classifier as a function of ``(video, boxes, frame_idx)``.

    ``head="focus"``: the focus network's per-patch head averaged over the patches (sees the crops
    and nothing else); ``head="final"``: the last exit (crops plus the glance's view of the whole frame).
    """
    _check_choice("crop_classifier: head", head, CROP_HEADS)
    if not is_adafocus(model) or getattr(model, "focus", None) is None:
        raise ValueError(f"crop_classifier: expected a UniAdaFocus model with a focus network, got "
                         f"{type(model).__name__}")

    def classify(video: Tensor, boxes: Tensor, frame_idx: Tensor) -> Tensor:
        focus = model.focus_features(video, boxes, frame_idx)  # (B, K, C_f)
        glance = model.glance_features(video).feats if head == "final" and model.glance is not None else None
        return readout(model, glance, focus, head)  # (B, n)

    return classify


def placement_boxes(placement: str, crop_size: float, frame_idx: Tensor, gt_boxes: Tensor, frame_size: int,
                    generator: torch.Generator | None = None) -> Tensor:
    """Square boxes ``(B, K, 4)`` of side ``crop_size`` at frames ``frame_idx (B, K)``, inside the frame.

    ``oracle``: centered on the true box of that frame (shifted inwards at the border);
    ``random``: top-left corner uniform in ``[0, frame_size - crop_size]``; ``center``: the middle.
    """
    _check_choice("placement", placement, PLACEMENTS)
    if not 0 < crop_size <= frame_size:
        raise ValueError(f"crop_sizes: expected sides in (0, frame_size = {frame_size}] pixels, got {crop_size}")
    B, K = frame_idx.shape
    room = frame_size - crop_size  # the top-left corner lies in [0, room]
    if placement == "oracle":
        center = box_centers(gather_frames(gt_boxes.float(), frame_idx))  # (B, K, 2) x, y
        corner = (center - crop_size / 2).clamp(0, room)
    elif placement == "random":
        corner = torch.rand(B, K, 2, generator=generator) * room
    else:
        corner = torch.full((B, K, 2), room / 2)
    return torch.cat([corner, corner + crop_size], dim=-1)


# ---------------------------------------------------------------------------------------------
# spatial
# ---------------------------------------------------------------------------------------------

@torch.no_grad()
def spatial_redundancy(model_or_classifier: nn.Module | CropClassifier, dataset, crop_sizes: Sequence[float],
                       placements: Sequence[str] = PLACEMENTS, *, num_focus: int | None = None, head: str = "focus",
                       batch_size: int = BATCH_SIZE, seed: int = 0, progress: bool = False) -> pd.DataFrame:
    """Accuracy of a crop-only classifier against crop size and placement.

    ``model_or_classifier``: a trained UniAdaFocus (its focus network and ``head``, see
    :func:`crop_classifier`) or a :data:`CropClassifier`; ``num_focus`` (the number of frames the
    classifier takes) is needed only for the latter. Crops are squares of side ``crop_sizes``
    pixels of the full frame, at the ``K`` informative frames of each clip. Random placements are
    drawn from ``seed``.

    Rows: ``placement, crop_size, accuracy, gt_iou`` (mean IoU of the crop with the true box), ``clips``.
    """
    for p in placements:
        _check_choice("spatial_redundancy: placements", p, PLACEMENTS)
    if not len(crop_sizes):
        raise ValueError("spatial_redundancy: crop_sizes is empty; expected crop sides in pixels")
    if is_adafocus(model_or_classifier):
        model = model_or_classifier
        model.eval()
        classify, K = crop_classifier(model, head), model.num_focus
    elif callable(model_or_classifier):
        if num_focus is None or num_focus < 1:
            raise ValueError("spatial_redundancy: num_focus (the number of frames the classifier takes) must be "
                             f"an int >= 1 when a crop classifier function is given, got {num_focus!r}")
        classify, K = model_or_classifier, num_focus
    else:
        raise ValueError(f"spatial_redundancy: expected a UniAdaFocus model or a crop classifier function, got "
                         f"{type(model_or_classifier).__name__}")

    generator = torch.Generator().manual_seed(seed)
    stats = {(p, float(s)): [0, 0.0] for p in placements for s in crop_sizes}  # correct, summed IoU
    n = 0
    for batch in _batches(dataset, batch_size, "spatial_redundancy", progress, "spatial redundancy"):
        video, labels, gt_boxes, mask = batch["video"], batch["label"], batch["boxes"], batch["mask"]
        B, T = mask.shape
        S = video.shape[-1]
        frame_idx = sample_frames(mask.float(), T, K, train=False)  # (B, K): K informative frames, spread out
        for placement in placements:
            for s in crop_sizes:
                boxes = placement_boxes(placement, float(s), frame_idx, gt_boxes, S, generator)
                logits = classify(video, boxes, frame_idx)
                st = stats[(placement, float(s))]
                st[0] += int((logits.argmax(-1) == labels).sum())
                st[1] += float(box_iou(boxes, gather_frames(gt_boxes.float(), frame_idx)).mean(1).sum())
        n += B
    rows = [{"placement": p, "crop_size": s, "accuracy": c / max(n, 1), "gt_iou": iou / max(n, 1), "clips": n}
            for (p, s), (c, iou) in stats.items()]
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------
# temporal
# ---------------------------------------------------------------------------------------------

def _patch_features(model: nn.Module, video: Tensor, glance: GlanceOutput | None, frame_idx: Tensor,
                    gt_boxes: Tensor) -> Tensor:
    """Focus features ``(B, k, C_f)`` at frames ``frame_idx`` ``(B, k)`` of ``video``, in boxes placed by the model's
    own patch mode (the policy reads ``glance``; ``gt_boxes`` ``(B, T, 4)`` is read only by the oracle)."""
    mode, _ = model.resolve_modes()
    actions = model.spatial_actions(glance.maps) if mode == "policy" else None
    positions = None if glance is None else glance.positions
    boxes = model.select_boxes(mode, frame_idx, actions, positions, gt_boxes if mode == "oracle" else None)
    return model.focus_features(video, boxes, frame_idx, full=mode == "full")


def _logits_after_k(model: nn.Module, video: Tensor, gt_boxes: Tensor, k: int, head: str) -> Tensor:
    """Logits ``(B, n)`` from ``k`` uniformly spaced frames of ``video`` ``(B, T, C, H, W)``: the per-patch head
    (``head="focus"``) or the exit after ``k`` focus steps (``"exit"``; ``k = 0``: the last glance exit)."""
    B, T = video.shape[:2]
    glance = model.glance_features(video) if model.glance is not None else None
    steps = max(k, 1)  # the glance exits need one focus step to be computed with (they do not read it)
    feats = _patch_features(model, video, glance, uniform_indices(T, steps, video.device).expand(B, steps), gt_boxes)
    if head == "focus":
        return readout(model, None, feats, "focus")
    glance_exits = 0 if glance is None else glance.feats.shape[1]  # T_g
    exits = model.classify(None if glance is None else glance.feats, feats)  # (B, T_g + steps, n)
    return exits[:, glance_exits + k - 1]


@torch.no_grad()
def temporal_redundancy(model: nn.Module, dataset, ks: Sequence[int], *, head: str = "focus",
                        batch_size: int = BATCH_SIZE, progress: bool = False) -> pd.DataFrame:
    """Accuracy against the number ``k`` of uniformly spaced frames the focus network sees.

    Boxes come from the model's own ``patch_mode`` at those frames. ``head="focus"``: the focus
    network's per-patch head averaged over the ``k`` patches (any ``1 <= k <= T``);
    ``head="exit"``: the model's exit after ``k`` focus steps (``0 <= k <= K``, ``k = 0`` is the
    last glance exit; needs ``exits=True``).

    Rows: ``k, accuracy, informative_fraction`` (of the ``k`` frames, mean over clips), ``head``, ``clips``.
    """
    _check_choice("temporal_redundancy: head", head, TEMPORAL_HEADS)
    if not is_adafocus(model) or model.focus is None:
        raise ValueError(f"temporal_redundancy: expected a UniAdaFocus model with a focus network, got "
                         f"{type(model).__name__}")
    T, K = model.num_frames, model.num_focus
    if head == "exit" and not model.cfg.exits:
        raise ValueError("temporal_redundancy: head='exit' needs a model with exits (model.exits=True)")
    lo, hi = (0 if model.glance is not None else 1, K) if head == "exit" else (1, T)
    for k in ks:
        if not (isinstance(k, (int, np.integer)) and lo <= k <= hi):
            raise ValueError(f"temporal_redundancy: ks: expected ints in [{lo}, {hi}] for head={head!r}, got {k!r}")
    model.eval()
    correct = {int(k): 0 for k in ks}
    informative = {int(k): 0.0 for k in ks}
    n = 0
    for batch in _batches(dataset, batch_size, "temporal_redundancy", progress, "temporal redundancy"):
        video, labels, gt_boxes, mask = batch["video"], batch["label"], batch["boxes"], batch["mask"]
        for k in correct:
            logits = _logits_after_k(model, video, gt_boxes, k, head)
            correct[k] += int((logits.argmax(-1) == labels).sum())
            if k:
                informative[k] += float(mask[:, uniform_indices(T, k)].float().mean(1).sum())
        n += len(labels)
    return pd.DataFrame([{"k": k, "accuracy": correct[k] / max(n, 1),
                          "informative_fraction": informative[k] / max(n, 1),
                          "head": head, "clips": n} for k in correct])


def _true_class_prob(model: nn.Module, video: Tensor, batch: dict[str, Tensor]) -> Tensor:
    """The true class's probability ``(B,)`` when ``model`` sees ``video`` ``(B, T, C, H, W)``."""
    out = model(video, **ground_truth_kwargs(model, batch))
    return out.logits.softmax(-1).gather(1, batch["label"][:, None])[:, 0]  # (B,)


@torch.no_grad()
def frame_importance(model: nn.Module, dataset, *, fill: str = "mean", batch_size: int = BATCH_SIZE,
                     progress: bool = False) -> pd.DataFrame:
    """Leave-one-frame-out: the drop in the true class's probability when frame ``t`` is blanked.

    Frame ``t`` is replaced by the clip's temporal mean frame (``fill="mean"``: the static
    background, the moving object smeared out) or by zeros, and the *whole* model runs again (its
    policies may choose other frames or boxes: this is what the model loses without that frame).

    Rows, one per clip and frame: ``clip, frame, drop, informative``. See :func:`importance_correlation`.
    """
    _check_choice("frame_importance: fill", fill, FILLS)
    model.eval()
    rows: list[pd.DataFrame] = []
    for batch in _batches(dataset, batch_size, "frame_importance", progress, "frame importance"):
        video = batch["video"]  # (B, T, C, H, W)
        B, T = video.shape[:2]
        base = _true_class_prob(model, video, batch)
        blank = video.mean(dim=1) if fill == "mean" else torch.zeros_like(video[:, 0])  # (B, C, H, W)
        drops = torch.empty(B, T)
        for t in range(T):
            left_out = video.clone()
            left_out[:, t] = blank
            drops[:, t] = base - _true_class_prob(model, left_out, batch)
        rows.append(pd.DataFrame({"clip": batch["index"].repeat_interleave(T).numpy(),
                                  "frame": np.tile(np.arange(T), B), "drop": drops.flatten().numpy(),
                                  "informative": batch["mask"].flatten().numpy()}))
    return pd.concat(rows, ignore_index=True)


def importance_correlation(importance: pd.DataFrame) -> float:
    """Pearson (point-biserial) correlation between a frame's ``drop`` and its ``informative`` flag.

    Positive when the model relies on the frames that show the object. NaN when either column is
    constant (e.g. every frame informative).
    """
    for col in ("drop", "informative"):
        if col not in importance:
            raise ValueError(f"importance_correlation: expected a frame_importance table with column {col!r}, "
                             f"got columns {list(importance.columns)}")
    x = importance["drop"].to_numpy(dtype=np.float64)
    y = importance["informative"].to_numpy(dtype=np.float64)
    if x.std() == 0 or y.std() == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


# ---------------------------------------------------------------------------------------------
# sample-wise
# ---------------------------------------------------------------------------------------------

def samplewise_redundancy(exit_steps: Tensor | np.ndarray | Sequence[int], dataset,
                          correct: Tensor | np.ndarray | Sequence[bool] | None = None) -> pd.DataFrame:
    """Each clip's exit step beside its difficulty knobs.

    ``exit_steps (N,)``: the exit each clip of ``dataset`` (in order) leaves at, e.g.
    ``adafocus.analysis.early_exit.exit_steps(confidences(exit_logits), thresholds)``; ``correct (N,)``
    optionally flags the right predictions.

    Rows, one per clip: ``clip, exit_step, label, object_size`` (mean side ``sqrt(w * h)`` of the
    true box over the clip, pixels), ``object_fraction`` (that side over the frame side),
    ``informative_frames`` (how many frames show the object) and ``correct`` when given.
    """
    boxes, mask, labels, S = _clip_ground_truth(dataset, "samplewise_redundancy")
    steps = torch.as_tensor(np.asarray(exit_steps)).long().flatten()
    N = len(labels)
    if len(steps) != N:
        raise ValueError(f"samplewise_redundancy: exit_steps has {len(steps)} entries, expected one per clip ({N})")
    w = (boxes[..., 2] - boxes[..., 0]).clamp(min=0)
    h = (boxes[..., 3] - boxes[..., 1]).clamp(min=0)
    side = (w * h).sqrt().mean(1)  # (N,)
    df = pd.DataFrame({"clip": np.arange(N), "exit_step": steps.numpy(), "label": labels.numpy(),
                       "object_size": side.numpy(), "object_fraction": (side / S).numpy(),
                       "informative_frames": mask.sum(1).numpy()})
    if correct is not None:
        c = np.asarray(correct).astype(bool).flatten()
        if len(c) != N:
            raise ValueError(f"samplewise_redundancy: correct has {len(c)} entries, expected one per clip ({N})")
        df["correct"] = c
    return df


def exit_summary(per_clip: pd.DataFrame) -> pd.DataFrame:
    """:func:`samplewise_redundancy`'s table grouped by exit step: ``exit_step, clips, fraction,
    object_size, informative_frames`` (means) and ``accuracy`` when ``correct`` is known."""
    if "exit_step" not in per_clip:
        raise ValueError(f"exit_summary: expected a samplewise_redundancy table, got columns {list(per_clip.columns)}")
    agg = {"clips": ("clip", "size"), "object_size": ("object_size", "mean"),
           "informative_frames": ("informative_frames", "mean")}
    if "correct" in per_clip:
        agg["accuracy"] = ("correct", "mean")
    out = per_clip.groupby("exit_step").agg(**agg).reset_index()
    out.insert(2, "fraction", out["clips"] / max(len(per_clip), 1))
    return out

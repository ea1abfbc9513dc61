"""Real early exit: the model step by step, every clip dropped at its first confident exit.

(docs/design.md, "Early exit".) :func:`exiting_forward` runs a :class:`~adafocus.models.adafocus.UniAdaFocus`
through the same public steps as its forward (glance, decide, focus, classify), one exit at a time:

1. the ``T_g`` glance frames one at a time (:meth:`~UniAdaFocus.glance_features` on
   ``model.glance_idx[t:t + 1]``, then :meth:`ExitClassifier.glance_step`);
2. :meth:`~UniAdaFocus.decide` once, on the glance collected so far, for the clips still running;
3. the ``K`` focus patches one at a time (:meth:`~UniAdaFocus.focus_features`, then
   :meth:`ExitClassifier.focus_step`).

Steps at which no clip can leave (threshold ``+inf``: exits that calibration found unusable, such as
glance exits that cannot read the digits) run together, one network call for all their frames,
with the same results and MACs (``group=True``, the default; issue 16 measured the gain in wall clock).

A clip whose confidence (max softmax probability) at exit ``s`` reaches ``thresholds[s]`` leaves
there and is not computed any further, so counting MACs around this call measures what early exit
really costs. A clip that runs to the end gets the logits of ``model(video)``. Calibrating the
thresholds and the curves they give are pure functions of logits: :mod:`adafocus.analysis.early_exit`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from adafocus.models.adafocus import GlanceOutput, UniAdaFocus
from adafocus.models.patches import gather_frames


GLANCE_MODES = ("stepwise", "whole")


@dataclass
class ExitInference:
    """Where and with what each clip left."""

    logits: Tensor  # (B, n) each clip's logits at its exit
    predictions: Tensor  # (B,) the class predicted there
    exit_step: Tensor  # (B,) the exit taken (0 .. S-1)
    confidence: Tensor  # (B,) max softmax probability at that exit


def _keep(g: GlanceOutput, index: Tensor) -> GlanceOutput:
    """The glance of a subset of the clips (a bool mask or indices)."""
    return GlanceOutput(g.maps[index], g.feats[index], g.positions[index])


def _check_exiting_model(model: UniAdaFocus, thresholds: Tensor) -> None:
    if not getattr(model, "step_by_step", True):  # e.g. Uni-AdaFocus-TSM: one answer from all K patches at once
        raise ValueError(f"exiting_forward: {type(model).__name__} has no step-by-step early exit (its classifier "
                         "answers once, from every glance frame and all K patches together); read its two exits "
                         "(glance, glance + focus) from model(video).exit_logits instead")
    if not model.classifier.exits:
        raise ValueError("exiting_forward: the model was built without exits (model.exits=False)")
    if model.cfg.focus_tsm:
        raise ValueError("exiting_forward: a temporal-shift focus network needs all K patches at once")
    S = model.classifier.num_exits
    if thresholds.shape != (S,):
        raise ValueError(f"exiting_forward: expected {S} thresholds (one per exit), got {tuple(thresholds.shape)}")


def _chunks(can_leave: list[bool], first: int, count: int, group: bool) -> list[tuple[int, int]]:
    """Steps ``first .. first + count - 1`` cut into runs ``(start, stop)`` (phase-local) that end at a step where
    clips may leave (or at the phase's end); ``group=False``: one step per run."""
    out, start = [], 0
    for i in range(count):
        if not group or can_leave[first + i] or i == count - 1:
            out.append((start, i + 1))
            start = i + 1
    return out


@torch.no_grad()
def exiting_forward(model: UniAdaFocus, video: Tensor, thresholds: Tensor, patch_mode: str | None = None,
                    frame_mode: str | None = None, gt_boxes: Tensor | None = None,
                    gt_mask: Tensor | None = None, group: bool = True, glance: str = "stepwise") -> ExitInference:
    """Run ``model`` (eval mode) step by step on ``video`` ``(B, T, C, H, W)`` with ``thresholds`` ``(S,)``.

    ``patch_mode`` / ``frame_mode`` override the model's modes; ``gt_boxes`` ``(B, T, 4)`` and
    ``gt_mask`` ``(B, T)`` are read only by the oracle modes (as in ``model(video, ...)``).
    ``group``: consecutive steps at which no clip can leave (threshold ``+inf``, e.g. the glance exits
    that calibration found unusable) run as one call of the network on all their frames: the same
    results and the same MACs as one step at a time (``group=False``), in fewer, larger operations.
    ``glance``: ``"stepwise"`` (default) glances at one frame per exit, so a clip that leaves early pays for
    the frames it saw; ``"whole"`` glances at all ``T_g`` frames of every clip in one call of the glance network,
    then reads the glance exits in turn: the same exits and predictions, logits equal up to float rounding (the
    batched convolutions sum in another order; ``tests/test_early_exit.py``: within 1e-5), every clip pays the
    whole glance (:func:`~adafocus.analysis.early_exit.step_costs` with the same ``glance`` counts it), in one
    large operation instead of ``T_g`` small ones.
    """
    if glance not in GLANCE_MODES:
        raise ValueError(f"exiting_forward: glance must be one of {GLANCE_MODES}, got {glance!r}")
    model.eval()
    model.check_input(video)
    _check_exiting_model(model, thresholds)
    cls = model.classifier
    S, B = cls.num_exits, video.shape[0]
    can_leave = [bool(thresholds[s] < float("inf")) or s == S - 1 for s in range(S)]
    logits_taken = torch.zeros(B, cls.num_classes)
    pred = torch.full((B,), -1, dtype=torch.long)
    step_taken = torch.full((B,), S - 1, dtype=torch.long)
    conf_taken = torch.zeros(B)
    alive = torch.arange(B)  # (b,) the clips still running, as indices into the batch
    state = cls.init_state()
    step = 0

    def settle(logits: Tensor) -> Tensor | None:
        """Record the clips that leave at ``step`` (logits ``(b, n)``); return the mask ``(b,)`` of those that
        stay, or None when no clip can leave at this step (all stay)."""
        nonlocal alive, state, step
        if not can_leave[step]:
            step += 1
            return None
        conf, label = logits.softmax(-1).max(-1)
        leave = conf >= thresholds[step] if step < S - 1 else torch.ones_like(conf, dtype=torch.bool)
        done = alive[leave]
        logits_taken[done], pred[done], conf_taken[done] = logits[leave].float(), label[leave], conf[leave]
        step_taken[done] = step
        alive, state, step = alive[~leave], state.select(~leave), step + 1
        return ~leave

    def glance_at(start: int, stop: int) -> GlanceOutput:
        """Glance frames ``start .. stop - 1`` of the clips still running (only those frames are copied)."""
        pos = model.glance_idx[start:stop].expand(len(alive), -1)
        if len(alive) == B:
            return model.glance_features(video, frames=pos)
        local = torch.arange(stop - start, device=video.device).expand(len(alive), -1)
        g = model.glance_features(gather_frames(video, pos, alive), frames=local)
        return GlanceOutput(g.maps, g.feats, pos)

    seen: GlanceOutput | None = None  # every clip's glance so far, (B, T_g, ...): rows of clips that left are stale
    if glance == "whole":
        seen = model.glance_features(video, frames=model.glance_idx.expand(B, -1))  # (B, T_g, ...)
        feats = seen.feats
        for j in range(cls.glance_frames):
            logits, state = cls.glance_step(feats[:, j], state)
            stay = settle(logits)
            if stay is not None:
                feats = feats[stay]
            if len(alive) == 0:
                break
    for start, stop in _chunks(can_leave, 0, cls.glance_frames, group) if glance == "stepwise" else ():
        if len(alive) == 0:
            break
        g = glance_at(start, stop)  # (b, stop - start, ...)
        if seen is None:
            seen = GlanceOutput(*(t.new_empty(B, cls.glance_frames, *t.shape[2:]) for t in (g.maps, g.feats, g.positions)))
        for buf, t in zip((seen.maps, seen.feats, seen.positions), (g.maps, g.feats, g.positions)):
            buf[alive, start:stop] = t
        for j in range(stop - start):
            logits, state = cls.glance_step(g.feats[:, j], state)
            stay = settle(logits)
            if stay is not None and j < stop - start - 1:
                g = _keep(g, stay)
    if cls.num_focus == 0 or len(alive) == 0:
        return ExitInference(logits_taken, pred, step_taken, conf_taken)
    seen = _keep(seen, alive)  # (b, T_g, ...): the clips still running

    pick = (lambda x: None if x is None else x[alive])
    plan = model.decide(seen, len(alive), patch_mode, frame_mode, pick(gt_boxes), pick(gt_mask))
    # what the focus steps read of the plan, for the clips still running (the glance maps are not carried along)
    frame_idx, boxes, full = plan.frame_idx, plan.boxes, plan.patch_mode == "full"  # (b, K), (b, K, 4)
    for start, stop in _chunks(can_leave, cls.glance_frames, cls.num_focus, group):
        if len(alive) == 0:
            break
        # only the frames this run looks at, gathered from the clips still running (not whole clips)
        frames = gather_frames(video, frame_idx[:, start:stop], alive)  # (b, k, C, H, W)
        local = torch.arange(stop - start).expand(len(alive), -1)
        feats = model.focus_features(frames, boxes[:, start:stop], local, full=full)  # (b, k, C_f)
        for j in range(stop - start):
            logits, state = cls.focus_step(feats[:, j], state)
            stay = settle(logits)
            if stay is not None:
                frame_idx, boxes, feats = frame_idx[stay], boxes[stay], feats[stay]
    return ExitInference(logits_taken, pred, step_taken, conf_taken)

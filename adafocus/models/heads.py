"""The classifier with exits (docs/design.md, "The method", step 6): a prediction after every step.

Every frame's feature goes through a per-step MLP (``Linear -> ReLU`` to ``hidden_dim``); a
running **max-pool** over the steps seen so far feeds one linear head per step (FrameExit style),
so the network can answer after any step. The steps come in two phases:

1. ``T_g`` **glance steps**: exit ``t`` reads ``max(g_1..g_t)`` (``hidden_dim`` features);
2. ``K`` **focus steps**: exit ``k`` reads ``[max(f_1..f_k), max(g_1..g_{T_g})]``
   (``2 * hidden_dim``): the focus features so far next to everything the glance saw.

That gives ``T_g + K`` exits. Sample-wise early exit stops at the first step whose confidence
clears its threshold, so the easiest videos leave during the glance and never pay for a patch.
For early exit to save real compute the classifier can run **step by step**
(:meth:`ExitClassifier.init_state`, :meth:`~ExitClassifier.glance_step`,
:meth:`~ExitClassifier.focus_step`) with a carried :class:`ExitState` that can be sliced to the
samples still running (:meth:`ExitState.select`). :meth:`ExitClassifier.forward` computes every
exit at once and gives the same numbers.

The per-frame auxiliary heads of the training signal (each glance frame and each focus patch
classified alone, as in the paper) belong to the backbones, not to this classifier: see
:class:`adafocus.models.adafocus.UniAdaFocus`.

Variants: ``glance_dim=None`` (no glance; exits over focus steps only, each reading
``hidden_dim`` features), ``focus_dim=None`` (no focus; glance exits only), and ``exits=False``
(one head at the end: the last exit alone).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn


@dataclass
class ExitState:
    """Running max-pools carried between steps; ``None`` until the first step of that kind."""

    glance_max: Tensor | None = None  # (B, hidden_dim)
    focus_max: Tensor | None = None  # (B, hidden_dim)
    glance_steps: int = 0
    focus_steps: int = 0

    def select(self, index: Tensor) -> ExitState:
        """The state of a subset of the batch (a bool mask or indices), e.g. the samples that did not exit."""
        pick = (lambda t: None if t is None else t[index])
        return ExitState(pick(self.glance_max), pick(self.focus_max), self.glance_steps, self.focus_steps)


def _running_max(h: Tensor) -> Tensor:
    """``(B, S, D)`` -> ``(B, S, D)``: the max over steps ``1..s`` at every step ``s``."""
    return torch.cummax(h, dim=1).values


class ExitClassifier(nn.Module):
    """Per-step MLPs, running max-pools and one linear head per exit.

    glance_dim / focus_dim: feature widths (``None`` = that network is absent); glance_frames
    (``T_g``) / num_focus (``K``): steps of each kind; hidden_dim: the MLPs' output width.
    """

    def __init__(self, glance_dim: int | None, focus_dim: int | None, glance_frames: int, num_focus: int,
                 hidden_dim: int, num_classes: int, exits: bool = True) -> None:
        super().__init__()
        if glance_dim is None and focus_dim is None:
            raise ValueError("ExitClassifier: needs glance features, focus features or both")
        self.use_glance, self.use_focus, self.exits = glance_dim is not None, focus_dim is not None, exits
        self.glance_frames = glance_frames if self.use_glance else 0
        self.num_focus = num_focus if self.use_focus else 0
        self.hidden_dim, self.num_classes = hidden_dim, num_classes
        focus_in = hidden_dim * (2 if self.use_glance else 1)  # focus exits also read the glance summary
        if self.use_glance:
            self.glance_mlp = nn.Sequential(nn.Linear(glance_dim, hidden_dim), nn.ReLU(inplace=True))
        if self.use_focus:
            self.focus_mlp = nn.Sequential(nn.Linear(focus_dim, hidden_dim), nn.ReLU(inplace=True))
        if exits:
            self.glance_exits = nn.ModuleList(nn.Linear(hidden_dim, num_classes) for _ in range(self.glance_frames))
            self.focus_exits = nn.ModuleList(nn.Linear(focus_in, num_classes) for _ in range(self.num_focus))
        else:  # one head, on the summary of everything
            self.final = nn.Linear(focus_in if self.use_focus else hidden_dim, num_classes)

    @property
    def num_exits(self) -> int:
        return self.glance_frames + self.num_focus if self.exits else 1

    # -- step by step (early exit) -------------------------------------------------------------
    def init_state(self) -> ExitState:
        return ExitState()

    def glance_step(self, feat: Tensor, state: ExitState) -> tuple[Tensor | None, ExitState]:
        """One glance frame's pooled feature ``(B, C_g)`` -> (this step's exit logits ``(B, n)``, new state).

        Without exits the logits are ``None`` until the last step (there is no head to read).
        """
        if not self.use_glance:
            raise RuntimeError("ExitClassifier.glance_step: this classifier has no glance")
        if state.glance_steps >= self.glance_frames:
            raise RuntimeError(f"ExitClassifier.glance_step: all {self.glance_frames} glance steps already taken")
        if state.focus_steps > 0:
            raise RuntimeError("ExitClassifier.glance_step: glance steps must come before focus steps")
        h = self.glance_mlp(feat)
        gmax = h if state.glance_max is None else torch.maximum(state.glance_max, h)
        state = ExitState(gmax, None, state.glance_steps + 1, 0)
        return self._exit_logits(state), state

    def focus_step(self, feat: Tensor, state: ExitState) -> tuple[Tensor | None, ExitState]:
        """One focus patch's pooled feature ``(B, C_f)`` -> (this step's exit logits ``(B, n)``, new state)."""
        if not self.use_focus:
            raise RuntimeError("ExitClassifier.focus_step: this classifier has no focus network")
        if self.use_glance and state.glance_steps != self.glance_frames:
            raise RuntimeError(f"ExitClassifier.focus_step: take all {self.glance_frames} glance steps first "
                               f"(taken: {state.glance_steps})")
        if state.focus_steps >= self.num_focus:
            raise RuntimeError(f"ExitClassifier.focus_step: all {self.num_focus} focus steps already taken")
        h = self.focus_mlp(feat)
        fmax = h if state.focus_max is None else torch.maximum(state.focus_max, h)
        state = ExitState(state.glance_max, fmax, state.glance_steps, state.focus_steps + 1)
        return self._exit_logits(state), state

    def _exit_logits(self, s: ExitState) -> Tensor | None:
        """Logits of the exit right after the steps recorded in ``s``."""
        if s.focus_steps == 0:  # still glancing
            z = s.glance_max
            if self.exits:
                return self.glance_exits[s.glance_steps - 1](z)
            return self.final(z) if not self.use_focus and s.glance_steps == self.glance_frames else None
        z = s.focus_max if not self.use_glance else torch.cat([s.focus_max, s.glance_max], dim=-1)
        if self.exits:
            return self.focus_exits[s.focus_steps - 1](z)
        return self.final(z) if s.focus_steps == self.num_focus else None

    # -- all steps at once (training) ----------------------------------------------------------
    def forward(self, glance_feats: Tensor | None, focus_feats: Tensor | None) -> Tensor:
        """glance_feats ``(B, T_g, C_g)``, focus_feats ``(B, k, C_f)`` with ``k <= K`` -> exit logits ``(B, S, n)``.

        With fewer than ``K`` focus steps (``k < K``) the exits of the steps taken are returned
        (``S = T_g + k``); without exits, the single head needs all ``K``.
        """
        logits: list[Tensor] = []
        gsum = None
        if self.use_glance:
            self._check(glance_feats, self.glance_frames, "glance_feats", "(B, T_g, C_g)")
            g = _running_max(self.glance_mlp(glance_feats))  # (B, T_g, D)
            gsum = g[:, -1]  # (B, D): everything the glance saw
            if self.exits:
                logits += [head(g[:, t]) for t, head in enumerate(self.glance_exits)]
        if self.use_focus:
            self._check(focus_feats, self.num_focus, "focus_feats", "(B, k, C_f)", partial=self.exits)
            f = _running_max(self.focus_mlp(focus_feats))  # (B, k, D)
            if gsum is not None:
                f = torch.cat([f, gsum[:, None].expand_as(f)], dim=-1)  # (B, K, 2D)
            if self.exits:
                logits += [head(f[:, k]) for k, head in enumerate(self.focus_exits[:f.shape[1]])]  # the k taken
            else:
                logits.append(self.final(f[:, -1]))
        elif not self.exits:
            logits.append(self.final(gsum))
        return torch.stack(logits, dim=1)

    @staticmethod
    def _check(x: Tensor | None, steps: int, name: str, shape: str, partial: bool = False) -> None:
        ok = x is not None and x.dim() == 3 and (1 <= x.shape[1] <= steps if partial else x.shape[1] == steps)
        if not ok:
            got = None if x is None else tuple(x.shape)
            need = f"1..{steps}" if partial else f"{steps}"
            raise ValueError(f"ExitClassifier: {name} must be {shape} with {need} steps, got {got}")

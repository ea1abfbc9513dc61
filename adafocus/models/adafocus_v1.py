"""AdaFocus V1 (Wang et al., ICCV 2021): a recurrent policy picks each patch from a grid, trained by RL.

The family's first member (docs/design.md, "AdaFocus V1: reinforcement learning"). One clip
``(B, T, C, H, W)`` is read in ``K`` steps, at the ``K`` frames of the uniform grid (the frames
AdaFocusV2 focuses on). At step ``k``:

1. **Glance.** The cheap glance network (:class:`~adafocus.models.adafocus.Glance`, the same as
   Uni-AdaFocus's and pretrained the same way) sees frame ``k`` at low resolution: a map
   ``(B, C_g, h, w)`` and a pooled feature ``(B, C_g)``.
2. **Policy.** :class:`GridPolicy`, an actor-critic with a GRU, reads the (detached) glance map and its
   memory of the earlier steps and gives a categorical distribution over ``G x G`` candidate patch
   positions (a grid of top-left corners spanning the frame) and a value (the critic, for PPO).
   In training a cell is *sampled*; at test the most likely cell is taken.
3. **Focus.** The ``P x P`` patch at that cell (native resolution: the box side is ``P``) goes
   through the focus ResNet.
4. **Classifier.** :class:`RecurrentClassifier`: the glance and focus features of the step, a linear
   layer, a GRU over the steps and a linear head: a prediction after every step.

Choosing a cell is not differentiable: the policy learns by reinforcement learning (PPO, with the
gain in the classifier's confidence on the true class as reward) in the second of V1's three
training stages (:mod:`adafocus.train_v1`). The policy reads only glance maps, so every cell can be
chosen before any patch is seen: :meth:`AdaFocusV1.plan` decides all ``K`` cells, :meth:`AdaFocusV1.run`
looks and answers, as in :class:`~adafocus.models.adafocus.UniAdaFocus`, whose input checks, glance
and focus steps this class inherits. ``model(video) == model.run(video, model.plan(video))``.

The geometry of the policy (grid side, widths) is a :class:`V1Config`, kept out of
:class:`~adafocus.config.ModelConfig` so that no other model's cache key changes.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
from torch import Tensor, nn

from adafocus.config import ConfigError, ModelConfig, _check_types
from adafocus.models.adafocus import AdaFocusOutput, Plan, UniAdaFocus, stage

POLICY_MODES = ("sample", "greedy", "random")  # draw a cell from the policy, take its most likely cell, or uniform


@dataclass(frozen=True)
class V1Config:
    """AdaFocus V1's policy: ``grid`` x ``grid`` candidate patch positions, a 1x1 conv to ``policy_channels``
    on the glance map, a linear layer and a GRU of ``policy_hidden`` units."""

    grid: int = 5  # G: candidate top-left corners per axis, evenly spread over [0, frame - P] pixels
    policy_channels: int = 16  # 1x1 conv on the glance map before it is flattened
    policy_hidden: int = 128  # the policy GRU's width (actor and critic read it)

    def validate(self, prefix: str = "v1") -> None:
        _check_types(self, prefix)
        for f in fields(self):
            value = getattr(self, f.name)
            if not 1 <= value <= 4096:
                raise ConfigError(f"{prefix}.{f.name}: expected an int in [1, 4096], got {value!r}")

    @property
    def num_actions(self) -> int:
        return self.grid * self.grid


def grid_corners(grid: int, frame_size: int, patch_size: int) -> Tensor:
    """``(G,)`` top-left pixel positions of the candidate patches along one axis: ``G`` integers evenly spread over
    ``[0, frame_size - patch_size]`` (the center alone when ``G = 1``). Raises a ValueError naming ``grid`` when
    the frame has fewer than ``G`` distinct positions for a ``P x P`` patch."""
    free = frame_size - patch_size
    if free < 0:
        raise ValueError(f"AdaFocusV1: model.patch_size = {patch_size} exceeds the frame ({frame_size} pixels)")
    if grid > free + 1:
        raise ValueError(f"AdaFocusV1: v1.grid = {grid} candidate positions per axis, but a {patch_size} px patch has "
                         f"only {free + 1} distinct positions in a {frame_size} px frame; expected grid <= {free + 1}")
    if grid == 1:
        return torch.tensor([free // 2])
    return torch.round(torch.arange(grid, dtype=torch.float64) * free / (grid - 1)).long()


def cell_boxes(cells: Tensor, corners: Tensor, patch_size: int) -> Tensor:
    """Grid cells ``(B, K)`` (row-major indices in ``[0, G²)``) -> boxes ``(B, K, 4)`` = ``(x0, y0, x1, y1)``
    pixels."""
    G = corners.numel()
    y0 = corners[torch.div(cells, G, rounding_mode="floor")].float()
    x0 = corners[cells % G].float()
    return torch.stack([x0, y0, x0 + patch_size, y0 + patch_size], dim=-1)


class GridPolicy(nn.Module):
    """Actor-critic over the steps' glance maps ``(B, K, C_g, h, w)`` -> logits ``(B, K, G²)``, values ``(B, K)``.

    Each map goes through a 1x1 conv (``policy_channels``), is flattened and projected to the GRU's
    width; the GRU carries what the earlier steps showed; the actor gives one logit per grid cell and
    the critic the expected return (PPO's baseline)."""

    def __init__(self, in_channels: int, map_size: int, v1: V1Config) -> None:
        super().__init__()
        c, hid = v1.policy_channels, v1.policy_hidden
        self.encoder = nn.Sequential(nn.Conv2d(in_channels, c, kernel_size=1), nn.ReLU(inplace=True), nn.Flatten(),
                                     nn.Linear(c * map_size * map_size, hid), nn.ReLU(inplace=True))
        self.gru = nn.GRU(hid, hid, batch_first=True)
        self.actor = nn.Linear(hid, v1.num_actions)
        self.critic = nn.Linear(hid, 1)

    def forward(self, maps: Tensor) -> tuple[Tensor, Tensor]:
        B, K = maps.shape[:2]
        x = self.encoder(maps.flatten(0, 1)).reshape(B, K, -1)  # (B, K, hid)
        h, _ = self.gru(x)  # (B, K, hid): step k has seen steps 1..k
        return self.actor(h), self.critic(h).squeeze(-1)


class RecurrentClassifier(nn.Module):
    """Per step ``[glance feature, focus feature]`` -> linear + ReLU -> GRU -> linear head: logits ``(B, k, n)``."""

    def __init__(self, glance_dim: int, focus_dim: int, hidden_dim: int, num_classes: int) -> None:
        super().__init__()
        self.embed = nn.Sequential(nn.Linear(glance_dim + focus_dim, hidden_dim), nn.ReLU(inplace=True))
        self.gru = nn.GRU(hidden_dim, hidden_dim, batch_first=True)
        self.head = nn.Linear(hidden_dim, num_classes)

    def forward(self, glance_feats: Tensor, focus_feats: Tensor) -> Tensor:
        """glance_feats ``(B, k, C_g)``, focus_feats ``(B, k, C_f)`` -> every step's logits ``(B, k, n)``."""
        if glance_feats.shape[:2] != focus_feats.shape[:2]:
            raise ValueError(f"RecurrentClassifier: glance_feats (B, k, C_g) and focus_feats (B, k, C_f) must agree "
                             f"on (B, k), got {tuple(glance_feats.shape)} and {tuple(focus_feats.shape)}")
        h, _ = self.gru(self.embed(torch.cat([glance_feats, focus_feats], dim=-1)))  # (B, k, hidden)
        return self.head(h)


@dataclass
class V1Plan(Plan):
    """A :class:`~adafocus.models.adafocus.Plan` with the policy's categorical choice (what PPO needs)."""

    cells: Tensor | None = None  # (B, K) the chosen grid cells
    policy_logits: Tensor | None = None  # (B, K, G²) the actor's logits (live)
    values: Tensor | None = None  # (B, K) the critic's values (live)

    def select(self, index: Tensor) -> "V1Plan":
        base = super().select(index)
        pick = (lambda t: None if t is None else t[index])
        return V1Plan(**{f.name: getattr(base, f.name) for f in fields(Plan)}, cells=pick(self.cells),
                      policy_logits=pick(self.policy_logits), values=pick(self.values))


class AdaFocusV1(UniAdaFocus):
    """AdaFocus V1. ``cfg``: the :class:`ModelConfig` of the registered ``adafocus_v1`` (``glance_frames = num_focus``:
    one glance per step); ``v1``: the policy's geometry (default :class:`V1Config`)."""

    def __init__(self, cfg: ModelConfig, frame_size: int, num_frames: int, channels: int = 3,
                 v1: V1Config | None = None) -> None:
        if cfg.glance_frames != cfg.num_focus or not (cfg.use_glance and cfg.use_focus):
            raise ValueError(f"AdaFocusV1: expected one glance per step (model.glance_frames == model.num_focus) and "
                             f"both networks, got glance_frames={cfg.glance_frames}, num_focus={cfg.num_focus}, "
                             f"use_glance={cfg.use_glance}, use_focus={cfg.use_focus}")
        super().__init__(cfg, frame_size, num_frames, channels)
        self.v1 = v1 = v1 if v1 is not None else V1Config()
        v1.validate()
        self.register_buffer("corners", grid_corners(v1.grid, frame_size, cfg.patch_size), persistent=False)
        # V1's policy and classifier replace Uni-AdaFocus's (its config says spatial_policy=True: a learned policy);
        # no surrogate head, no per-frame heads
        self.glance_head = self.focus_head = self.spatial_head = None
        self.spatial_policy = GridPolicy(self.glance.feature_dim, self.glance.map_size(cfg.glance_size), v1)
        self.classifier = RecurrentClassifier(self.glance.feature_dim, self.focus.feature_dim, cfg.hidden_dim,
                                              cfg.num_classes)

    @property
    def needs_ground_truth(self) -> bool:
        return False  # label-free: the policy learns from the classifier's confidence

    def resolve_modes(self, patch_mode: str | None = None, frame_mode: str | None = None) -> tuple[str, str]:
        if patch_mode not in (None, "policy", "random"):
            raise ValueError(f"AdaFocusV1: patch_mode must be 'policy' or 'random', got {patch_mode!r}")
        if frame_mode not in (None, "uniform"):
            raise ValueError(f"AdaFocusV1: frame_mode must be 'uniform' (V1 reads the uniform grid), "
                             f"got {frame_mode!r}")
        return patch_mode or "policy", "uniform"

    def policy(self, maps: Tensor) -> tuple[Tensor, Tensor]:
        """Glance maps ``(B, K, C_g, h, w)`` (detached here: the policy never trains the glance) -> the actor's
        logits ``(B, K, G²)`` and the critic's values ``(B, K)``."""
        return self.spatial_policy(maps.detach())

    def choose(self, logits: Tensor, mode: str) -> Tensor:
        """Cells ``(B, K)`` from logits ``(B, K, G²)``: ``sample`` (training), ``greedy`` (test) or ``random``
        (uniform)."""
        if mode == "sample":
            return torch.distributions.Categorical(logits=logits).sample()
        if mode == "greedy":
            return logits.argmax(-1)
        if mode == "random":
            return torch.randint(logits.shape[-1], logits.shape[:-1], device=logits.device)
        raise ValueError(f"AdaFocusV1: policy mode must be one of {POLICY_MODES}, got {mode!r}")

    def plan(self, video: Tensor, patch_mode: str | None = None, frame_mode: str | None = None,
             gt_boxes: Tensor | None = None, gt_mask: Tensor | None = None, policy_mode: str | None = None) -> V1Plan:
        """Glance at the ``K`` step frames of ``video`` ``(B, T, C, H, W)`` and choose a grid cell for each.

        ``policy_mode`` (:data:`POLICY_MODES`): default ``sample`` in training, ``greedy`` in eval;
        ``patch_mode="random"`` is ``policy_mode="random"``. ``gt_boxes`` / ``gt_mask`` are ignored (label-free)."""
        pm, fm = self.resolve_modes(patch_mode, frame_mode)
        mode = "random" if pm == "random" else policy_mode or ("sample" if self.training else "greedy")
        self.check_input(video)
        B = video.shape[0]
        frame_idx = self.glance_idx.expand(B, -1)  # (B, K): one glance and one patch per step
        glance = self.glance_features(video, frame_idx)
        with stage("policies"):
            logits, values = self.policy(glance.maps)
            cells = self.choose(logits, mode)
        with stage("sampling_crop"):
            boxes = cell_boxes(cells, self.corners, self.cfg.patch_size)  # (B, K, 4)
        return V1Plan(pm, fm, glance, frame_idx, boxes, None, boxes, None, cells=cells, policy_logits=logits,
                      values=values)

    def plan_cells(self, plan: V1Plan, cells: Tensor) -> V1Plan:
        """The same glance with other cells ``(B, K)`` (e.g. random ones, or a rollout's)."""
        boxes = cell_boxes(cells, self.corners, self.cfg.patch_size)
        return V1Plan(plan.patch_mode, plan.frame_mode, plan.glance, plan.frame_idx, boxes, None, boxes, None,
                      cells=cells, policy_logits=plan.policy_logits, values=plan.values)

    def run(self, video: Tensor, plan: Plan, steps: int | None = None) -> AdaFocusOutput:
        """Look at the plan's patches and answer after every step: ``exit_logits`` ``(B, k, n)``."""
        K = plan.frame_idx.shape[1]
        k = K if steps is None else int(steps)
        if not 1 <= k <= K:
            raise ValueError(f"AdaFocusV1.run: steps must be in [1, {K}], got {steps!r}")
        focus_feats = self.focus_features(video, plan.boxes[:, :k].detach(), plan.frame_idx[:, :k])  # (B, k, C_f)
        exit_logits = self.classify(plan.glance.feats[:, :k], focus_feats)  # (B, k, n)
        return AdaFocusOutput(exit_logits[:, -1], exit_logits, plan)

    def forward(self, video: Tensor, gt_boxes: Tensor | None = None, gt_mask: Tensor | None = None,
                patch_mode: str | None = None, frame_mode: str | None = None,
                policy_mode: str | None = None) -> AdaFocusOutput:
        """``video`` ``(B, T, C, H, W)`` float in [0, 1] -> :class:`AdaFocusOutput` (``run(plan(video))``)."""
        return self.run(video, self.plan(video, patch_mode, frame_mode, policy_mode=policy_mode))

    def parts(self) -> dict[str, nn.Module]:
        """The four networks by name: glance, focus, policy (the actor-critic), classifier."""
        return {"glance": self.glance, "focus": self.focus, "policy": self.spatial_policy,
                "classifier": self.classifier}

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        """Parameters by part (:meth:`parts`), for per-part learning rates."""
        return {name: list(m.parameters()) for name, m in self.parts().items()}

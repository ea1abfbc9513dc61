"""AdaFocus V1's training: three stages, each cached, resumable and seeded like every other run.

(docs/design.md, "AdaFocus V1: reinforcement learning".) :func:`adafocus.train.train` hands
``adafocus_v1`` to :func:`train_v1`, which starts from the shared pretrained backbones and runs:

1. **warm-up** (``warmup_epochs``): glance, focus and classifier learn with patches at *random* grid
   cells (the cross-entropy of every step's prediction); the policy is not used;
2. **ppo** (``ppo_epochs``): everything but the policy is frozen (in eval mode); on every batch the
   policy plays one episode per clip (a sampled cell per step), the frozen classifier scores it
   (reward: the gain in its confidence on the true class, :mod:`adafocus.ppo`), and the actor-critic
   takes ``ppo_updates`` clipped PPO steps on that episode;
3. **finetune** (``finetune_epochs``): the classifier alone learns again, with the learned policy's
   most likely cells.

Each stage is one :func:`adafocus.fit.fit` job with its own checkpoint
(``adafocus_v1.warmup-…``, ``adafocus_v1.ppo-…``, the finished model ``adafocus_v1-…``), so an
interrupted run resumes inside the stage it was in. The history has one row per epoch with its
``stage``, the epoch within the stage and the running ``epoch``. Every hyper-parameter is a field of
:class:`V1TrainConfig` (per preset: :data:`V1_PRESETS`); the batch size, seed, threads, weight decay and
gradient clipping are the run's ``train`` section.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from adafocus.config import Config, ConfigError, _check_types
from adafocus.data.batches import iterate_batches, num_batches
from adafocus.fit import FitJob, checkpoint_file, fit, resume_state
from adafocus.losses import exit_cross_entropy
from adafocus.models.adafocus_v1 import AdaFocusV1
from adafocus.ppo import confidence_gain, discounted_returns, ppo_loss, standardise

STAGES = ("warmup", "ppo", "finetune")
TRAINABLE = {"warmup": ("glance", "focus", "classifier"), "ppo": ("policy",), "finetune": ("classifier",)}
# the V1TrainConfig fields each stage's result depends on (with those of the stages before it): a stage's
# checkpoint key hashes these, so a change of PPO settings retrains PPO and fine-tuning, not the warm-up
STAGE_FIELDS = {"warmup": ("warmup_epochs", "lr_warmup", "lr_glance"),
                "ppo": ("ppo_epochs", "lr_ppo", "ppo_updates", "clip", "gamma", "value_weight", "entropy_weight"),
                "finetune": ("finetune_epochs", "lr_finetune")}


@dataclass(frozen=True)
class V1TrainConfig:
    """V1's three stages (epochs and learning rates; AdamW with a cosine schedule in each) and PPO's settings."""

    # the defaults take as long as AdaFocusV2's 8 epochs (timed side by side: benchmarks/family_v1.py); a PPO epoch
    # costs a third less than a warm-up epoch (the networks only run forward), a fine-tuning one half
    warmup_epochs: int = 10
    ppo_epochs: int = 6
    finetune_epochs: int = 4
    lr_warmup: float = 3e-3  # glance at half of it, as in the cpu recipe
    lr_glance: float = 0.5  # multiplier of lr_warmup for the glance
    lr_ppo: float = 3e-3  # the actor-critic (official: Adam 3e-4 over many more epochs; 1e-2 collapsed here)
    lr_finetune: float = 1e-3  # the classifier in stage 3
    ppo_updates: int = 4  # clipped steps on each episode before a new one is played (official: 1)
    clip: float = 0.2  # PPO's epsilon
    gamma: float = 0.7  # discount of future rewards (official: 0.7)
    value_weight: float = 0.5  # weight of the critic's squared error
    entropy_weight: float = 0.01  # weight of the entropy bonus (keeps the policy exploring)

    def validate(self, prefix: str = "v1_train") -> None:
        p = prefix
        _check_types(self, p)

        def check(ok: bool, name: str, expected: str) -> None:
            if not ok:
                raise ConfigError(f"{p}.{name}: expected {expected}, got {getattr(self, name)!r}")

        for name in ("warmup_epochs", "ppo_epochs", "finetune_epochs"):
            check(0 <= getattr(self, name) <= 100_000, name, "a non-negative int <= 100000")
        for name in ("lr_warmup", "lr_ppo", "lr_finetune"):
            check(0 < getattr(self, name) <= 10, name, "a positive float <= 10")
        check(0 <= self.lr_glance <= 1000, "lr_glance", "a non-negative multiplier <= 1000")
        check(1 <= self.ppo_updates <= 100, "ppo_updates", "an int in [1, 100]")
        check(0 < self.clip < 1, "clip", "a float in (0, 1)")
        check(0 <= self.gamma <= 1, "gamma", "a float in [0, 1]")
        for name in ("value_weight", "entropy_weight"):
            check(0 <= getattr(self, name) <= 1e6, name, "a non-negative float <= 1e6")

    def epochs(self, stage: str) -> int:
        return getattr(self, f"{stage}_epochs")


# Per preset: unit tests train one epoch per stage; the demo's geometry the defaults (20 epochs in the time of
# AdaFocusV2's 8; docs/design.md, "AdaFocus V1: reinforcement learning").
V1_PRESETS: dict[str, V1TrainConfig] = {"tiny": V1TrainConfig(warmup_epochs=1, ppo_epochs=1, finetune_epochs=1),
                                        "fast": V1TrainConfig(warmup_epochs=3, ppo_epochs=2, finetune_epochs=1)}


def v1_train_config(cfg: Config) -> V1TrainConfig:
    """The :class:`V1TrainConfig` of ``cfg``'s preset (the default one for ``small`` and any other)."""
    v = V1_PRESETS.get(cfg.name, V1TrainConfig())
    v.validate()
    return v


class StageModule(nn.Module):
    """The model with only the parts of one stage trainable: the others get no gradients and stay in eval mode
    (their batch norms keep their statistics) while the stage runs (inside :meth:`frozen`)."""

    def __init__(self, model: AdaFocusV1, trainable: tuple[str, ...]) -> None:
        super().__init__()
        self.model, self.trainable = model, trainable

    def parts(self) -> dict[str, nn.Module]:
        return self.model.parts()

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        return {name: list(part.parameters()) if name in self.trainable else [] for name, part in self.parts().items()}

    def train(self, mode: bool = True) -> "StageModule":
        super().train(mode)
        for name, part in self.parts().items():
            if name not in self.trainable:
                part.eval()
        return self

    @contextlib.contextmanager
    def frozen(self) -> Iterator[None]:
        """Parameters outside the stage's parts do not require gradients inside this block."""
        frozen = [p for name, part in self.parts().items() if name not in self.trainable for p in part.parameters()]
        for p in frozen:
            p.requires_grad_(False)
        try:
            yield
        finally:
            for p in frozen:
                p.requires_grad_(True)


class WarmupStep(nn.Module):
    """Stage 1: patches at random grid cells, the cross-entropy of every step's prediction."""

    def __init__(self, model: AdaFocusV1) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: dict[str, Tensor]):
        out = self.model(batch["video"], patch_mode="random")
        loss = exit_cross_entropy(out.exit_logits, batch["label"])
        return loss, out.logits, {"steps_ce": float(loss.detach())}


class FinetuneStep(WarmupStep):
    """Stage 3: the learned policy's most likely cells, the classifier's cross-entropy of every step."""

    def forward(self, batch: dict[str, Tensor]):
        out = self.model(batch["video"], policy_mode="greedy")
        loss = exit_cross_entropy(out.exit_logits, batch["label"])
        return loss, out.logits, {"steps_ce": float(loss.detach())}


@dataclass
class Episode:
    """One batch of episodes, played by the policy before its PPO steps."""

    batch: dict[str, Tensor]  # the batch it was played on (a new batch object starts a new episode)
    maps: Tensor  # (B, K, C_g, h, w) the glance maps the policy read
    cells: Tensor  # (B, K) the cells it sampled
    log_probs: Tensor  # (B, K) their log-probabilities then
    returns: Tensor  # (B, K) standardised discounted returns
    logits: Tensor  # (B, n) the classifier's final prediction
    confidence: Tensor  # (B,) the final probability of the true class


class PPOStep(nn.Module):
    """Stage 2: on a new batch, play an episode with the frozen networks; on that batch and every repeat of it,
    one PPO loss on the episode (``ppo_updates`` repeats: :func:`train_v1` yields each batch that many times)."""

    def __init__(self, model: AdaFocusV1, v: V1TrainConfig) -> None:
        super().__init__()
        self.model, self.v, self.episode = model, v, None

    @torch.no_grad()
    def play(self, batch: dict[str, Tensor]) -> Episode:
        plan = self.model.plan(batch["video"], policy_mode="sample")
        out = self.model.run(batch["video"], plan)  # (B, K, n) a prediction after every patch
        confidence = F.softmax(out.exit_logits, -1).gather(-1, batch["label"][:, None, None].expand(
            -1, out.exit_logits.shape[1], 1)).squeeze(-1)  # (B, K): p_k(y)
        returns = standardise(discounted_returns(confidence_gain(confidence), self.v.gamma))
        log_probs = torch.distributions.Categorical(logits=plan.policy_logits).log_prob(plan.cells)
        return Episode(batch, plan.glance.maps, plan.cells, log_probs, returns, out.logits, confidence[:, -1])

    def forward(self, batch: dict[str, Tensor]):
        if self.episode is None or self.episode.batch is not batch:
            self.episode = self.play(batch)
        e, v = self.episode, self.v
        logits, values = self.model.policy(e.maps)
        loss, parts = ppo_loss(logits, values, e.cells, e.log_probs, e.returns, v.clip, v.value_weight,
                               v.entropy_weight)
        return loss, e.logits, {**parts, "confidence": float(e.confidence.mean())}


def _repeat(batches, times: int):
    for batch in batches:
        for _ in range(times):
            yield batch


def v1_key(key: str, v: V1TrainConfig, model: AdaFocusV1, stage: str = STAGES[-1]) -> str:
    """The checkpoint key of ``stage``: the run's key and a hash of V1's own settings that the model after that
    stage depends on (the policy's geometry, the fields of this stage and of the stages before it)."""
    upto = STAGES[:STAGES.index(stage) + 1]
    train = {f: getattr(v, f) for s in upto for f in STAGE_FIELDS[s]}
    blob = json.dumps({"model": asdict(model.v1), "train": train}, sort_keys=True).encode()
    return f"{key}-{hashlib.sha256(blob).hexdigest()[:6]}"


def train_v1(model: AdaFocusV1, cfg: Config, splits: dict[str, Any], key: str, checkpoint_dir: Path | None = None,
             retrain: bool = False, progress: bool = True, v: V1TrainConfig | None = None):
    """Train ``model`` (a fresh :class:`AdaFocusV1`, seeded) in V1's three stages on ``splits`` (see the module
    docstring); ``key`` is the run's checkpoint key (:func:`adafocus.train.data_key`). Loads finished stages
    from their checkpoints (unless ``retrain``). Returns a :class:`adafocus.train.TrainResult`."""
    from adafocus import distributed
    from adafocus.pretrain import load_shared_backbones, pretrained_backbones
    from adafocus.fit import TrainResult, accuracy

    if not isinstance(model, AdaFocusV1):
        raise TypeError(f"train_v1: expected an AdaFocusV1 model, got {type(model).__name__}")
    if distributed.setup().enabled:
        raise NotImplementedError("train_v1: AdaFocus V1 trains in one process (no torchrun)")
    v = v if v is not None else v1_train_config(cfg)
    v.validate()
    train_set, val_set = splits["train"], splits.get("val")
    t = cfg.train

    def evaluate() -> dict[str, float]:
        return {"val_acc": accuracy(model, val_set) if val_set is not None and len(val_set) else float("nan")}

    def batches_of(repeats: int):
        return lambda seed: _repeat(iterate_batches(train_set, t.batch_size, True, seed), repeats)

    settings = {  # stage -> (step, times each batch is used, optimiser settings)
        "warmup": (WarmupStep(model), 1, dict(lr=v.lr_warmup, lr_glance=v.lr_glance)),
        "ppo": (PPOStep(model, v), v.ppo_updates, dict(lr=v.lr_ppo)),
        "finetune": (FinetuneStep(model), 1, dict(lr=v.lr_finetune)),
    }
    histories: list[pd.DataFrame] = []
    trained = False
    path = None
    for stage in STAGES:
        step, repeats, lrs = settings[stage]
        name = "adafocus_v1" if stage == STAGES[-1] else f"adafocus_v1.{stage}"
        stage_key = v1_key(key, v, model, stage)
        path = checkpoint_file(name, cfg.name, stage_key, checkpoint_dir)
        module = StageModule(model, TRAINABLE[stage])
        state = resume_state(path, name, stage_key, module, retrain or trained)
        if state is None and stage == STAGES[0] and cfg.pretrain.epochs > 0:
            load_shared_backbones(model, pretrained_backbones(cfg, progress, checkpoint_dir))
        if state is not None and state["done"]:
            history, finished = state["history"], True
        else:
            trained = True
            tcfg = replace(t, epochs=v.epochs(stage), optimizer="adamw",
                           **{**dict(lr_policy=1.0, lr_glance=1.0, lr_focus=1.0, lr_classifier=1.0), **lrs})
            job = FitJob(name, module, step, batches_of(repeats), num_batches(train_set, t.batch_size) * repeats,
                         evaluate, tcfg, path, stage_key,
                         {**cfg.to_dict(), "v1": asdict(model.v1), "v1_train": asdict(v)})
            with module.frozen():
                history, _, finished = fit(job, state, progress)
        histories.append(pd.DataFrame(history).assign(stage=stage))
        if not finished:  # stopped by train.max_minutes: run again to resume
            break
    history = pd.concat(histories, ignore_index=True).rename(columns={"epoch": "stage_epoch"})
    history["model"] = "adafocus_v1"
    history.insert(1, "epoch", range(1, len(history) + 1))
    return TrainResult(model.eval(), history, path, not trained, [])

"""Proximal policy optimisation (PPO) for AdaFocus V1's patch policy: rewards, returns, the clipped loss.

(docs/design.md, "AdaFocus V1: reinforcement learning".) An episode is one clip: ``K`` steps, each
choosing a grid cell ``a_k`` for the patch of step ``k``. With the networks frozen:

- **Reward** (:func:`confidence_gain`): how much the classifier's probability of the true class rose
  with the new patch, ``r_k = p_k(y) - p_{k-1}(y)`` with ``p_0 = 0`` (so the rewards of an episode add
  up to the final confidence, and each step is credited with its own contribution);
- **Return** (:func:`discounted_returns`): ``R_k = r_k + γ R_{k+1}``, then standardised over the
  batch (mean 0, std 1), as the official implementation does;
- **Loss** (:func:`ppo_loss`): with the probability ratio ``ρ = π(a_k) / π_old(a_k)`` of the policy
  being trained to the one that collected the episode and the advantage ``A = R_k - V(s_k)``
  (the critic's value as baseline, detached),
  ``-min(ρ A, clip(ρ, 1 - ε, 1 + ε) A) + c_v (V - R)² - c_e H(π)``, averaged over steps and clips.
  Clipping stops a step from moving the policy far from the one whose actions it learns from.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.distributions import Categorical

RETURN_STD_EPS = 1e-5  # keeps the standardisation finite when every return is equal


def confidence_gain(confidence: Tensor) -> Tensor:
    """Rewards ``(B, K)`` from the true class's probability after every step ``(B, K)``: ``p_k - p_{k-1}``,
    ``p_0 = 0``."""
    if confidence.dim() != 2:
        raise ValueError(f"confidence_gain: confidence must be (B, K), got shape {tuple(confidence.shape)}")
    previous = F.pad(confidence[:, :-1], (1, 0))  # (B, K): p_0 = 0, p_1, ..., p_{K-1}
    return confidence - previous


def discounted_returns(rewards: Tensor, gamma: float) -> Tensor:
    """``R_k = r_k + gamma * R_{k+1}`` along the steps of ``rewards`` ``(B, K)`` -> ``(B, K)``."""
    if rewards.dim() != 2:
        raise ValueError(f"discounted_returns: rewards must be (B, K), got shape {tuple(rewards.shape)}")
    if not 0 <= gamma <= 1:
        raise ValueError(f"discounted_returns: gamma must be in [0, 1], got {gamma!r}")
    returns = torch.empty_like(rewards)
    running = torch.zeros_like(rewards[:, 0])
    for k in range(rewards.shape[1] - 1, -1, -1):
        running = rewards[:, k] + gamma * running
        returns[:, k] = running
    return returns


def standardise(returns: Tensor) -> Tensor:
    """``(R - mean) / (std + eps)`` over every element: the scale of the rewards stops mattering."""
    return (returns - returns.mean()) / (returns.std(unbiased=False) + RETURN_STD_EPS)


def ppo_loss(logits: Tensor, values: Tensor, actions: Tensor, old_log_probs: Tensor, returns: Tensor, clip: float,
             value_weight: float, entropy_weight: float) -> tuple[Tensor, dict[str, float]]:
    """PPO's clipped objective with a value baseline and an entropy bonus (see the module docstring).

    logits ``(B, K, A)`` and values ``(B, K)`` of the policy being trained; actions ``(B, K)``, their
    log-probabilities ``(B, K)`` under the policy that chose them and the returns ``(B, K)`` of the episode.
    Returns the loss and its terms (``policy``, ``value``, ``entropy``, ``clip_fraction``: the share of
    steps whose ratio left ``[1 - clip, 1 + clip]``).
    """
    if not (logits.shape[:-1] == values.shape == actions.shape == old_log_probs.shape == returns.shape):
        raise ValueError(f"ppo_loss: expected logits (B, K, A) and values, actions, old_log_probs, returns (B, K); got "
                         f"{tuple(logits.shape)}, {tuple(values.shape)}, {tuple(actions.shape)}, "
                         f"{tuple(old_log_probs.shape)}, {tuple(returns.shape)}")
    if not 0 < clip < 1:
        raise ValueError(f"ppo_loss: clip must be in (0, 1), got {clip!r}")
    dist = Categorical(logits=logits)
    ratio = torch.exp(dist.log_prob(actions) - old_log_probs.detach())  # (B, K)
    advantage = (returns - values).detach()  # the critic as baseline: a better-than-expected step has A > 0
    surrogate = torch.minimum(ratio * advantage, ratio.clamp(1 - clip, 1 + clip) * advantage)
    policy = -surrogate.mean()
    value = F.mse_loss(values, returns)
    entropy = dist.entropy().mean()
    loss = policy + value_weight * value - entropy_weight * entropy
    clipped = ((ratio - 1).abs() > clip).float().mean()
    return loss, {"policy": float(policy.detach()), "value": float(value.detach()),
                  "entropy": float(entropy.detach()), "clip_fraction": float(clipped)}

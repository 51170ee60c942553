"""The data of one PPO iteration: the collected batch and the update's statistics, by name.

Shapes: ``B`` rollouts of the whole iteration (over every process: prompts × samples),
``T`` response tokens (padded); masks are ``rollout.response_mask`` ``[B, T]``, and every
``[B, T]`` tensor below is 0 at padding.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import ClassVar

import torch
from torch import Tensor

from fgrlhf.policy.model import Rollout
from fgrlhf.reward.aggregate import DenseReward


@dataclass
class PPOBatch:
    """Rollouts and everything PPO needs from them, computed with the models frozen."""

    rollout: Rollout  # B responses, in one-process order
    logprobs: Tensor  # [B, T] log π_old(y_t) of the sampling distribution (logits / temperature)
    values: Tensor  # [B, T] V_old, float32
    rewards: Tensor  # [B, T] r_t − β·KL_t, penalised with the β of this iteration (before any whitening)
    kl: Tensor  # [B, T] per-token KL(π_old ‖ π_ref) estimate
    advantages: Tensor  # [B, T] GAE advantages (whitened when ppo.whiten_advantages)
    returns: Tensor  # [B, T] value targets A + V_old (from the unwhitened advantages)
    reward: DenseReward  # the aggregated dense reward r_t [B, T], per category [B, T, K], segments
    texts: list[str]  # B decoded responses
    kl_coef: float  # β the rewards were penalised with
    timings: dict[str, float] = field(default_factory=dict)  # seconds per phase: generate, forward, reward, gae
    # The per-category critic's advantages, one per head (categories, then KL) [B, T, K+1];
    # with it ``values`` and ``returns`` are [B, T, K+1] too. None with the scalar critic.
    head_advantages: Tensor | None = None


@dataclass
class UpdateStats:
    """Statistics of PPO minibatches, one field per logged metric (``METRICS``).

    A micro-batch's fields are its shares of the minibatch's figures (scalars, tensors while
    on the device); ``as_tensor`` lays them out in field order as a float64 vector, which
    sums over micro-batches, minibatches and processes (one all-reduce), and ``from_tensor``
    reads such a sum back by name. The fields are all tensors on one device, or all numbers."""

    policy_loss: Tensor | float
    value_loss: Tensor | float
    entropy: Tensor | float
    policy_clip_frac: Tensor | float
    value_clip_frac: Tensor | float
    approx_kl: Tensor | float  # KL(π_old ‖ π_θ), k1, per token of the minibatch

    METRICS: ClassVar[dict[str, str]] = {"policy_loss": "loss/policy", "value_loss": "loss/value", "entropy": "policy/entropy",
               "policy_clip_frac": "policy/clip_frac", "value_clip_frac": "value/clip_frac",
               "approx_kl": "policy/approx_kl"}

    @classmethod
    def zeros(cls) -> Tensor:
        """The empty sum, as ``as_tensor`` lays it out: ``[n_fields]`` float64 on the CPU."""
        return torch.zeros(len(fields(cls)), dtype=torch.float64)

    def as_tensor(self) -> Tensor:
        """``[n_fields]`` float64 on the CPU, in field order (one device sync)."""
        values = [torch.as_tensor(getattr(self, f.name)).detach() for f in fields(self)]
        return torch.stack(values).double().cpu()

    @classmethod
    def from_tensor(cls, x: Tensor) -> UpdateStats:
        return cls(*x.tolist())

    def metrics(self, n_minibatches: int) -> dict[str, float]:
        """The per-minibatch means of a sum over ``n_minibatches``, by metric name."""
        return {self.METRICS[f.name]: float(getattr(self, f.name)) / max(n_minibatches, 1) for f in fields(self)}

"""Supervised fine-tuning of a policy on (prompt, answer) pairs.

The loss is the mean negative log-likelihood of the answer tokens (and the closing EOS)
under the policy, computed with the same ``Rollout`` layout that PPO uses, so SFT, PPO and
the PPO-ptx term read prompts and responses identically.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch
from tqdm import tqdm

from fgrlhf.core.masked import masked_mean
from fgrlhf.policy.model import Policy
from fgrlhf.toolkit.fit import FitConfig, fit, minibatches
from fgrlhf.toolkit.optim import build_adamw, make_scheduler


@dataclass
class SFTConfig(FitConfig):
    """Supervised fine-tuning of a whole policy: warmup in steps, dev loss per epoch."""

    RULES: ClassVar[dict[str, str]] = {"warmup_steps": ">= 0", "max_answer_tokens": "> 0", "max_minutes": "> 0",
                                       "max_steps": "> 0"}

    lr: float = 1e-4
    epochs: int = 3
    warmup_steps: int = 20
    max_answer_tokens: int = 128
    max_minutes: float | None = None  # stop early once this much time is spent
    # stop after this many steps, the learning-rate schedule still that of all epochs: a run
    # that max_minutes stopped, independent of the machine's speed (fgrlhf_sft.json records
    # the steps a run took)
    max_steps: int | None = None


def sft_loss(policy: Policy, prompts: Sequence[str], answers: Sequence[str], max_answer_tokens: int = 128,
             model=None):
    """Mean NLL per answer token: −Σ m·log π(y_t) / Σ m over the batch. ``model``: the
    module to run (e.g. the policy's DDP wrapper during PPO-ptx; default the policy's own)."""
    rollout = policy.teacher_forced(prompts, answers, max_answer_tokens)
    return -masked_mean(policy.logprobs(rollout, model=model), rollout.response_mask)


@torch.no_grad()
def sft_eval_loss(policy: Policy, pairs: Sequence[tuple[str, str]], cfg: SFTConfig) -> float:
    policy.model.eval()
    total, n = 0.0, 0
    for i in range(0, len(pairs), cfg.batch_size):
        batch = pairs[i : i + cfg.batch_size]
        loss = sft_loss(policy, [p for p, _ in batch], [a for _, a in batch], cfg.max_answer_tokens)
        total += float(loss) * len(batch)
        n += len(batch)
    return total / max(n, 1)


def sft_optimizer(model, cfg: SFTConfig, total_steps: int):
    """AdamW over all of ``model`` at one rate; the learning-rate factor at step s is
    ``min(1, (s+1)/W) · max(0, 1 − s/T)`` (warmup times a decay from step 0), with
    ``W = max(1, warmup_steps)`` and ``T = max(1, total_steps)``."""
    opt = build_adamw(model, cfg.lr, cfg.weight_decay)
    return opt, make_scheduler(opt, max(1, cfg.warmup_steps), max(1, total_steps))


def train_sft(policy: Policy, train: Sequence[tuple[str, str]], dev: Sequence[tuple[str, str]], cfg: SFTConfig,
              logger=None) -> dict:
    """Fine-tune ``policy`` in place (``fgrlhf.toolkit.fit``: shuffled minibatches, warmup
    times linear decay from step 0, dev loss after every epoch); returns the loss history."""
    model = policy.model
    history = {"dev_loss_before": sft_eval_loss(policy, dev, cfg) if dev else None}

    def loss(indices):
        batch = [train[j] for j in indices]
        return sft_loss(policy, [p for p, _ in batch], [a for _, a in batch], cfg.max_answer_tokens)

    def evaluate(epoch: int, step: int) -> float:
        value = sft_eval_loss(policy, dev, cfg)
        if logger:
            logger.log({"sft/dev_loss": value}, step + 1)
        tqdm.write(f"  epoch {epoch + 1}: dev loss {value:.3f}")
        return value

    result = fit(model, loss, lambda rng: minibatches(len(train), cfg.batch_size, rng), cfg,
                 lambda total: sft_optimizer(model, cfg, total),
                 evaluate=evaluate if dev else None, logger=logger, prefix="sft", log_next_lr=True,
                 max_minutes=cfg.max_minutes, max_steps=cfg.max_steps, desc="sft epoch")
    history.update(dev_loss=result.history, steps=result.steps, seconds=result.seconds,
                   stopped_early=result.out_of_time)
    return history

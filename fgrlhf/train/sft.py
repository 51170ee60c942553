"""Supervised fine-tuning of a policy on (prompt, answer) pairs.

The loss is the mean negative log-likelihood of the answer tokens (and the closing EOS)
under the policy, computed with the same ``Rollout`` layout that PPO uses, so SFT, PPO and
the PPO-ptx term read prompts and responses identically.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from tqdm import tqdm

from fgrlhf.core.masked import masked_mean
from fgrlhf.device import resolve_bf16
from fgrlhf.policy.model import Policy


@dataclass
class SFTConfig:
    lr: float = 1e-4
    weight_decay: float = 0.0
    epochs: int = 3
    batch_size: int = 8
    warmup_steps: int = 20
    grad_clip: float = 1.0
    max_answer_tokens: int = 128
    max_minutes: float | None = None  # stop early once this much time is spent
    seed: int = 0
    bf16: bool | None = None  # bfloat16 autocast; null: where it is fast (see fgrlhf.device)


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


def train_sft(policy: Policy, train: Sequence[tuple[str, str]], dev: Sequence[tuple[str, str]], cfg: SFTConfig,
              logger=None) -> dict:
    """Fine-tune ``policy`` in place; returns the loss history."""
    rng = random.Random(cfg.seed)
    torch.manual_seed(cfg.seed)
    model = policy.model
    steps_per_epoch = math.ceil(len(train) / cfg.batch_size)
    total = steps_per_epoch * cfg.epochs
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / max(1, cfg.warmup_steps)) * max(0.0, 1 - s / max(1, total)))
    history = {"dev_loss_before": sft_eval_loss(policy, dev, cfg) if dev else None, "dev_loss": []}
    t0, step, stopped_early = time.time(), 0, False
    device_type = policy.device.type
    bf16 = resolve_bf16(cfg.bf16, policy.device)
    for epoch in range(cfg.epochs):
        order = list(range(len(train)))
        rng.shuffle(order)
        model.train()
        bar = tqdm(range(steps_per_epoch), desc=f"sft epoch {epoch + 1}/{cfg.epochs}", unit="step")
        for i in bar:
            batch = [train[j] for j in order[i * cfg.batch_size : (i + 1) * cfg.batch_size]]
            with torch.autocast(device_type, dtype=torch.bfloat16, enabled=bf16):
                loss = sft_loss(policy, [p for p, _ in batch], [a for _, a in batch], cfg.max_answer_tokens)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"SFT loss is {float(loss)} at step {step}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            sched.step()
            bar.set_postfix(loss=f"{loss.item():.3f}")
            if logger:
                logger.log({"sft/loss": loss.item(), "sft/lr": sched.get_last_lr()[0]}, step)
            step += 1
            if cfg.max_minutes is not None and time.time() - t0 > 60 * cfg.max_minutes:
                stopped_early = True
                break
        if dev:
            history["dev_loss"].append(sft_eval_loss(policy, dev, cfg))
            if logger:
                logger.log({"sft/dev_loss": history["dev_loss"][-1]}, step)
            tqdm.write(f"  epoch {epoch + 1}: dev loss {history['dev_loss'][-1]:.3f}")
        if stopped_early:
            break
    history.update(steps=step, seconds=round(time.time() - t0, 1), stopped_early=stopped_early)
    return history

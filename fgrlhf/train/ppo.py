"""One PPO iteration over dense, per-category rewards.

    sample rollouts → decode with offsets → segment → reward models → aggregate [B, T]
    → per-token KL penalty against the reference → GAE → PPO epochs over minibatches

``PPOTrainer`` holds the state (models, optimizer, scheduler, KL controller); every piece of
arithmetic is a pure function from ``fgrlhf.core``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from fgrlhf.core import (
    aggregate_loss,
    entropy_from_logits,
    gae,
    kl_per_token,
    logprobs_from_logits,
    make_kl_controller,
    masked_mean,
    policy_loss,
    value_loss,
    whiten,
)
from fgrlhf.policy import Policy, Rollout, SamplingConfig, ValueModel
from fgrlhf.reward import RewardAggregator, RewardInputs


@dataclass
class PPOConfig:
    """The paper's QA-Feedback fine-grained preset is the default."""

    kl_coef: float = 0.3
    adaptive_kl: bool = False
    kl_target: float | None = None
    kl_horizon: float = 10000.0
    kl_estimator: str = "k1"
    gamma: float = 1.0
    lam: float = 0.95
    clip_eps: float = 0.2
    value_clip_eps: float | None = 0.2
    vf_coef: float = 0.5
    entropy_coef: float = 0.0
    ppo_epochs: int = 4
    minibatch_size: int = 8  # rollouts per optimizer step (after gradient accumulation)
    grad_accum: int = 1  # micro-batches per minibatch
    lr: float = 1e-5
    warmup_steps: int = 0
    total_steps: int | None = None  # for a linear decay; None: constant after warmup
    max_grad_norm: float = 1.0
    whiten_advantages: bool = True
    loss_aggregation: str = "token-mean"
    kl_stop: float | None = None  # stop an iteration's epochs once the minibatch KL to the
    # sampling policy exceeds this
    ptx_coef: float = 0.0  # PPO-ptx: weight of the pretraining (SFT) loss term


def penalised_rewards(dense: Tensor, logprobs: Tensor, ref_logprobs: Tensor, mask: Tensor, kl_coef: float,
                      estimator: str = "k1") -> tuple[Tensor, Tensor]:
    """``r_t − β·KL_t`` at every real token, and the per-token KL ``[B, T]``."""
    kl = torch.where(mask, kl_per_token(logprobs, ref_logprobs, estimator), torch.zeros_like(logprobs))
    return torch.where(mask, dense - kl_coef * kl, torch.zeros_like(dense)), kl


class PPOTrainer:
    """Fine-grained PPO (Wu et al. 2023) with a per-token KL penalty (Ouyang et al. 2022)."""

    def __init__(self, policy: Policy, value: ValueModel, reference, aggregator: RewardAggregator,
                 cfg: PPOConfig, sampling: SamplingConfig) -> None:
        self.policy, self.value, self.reference = policy, value, reference
        self.aggregator, self.cfg, self.sampling = aggregator, cfg, sampling
        params = list(policy.model.parameters()) + [p for p in value.parameters()
                                                    if not any(p is q for q in policy.model.parameters())]
        self.optimizer = torch.optim.AdamW([p for p in params if p.requires_grad], lr=cfg.lr)

        def schedule(step: int) -> float:
            warm = min(1.0, (step + 1) / cfg.warmup_steps) if cfg.warmup_steps else 1.0
            decay = max(0.0, 1 - step / cfg.total_steps) if cfg.total_steps else 1.0
            return warm * decay

        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, schedule)
        self.kl_ctl = make_kl_controller(cfg.kl_coef, cfg.adaptive_kl, cfg.kl_target, cfg.kl_horizon)
        self.iteration = 0

    def state_dict(self) -> dict[str, Any]:
        """Everything that changes during training except the policy and value weights'
        file format: optimizer, scheduler, KL controller, reward normalisers, iteration and
        the torch RNG (so the next rollout samples the same tokens after a resume)."""
        return {
            "value": self.value.state_dict() if not self.value.shared else {"head": self.value.head.state_dict()},
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "kl_ctl": self.kl_ctl.state_dict(),
            "aggregator": self.aggregator.state_dict(),
            "iteration": self.iteration,
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.value.shared:
            self.value.head.load_state_dict(state["value"]["head"])
        else:
            self.value.load_state_dict(state["value"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.kl_ctl.load_state_dict(state["kl_ctl"])
        self.aggregator.load_state_dict(state["aggregator"])
        self.iteration = int(state["iteration"])
        torch.set_rng_state(state["torch_rng"])
        if state.get("cuda_rng") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])

    @torch.no_grad()
    def collect(self, prompts: Sequence[str], metadata: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """Rollouts and everything PPO needs from them, with the models frozen."""
        timings = {}
        t = time.perf_counter()
        rollout = self.policy.generate(prompts, self.sampling)
        timings["generate"] = time.perf_counter() - t
        t = time.perf_counter()
        # Old log-probs and values are evaluated without dropout (eval mode), like the
        # reference; the update epochs switch back to train mode.
        self.policy.model.eval()
        self.value.eval()
        logits, hidden = self.policy.forward(rollout, output_hidden_states=self.value.shared)
        logprobs = torch.where(rollout.response_mask, logprobs_from_logits(logits, rollout.response_ids), 0.0)
        ref_logprobs = self.policy.logprobs(rollout, model=self.reference)
        values = self.value(self.policy, rollout, hidden)
        timings["forward"] = time.perf_counter() - t
        t = time.perf_counter()
        decoded = self.policy.decode(rollout)
        meta = [metadata[i] for i in rollout.prompt_index]
        inputs = RewardInputs([prompts[i] for i in rollout.prompt_index], decoded.texts, meta)
        reward = self.aggregator(inputs, decoded, device=self.policy.device)
        timings["reward"] = time.perf_counter() - t
        if not bool(torch.isfinite(reward.total).all()):
            raise FloatingPointError("non-finite reward in a rollout batch")
        t = time.perf_counter()
        rewards, kl = penalised_rewards(reward.total, logprobs, ref_logprobs, rollout.response_mask,
                                        self.kl_ctl.kl_coef, self.cfg.kl_estimator)
        advantages, returns = gae(rewards, values, rollout.response_mask, self.cfg.gamma, self.cfg.lam)
        if self.cfg.whiten_advantages:
            advantages = whiten(advantages, rollout.response_mask)
        timings["gae"] = time.perf_counter() - t
        return {"rollout": rollout, "logprobs": logprobs, "values": values, "advantages": advantages,
                "returns": returns, "kl": kl, "reward": reward, "texts": decoded.texts, "timings": timings}

    def _minibatch_loss(self, batch: dict[str, Any], idx: Tensor, ptx: tuple[list[str], list[str]] | None):
        rollout: Rollout = batch["rollout"]
        sub = Rollout(rollout.prompts, [rollout.prompt_index[i] for i in idx.tolist()], rollout.query_ids[idx],
                      rollout.query_mask[idx], rollout.response_ids[idx], rollout.response_mask[idx])
        mask = sub.response_mask
        logits, hidden = self.policy.forward(sub, output_hidden_states=self.value.shared)
        logprobs = logprobs_from_logits(logits, sub.response_ids)  # [b, T]
        values = self.value(self.policy, sub, hidden)  # [b, T]
        agg = self.cfg.loss_aggregation
        pg_loss, clip_frac = policy_loss(logprobs, batch["logprobs"][idx], batch["advantages"][idx], mask,
                                         self.cfg.clip_eps, agg)
        vf_loss, vf_clip = value_loss(values, batch["values"][idx], batch["returns"][idx], mask,
                                      self.cfg.value_clip_eps, agg)
        entropy = aggregate_loss(entropy_from_logits(logits), mask, agg)
        loss = pg_loss + self.cfg.vf_coef * vf_loss - self.cfg.entropy_coef * entropy
        ptx_loss = torch.zeros(())
        if ptx is not None and self.cfg.ptx_coef > 0:
            from fgrlhf.train.sft import sft_loss

            ptx_loss = sft_loss(self.policy, ptx[0], ptx[1])
            loss = loss + self.cfg.ptx_coef * ptx_loss
        approx_kl = masked_mean(batch["logprobs"][idx] - logprobs, mask)  # KL(π_old ‖ π_θ), k1
        stats = {"loss/policy": pg_loss.item(), "loss/value": vf_loss.item(), "loss/ptx": float(ptx_loss),
                 "policy/clip_frac": clip_frac.item(), "value/clip_frac": vf_clip.item(),
                 "policy/entropy": entropy.item(), "policy/approx_kl": approx_kl.item()}
        return loss, stats

    def step(self, prompts: Sequence[str], metadata: Sequence[dict[str, Any]],
             ptx: tuple[list[str], list[str]] | None = None) -> dict[str, float]:
        """One iteration; returns its metrics."""
        t0 = time.perf_counter()
        batch = self.collect(prompts, metadata)
        rollout: Rollout = batch["rollout"]
        B = rollout.response_ids.shape[0]
        mb = min(self.cfg.minibatch_size, B)
        micro = max(1, mb // self.cfg.grad_accum)
        self.policy.model.train()
        self.value.train()
        t = time.perf_counter()
        stats_sum: dict[str, float] = {}
        n_stats, stopped = 0, False
        for _ in range(self.cfg.ppo_epochs):
            perm = torch.randperm(B, device=rollout.response_ids.device)
            for start in range(0, B, mb):
                idx_mb = perm[start : start + mb]
                self.optimizer.zero_grad(set_to_none=True)
                for m_start in range(0, len(idx_mb), micro):
                    idx = idx_mb[m_start : m_start + micro]
                    loss, stats = self._minibatch_loss(batch, idx, ptx)
                    if not torch.isfinite(loss):
                        raise FloatingPointError(f"non-finite PPO loss at iteration {self.iteration}")
                    (loss * len(idx) / len(idx_mb)).backward()
                    for k, v in stats.items():
                        stats_sum[k] = stats_sum.get(k, 0.0) + v
                    n_stats += 1
                torch.nn.utils.clip_grad_norm_(
                    [p for g in self.optimizer.param_groups for p in g["params"]], self.cfg.max_grad_norm)
                self.optimizer.step()
                self.scheduler.step()
                if self.cfg.kl_stop is not None and stats["policy/approx_kl"] > self.cfg.kl_stop:
                    stopped = True
                    break
            if stopped:
                break
        update_s = time.perf_counter() - t
        mask = rollout.response_mask
        mean_kl = float(batch["kl"].sum(-1).mean())  # per-sequence KL (already 0 at padding)
        self.kl_ctl.update(mean_kl, B)
        metrics = {k: v / max(n_stats, 1) for k, v in stats_sum.items()}
        reward = batch["reward"]
        for k_i, k in enumerate(reward.categories):
            metrics[f"reward/{k}"] = float(reward.per_category[..., k_i].sum(-1).mean())
        metrics.update({
            "reward/total": float(reward.total.sum(-1).mean()),
            "reward/penalised": float((reward.total - self.kl_ctl.kl_coef * batch["kl"]).mul(mask).sum(-1).mean()),
            "kl/sequence": mean_kl, "kl/coef": self.kl_ctl.kl_coef,
            "length/tokens": float(mask.sum(-1).float().mean()),
            "length/empty": float((mask.sum(-1) == 0).float().mean()),
            "prompts/truncated": float(rollout.truncated_prompts),
            "ppo/early_stopped": float(stopped), "lr": self.scheduler.get_last_lr()[0],
            **{f"time/{k}": v for k, v in batch["timings"].items()},
            "time/update": update_s, "time/iteration": time.perf_counter() - t0,
        })
        self.iteration += 1
        if not all(math.isfinite(v) for v in metrics.values()):
            raise FloatingPointError(f"non-finite metric at iteration {self.iteration}: {metrics}")
        return metrics

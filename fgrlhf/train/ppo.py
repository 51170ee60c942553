"""One PPO iteration over dense, per-category rewards.

    sample rollouts → decode with offsets → segment → reward models → aggregate [B, T]
    → per-token KL penalty against the reference → (whiten rewards) → GAE      ``collect``
    → PPO epochs over minibatches → KL controller → metrics                      ``update``

``PPOTrainer`` holds the state (models, optimizer, scheduler, KL controller); ``collect``
returns a ``PPOBatch`` (``fgrlhf.train.ppo_batch``), and every piece of arithmetic is a pure
function (here or in ``fgrlhf.core``). With an ``accelerate.Accelerator`` the
same code runs data-parallel over several processes (see ``fgrlhf.train.parallel``).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor

from fgrlhf.core import (
    aggregate_loss,
    entropy_from_logits,
    gae,
    kl_per_token,
    logprobs_from_logits,
    loss_denominator,
    make_kl_controller,
    masked_sum,
    policy_loss,
    value_loss,
    whiten,
)
from fgrlhf.core.critic import head_statistics, per_category_gae
from fgrlhf.errors import ConfigError
from fgrlhf.eval.monitors import category_monitors, monitor_reward_stats, text_monitors
from fgrlhf.policy import Policy, Rollout, SamplingConfig, ValueModel
from fgrlhf.reward import RewardAggregator, RewardInputs
from fgrlhf.reward.aggregate import DenseReward
from fgrlhf.reward.base import SegmentScores
from fgrlhf.toolkit.optim import build_adamw, make_scheduler
from fgrlhf.train.parallel import Parallel
from fgrlhf.train.ppo_batch import PPOBatch, UpdateStats
from fgrlhf.train.sft import sft_loss


@dataclass
class PPOConfig:
    """The paper's QA-Feedback fine-grained preset is the default."""

    RULES: ClassVar[dict[str, str]] = {
        "kl_coef": ">= 0", "kl_target": "> 0", "kl_horizon": "> 0", "kl_estimator": "in k1 k2 k3",
        "gamma": "[0, 1]", "lam": "[0, 1]", "clip_eps": "> 0", "value_clip_eps": "> 0", "vf_coef": ">= 0",
        "entropy_coef": ">= 0", "ppo_epochs": "> 0", "minibatch_size": "> 0", "grad_accum": "> 0", "lr": "> 0",
        "warmup_steps": ">= 0", "total_steps": "> 0", "max_grad_norm": "> 0",
        "loss_aggregation": "in token-mean seq-mean-token-mean seq-mean-token-sum", "kl_stop": "> 0",
        "ptx_coef": ">= 0", "critic": "in scalar per_category"}

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
    minibatch_size: int = 8  # rollouts per optimizer step, over all processes
    grad_accum: int = 1  # micro-batches per minibatch (per process)
    lr: float = 1e-5
    warmup_steps: int = 0
    total_steps: int | None = None  # for a linear decay; None: constant after warmup
    max_grad_norm: float = 1.0
    whiten_advantages: bool = True
    # Whiten the (KL-penalised) rewards over the real tokens before GAE, keeping their mean
    # (the paper's QA-Feedback preset sets it; off by default).
    whiten_rewards: bool = False
    loss_aggregation: str = "token-mean"
    kl_stop: float | None = None  # stop an iteration's epochs once the minibatch KL to the
    # sampling policy exceeds this
    ptx_coef: float = 0.0  # PPO-ptx: weight of the pretraining (SFT) loss term
    # scalar: one value head V(s) of the summed reward. per_category: one head per reward
    # category plus one for the KL penalty, GAE on each head's own dense reward, advantages
    # summed (the categories are already weighted) before whitening (fgrlhf.core.critic).
    critic: str = "scalar"
    # Dropout makes π_θ differ from π_old at the very first minibatch, so the ratio is clipped
    # on noise; the update then runs with dropout off (eval mode; gradients still flow).
    disable_dropout: bool = True


def penalised_rewards(dense: Tensor, logprobs: Tensor, ref_logprobs: Tensor, mask: Tensor, kl_coef: float,
                      estimator: str = "k1") -> tuple[Tensor, Tensor]:
    """``r_t − β·KL_t`` at every real token, and the per-token KL ``[B, T]``."""
    kl = torch.where(mask, kl_per_token(logprobs, ref_logprobs, estimator), torch.zeros_like(logprobs))
    return torch.where(mask, dense - kl_coef * kl, torch.zeros_like(dense)), kl


def advantages_and_returns(rewards: Tensor, values: Tensor, mask: Tensor, gamma: float, lam: float,
                           whiten_rewards: bool = False, whiten_advantages: bool = True) -> tuple[Tensor, Tensor]:
    """GAE advantages and returns ``[B, T]`` from rewards and old values ``[B, T]``.

    ``whiten_rewards``: GAE reads the rewards whitened over the real tokens of ``mask``, with
    their mean kept (``whiten(..., shift_mean=False)``: the sign of the mean reward is
    information); padding stays 0 and adds nothing. ``whiten_advantages``: the advantages
    are whitened (zero mean, unit variance over the real tokens); the returns, the value
    targets, are ``A + V`` before that."""
    if whiten_rewards:
        rewards = whiten(rewards, mask, shift_mean=False)
    advantages, returns = gae(rewards, values, mask, gamma, lam)
    if whiten_advantages:
        advantages = whiten(advantages, mask)
    return advantages, returns


class PPOTrainer:
    """Fine-grained PPO (Wu et al. 2023) with a per-token KL penalty (Ouyang et al. 2022).

    ``accelerator`` (optional): an ``accelerate.Accelerator``; the policy, value model and
    optimizer are prepared with it (DDP, mixed precision, DeepSpeed/FSDP as configured by
    ``accelerate launch``), and each process takes ``1/world`` of the prompts of a step.
    ``seed`` seeds the minibatch permutations (the same in every process).
    """

    def __init__(self, policy: Policy, value: ValueModel, reference, aggregator: RewardAggregator,
                 cfg: PPOConfig, sampling: SamplingConfig, accelerator=None, seed: int = 0) -> None:
        self.policy, self.value, self.reference = policy, value, reference
        self.aggregator, self.cfg, self.sampling = aggregator, cfg, sampling
        # Each category's granularity names its segments in the monitors (a reward with a
        # segmenter of its own is monitored under its category's name).
        # The per-category critic's heads: each reward category, then the KL penalty.
        self.heads = [*aggregator.categories, "kl"] if cfg.critic == "per_category" else []
        if self.heads:
            if cfg.whiten_rewards:
                raise ConfigError("ppo.whiten_rewards=true does not combine with ppo.critic=per_category "
                                  "(whitening each category's rewards would change their weights)")
            value.set_heads(len(self.heads))
        self.granularities = aggregator.granularities()
        # PPO's log-probs (old, new and the reference's, hence the KL) are those of the
        # distribution the rollouts are drawn from: logits / temperature when sampling. At
        # temperature 1 they would belong to another distribution, the importance ratios would
        # be off-policy and the k1 KL estimate could turn negative, paying the policy to drift.
        self.temperature = sampling.temperature if sampling.do_sample else 1.0
        self.parallel = Parallel(accelerator)
        # One group: the policy's parameters, then the value model's own (a shared head's, or a
        # separate backbone's and head's), with AdamW's usual weight decay of 0.01.
        optimizer = build_adamw(policy.model, cfg.lr, weight_decay=0.01, extra=value.parameters())
        # The wrapped (DDP) modules take the update's forward passes, so that gradients are
        # all-reduced; generation and the frozen passes use the plain modules.
        self.train_policy, self.train_value, self.optimizer = self.parallel.prepare(policy.model, value, optimizer)
        # Not prepared: accelerate would step a prepared scheduler once per process.
        self.scheduler = make_scheduler(self.optimizer, cfg.warmup_steps, cfg.total_steps)
        self.kl_ctl = make_kl_controller(cfg.kl_coef, cfg.adaptive_kl, cfg.kl_target, cfg.kl_horizon)
        self.permutations = torch.Generator().manual_seed(seed)
        if self.parallel.world > 1:  # every running normaliser sees every process's scores
            aggregator.distribute(lambda v: torch.tensor(self.parallel.gather_objects(v.tolist()), dtype=v.dtype))
        self.iteration = 0

    def state_dict(self) -> dict[str, Any]:
        """Everything that changes during training except the policy weights: value model,
        optimizer, scheduler, KL controller, reward normalisers, iteration, the minibatch
        permutation generator and every process's torch RNG (so the next rollout samples
        the same tokens after a resume)."""
        rng = torch.get_rng_state()
        cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
        return {
            "value": self.value.state_dict() if not self.value.shared else {"head": self.value.head.state_dict()},
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "kl_ctl": self.kl_ctl.state_dict(),
            "aggregator": self.aggregator.state_dict(),
            "iteration": self.iteration,
            "permutations": self.permutations.get_state(),
            "torch_rng": self.parallel.gather_objects([rng]),  # one per process, in rank order
            "cuda_rng": self.parallel.gather_objects([cuda_rng]),
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
        self.permutations.set_state(state["permutations"])
        rngs, cuda_rngs = state["torch_rng"], state["cuda_rng"]
        if len(rngs) != self.parallel.world:
            raise ValueError(f"this checkpoint was written by {len(rngs)} processes; resume it with as many "
                             f"(now {self.parallel.world}) to continue the same random streams")
        torch.set_rng_state(rngs[self.parallel.rank])
        if cuda_rngs[self.parallel.rank] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(cuda_rngs[self.parallel.rank])

    @torch.no_grad()
    def collect(self, prompts: Sequence[str], metadata: Sequence[dict[str, Any]]) -> PPOBatch:
        """Rollouts and everything PPO needs from them, with the models frozen.

        Each process generates and scores the rollouts of its share of ``prompts`` (the
        whole iteration's prompts, the same list in every process); the result holds the
        whole batch, gathered, in one-process order.
        """
        timings = {}
        par = self.parallel
        share = par.shard(len(prompts))
        prompts_r, metadata_r = list(prompts[share]), list(metadata[share])
        t = time.perf_counter()
        with par.autocast():
            rollout = self.policy.generate(prompts_r, self.sampling)
        timings["generate"] = time.perf_counter() - t
        t = time.perf_counter()
        # Old log-probs and values are evaluated without dropout (eval mode), like the
        # reference; the update runs in train mode only when dropout is kept.
        self.policy.model.eval()
        self.value.eval()
        with par.autocast():
            logits, hidden = self.policy.forward(rollout, output_hidden_states=self.value.shared,
                                                 temperature=self.temperature)
            logprobs = torch.where(rollout.response_mask, logprobs_from_logits(logits, rollout.response_ids), 0.0)
            ref_logprobs = self.policy.logprobs(rollout, model=self.reference, temperature=self.temperature)
            values = self.value(self.policy, rollout, hidden).float()
        del logits, hidden
        timings["forward"] = time.perf_counter() - t
        t = time.perf_counter()
        decoded = self.policy.decode(rollout)
        inputs = RewardInputs([prompts_r[i] for i in rollout.prompt_index], decoded.texts,
                              [metadata_r[i] for i in rollout.prompt_index])
        reward = self.aggregator(inputs, decoded, device=self.policy.device)
        timings["reward"] = time.perf_counter() - t
        texts = decoded.texts
        if par.world > 1:
            rollout, reward, texts = self._gather(prompts, share.start, rollout, reward, texts)
            logprobs, ref_logprobs, values = (par.gather_rows(x) for x in (logprobs, ref_logprobs, values))
        if not bool(torch.isfinite(reward.total).all()):
            raise FloatingPointError("non-finite reward in a rollout batch")
        t = time.perf_counter()
        kl_coef = self.kl_ctl.kl_coef
        rewards, kl = penalised_rewards(reward.total, logprobs, ref_logprobs, rollout.response_mask, kl_coef,
                                        self.cfg.kl_estimator)
        if self.heads:  # per-category critic: one GAE per head, summed
            mask = rollout.response_mask
            head_rewards = torch.cat([reward.per_category, (-kl_coef * kl).unsqueeze(-1)], dim=-1)  # [B, T, K+1]
            head_rewards = torch.where(mask.unsqueeze(-1), head_rewards, torch.zeros_like(head_rewards))
            head_advantages, returns = per_category_gae(head_rewards, values, mask, self.cfg.gamma,
                                                        self.cfg.lam)  # [B, T, K+1] each
            advantages = head_advantages.sum(-1)  # [B, T]
            if self.cfg.whiten_advantages:
                advantages = whiten(advantages, mask)
        else:
            head_advantages = None
            advantages, returns = advantages_and_returns(rewards, values, rollout.response_mask, self.cfg.gamma,
                                                         self.cfg.lam, self.cfg.whiten_rewards,
                                                         self.cfg.whiten_advantages)
        timings["gae"] = time.perf_counter() - t
        return PPOBatch(rollout, logprobs, values, rewards, kl, advantages, returns, reward, texts, kl_coef, timings,
                        head_advantages)

    def _gather(self, prompts: Sequence[str], offset: int, rollout: Rollout, reward: DenseReward,
                texts: list[str]) -> tuple[Rollout, DenseReward, list[str]]:
        """The whole batch from every process's share, in one-process row order."""
        par = self.parallel
        pad = self.policy.tokenizer.pad_token_id
        left = self.policy.kind == "causal"  # causal prompts are left-padded
        index = par.gather_objects([offset + i for i in rollout.prompt_index])
        truncated = int(par.sum(torch.tensor(rollout.truncated_prompts)))
        whole = Rollout(list(prompts), index, par.gather_rows(rollout.query_ids, pad, left),
                        par.gather_rows(rollout.query_mask, False, left), par.gather_rows(rollout.response_ids, pad),
                        par.gather_rows(rollout.response_mask, False), truncated)
        def gather_scores(scores: dict[str, SegmentScores]) -> dict[str, SegmentScores]:
            return {k: SegmentScores.from_lists(par.gather_objects(v.rows()), reward.total.device)
                    for k, v in scores.items()}

        spans = {k: par.gather_objects(v) for k, v in reward.spans.items()}
        dense = DenseReward(par.gather_rows(reward.total), par.gather_rows(reward.per_category),
                            reward.categories, gather_scores(reward.raw), spans, gather_scores(reward.monitors))
        return whole, dense, par.gather_objects(texts)

    def _local_loss(self, batch: PPOBatch, idx: Tensor, denominator: Tensor,
                    n_tokens: Tensor) -> tuple[Tensor, UpdateStats]:
        """This micro-batch's share of the minibatch loss (divided by the minibatch's
        ``denominator``; ``n_tokens`` real tokens in the minibatch) and the shares of its
        statistics; summed over micro-batches and processes, both are the minibatch's."""
        sub = batch.rollout.select(idx)
        mask = sub.response_mask  # [b, T]
        with self.parallel.autocast():
            logits, hidden = self.policy.forward(sub, model=self.train_policy, output_hidden_states=self.value.shared,
                                                 temperature=self.temperature)
            values = self.train_value(self.policy, sub, hidden).float()  # [b, T]
        logprobs = logprobs_from_logits(logits, sub.response_ids)  # [b, T]
        old_logprobs = batch.logprobs[idx]  # [b, T]
        agg = self.cfg.loss_aggregation
        pg_loss, clip_frac = policy_loss(logprobs, old_logprobs, batch.advantages[idx], mask,
                                         self.cfg.clip_eps, agg, denominator)
        if self.heads:  # per-category critic: each head's clipped loss against its own returns, summed
            per_head = [value_loss(values[..., h], batch.values[idx][..., h], batch.returns[idx][..., h], mask,
                                   self.cfg.value_clip_eps, agg, denominator) for h in range(len(self.heads))]
            vf_loss = torch.stack([loss for loss, _ in per_head]).sum()
            vf_clip = torch.stack([frac for _, frac in per_head]).mean()
        else:
            vf_loss, vf_clip = value_loss(values, batch.values[idx], batch.returns[idx], mask,
                                          self.cfg.value_clip_eps, agg, denominator)
        loss = pg_loss + self.cfg.vf_coef * vf_loss
        if self.cfg.entropy_coef:
            entropy = aggregate_loss(entropy_from_logits(logits), mask, agg, denominator)
            loss = loss - self.cfg.entropy_coef * entropy
        else:  # only logged: keep its softmax over the vocabulary out of the backward pass
            with torch.no_grad():
                entropy = aggregate_loss(entropy_from_logits(logits), mask, agg, denominator)
        share = mask.sum() / n_tokens.clamp(min=1)  # this micro-batch's share of the minibatch's tokens
        stats = UpdateStats(
            policy_loss=pg_loss.detach(), value_loss=vf_loss.detach(), entropy=entropy.detach(),
            policy_clip_frac=clip_frac * share, value_clip_frac=vf_clip * share,
            approx_kl=masked_sum(old_logprobs - logprobs.detach(), mask) / n_tokens.clamp(min=1),
        )
        return loss, stats

    def _ptx_loss(self, ptx: tuple[list[str], list[str]]) -> Tensor:
        """The PPO-ptx term: the SFT loss of this process's (prompts, answers), through the
        wrapped policy so that its gradient is all-reduced with PPO's."""
        with self.parallel.autocast():
            return sft_loss(self.policy, ptx[0], ptx[1], model=self.train_policy)

    def _minibatch_update(self, batch: PPOBatch, idx_mb: Tensor,
                          ptx: tuple[list[str], list[str]] | None) -> tuple[Tensor, float]:
        """One optimizer step on the minibatch ``idx_mb`` (rows of the whole batch; this
        process takes every ``world``-th), in ``grad_accum`` micro-batches. Returns the
        minibatch's statistics (``UpdateStats.as_tensor`` layout, summed over processes: the
        same in every process) and this process's PPO-ptx loss (0.0 without the term)."""
        par = self.parallel
        mask_mb = batch.rollout.response_mask[idx_mb]  # [mb, T]
        denominator = loss_denominator(mask_mb, self.cfg.loss_aggregation)
        n_tokens = mask_mb.sum().float()
        mine = idx_mb[par.rank :: par.world]  # this process's rows of the minibatch
        pieces = torch.tensor_split(mine, self.cfg.grad_accum)
        self.optimizer.zero_grad(set_to_none=True)
        stats = UpdateStats.zeros()
        ptx_value = 0.0
        for m, idx in enumerate(pieces):
            # A process with no row here still runs forward and backward (weight 0):
            # DDP's all-reduce needs every process.
            weight = 1.0 if len(idx) else 0.0
            idx = idx if len(idx) else idx_mb[:1]
            sync = par.no_sync(self.train_policy, self.train_value) if m < len(pieces) - 1 \
                else contextlib.nullcontext()
            with sync:
                loss, local = self._local_loss(batch, idx, denominator, n_tokens)
                # DDP averages gradients over processes; the shares must add up.
                loss = loss * (weight * par.world)
                if ptx is not None and m == 0:
                    ptx_loss = self._ptx_loss(ptx)
                    loss = loss + self.cfg.ptx_coef * ptx_loss
                    ptx_value = float(ptx_loss)
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"non-finite PPO loss at iteration {self.iteration}")
                par.backward(loss)
            stats += weight * local.as_tensor()
        par.clip_grad_norm_(self._params(), self.cfg.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        return par.sum(stats), ptx_value

    def _params(self) -> list[Tensor]:
        return [p for g in self.optimizer.param_groups for p in g["params"]]

    def step(self, prompts: Sequence[str], metadata: Sequence[dict[str, Any]],
             ptx: tuple[list[str], list[str]] | None = None) -> dict[str, float]:
        """One iteration on the whole batch's ``prompts`` (the same in every process): collect,
        then update; returns its metrics. ``ptx``: (prompts, answers) for the PPO-ptx term,
        split over processes."""
        t0 = time.perf_counter()
        metrics = self.update(self.collect(prompts, metadata), ptx)
        metrics["time/iteration"] = time.perf_counter() - t0
        return metrics

    def update(self, batch: PPOBatch, ptx: tuple[list[str], list[str]] | None = None) -> dict[str, float]:
        """The PPO epochs over ``batch`` (from ``collect``), then the KL controller's update;
        returns the iteration's metrics (``time/iteration`` aside: ``step`` adds it)."""
        par = self.parallel
        if ptx is not None and self.cfg.ptx_coef > 0:
            share = par.shard(len(ptx[0]))
            ptx = (list(ptx[0][share]), list(ptx[1][share]))
        else:
            ptx = None
        train_mode = not self.cfg.disable_dropout
        self.policy.model.train(train_mode)
        self.value.train(train_mode)
        t = time.perf_counter()
        B = batch.rollout.response_ids.shape[0]
        mb = min(self.cfg.minibatch_size, B)
        stat_sum = UpdateStats.zeros()
        ptx_sum, n_minibatches, stopped = 0.0, 0, False
        for _ in range(self.cfg.ppo_epochs):
            perm = torch.randperm(B, generator=self.permutations).to(batch.rollout.response_ids.device)
            for start in range(0, B, mb):
                mb_stats, ptx_value = self._minibatch_update(batch, perm[start : start + mb], ptx)
                stat_sum += mb_stats
                ptx_sum += ptx_value
                n_minibatches += 1
                if self.cfg.kl_stop is not None and UpdateStats.from_tensor(mb_stats).approx_kl > self.cfg.kl_stop:
                    stopped = True
                    break
            if stopped:
                break
        update_s = time.perf_counter() - t
        self.policy.model.eval()
        self.value.eval()
        mean_kl = float(batch.kl.sum(-1).mean())  # per-sequence KL (already 0 at padding)
        self.kl_ctl.update(mean_kl, B)
        metrics = UpdateStats.from_tensor(stat_sum).metrics(n_minibatches)
        metrics["loss/ptx"] = float(par.sum(torch.tensor(ptx_sum / max(n_minibatches, 1)))) / par.world
        metrics.update(batch_metrics(batch, self.granularities))
        if batch.head_advantages is not None:
            metrics.update(head_statistics(batch.head_advantages, batch.values, batch.returns,
                                           batch.rollout.response_mask, self.heads))
        metrics.update({
            "kl/coef": self.kl_ctl.kl_coef,
            "ppo/early_stopped": float(stopped), "lr": self.scheduler.get_last_lr()[0],
            **{f"time/{k}": v for k, v in batch.timings.items()},
            "time/update": update_s,
        })
        if par.world > 1:
            metrics["parallel/divergence"] = par.divergence(self._params())
        self.iteration += 1
        if not all(math.isfinite(v) for v in metrics.values()):
            raise FloatingPointError(f"non-finite metric at iteration {self.iteration}: {metrics}")
        return metrics


def batch_metrics(batch: PPOBatch, granularities: Mapping[str, str]) -> dict[str, float]:
    """What a collected batch says by itself: rewards per response (per category, total, and
    penalised: the rewards GAE read, before any whitening), KL and lengths."""
    mask = batch.rollout.response_mask  # [B, T]
    reward = batch.reward
    metrics = {f"reward/{k}": float(reward.per_category[..., k_i].sum(-1).mean())
               for k_i, k in enumerate(reward.categories)}
    metrics.update({
        "reward/total": float(reward.total.sum(-1).mean()),
        "reward/penalised": float(batch.rewards.sum(-1).mean()),  # already 0 at padding
        "kl/sequence": float(batch.kl.sum(-1).mean()),  # per-sequence KL (already 0 at padding)
        "length/tokens": float(mask.sum(-1).float().mean()),
        # Responses with no text (EOS first, or nothing generated): no segment to reward.
        "length/empty": sum(1 for x in batch.texts if not x.strip()) / max(len(batch.texts), 1),
        "prompts/truncated": float(batch.rollout.truncated_prompts),
    })
    metrics.update(reward_monitors(batch.texts, reward, granularities))
    return metrics


def reward_monitors(texts: Sequence[str], reward: DenseReward, granularities: Mapping[str, str]) -> dict[str, float]:
    """The reward-hacking monitors of a scored batch (``fgrlhf.eval.monitors``): segments per
    answer and words per segment at each granularity the rewards read, text statistics, each
    category's error rate and share of the reward, and each monitor-only reward's mean per
    answer (``monitor/reward/<name>``). ``granularities``: category → its granularity."""
    by_granularity = {g: reward.spans[k] for k, g in granularities.items() if k in reward.spans}
    out = text_monitors(texts, by_granularity)
    out.update(category_monitors({k: (s.scores, s.mask) for k, s in reward.raw.items()}, reward.per_category,
                                 reward.categories))
    out.update(monitor_reward_stats({k: (s.scores, s.mask) for k, s in reward.monitors.items()}))
    return out

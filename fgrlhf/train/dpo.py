"""Direct preference optimisation of a policy on (prompt, preferred answer, dispreferred
answer) triples: no reward model, no sampling.

A pair's sequence log-probability ``log π(y|x)`` is the sum of the per-token log-probs of
the answer and its closing EOS, read in the ``Rollout`` layout that SFT and PPO use
(``Policy.teacher_forced``). The reference ``π_ref`` never changes, so its log-probs of
every pair are computed once, before the first update, and cached; the loss and the
implicit rewards ``β·(log π − log π_ref)`` come from ``fgrlhf.core.dpo`` (IPO on per-token
means of the log-probs, as TRL computes it; see ``pair_terms``).

By default the policy trains with its dropout off (TRL's ``disable_dropout``): the policy
and the reference then score a pair identically before the first update (loss log 2 for
sigmoid DPO), so every change of the implicit rewards is learned, not noise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor
from tqdm import tqdm

from fgrlhf.core.dpo import dpo_loss, implicit_rewards
from fgrlhf.errors import ConfigError
from fgrlhf.policy.model import Policy
from fgrlhf.toolkit.fit import FitConfig, autocast, fit, minibatches
from fgrlhf.toolkit.optim import build_adamw, make_scheduler

PAIR_METRICS = ("loss", "reward_accuracy", "margin", "chosen_reward", "rejected_reward")


@dataclass
class DPOConfig(FitConfig):
    """DPO of a whole policy (or of its LoRA adapters): ``batch_size`` pairs per step, warmup
    in steps times a linear decay from step 0 (the SFT and PPO schedule)."""

    RULES: ClassVar[dict[str, str]] = {
        "beta": "> 0", "loss_type": "in sigmoid ipo", "label_smoothing": "[0, 0.5]", "lr": "> 0",
        "weight_decay": ">= 0", "epochs": "> 0", "batch_size": "> 0", "grad_clip": "> 0", "warmup_steps": ">= 0",
        "max_answer_tokens": ">= 2", "evals_per_epoch": "> 0", "max_minutes": "> 0", "max_steps": "> 0",
        "seed": ">= 0"}

    beta: float = 0.1  # strength of the implicit KL anchor to the reference
    loss_type: str = "sigmoid"  # sigmoid (DPO) | ipo (on per-token mean log-probs)
    label_smoothing: float = 0.0  # sigmoid only: assumed share of flipped labels (conservative DPO)
    lr: float = 1e-5
    batch_size: int = 8  # preference pairs per step
    warmup_steps: int = 10
    max_answer_tokens: int = 128  # answer tokens scored, the closing EOS included
    evals_per_epoch: int = 4  # dev evaluations per epoch, the last at its end
    dropout: bool = False  # keep the model's dropout on while training
    max_minutes: float | None = None  # stop early once this much time is spent
    # stop after this many steps, the schedule still that of all epochs: a budget that does
    # not depend on the machine's speed or load (the result records the steps taken)
    max_steps: int | None = None


@dataclass
class PreferencePair:
    prompt: str
    chosen: str  # the preferred answer
    rejected: str


def sequence_logprobs(policy: Policy, prompts: Sequence[str], answers: Sequence[str], max_answer_tokens: int = 128,
                      model=None) -> Tensor:
    """``log π(answer | prompt)`` ``[N]``: the sum of the answer's per-token log-probs, its
    closing EOS included, under ``model`` (default the policy's own)."""
    return _scored(policy, prompts, answers, max_answer_tokens, model)[0]


def _scored(policy: Policy, prompts: Sequence[str], answers: Sequence[str], max_answer_tokens: int,
            model=None) -> tuple[Tensor, Tensor]:
    """Sequence log-probs ``[N]`` and the number of answer tokens scored ``[N]``."""
    rollout = policy.teacher_forced(prompts, answers, max_answer_tokens)
    logps = policy.logprobs(rollout, model=model)  # [N, T] (0 at padding)
    return logps.sum(dim=1), rollout.response_mask.sum(dim=1)


def pair_logprobs(policy: Policy, pairs: Sequence[PreferencePair], max_answer_tokens: int = 128,
                  model=None) -> tuple[Tensor, Tensor]:
    """Sequence log-probs of each pair's (chosen, rejected) answers ``[N, 2]`` and their token
    counts ``[N, 2]``, from one forward pass over the ``2N`` rows."""
    n = len(pairs)
    prompts = [p.prompt for p in pairs]
    answers = [p.chosen for p in pairs] + [p.rejected for p in pairs]
    logps, lengths = _scored(policy, prompts + prompts, answers, max_answer_tokens, model)  # [2N], [2N]
    return logps.view(2, n).T, lengths.view(2, n).T


def distinguishable(policy: Policy, pairs: Sequence[PreferencePair], max_answer_tokens: int) -> list[PreferencePair]:
    """The pairs whose two answers still differ once cut to the ``max_answer_tokens`` that are
    scored. Sampled answers to one question often share a long opening; cut to the same
    tokens, a pair has no margin to learn (its loss is constant) and no reward accuracy."""
    if not pairs:
        return []
    tok = policy.tokenizer

    def scored(texts: list[str]) -> list[list[int]]:  # the tokens teacher_forced keeps
        return tok(texts, add_special_tokens=False, truncation=True, max_length=max_answer_tokens - 1)["input_ids"]

    chosen, rejected = scored([p.chosen for p in pairs]), scored([p.rejected for p in pairs])
    return [p for p, a, b in zip(pairs, chosen, rejected) if a != b]


def reference_model(policy: Policy):
    """What scores the reference log-probs: the model with its adapters off when the policy
    trains LoRA adapters (the frozen base), else the policy's model itself. The latter is the
    SFT policy only until the first update, which is why ``reference_logprobs`` runs before
    training and its result is cached rather than a copy of the weights kept."""
    from fgrlhf.policy.lora import AdaptersOff, has_adapters

    return AdaptersOff(policy.model) if has_adapters(policy.model) else policy.model


@torch.no_grad()
def reference_logprobs(policy: Policy, pairs: Sequence[PreferencePair], cfg: DPOConfig) -> Tensor:
    """The reference's (chosen, rejected) sequence log-probs of every pair ``[N, 2]``, in eval
    mode, ``cfg.batch_size`` pairs at a time. Call it before the policy's first update."""
    was_training = policy.model.training
    policy.model.eval()
    reference = reference_model(policy)
    rows = []
    for i in range(0, len(pairs), cfg.batch_size):
        with autocast(policy.model, cfg.bf16):
            logps, _ = pair_logprobs(policy, pairs[i : i + cfg.batch_size], cfg.max_answer_tokens, reference)
        rows.append(logps.float())  # [b, 2]
    policy.model.train(was_training)
    return torch.cat(rows) if rows else torch.zeros(0, 2, device=policy.device)


class ReferenceCache:
    """The reference's (chosen, rejected) log-probs of each of ``pairs`` ``[N, 2]``, computed
    once per pair and kept. With LoRA adapters the reference is the frozen base (adapters
    off), the same before and after any update, so a pair is scored when a batch first needs
    it: a run that ``max_minutes`` cuts short pays only for the pairs it trained on (at batch
    size 4 the whole training set's reference pass is ~20 minutes of Gemma 3 270M on one CPU
    thread). Without adapters the policy is its own reference only until its first update,
    so every pair is scored at construction, which must come before training."""

    def __init__(self, policy: Policy, pairs: Sequence[PreferencePair], cfg: DPOConfig) -> None:
        from fgrlhf.policy.lora import has_adapters

        self.policy, self.pairs, self.cfg = policy, pairs, cfg
        self.values = torch.full((len(pairs), 2), math.nan, device=policy.device)  # [N, 2]
        if not has_adapters(policy.model):
            self.values = reference_logprobs(policy, pairs, cfg)

    def __getitem__(self, indices: Sequence[int]) -> Tensor:
        """The reference log-probs of the pairs at ``indices`` ``[len(indices), 2]``."""
        index = torch.as_tensor(list(indices), dtype=torch.long, device=self.values.device)
        missing = [i for i in dict.fromkeys(indices) if math.isnan(float(self.values[i, 0]))]
        if missing:
            rows = torch.as_tensor(missing, dtype=torch.long, device=self.values.device)
            self.values[rows] = reference_logprobs(self.policy, [self.pairs[i] for i in missing], self.cfg)
        return self.values[index]


def pair_terms(logps: Tensor, lengths: Tensor, ref: Tensor, cfg: DPOConfig) -> dict[str, Tensor]:
    """Per-pair loss and implicit rewards ``[N]`` from the policy's (chosen, rejected)
    log-probs ``[N, 2]``, their token counts ``[N, 2]`` and the cached reference log-probs
    ``[N, 2]``. IPO reads per-token means of the log-probs (as TRL does, and as the IPO
    authors' results use): its target margin ``1/(2β)`` then does not grow with the answers'
    length. The implicit rewards are of whole sequences for every loss."""
    logps = logps.float()  # [N, 2]
    scale = lengths.clamp(min=1).float() if cfg.loss_type == "ipo" else torch.ones_like(logps)  # [N, 2]
    pol, ref_n = logps / scale, ref / scale  # [N, 2]
    return {"loss": dpo_loss(pol[:, 0], pol[:, 1], ref_n[:, 0], ref_n[:, 1], cfg.beta, cfg.loss_type,
                             cfg.label_smoothing),
            "chosen_reward": implicit_rewards(logps[:, 0], ref[:, 0], cfg.beta),
            "rejected_reward": implicit_rewards(logps[:, 1], ref[:, 1], cfg.beta)}


def summarise(terms: dict[str, Tensor]) -> dict[str, float]:
    """Means over the pairs: loss, reward accuracy (share of pairs whose chosen answer's
    implicit reward is the higher), margin (chosen − rejected reward), each reward."""
    chosen, rejected = terms["chosen_reward"].detach(), terms["rejected_reward"].detach()
    return {"loss": float(terms["loss"].detach().mean()), "reward_accuracy": float((chosen > rejected).float().mean()),
            "margin": float((chosen - rejected).mean()), "chosen_reward": float(chosen.mean()),
            "rejected_reward": float(rejected.mean())}


@torch.no_grad()
def evaluate_pairs(policy: Policy, pairs: Sequence[PreferencePair], ref: Tensor | ReferenceCache,
                   cfg: DPOConfig) -> dict[str, float]:
    """``summarise`` over ``pairs`` (the policy in eval mode), ``ref`` their reference
    log-probs ``[N, 2]`` (or a ``ReferenceCache`` of them)."""
    was_training = policy.model.training
    policy.model.eval()
    parts: dict[str, list[Tensor]] = {}
    for i in range(0, len(pairs), cfg.batch_size):
        with autocast(policy.model, cfg.bf16):
            logps, lengths = pair_logprobs(policy, pairs[i : i + cfg.batch_size], cfg.max_answer_tokens)
        rows = list(range(i, min(i + cfg.batch_size, len(pairs))))
        for key, value in pair_terms(logps, lengths, ref[rows], cfg).items():  # ref[rows]: [b, 2]
            parts.setdefault(key, []).append(value)
    policy.model.train(was_training)
    return summarise({k: torch.cat(v) for k, v in parts.items()})


def train_dpo(policy: Policy, train: Sequence[PreferencePair], dev: Sequence[PreferencePair], cfg: DPOConfig,
              logger=None) -> dict[str, Any]:
    """DPO of ``policy`` in place on ``train`` (``fgrlhf.toolkit.fit``: shuffled minibatches of
    pairs, warmup times linear decay from step 0), the dev pairs evaluated
    ``cfg.evals_per_epoch`` times an epoch. Logs ``dpo/<metric>`` of every step's batch and
    ``dpo/lr``, and ``dpo/dev_<metric>`` at evaluations (``PAIR_METRICS``). Returns the history:
    each evaluation's dev metrics with the training batches' means since the previous one.
    Pairs whose answers are the same once cut to ``cfg.max_answer_tokens`` are left out of
    both parts (``distinguishable``); the history counts them (``same_when_cut``)."""
    model = policy.model
    given = {"train": len(train), "dev": len(dev)}
    train = distinguishable(policy, train, cfg.max_answer_tokens)
    dev = distinguishable(policy, dev, cfg.max_answer_tokens)
    if not train:
        raise ConfigError(f"none of the {given['train']} training pairs has answers that differ within their first "
                          f"dpo.max_answer_tokens={cfg.max_answer_tokens} tokens")
    ref_train = ReferenceCache(policy, train, cfg)  # before any update
    ref_dev = ReferenceCache(policy, dev, cfg) if dev else None
    state: dict[str, Any] = {"step": 0, "since_eval": []}

    def optimizer(total: int):
        state["opt"] = build_adamw(model, cfg.lr, cfg.weight_decay)
        return state["opt"], make_scheduler(state["opt"], cfg.warmup_steps, max(1, total))

    def loss(indices):
        ref = ref_train[indices]  # [b, 2]; scored (adapters off) before the policy's graph is built
        if not cfg.dropout:
            model.eval()  # gradients still flow; only dropout is off
        logps, lengths = pair_logprobs(policy, [train[j] for j in indices], cfg.max_answer_tokens)
        terms = pair_terms(logps, lengths, ref, cfg)
        metrics = summarise(terms)
        state["since_eval"].append(metrics)
        if logger is not None:
            logger.log({**{f"dpo/{k}": v for k, v in metrics.items()},
                        "dpo/lr": state["opt"].param_groups[0]["lr"]}, state["step"])
        state["step"] += 1
        return terms["loss"].mean()

    def evaluate(epoch: int, step: int) -> dict[str, Any]:
        done, state["since_eval"] = state["since_eval"], []
        record: dict[str, Any] = {"step": step + 1,
                                  "train": {k: sum(m[k] for m in done) / len(done) for k in PAIR_METRICS}}
        if ref_dev is not None:
            record["dev"] = evaluate_pairs(policy, dev, ref_dev, cfg)
            if logger is not None:
                logger.log({f"dpo/dev_{k}": v for k, v in record["dev"].items()}, step + 1)
            tqdm.write(f"  step {step + 1}: dev reward accuracy {record['dev']['reward_accuracy']:.3f}, "
                       f"margin {record['dev']['margin']:.4f}, loss {record['dev']['loss']:.4f}")
        return record

    result = fit(model, loss, lambda rng: minibatches(len(train), cfg.batch_size, rng), cfg, optimizer,
                 evaluate=evaluate, evals_per_epoch=cfg.evals_per_epoch, prefix="dpo",
                 max_minutes=cfg.max_minutes, max_steps=cfg.max_steps, desc="dpo epoch")
    last = result.history[-1] if result.history else {}
    return {"evaluations": result.history, "steps": result.steps, "seconds": result.seconds,
            "stopped_early": result.out_of_time, "train_pairs": len(train), "dev_pairs": len(dev),
            "same_when_cut": {part: n - len(kept) for (part, n), kept in zip(given.items(), (train, dev))},
            "last_epoch_loss": result.last_epoch_loss if math.isfinite(result.last_epoch_loss) else None,
            "dev": last.get("dev"), "train": last.get("train")}

"""Training the offline toxicity scorer (``fgrlhf.reward.toxicity``) on RealToxicityPrompts.

Loss: binary cross-entropy of ``σ(logit)`` against Perspective's score as a soft label.
Perspective's toxicity is a probability (the share of raters expected to call the text
toxic), and cross-entropy is the proper scoring rule for a probability: its minimiser is the
label itself, and its gradient on the logit, ``σ(z) − y``, does not vanish when the sigmoid
saturates, as the gradient of the squared error through a sigmoid, ``(σ(z) − y)·σ'(z)``, does.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from fgrlhf.device import resolve_bf16
from fgrlhf.toolkit.fit import FitConfig, fit
from fgrlhf.train.rm import encoder_optimizer, freeze_lower_layers


@dataclass
class ScorerOptimConfig(FitConfig):
    """The toxicity scorer's training: an encoder (or a bag of n-grams) under a new head,
    every epoch to the end (no dev split)."""

    RULES: ClassVar[dict[str, str]] = {"head_lr": "> 0", "warmup_ratio": "[0, 1]", "freeze_layers": ">= 0"}

    head_lr: float = 1e-3  # the new head: a fine-tuning rate would move it too slowly in one epoch
    weight_decay: float = 0.01
    batch_size: int = 32
    warmup_ratio: float = 0.06
    freeze_layers: int = 2  # freeze the embeddings and this many lowest encoder layers (0: none)


def length_batches(lengths: list[int], batch_size: int, rng: random.Random, window: int = 50) -> list[list[int]]:
    """Shuffled minibatches of indices whose lengths are close: the shuffled indices are cut
    into windows of ``window`` batches, each window is sorted by length and cut into batches,
    and the batches are shuffled. Padding to the longest text of a random batch would
    otherwise more than double the tokens of a step (RTP texts: mean 16, max 50 tokens)."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    batches = []
    span = batch_size * window
    for start in range(0, len(order), span):
        chunk = sorted(order[start : start + span], key=lambda j: lengths[j])
        batches += [chunk[k : k + batch_size] for k in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def train_scorer(scorer, texts: list[str], targets: list[float], cfg: ScorerOptimConfig, logger=None,
                 progress: bool = True) -> dict[str, Any]:
    """Fit ``scorer`` (a ``ToxicityScorer``) to soft toxicity labels with BCE on its logits.

    ``fgrlhf.toolkit.fit`` over minibatches of similar lengths (``length_batches``) for
    ``cfg.epochs`` epochs, lower layers frozen, the head's bias started at the base rate.
    No early stopping: one or two epochs over a few thousand texts do not overfit, so every
    text that is not test data trains the scorer. Returns steps, mean loss of the last epoch
    and seconds.
    """
    from fgrlhf.reward.toxicity import BagOfNgrams

    if not texts:
        raise ValueError("no training texts")
    freeze_lower_layers(scorer.model, cfg.freeze_layers)
    mean = min(max(sum(targets) / len(targets), 1e-4), 1 - 1e-4)
    with torch.no_grad():
        # Start at the base rate: the first steps then learn what raises or lowers toxicity
        # instead of spending themselves on the bias.
        scorer.model.score.bias.fill_(math.log(mean / (1 - mean)))
    ids = scorer.encode(texts)
    lengths = [len(x) for x in ids]
    y = torch.tensor(targets, dtype=torch.float32)  # [N]
    # The scorer autocasts its own forward passes (an encoder's where bf16 is fast; never the
    # bag of n-grams), in training and in the evaluation after it.
    scorer.bf16 = resolve_bf16(cfg.bf16, scorer.device) if not isinstance(scorer.model, BagOfNgrams) else False

    def loss(indices):
        logits = scorer.logits([ids[j] for j in indices])  # [N]
        return F.binary_cross_entropy_with_logits(logits, y[indices].to(logits.device))

    result = fit(scorer.model, loss, lambda rng: length_batches(lengths, cfg.batch_size, rng), cfg,
                 lambda total: encoder_optimizer(scorer.model, scorer.model.encoder, cfg, total),
                 logger=logger, log_next_lr=True, bf16=False, progress=progress)
    scorer.model.eval()
    return {"steps": result.steps, "final_epoch_loss": result.last_epoch_loss, "seconds": result.seconds}

"""PPO losses (Schulman et al. 2017) with an explicit loss-aggregation mode."""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from fgrlhf.core.masked import masked_mean, masked_sum

LossAggregation = Literal["token-mean", "seq-mean-token-mean", "seq-mean-token-sum"]


def loss_denominator(mask: Tensor, mode: LossAggregation = "token-mean") -> Tensor:
    """What ``aggregate_loss`` divides by: the number of real tokens (``token-mean``) or of
    responses (the ``seq-mean`` modes) in ``mask`` ``[B, T]``, as a float scalar."""
    if mode == "token-mean":
        return mask.sum().to(torch.float32)
    if mode in ("seq-mean-token-mean", "seq-mean-token-sum"):
        return torch.tensor(float(mask.shape[0]), device=mask.device)
    raise ValueError(
        f"unknown loss aggregation {mode!r}; expected token-mean, seq-mean-token-mean or "
        "seq-mean-token-sum"
    )


def aggregate_loss(per_token: Tensor, mask: Tensor, mode: LossAggregation = "token-mean",
                   denominator: Tensor | float | None = None) -> Tensor:
    """Reduce a ``[B, T]`` per-token loss to a scalar.

    - ``token-mean``: Σ_bt m·l / Σ_bt m. Every token weighs the same; long responses weigh
      more in total.
    - ``seq-mean-token-mean``: mean_b (Σ_t m·l / Σ_t m). Every response weighs the same, so a
      token of a short response weighs more than one of a long response.
    - ``seq-mean-token-sum``: mean_b Σ_t m·l. Sum over a response's tokens (the loss of the
      whole sequence), mean over responses.

    The choice changes the gradient's length bias, so it is a named setting, not a default
    hidden in a trainer. Responses with no real token contribute 0.

    ``denominator`` replaces the batch's own count (``loss_denominator(mask, mode)``): with
    the count of a whole minibatch, the losses of its pieces (micro-batches, or the shards of
    several processes) add up to exactly the minibatch's loss, whatever the pieces' sizes.
    """
    if mode == "token-mean":
        numerator = masked_sum(per_token, mask)
    elif mode == "seq-mean-token-mean":
        numerator = masked_mean(per_token, mask, dim=-1).sum()
    elif mode == "seq-mean-token-sum":
        numerator = masked_sum(per_token, mask, dim=-1).sum()
    else:
        raise ValueError(
            f"unknown loss aggregation {mode!r}; expected token-mean, seq-mean-token-mean or "
            "seq-mean-token-sum"
        )
    if denominator is None:
        denominator = loss_denominator(mask, mode)
    if isinstance(denominator, Tensor):
        return numerator / denominator.clamp(min=1.0)
    return numerator / max(float(denominator), 1.0)


def policy_loss(
    logprobs: Tensor,
    old_logprobs: Tensor,
    advantages: Tensor,
    mask: Tensor,
    clip_eps: float = 0.2,
    aggregation: LossAggregation = "token-mean",
    denominator: Tensor | float | None = None,
) -> tuple[Tensor, Tensor]:
    """Clipped surrogate objective, as a loss to minimise.

        ρ_t = exp(log π_θ(y_t) − log π_old(y_t))
        L_t = max(−A_t·ρ_t, −A_t·clip(ρ_t, 1 − ε, 1 + ε))

    Returns (loss, clip fraction): the fraction of real tokens where the clipped term was
    the active one. ``denominator``: see ``aggregate_loss``.

    Shapes: all inputs ``[B, T]`` → two scalars.
    """
    ratio = torch.exp(logprobs - old_logprobs)  # [B, T]
    unclipped = -advantages * ratio  # [B, T]
    clipped = -advantages * torch.clamp(ratio, 1.0 - clip_eps, 1.0 + clip_eps)  # [B, T]
    per_token = torch.maximum(unclipped, clipped)  # [B, T]
    clip_frac = masked_mean((clipped > unclipped).to(per_token.dtype), mask)
    return aggregate_loss(per_token, mask, aggregation, denominator), clip_frac.detach()


def value_loss(
    values: Tensor,
    old_values: Tensor,
    returns: Tensor,
    mask: Tensor,
    clip_eps: float | None = 0.2,
    aggregation: LossAggregation = "token-mean",
    denominator: Tensor | float | None = None,
) -> tuple[Tensor, Tensor]:
    """Clipped value loss (PPO2 style), as a loss to minimise.

        V^clip_t = V_old,t + clip(V_t − V_old,t, −ε_v, ε_v)
        L_t = ½ · max((V_t − R_t)², (V^clip_t − R_t)²)

    ``clip_eps=None`` gives the plain ½(V − R)². Returns (loss, clip fraction);
    ``denominator``: see ``aggregate_loss``.

    The clip fraction is the fraction of real tokens where the clipped term is the one
    taken: V moved more than ε_v from V_old (|V − V_old| > ε_v) and the clipped error is the
    larger. Comparing the two squared errors alone over-counts: inside the range, V^clip is
    V_old + (V − V_old), which need not round back to V, so the "clipped" error can exceed
    the unclipped one by an ulp.

    Shapes: all inputs ``[B, T]`` → two scalars.
    """
    unclipped_sq = (values - returns) ** 2  # [B, T]
    if clip_eps is None:
        per_token = 0.5 * unclipped_sq
        clip_frac = torch.zeros((), dtype=values.dtype, device=values.device)
    else:
        v_clipped = old_values + torch.clamp(values - old_values, -clip_eps, clip_eps)  # [B, T]
        clipped_sq = (v_clipped - returns) ** 2  # [B, T]
        per_token = 0.5 * torch.maximum(unclipped_sq, clipped_sq)
        clipped = ((values - old_values).abs() > clip_eps) & (clipped_sq > unclipped_sq)  # [B, T]
        clip_frac = masked_mean(clipped.to(values.dtype), mask).detach()
    return aggregate_loss(per_token, mask, aggregation, denominator), clip_frac


def entropy_from_logits(logits: Tensor) -> Tensor:
    """Entropy of the categorical distribution at each position.

        H = logsumexp(z) − Σ softmax(z)·z

    Computed from logits without materialising log-softmax twice. Shapes: ``[B, T, V]`` →
    ``[B, T]``.
    """
    logits = logits.float()
    probs = torch.softmax(logits, dim=-1)  # [B, T, V]
    # A −inf logit (a banned token) has probability 0 and contributes 0, not 0·(−inf) = NaN.
    weighted = torch.where(probs > 0, probs * logits, torch.zeros((), device=logits.device))
    return torch.logsumexp(logits, dim=-1) - weighted.sum(dim=-1)


def logprobs_from_logits(logits: Tensor, labels: Tensor) -> Tensor:
    """Log-probability of each label under its logits: log softmax(z)[y].

    Shapes: logits ``[B, T, V]``, labels ``[B, T]`` → ``[B, T]``.
    """
    logits = logits.float()
    picked = torch.gather(logits, -1, labels.unsqueeze(-1)).squeeze(-1)  # [B, T]
    return picked - torch.logsumexp(logits, dim=-1)

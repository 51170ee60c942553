"""Generalised advantage estimation over dense, token-level rewards."""

from __future__ import annotations

import torch
from torch import Tensor


def gae(
    rewards: Tensor,
    values: Tensor,
    mask: Tensor,
    gamma: float = 1.0,
    lam: float = 0.95,
) -> tuple[Tensor, Tensor]:
    """Advantages and returns by GAE (Schulman et al. 2016) for a batch of responses.

    For each real token t of a response (``mask[b, t]`` true), with ``t'`` the next real token:

        δ_t = r_t + γ·V_{t'} − V_t          (V after the last real token is 0: episode ends)
        A_t = δ_t + γ·λ·A_{t'}
        R_t = A_t + V_t                      (the value target)

    Masked positions may sit anywhere (right padding, an early EOS, or holes); they are
    skipped, so their rewards and values change nothing, and their outputs are 0.

    The recursion runs backwards over time but is vectorised over the batch: one step per
    column, each a ``[B]`` operation.

    Shapes: rewards, values, mask ``[B, T]`` → advantages, returns ``[B, T]``.
    """
    if rewards.shape != values.shape or rewards.shape != mask.shape:
        raise ValueError(
            f"gae: rewards {tuple(rewards.shape)}, values {tuple(values.shape)} and mask "
            f"{tuple(mask.shape)} must have the same [B, T] shape"
        )
    m = mask.bool()
    zero = torch.zeros((), dtype=rewards.dtype, device=rewards.device)
    r = torch.where(m, rewards, zero)  # [B, T]
    v = torch.where(m, values, zero)  # [B, T]
    B, T = r.shape
    advantages = torch.zeros_like(r)  # [B, T]
    next_value = torch.zeros(B, dtype=r.dtype, device=r.device)  # [B] V_{t'}
    next_adv = torch.zeros(B, dtype=r.dtype, device=r.device)  # [B] A_{t'}
    for t in range(T - 1, -1, -1):
        real = m[:, t]  # [B]
        delta = r[:, t] + gamma * next_value - v[:, t]  # [B]
        adv_t = delta + gamma * lam * next_adv  # [B]
        # A masked step leaves the carried (V, A) untouched, so the next real token to the
        # left bootstraps from the next real token to the right, not from padding.
        advantages[:, t] = torch.where(real, adv_t, zero)
        next_adv = torch.where(real, adv_t, next_adv)
        next_value = torch.where(real, v[:, t], next_value)
    returns = torch.where(m, advantages + v, zero)  # [B, T]
    return advantages, returns

"""Generalised advantage estimation over dense, token-level rewards."""

from __future__ import annotations

from functools import lru_cache

import torch
from torch import Tensor


@lru_cache(maxsize=16)
def discount_matrix(T: int, factor: float, dtype: torch.dtype, device: torch.device) -> Tensor:
    """``D[k, t] = factor^(k − t)`` for k ≥ t, else 0: ``[T, T]``, cached per shape and factor.

    Built in float64 so that small powers do not underflow before the cast.
    """
    steps = torch.arange(T, device=device, dtype=torch.float64)
    exponent = steps[:, None] - steps[None, :]  # [T, T]: k − t
    base = torch.tensor(factor, dtype=torch.float64, device=device)
    return torch.where(exponent >= 0, torch.pow(base, exponent.clamp(min=0)), 0.0).to(dtype)


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

    Computed without a loop over time: rows are compacted so real tokens are contiguous,
    then ``A = δ · D`` with the ``[T, T]`` discount matrix ``D[k, t] = (γλ)^{k−t}`` for
    k ≥ t (O(B·T²) multiply-adds, a single matrix product; memory O(T²)).

    Shapes: rewards, values, mask ``[B, T]`` → advantages, returns ``[B, T]``.
    """
    if rewards.shape != values.shape or rewards.shape != mask.shape:
        raise ValueError(
            f"gae: rewards {tuple(rewards.shape)}, values {tuple(values.shape)} and mask "
            f"{tuple(mask.shape)} must have the same [B, T] shape"
        )
    m = mask.bool()
    B, T = rewards.shape
    dtype, device = rewards.dtype, rewards.device
    zero = torch.zeros((), dtype=dtype, device=device)
    # 1. Compact each row: the k-th real token moves to column k, so "next real token" is
    #    simply the next column, whatever the mask looks like (padding, early EOS, holes).
    rank = m.long().cumsum(dim=1) - 1  # [B, T] column of each real token once compacted
    dest = torch.where(m, rank, torch.full_like(rank, T))  # masked positions go to a spare column
    r_c = torch.zeros(B, T + 1, dtype=dtype, device=device).scatter_(1, dest, torch.where(m, rewards, zero))[:, :T]
    v_c = torch.zeros(B, T + 1, dtype=dtype, device=device).scatter_(1, dest, torch.where(m, values, zero))[:, :T]
    real_c = torch.arange(T, device=device) < m.sum(dim=1, keepdim=True)  # [B, T]
    # 2. TD errors; V after the last real token is 0 (the compacted tail is zero).
    v_next = torch.cat([v_c[:, 1:], torch.zeros(B, 1, dtype=dtype, device=device)], dim=1)  # [B, T]
    delta = torch.where(real_c, r_c + gamma * v_next - v_c, zero)  # [B, T]
    # 3. A_t = Σ_{k≥t} (γλ)^{k−t} δ_k as one matrix product with the upper-triangular
    #    discount matrix D[k, t] = (γλ)^{k−t} (k ≥ t): no Python loop over time, one kernel
    #    on a GPU.
    adv_c = delta @ discount_matrix(T, gamma * lam, dtype, device)  # [B, T]
    # 4. Back to the original positions.
    advantages = torch.where(m, torch.gather(adv_c, 1, rank.clamp(min=0)), zero)  # [B, T]
    returns = torch.where(m, advantages + torch.where(m, values, zero), zero)  # [B, T]
    return advantages, returns

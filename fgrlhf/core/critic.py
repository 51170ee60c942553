"""Per-category credit assignment: one value head and one GAE per reward category.

A scalar critic learns V(s) of the summed reward; when relevance and factuality pull in
different directions, its advantage mixes both and a reader cannot tell which category
moved the policy. The per-category critic (``ppo.critic: per_category``) gives every
category k (and the KL penalty, as one more head) its own value ``V_k`` trained on its own
dense reward ``r_k`` (already weighted), runs GAE on each, and combines the advantages::

    A_t = Σ_k A_t^k,   A^k = GAE(r^k, V^k)

GAE is linear in the rewards and values, so with ``V = Σ_k V_k`` this equals the scalar
critic's advantage exactly; what differs is what each head is trained to predict (its own
category's return), which gives each category a variance-reduced baseline of its own and
per-category diagnostics (advantage mean/std, explained variance per head).
"""

from __future__ import annotations

import torch
from torch import Tensor

from fgrlhf.core.gae import gae
from fgrlhf.core.masked import masked_mean, masked_var


def per_category_gae(rewards: Tensor, values: Tensor, mask: Tensor, gamma: float,
                     lam: float) -> tuple[Tensor, Tensor]:
    """GAE per head. ``rewards``, ``values`` ``[B, T, H]``, ``mask`` ``[B, T]`` →
    advantages, returns ``[B, T, H]``."""
    if rewards.shape != values.shape or rewards.shape[:2] != mask.shape:
        raise ValueError(f"per_category_gae: rewards {tuple(rewards.shape)}, values {tuple(values.shape)}, "
                         f"mask {tuple(mask.shape)}")
    B, T, H = rewards.shape
    flat = lambda x: x.permute(0, 2, 1).reshape(B * H, T)  # noqa: E731  [B·H, T]
    m = mask.repeat_interleave(H, dim=0)  # [B·H, T], row b·H + h is head h of response b
    adv, ret = gae(flat(rewards), flat(values), m, gamma, lam)
    unflat = lambda x: x.reshape(B, H, T).permute(0, 2, 1)  # noqa: E731  [B, T, H]
    return unflat(adv), unflat(ret)


def explained_variance(values: Tensor, returns: Tensor, mask: Tensor) -> float | None:
    """``1 − Var[R − V] / Var[R]`` over the real tokens (1: perfect, ≤ 0: no better than a
    constant); ``None`` when the returns do not vary (e.g. the KL head before the policy moves)."""
    var_r = float(masked_var(returns, mask))
    if var_r == 0:
        return None
    return 1.0 - float(masked_var(returns - values, mask)) / var_r


def head_statistics(advantages: Tensor, values: Tensor, returns: Tensor, mask: Tensor,
                    names: list[str]) -> dict[str, float]:
    """``critic/<name>/{adv_mean, adv_std, explained_variance}`` for each head ``[B, T, H]``
    (the explained variance left out where it is undefined)."""
    out = {}
    for h, name in enumerate(names):
        a = advantages[..., h]
        out[f"critic/{name}/adv_mean"] = float(masked_mean(a, mask))
        out[f"critic/{name}/adv_std"] = float(torch.sqrt(masked_var(a, mask)))
        ev = explained_variance(values[..., h], returns[..., h], mask)
        if ev is not None:
            out[f"critic/{name}/explained_variance"] = ev
    return out

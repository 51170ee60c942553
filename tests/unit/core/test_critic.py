"""The per-category critic: with one category (plus the KL head) its combined advantage is
the scalar critic's; each head's GAE is its own category's."""

from __future__ import annotations

import pytest
import torch

from fgrlhf.core.critic import explained_variance, head_statistics, per_category_gae
from fgrlhf.core.gae import gae


def _batch(H, seed=0):
    g = torch.Generator().manual_seed(seed)
    rewards = torch.randn(3, 7, H, generator=g, dtype=torch.float64)
    values = torch.randn(3, 7, H, generator=g, dtype=torch.float64)
    mask = torch.tensor([[1] * 7, [1] * 4 + [0] * 3, [0, 1, 1, 0, 1, 1, 0]]).bool()
    return rewards, values, mask


def test_single_category_equals_the_scalar_critic():
    rewards, values, mask = _batch(2)  # one category + the KL head
    adv, ret = per_category_gae(rewards, values, mask, gamma=1.0, lam=0.95)
    scalar_adv, scalar_ret = gae(rewards.sum(-1), values.sum(-1), mask, 1.0, 0.95)
    torch.testing.assert_close(adv.sum(-1), scalar_adv)
    torch.testing.assert_close(ret.sum(-1), scalar_ret)


def test_each_head_is_its_own_gae():
    rewards, values, mask = _batch(3, seed=1)
    adv, ret = per_category_gae(rewards, values, mask, gamma=0.9, lam=0.8)
    for h in range(3):
        a, r = gae(rewards[..., h], values[..., h], mask, 0.9, 0.8)
        torch.testing.assert_close(adv[..., h], a)
        torch.testing.assert_close(ret[..., h], r)
    with pytest.raises(ValueError):
        per_category_gae(rewards, values[..., :2], mask, 1.0, 1.0)


def test_explained_variance_and_head_statistics():
    mask = torch.ones(1, 4, dtype=torch.bool)
    returns = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    assert explained_variance(returns, returns, mask) == pytest.approx(1.0)
    assert explained_variance(torch.full_like(returns, 2.5), returns, mask) == pytest.approx(0.0)
    flat = torch.zeros_like(returns)  # e.g. the KL head before the policy has moved
    assert explained_variance(flat, flat, mask) is None
    assert "critic/kl/explained_variance" not in head_statistics(
        torch.stack([returns, flat], -1), torch.stack([returns, flat], -1), torch.stack([returns, flat], -1), mask,
        ["relevance", "kl"])
    stats = head_statistics(torch.stack([returns, -returns], -1), torch.stack([returns, returns], -1),
                            torch.stack([returns, returns], -1), mask, ["relevance", "kl"])
    assert stats["critic/relevance/adv_mean"] == pytest.approx(2.5)
    assert stats["critic/kl/adv_mean"] == pytest.approx(-2.5)
    assert stats["critic/kl/explained_variance"] == pytest.approx(1.0)

"""The per-category critic in the trainer: one head per category plus KL; with one category it
gives the scalar critic's advantages; each head learns its own category's return."""

from __future__ import annotations

import pytest
import torch

from fgrlhf.core.gae import gae
from fgrlhf.errors import ConfigError
from fgrlhf.policy import Policy, SamplingConfig, ValueModel, make_reference
from fgrlhf.reward import KeywordReward, LengthReward, RewardAggregator
from fgrlhf.train.ppo import PPOConfig, PPOTrainer

PROMPTS = ["question: who sang it?", "question: where is it?"]


def _trainer(tiny_gpt2_dir, critic, rewards, **ppo):
    torch.manual_seed(0)
    policy = Policy.from_pretrained(str(tiny_gpt2_dir), max_prompt_tokens=32)
    ref = make_reference(policy)
    with torch.no_grad():  # a policy away from its reference: the KL head has something to learn
        for p in policy.model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    cfg = PPOConfig(critic=critic, gamma=1.0, lam=0.95, kl_coef=0.2, ppo_epochs=1, minibatch_size=4, lr=1e-3, **ppo)
    value = ValueModel.for_policy(policy, separate=False)
    return PPOTrainer(policy, value, ref, RewardAggregator(rewards), cfg, SamplingConfig(max_new_tokens=8, num_samples=2))


def test_one_category_gives_the_scalar_critics_advantages(tiny_gpt2_dir):
    rewards = {"length": LengthReward(target_words=4)}
    scalar = _trainer(tiny_gpt2_dir, "scalar", rewards)
    torch.manual_seed(1)
    a = scalar.collect(PROMPTS, [{}, {}])
    per_category = _trainer(tiny_gpt2_dir, "per_category", rewards)
    torch.manual_seed(1)
    b = per_category.collect(PROMPTS, [{}, {}])
    assert per_category.heads == ["length", "kl"] and b.values.shape[-1] == 2
    torch.testing.assert_close(b.rollout.response_ids, a.rollout.response_ids)
    torch.testing.assert_close(b.advantages, a.advantages, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(b.returns.sum(-1), a.returns, rtol=1e-5, atol=1e-6)
    # The KL head's return is GAE's return of −β·KL alone (its values start at 0).
    mask = b.rollout.response_mask
    _, kl_return = gae(-0.2 * b.kl, torch.zeros_like(b.kl), mask, 1.0, 0.95)
    torch.testing.assert_close(b.returns[..., 1] * mask, kl_return * mask, rtol=1e-5, atol=1e-6)


def test_heads_train_and_are_logged_per_category(tiny_gpt2_dir):
    rewards = {"relevance": KeywordReward(["the"], granularity="subsentence", hit=0.3, miss=-0.3),
               "length": LengthReward(target_words=4)}
    trainer = _trainer(tiny_gpt2_dir, "per_category", rewards)
    head = trainer.value.head.weight.detach().clone()
    metrics = trainer.step(PROMPTS, [{}, {}])
    assert trainer.value.head.weight.shape[0] == 3
    assert not torch.equal(head, trainer.value.head.weight)
    for name in ("relevance", "length", "kl"):
        for stat in ("adv_mean", "adv_std"):
            assert f"critic/{name}/{stat}" in metrics
    assert "critic/length/explained_variance" in metrics
    with pytest.raises(ConfigError, match="whiten_rewards"):
        _trainer(tiny_gpt2_dir, "per_category", rewards, whiten_rewards=True)

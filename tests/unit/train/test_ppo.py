"""The PPO iteration on a tiny causal policy with model-free rewards."""

from __future__ import annotations

import pytest
import torch

from fgrlhf.core import kl_per_token
from fgrlhf.policy import Policy, SamplingConfig, ValueModel, make_reference
from fgrlhf.reward import KeywordReward, LengthReward, RewardAggregator
from fgrlhf.train.ppo import PPOConfig, PPOTrainer, advantages_and_returns, penalised_rewards
from fgrlhf.train.ppo_batch import UpdateStats


def test_penalised_rewards_by_hand():
    dense = torch.tensor([[0.0, 0.0, 1.0, 9.0]])
    lp = torch.tensor([[-1.0, -2.0, -0.5, 0.0]])
    ref = torch.tensor([[-1.5, -1.0, -0.5, 0.0]])
    mask = torch.tensor([[True, True, True, False]])
    r, kl = penalised_rewards(dense, lp, ref, mask, kl_coef=0.3)
    # k1 = lp − ref = [0.5, −1.0, 0, ·]; r = dense − 0.3·k1 at real tokens
    torch.testing.assert_close(kl, torch.tensor([[0.5, -1.0, 0.0, 0.0]]))
    torch.testing.assert_close(r, torch.tensor([[-0.15, 0.3, 1.0, 0.0]]))
    _, kl3 = penalised_rewards(dense, lp, ref, mask, 0.3, "k3")
    torch.testing.assert_close(kl3[mask], kl_per_token(lp, ref, "k3")[mask])


def test_whitened_rewards_keep_their_mean_and_ignore_padding():
    # Real rewards {1, 3 | 5}: mean 3, variance (4 + 0 + 4) / (3 − 1) = 4, std 2; keep-mean
    # whitening (x − 3)/2 + 3 gives 2, 3 | 4. With V = 0 and γ = λ = 1 the advantages are the
    # reward-to-go: [5, 3] and [4, 0]. The padded reward (junk) changes nothing.
    mask = torch.tensor([[True, True], [True, False]])
    values = torch.zeros(2, 2)
    for junk in (0.0, 100.0, float("nan")):
        rewards = torch.tensor([[1.0, 3.0], [5.0, junk]])
        adv, ret = advantages_and_returns(rewards, values, mask, 1.0, 1.0, whiten_rewards=True,
                                          whiten_advantages=False)
        torch.testing.assert_close(adv, torch.tensor([[5.0, 3.0], [4.0, 0.0]]))
        torch.testing.assert_close(ret, adv)
        raw, _ = advantages_and_returns(rewards, values, mask, 1.0, 1.0, whiten_advantages=False)
        torch.testing.assert_close(raw, torch.tensor([[4.0, 3.0], [5.0, 0.0]]))  # off by default
    assert PPOConfig().whiten_rewards is False


def test_update_stats_sum_and_read_back_by_name():
    a = UpdateStats(torch.tensor(1.0), torch.tensor(2.0), torch.tensor(3.0), torch.tensor(0.25),
                    torch.tensor(0.5), torch.tensor(0.125))
    total = UpdateStats.zeros()
    total += a.as_tensor()
    total += 0.0 * a.as_tensor()  # a process with no row in a micro-batch adds nothing
    total += a.as_tensor()
    back = UpdateStats.from_tensor(total)
    assert back.approx_kl == 0.25 and back.value_clip_frac == 1.0 and back.policy_loss == 2.0
    assert back.metrics(2) == {"loss/policy": 1.0, "loss/value": 2.0, "policy/entropy": 3.0,
                               "policy/clip_frac": 0.25, "value/clip_frac": 0.5, "policy/approx_kl": 0.125}


def _moved_policy(tiny_gpt2_dir):
    """A tiny policy, its reference, and then the policy's weights perturbed: the KL to the
    reference is non-zero from the first rollout."""
    torch.manual_seed(0)
    policy = Policy.from_pretrained(str(tiny_gpt2_dir), max_prompt_tokens=32)
    ref = make_reference(policy)
    with torch.no_grad():
        for p in policy.model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return policy, ref


PROMPTS = ["question: who sang it?", "question: where is it?"]


def test_penalised_reward_metric_is_what_gae_read_when_the_kl_coefficient_adapts(tiny_gpt2_dir):
    policy, ref = _moved_policy(tiny_gpt2_dir)
    agg = RewardAggregator({"length": LengthReward(target_words=8)}, weights={"length": 1.0})
    cfg = PPOConfig(adaptive_kl=True, kl_coef=0.3, kl_target=1e-3, kl_horizon=10.0, gamma=1.0, lam=1.0,
                    ppo_epochs=1, minibatch_size=4)
    trainer = PPOTrainer(policy, ValueModel.for_policy(policy, separate=False), ref, agg, cfg,
                         SamplingConfig(max_new_tokens=8, num_samples=2))
    batch = trainer.collect(PROMPTS, [{} for _ in PROMPTS])
    metrics = trainer.update(batch)
    assert batch.kl_coef == 0.3 and metrics["kl/coef"] != pytest.approx(0.3)  # β moved after the update
    mask = batch.rollout.response_mask
    assert bool(mask[:, 0].all())
    # With γ = λ = 1 the return at a response's first token is the sum of the rewards GAE read.
    assert metrics["reward/penalised"] == pytest.approx(float(batch.returns[:, 0].mean()), rel=1e-6)
    # ... which were penalised with the β before the controller's update, not after it.
    stale = float(((batch.reward.total - metrics["kl/coef"] * batch.kl) * mask).sum(-1).mean())
    assert metrics["reward/penalised"] != pytest.approx(stale, rel=1e-4)


def test_whiten_rewards_whitens_what_gae_reads_over_real_tokens(tiny_gpt2_dir):
    policy, ref = _moved_policy(tiny_gpt2_dir)
    agg = RewardAggregator({"relevance": KeywordReward(["the"], granularity="subsentence", hit=0.3, miss=-0.3)})
    cfg = PPOConfig(whiten_rewards=True, gamma=1.0, lam=1.0, kl_coef=0.1)
    trainer = PPOTrainer(policy, ValueModel.for_policy(policy, separate=False), ref, agg, cfg,
                         SamplingConfig(max_new_tokens=8, num_samples=2))
    batch = trainer.collect(PROMPTS, [{} for _ in PROMPTS])
    mask = batch.rollout.response_mask
    # With γ = λ = 1, R_t − R_{t+1} is the reward GAE read at t (responses are contiguous).
    ret = batch.returns.double()
    read = ret - torch.cat([ret[:, 1:], torch.zeros_like(ret[:, :1])], dim=1)  # [B, T]
    n = int(mask.sum())
    assert n > 2
    mean = float(read[mask].mean())
    assert mean == pytest.approx(float(batch.rewards.double()[mask].mean()), abs=1e-5)  # the mean is kept
    assert float(((read[mask] - mean) ** 2).sum() / (n - 1)) == pytest.approx(1.0, rel=1e-4)
    assert float(read[~mask].abs().sum()) == 0.0


@pytest.mark.parametrize("separate_value", [True, False])
def test_iterations_run_update_and_report(tiny_gpt2_dir, separate_value):
    torch.manual_seed(0)
    policy = Policy.from_pretrained(str(tiny_gpt2_dir), max_prompt_tokens=32)
    value = ValueModel.for_policy(policy, separate=separate_value)
    ref = make_reference(policy)
    agg = RewardAggregator({"relevance": KeywordReward(["the"], granularity="subsentence", hit=0.3, miss=-0.3),
                            "length": LengthReward(target_words=8)}, weights={"relevance": 1.0, "length": 0.3})
    cfg = PPOConfig(lr=1e-4, ppo_epochs=2, minibatch_size=4, grad_accum=2, kl_coef=0.1)
    trainer = PPOTrainer(policy, value, ref, agg, cfg, SamplingConfig(max_new_tokens=12, num_samples=2))
    before = [p.detach().clone() for p in policy.model.parameters()]
    prompts = ["question: who sang it?", "question: where is it?", "question: when?", "question: why?"]
    for _ in range(2):
        metrics = trainer.step(prompts, [{} for _ in prompts])
    for key in ("reward/relevance", "reward/length", "reward/total", "kl/sequence", "loss/policy", "loss/value",
                "policy/clip_frac", "policy/entropy", "length/tokens", "length/empty", "prompts/truncated",
                "time/generate", "time/reward",
                "time/update"):
        assert key in metrics
    assert trainer.iteration == 2
    assert any(not torch.equal(a, b) for a, b in zip(before, policy.model.parameters()))
    assert metrics["kl/sequence"] != 0.0  # the policy moved away from the reference
    # 8 rollouts, minibatches of 4: 2 optimizer steps per epoch, 2 epochs, 2 iterations
    assert trainer.scheduler.last_epoch == 8


def test_empty_generations_give_finite_metrics_and_zero_reward(tiny_gpt2_dir):
    # Make EOS the greedy choice everywhere: every response is EOS alone, an empty text with
    # no segment at any granularity. The iteration must still run and report it.
    torch.manual_seed(0)
    policy = Policy.from_pretrained(str(tiny_gpt2_dir), max_prompt_tokens=32)
    model = policy.model
    with torch.no_grad():
        unit = torch.nn.functional.normalize(torch.randn(model.config.n_embd), dim=0)
        model.transformer.ln_f.weight.zero_()
        model.transformer.ln_f.bias.copy_(unit)
        model.transformer.wte.weight[policy.eos_id] = 50 * unit  # the LM head is tied to wte
    value = ValueModel.for_policy(policy, separate=False)
    agg = RewardAggregator({"relevance": KeywordReward(["the"], granularity="subsentence", hit=0.3, miss=-0.3),
                            "factuality": KeywordReward(["a"], granularity="sentence", hit=0.5, miss=-0.5)})
    trainer = PPOTrainer(policy, value, make_reference(policy), agg, PPOConfig(minibatch_size=2, ppo_epochs=1),
                         SamplingConfig(max_new_tokens=8, do_sample=False))
    prompts = ["question: who sang it?", "question: where is it?"]
    batch = trainer.collect(prompts, [{} for _ in prompts])
    assert batch.texts == ["", ""]
    assert batch.rollout.response_mask.sum(-1).tolist() == [1, 1]  # the EOS is the one action
    assert batch.reward.spans["relevance"] == [[], []] and batch.reward.spans["factuality"] == [[], []]
    assert float(batch.reward.total.abs().sum()) == 0.0
    metrics = trainer.step(prompts, [{} for _ in prompts])
    assert metrics["length/empty"] == 1.0 and metrics["reward/total"] == 0.0
    assert all(v == v and abs(v) != float("inf") for v in metrics.values())


def test_logprobs_are_those_of_the_sampling_distribution(tiny_gpt2_dir):
    # Rollouts drawn at temperature 0.5: the old log-probs, the reference's and hence the KL
    # must be of logits / 0.5, not of the untempered model (whose k1 estimate on these
    # samples is biased, and negative on average when the samples are sharper than it).
    torch.manual_seed(0)
    policy = Policy.from_pretrained(str(tiny_gpt2_dir), max_prompt_tokens=32)
    agg = RewardAggregator({"length": LengthReward(target_words=8)}, weights={"length": 1.0})
    sampling = SamplingConfig(max_new_tokens=10, num_samples=2, temperature=0.5, top_k=0)
    trainer = PPOTrainer(policy, ValueModel.for_policy(policy, separate=False), make_reference(policy), agg,
                         PPOConfig(minibatch_size=4), sampling)
    batch = trainer.collect(["question: who?", "question: where?"], [{}, {}])
    rollout, mask = batch.rollout, batch.rollout.response_mask
    with torch.no_grad():
        logits, _ = policy.forward(rollout)
        tempered = torch.log_softmax(logits.float() / 0.5, dim=-1).gather(-1, rollout.response_ids[..., None])[..., 0]
        plain = policy.logprobs(rollout)
    torch.testing.assert_close(batch.logprobs[mask], tempered[mask], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(batch.logprobs[mask], plain[mask], atol=1e-3)
    # The policy is still the reference: the KL of the first iteration is exactly zero.
    torch.testing.assert_close(policy.logprobs(rollout, model=trainer.reference, temperature=0.5)[mask],
                               batch.logprobs[mask], atol=1e-5, rtol=1e-5)
    greedy = PPOTrainer(policy, ValueModel.for_policy(policy, separate=False), make_reference(policy), agg,
                        PPOConfig(minibatch_size=4), SamplingConfig(max_new_tokens=10, do_sample=False))
    assert greedy.temperature == 1.0 and trainer.temperature == 0.5


def test_min_new_tokens_gives_fixed_length_responses_even_when_eos_is_favoured(tiny_gpt2_dir):
    policy = Policy.from_pretrained(str(tiny_gpt2_dir), max_prompt_tokens=32)
    model = policy.model
    with torch.no_grad():  # EOS the most likely token everywhere, as in the test above
        unit = torch.nn.functional.normalize(torch.randn(model.config.n_embd), dim=0)
        model.transformer.ln_f.weight.zero_()
        model.transformer.ln_f.bias.copy_(unit)
        model.transformer.wte.weight[policy.eos_id] = 50 * unit
    prompts = ["question: who sang it?", "question: where is it?"]
    free = policy.generate(prompts, SamplingConfig(max_new_tokens=6, do_sample=False))
    fixed = policy.generate(prompts, SamplingConfig(max_new_tokens=6, do_sample=False, min_new_tokens=6))
    assert free.response_mask.sum(-1).tolist() == [1, 1]
    assert fixed.response_mask.sum(-1).tolist() == [6, 6]
    assert not (fixed.response_ids == policy.eos_id).any()

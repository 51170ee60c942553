"""The PPO iteration on a tiny causal policy with model-free rewards."""

from __future__ import annotations

import pytest
import torch

from fgrlhf.core import kl_per_token
from fgrlhf.policy import Policy, SamplingConfig, ValueModel, make_reference
from fgrlhf.reward import KeywordReward, LengthReward, RewardAggregator
from fgrlhf.train.ppo import PPOConfig, PPOTrainer, penalised_rewards


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
    assert batch["texts"] == ["", ""]
    assert batch["rollout"].response_mask.sum(-1).tolist() == [1, 1]  # the EOS is the one action
    assert batch["reward"].spans["relevance"] == [[], []] and batch["reward"].spans["factuality"] == [[], []]
    assert float(batch["reward"].total.abs().sum()) == 0.0
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
    rollout, mask = batch["rollout"], batch["rollout"].response_mask
    with torch.no_grad():
        logits, _ = policy.forward(rollout)
        tempered = torch.log_softmax(logits.float() / 0.5, dim=-1).gather(-1, rollout.response_ids[..., None])[..., 0]
        plain = policy.logprobs(rollout)
    torch.testing.assert_close(batch["logprobs"][mask], tempered[mask], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(batch["logprobs"][mask], plain[mask], atol=1e-3)
    # The policy is still the reference: the KL of the first iteration is exactly zero.
    torch.testing.assert_close(policy.logprobs(rollout, model=trainer.reference, temperature=0.5)[mask],
                               batch["logprobs"][mask], atol=1e-5, rtol=1e-5)
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

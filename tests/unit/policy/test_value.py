"""Value models (shared head or separate backbone) and the frozen reference."""

from __future__ import annotations

import pytest
import torch

from fgrlhf.policy import SamplingConfig, ValueModel, make_reference

PROMPTS = ["question: who sang it?", "question: when was the tower built?"]


@pytest.fixture(scope="module")
def policy(tiny_gpt2_dir):
    from fgrlhf.policy import Policy

    return Policy.from_pretrained(str(tiny_gpt2_dir))


def test_new_value_head_starts_at_zero_and_masks_padding(policy):
    rollout = policy.generate(PROMPTS, SamplingConfig(max_new_tokens=6, num_samples=2))
    rollout.response_mask[0, 3:] = False  # pretend row 0 ended early
    value = ValueModel.for_policy(policy, separate=True)
    v = value(policy, rollout)
    assert v.shape == rollout.response_ids.shape
    assert bool((v == 0).all())
    with torch.no_grad():
        value.head.bias.fill_(0.5)
    v = value(policy, rollout)
    assert bool((v[0, 3:] == 0).all()) and bool((v[0, :3] == 0.5).all())


def test_shared_head_reads_the_policy_hidden_states(policy):
    rollout = policy.generate(PROMPTS, SamplingConfig(max_new_tokens=5))
    value = ValueModel.for_policy(policy, separate=False)
    assert value.shared and sum(p.numel() for p in value.parameters()) == 64 + 1
    with pytest.raises(ValueError, match="needs the policy's hidden states"):
        value(policy, rollout)
    logits, hidden = policy.forward(rollout, output_hidden_states=True)
    torch.nn.init.normal_(value.head.weight)
    v = value(policy, rollout, hidden)
    expected = (hidden.float() @ value.head.weight.T).squeeze(-1) + value.head.bias
    torch.testing.assert_close(v[rollout.response_mask], expected[rollout.response_mask])


def test_separate_value_gradients_stay_in_the_value_model(policy):
    rollout = policy.generate(PROMPTS, SamplingConfig(max_new_tokens=5))
    value = ValueModel.for_policy(policy, separate=True)
    torch.nn.init.normal_(value.head.weight)
    policy.model.zero_grad(set_to_none=True)
    value(policy, rollout).pow(2).sum().backward()
    assert all(p.grad is None for p in policy.model.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in value.backbone.parameters())


def test_reference_is_frozen_and_unchanged_by_policy_updates(policy):
    ref = make_reference(policy)
    rollout = policy.generate(PROMPTS, SamplingConfig(max_new_tokens=5))
    before = policy.logprobs(rollout, model=ref).detach()
    opt = torch.optim.SGD(policy.model.parameters(), lr=0.5)
    (-policy.logprobs(rollout).sum()).backward()
    opt.step()
    assert all(not p.requires_grad for p in ref.parameters()) and not ref.training
    torch.testing.assert_close(policy.logprobs(rollout, model=ref).detach(), before)
    assert not torch.allclose(policy.logprobs(rollout).detach(), before)


def test_separate_value_reads_the_trunk_without_the_lm_head(policy):
    # The causal LM's trunk alone gives exactly the hidden states of the full forward.
    torch.manual_seed(0)
    rollout = policy.generate(PROMPTS, SamplingConfig(max_new_tokens=8, num_samples=2))
    with torch.no_grad():
        _, full = policy.forward(rollout, output_hidden_states=True)
        trunk = policy.hidden_states(rollout, policy.model)
    assert policy.model.base_model is not policy.model  # the trunk path was taken
    torch.testing.assert_close(trunk, full)

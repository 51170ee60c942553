"""The LM head runs only at the response positions, and the logits are those of the full
forward pass at those positions: causal (GPT-2, Gemma 3), seq2seq (MiniLM), with adapters
and through the adapters-off reference."""

from __future__ import annotations

import pytest
import torch

from fgrlhf.policy import Policy, Rollout, SamplingConfig, make_reference
from fgrlhf.policy.lora import LoRAConfig
from fgrlhf.policy.model import causal_inputs, hf_model, keeps_logits

PROMPTS = ["question: who sang it? context: a song", "question: when was the tower built in paris, france?"]


def _full_logits(policy: Policy, rollout: Rollout, model) -> torch.Tensor:
    """The logits predicting each response token, sliced out of the full-length output."""
    if policy.kind == "causal":
        ids, mask, position_ids = causal_inputs(rollout)
        P, T = rollout.query_ids.shape[1], rollout.response_ids.shape[1]
        return model(input_ids=ids, attention_mask=mask, position_ids=position_ids).logits[:, P - 1 : P - 1 + T]
    r, rm = rollout.response_ids, rollout.response_mask
    start = hf_model(model).config.decoder_start_token_id
    dec_in = torch.cat([torch.full_like(r[:, :1], start), r[:, :-1]], dim=1)
    dec_mask = torch.cat([torch.ones_like(rm[:, :1]), rm[:, :-1]], dim=1).long()
    return model(input_ids=rollout.query_ids, attention_mask=rollout.query_mask.long(), decoder_input_ids=dec_in,
                 decoder_attention_mask=dec_mask).logits


@pytest.mark.parametrize("fixture", ["tiny_gpt2_dir", "tiny_gemma_dir", "minilm_seq2seq_dir"])
def test_logits_at_response_positions_equal_the_full_forward(fixture, request):
    policy = Policy.from_pretrained(str(request.getfixturevalue(fixture)))
    policy.model.eval()
    torch.manual_seed(0)
    rollout = policy.generate(PROMPTS, SamplingConfig(max_new_tokens=9, num_samples=2))
    with torch.no_grad():
        logits, hidden = policy.forward(rollout, output_hidden_states=True)
        want = _full_logits(policy, rollout, policy.model)
    assert logits.shape == (*rollout.response_ids.shape, want.shape[-1])
    torch.testing.assert_close(logits, want)
    assert hidden.shape[:2] == rollout.response_ids.shape
    # A causal LM never computes the head at the prompt's positions.
    assert keeps_logits(policy.model) == (policy.kind == "causal")


@pytest.mark.parametrize(("lora", "grad", "sliced"), [(False, False, True), (True, True, True), (False, True, False)])
def test_the_head_runs_on_the_response_positions_only(tiny_gemma_dir, lora, grad, sliced):
    """Frozen passes and LoRA updates slice; a pass that trains the head's own weight keeps
    every position (the weight gradient's float sum keeps its order)."""
    policy = Policy.from_pretrained(str(tiny_gemma_dir), lora=LoRAConfig(r=4) if lora else None)
    rollout = policy.generate(PROMPTS, SamplingConfig(max_new_tokens=6))
    rows = []
    head = hf_model(policy.model).get_output_embeddings()
    hook = head.register_forward_hook(lambda module, args, out: rows.append(args[0].shape[1]))
    try:
        with torch.set_grad_enabled(grad):
            policy.logprobs(rollout)
    finally:
        hook.remove()
    T, P = rollout.response_ids.shape[1], rollout.query_ids.shape[1]
    # The response's T positions and the final one, not the prompt's P.
    assert rows == [T + 1 if sliced else P + T]
    assert P > T + 1


@pytest.mark.parametrize("fixture", ["tiny_gemma_dir", "minilm_seq2seq_dir"])
def test_with_adapters_and_through_the_reference(fixture, request):
    kind = "seq2seq" if fixture.startswith("minilm") else "causal"
    policy = Policy.from_pretrained(str(request.getfixturevalue(fixture)), lora=LoRAConfig(r=4, alpha=8))
    torch.manual_seed(0)
    for p in policy.model.parameters():  # move the adapters off their zero start
        if p.requires_grad:
            torch.nn.init.normal_(p, std=0.05)
    policy.model.eval()
    reference = make_reference(policy)
    rollout = policy.generate(PROMPTS, SamplingConfig(max_new_tokens=7, num_samples=2))
    with torch.no_grad():
        for model in (policy.model, reference):
            torch.testing.assert_close(policy.forward(rollout, model=model)[0], _full_logits(policy, rollout, model))
        assert (policy.forward(rollout)[0] - policy.forward(rollout, model=reference)[0]).abs().max() > 1e-3
    assert policy.kind == kind

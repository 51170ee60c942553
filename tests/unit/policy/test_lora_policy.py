"""LoRA through the policy's interface: ``Policy.from_pretrained(lora=...)``, the reference as
the adapters-off view (no second copy of the weights), value models on a LoRA policy, saved
adapters loaded back, and QLoRA (CUDA only)."""

from __future__ import annotations

import pytest
import torch

from fgrlhf.errors import ConfigError
from fgrlhf.policy import Policy, SamplingConfig, ValueModel, make_reference
from fgrlhf.policy.lora import AdaptersOff, LoRAConfig, load_adapter_weights

PROMPTS = ["question: who sang it?", "question: when was the tower built?"]
LORA = LoRAConfig(r=4, alpha=8)


def _step(policy: Policy, rollout, extra=()) -> None:
    """One SGD step that raises the log-probs of ``rollout``'s responses."""
    params = [p for p in policy.model.parameters() if p.requires_grad] + list(extra)
    opt = torch.optim.SGD(params, lr=0.5)
    (-policy.logprobs(rollout).sum()).backward()
    opt.step()
    opt.zero_grad()


@pytest.mark.parametrize("fixture", ["tiny_gpt2_dir", "tiny_gemma_dir", "minilm_seq2seq_dir"])
def test_only_adapters_train_and_the_reference_is_the_frozen_base(fixture, request):
    path = str(request.getfixturevalue(fixture))
    plain = Policy.from_pretrained(path)
    policy = Policy.from_pretrained(path, lora=LORA)
    assert policy.has_adapters and not plain.has_adapters
    trainable = [n for n, p in policy.model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    reference = make_reference(policy)
    assert isinstance(reference, AdaptersOff)
    # Nothing copied: every parameter of the reference is one of the policy's own.
    assert {id(p) for p in reference.parameters()} <= {id(p) for p in policy.model.parameters()}
    torch.manual_seed(0)
    rollout = policy.generate(PROMPTS, SamplingConfig(max_new_tokens=6, num_samples=2))
    with torch.no_grad():
        base = plain.logprobs(rollout)
        torch.testing.assert_close(policy.logprobs(rollout), base)  # adapters start as a no-op
    _step(policy, rollout)
    with torch.no_grad():
        torch.testing.assert_close(policy.logprobs(rollout, model=reference), base)
        assert (policy.logprobs(rollout) - base).abs().max() > 1e-3


def test_a_copied_reference_costs_a_model_and_adapters_off_costs_nothing(tiny_gemma_dir):
    full = Policy.from_pretrained(str(tiny_gemma_dir))
    lora = Policy.from_pretrained(str(tiny_gemma_dir), lora=LORA)
    size = sum(p.numel() for p in full.model.parameters())
    copied = make_reference(full)
    assert not {id(p) for p in copied.parameters()} & {id(p) for p in full.model.parameters()}
    assert sum(p.numel() for p in copied.parameters()) == size
    shared = {id(p) for p in make_reference(lora).parameters()}
    assert shared <= {id(p) for p in lora.model.parameters()}


@pytest.mark.parametrize("separate", [False, True])
def test_value_models_on_a_lora_policy(tiny_gemma_dir, separate):
    policy = Policy.from_pretrained(str(tiny_gemma_dir), lora=LORA)
    value = ValueModel.for_policy(policy, separate=separate)
    torch.manual_seed(0)
    rollout = policy.generate(PROMPTS, SamplingConfig(max_new_tokens=5, num_samples=2))
    torch.nn.init.normal_(value.head.weight)
    _, hidden = policy.forward(rollout, output_hidden_states=True)
    v = value(policy, rollout, hidden)
    assert v.shape == rollout.response_ids.shape and bool((v[~rollout.response_mask] == 0).all())
    v.pow(2).sum().backward()
    grads = {n for n, p in policy.model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    if separate:
        # Its own frozen copy with adapters of its own: only those (and the head) learn.
        backbone = {n for n, p in value.backbone.named_parameters() if p.requires_grad}
        assert backbone and all("lora_" in n for n in backbone)
        assert not grads
        assert not {id(p) for p in value.backbone.parameters()} & {id(p) for p in policy.model.parameters()}
        trunk = policy.hidden_states(rollout, value.backbone)  # the trunk under PEFT, without the head
        torch.testing.assert_close(trunk.detach(), hidden.detach())
    else:
        assert grads and all("lora_" in n for n in grads)  # through the policy's adapters only


def test_saved_adapters_load_back_onto_the_base(tiny_gemma_dir, tmp_path):
    policy = Policy.from_pretrained(str(tiny_gemma_dir), lora=LORA)
    torch.manual_seed(0)
    rollout = policy.generate(PROMPTS, SamplingConfig(max_new_tokens=6))
    _step(policy, rollout)
    policy.model.save_pretrained(tmp_path / "adapters")
    with torch.no_grad():
        want = policy.logprobs(rollout)
    loaded = Policy.from_pretrained(str(tiny_gemma_dir), adapters=tmp_path / "adapters")
    fresh = Policy.from_pretrained(str(tiny_gemma_dir), lora=LORA)
    load_adapter_weights(fresh.model, tmp_path / "adapters")
    with torch.no_grad():
        for other in (loaded, fresh):
            assert torch.equal(other.logprobs(rollout), want)
    assert all("lora_" in n for n, p in loaded.model.named_parameters() if p.requires_grad)
    wider = Policy.from_pretrained(str(tiny_gemma_dir), lora=LoRAConfig(r=8, alpha=8))
    with pytest.raises(RuntimeError, match="size mismatch"):
        load_adapter_weights(wider.model, tmp_path / "adapters")


def test_qlora_on_cpu_is_a_clear_error(tiny_gemma_dir):
    with pytest.raises(ConfigError, match="needs a CUDA device"):
        Policy.from_pretrained(str(tiny_gemma_dir), device="cpu", lora=LoRAConfig(r=4, quantize_4bit=True))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="QLoRA needs CUDA")
def test_qlora_trains_adapters_on_a_4bit_base(tiny_gemma_dir):
    pytest.importorskip("bitsandbytes")
    policy = Policy.from_pretrained(str(tiny_gemma_dir), device="cuda", lora=LoRAConfig(r=4, quantize_4bit=True))
    quantized = [m for m in policy.model.modules() if type(m).__name__ == "Linear4bit"]
    assert quantized
    torch.manual_seed(0)
    rollout = policy.generate(PROMPTS, SamplingConfig(max_new_tokens=6))
    reference = make_reference(policy)
    with torch.no_grad():
        before = policy.logprobs(rollout, model=reference)
    _step(policy, rollout)
    with torch.no_grad():
        torch.testing.assert_close(policy.logprobs(rollout, model=reference), before)
        assert (policy.logprobs(rollout) - before).abs().max() > 1e-3

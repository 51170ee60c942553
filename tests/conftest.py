"""Shared fixtures: real tokenizers, built locally or shipped by an installed package."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "offline")

TESTS_DIR = Path(__file__).resolve().parent
# tests/plugins holds modules "outside fgrlhf", importable as a user's own code would be.
sys.path.insert(0, str(TESTS_DIR))


@pytest.fixture(scope="session")
def minilm_tokenizer():
    from transformers import AutoTokenizer

    from fgrlhf.paths import resolve_pretrained

    return AutoTokenizer.from_pretrained(resolve_pretrained("minilm"))


@pytest.fixture(scope="session")
def qa_feedback():
    from fgrlhf.data import load_feedback
    from fgrlhf.paths import DATA_DIR

    return load_feedback(DATA_DIR / "qa_feedback" / "feedback.json")


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory, minilm_tokenizer):
    """A randomly initialised 2-layer BERT with MiniLM's real tokenizer, saved as a local
    Hugging Face checkpoint: a fast stand-in backbone for training-loop tests."""
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(vocab_size=minilm_tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=512)
    path = tmp_path_factory.mktemp("tiny_bert")
    BertModel(config).save_pretrained(path)
    minilm_tokenizer.save_pretrained(path)
    return path


@pytest.fixture()
def small_feedback_file(tmp_path):
    """The first 40 bundled QA-Feedback questions as a feedback file of their own."""
    import json

    from fgrlhf.paths import DATA_DIR

    with open(DATA_DIR / "qa_feedback" / "feedback.json") as f:
        data = json.load(f)[:40]
    path = tmp_path / "small_feedback.json"
    path.write_text(json.dumps(data))
    return path


@pytest.fixture(scope="session")
def tiny_gpt2_dir(tmp_path_factory, qa_feedback):
    """A 2-layer GPT-2 with a byte-level BPE (1,500 tokens) trained here on bundled answers."""
    from fgrlhf.policy.tiny import build_tiny_gpt2

    texts = [p for ex in qa_feedback[:60] for p in ex.predictions]
    return build_tiny_gpt2(tmp_path_factory.mktemp("tiny_gpt2"), texts, vocab_size=1500, n_layer=2, n_embd=64,
                           n_head=2)


@pytest.fixture(scope="session")
def tiny_gemma_dir(tmp_path_factory, qa_feedback):
    """A 2-layer random ``Gemma3ForCausalLM`` (the real model's shape and layer types) with a
    600-token BPE trained on bundled answers."""
    from fgrlhf.policy.gemma import build_tiny_gemma3

    texts = [p for ex in qa_feedback[:40] for p in ex.predictions]
    return build_tiny_gemma3(tmp_path_factory.mktemp("tiny_gemma"), texts, vocab_size=600)


@pytest.fixture(scope="session")
def tiny_seq2seq_dir(tmp_path_factory, tiny_bert_dir, minilm_tokenizer):
    """A 2+2-layer BERT encoder-decoder, saved: [CLS] starts decoding, [SEP] ends it."""
    import torch
    from transformers import EncoderDecoderModel

    torch.manual_seed(0)
    model = EncoderDecoderModel.from_encoder_decoder_pretrained(str(tiny_bert_dir), str(tiny_bert_dir))
    for cfg in (model.config, model.generation_config):
        cfg.decoder_start_token_id = minilm_tokenizer.cls_token_id
        cfg.eos_token_id = minilm_tokenizer.sep_token_id
        cfg.pad_token_id = minilm_tokenizer.pad_token_id
    path = tmp_path_factory.mktemp("s2s")
    model.save_pretrained(path)
    minilm_tokenizer.save_pretrained(path)
    return path

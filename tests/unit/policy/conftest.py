"""Policy fixtures: a tiny random Gemma 3 (the real model's shape and layer types) and the
MiniLM encoder-decoder, both built locally."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_gemma_dir(tmp_path_factory, qa_feedback):
    """A 2-layer ``Gemma3ForCausalLM`` with a 600-token BPE trained on bundled answers."""
    from fgrlhf.policy.gemma import build_tiny_gemma3

    texts = [p for ex in qa_feedback[:40] for p in ex.predictions]
    return build_tiny_gemma3(tmp_path_factory.mktemp("tiny_gemma"), texts, vocab_size=600)


@pytest.fixture(scope="session")
def minilm_seq2seq_dir(tmp_path_factory):
    from fgrlhf.policy.tiny import build_minilm_seq2seq

    return build_minilm_seq2seq(tmp_path_factory.mktemp("minilm_seq2seq"))

"""Policy fixtures: the MiniLM encoder-decoder, built locally (the tiny Gemma 3 is in the
top-level conftest: reward models use it too)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def minilm_seq2seq_dir(tmp_path_factory):
    from fgrlhf.policy.tiny import build_minilm_seq2seq

    return build_minilm_seq2seq(tmp_path_factory.mktemp("minilm_seq2seq"))

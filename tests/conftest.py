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

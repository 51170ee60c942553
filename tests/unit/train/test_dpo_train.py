"""DPO training: sequence log-probs by hand, preference pairs from the split's train
questions, a few steps that separate the preferred answers from the others on real
QA-Feedback judgements (causal, seq2seq and LoRA policies), and a reference that does not
move while the policy learns."""

from __future__ import annotations

import json
import math

import pytest
import torch

from fgrlhf.config import SplitConfig
from fgrlhf.errors import CheckpointError
from fgrlhf.logging import MetricsLogger
from fgrlhf.paths import DATA_DIR
from fgrlhf.policy import Policy
from fgrlhf.policy.lora import AdaptersOff, LoRAConfig, apply_lora
from fgrlhf.train.dpo import (
    DPOConfig,
    PreferencePair,
    distinguishable,
    evaluate_pairs,
    pair_logprobs,
    pair_terms,
    reference_logprobs,
    reference_model,
    sequence_logprobs,
    train_dpo,
)
from fgrlhf.train.dpo_run import dpo_pairs, policy_source

PROMPTS_FILE = DATA_DIR / "qa_feedback" / "prompts.json"


@pytest.fixture(scope="module")
def split_pairs(tmp_path_factory):
    """The pairs of the first 40 bundled questions, split as every app splits them."""
    path = tmp_path_factory.mktemp("feedback") / "small_feedback.json"
    path.write_text(json.dumps(json.loads((DATA_DIR / "qa_feedback" / "feedback.json").read_text())[:40]))
    return dpo_pairs(path, PROMPTS_FILE, SplitConfig())


def _short(policy, pairs, n, chars=300):
    """The first ``n`` pairs whose answers differ within 40 tokens, prompts cut to ``chars``
    characters (fast on two CPU threads)."""
    return distinguishable(policy, [PreferencePair(p.prompt[:chars], p.chosen, p.rejected) for p in pairs], 40)[:n]


def _load(path, max_prompt_tokens=48):
    torch.manual_seed(0)
    return Policy.from_pretrained(str(path), max_prompt_tokens=max_prompt_tokens)


def test_sequence_logprobs_are_sums_of_answer_token_logprobs_by_hand(tiny_gpt2_dir):
    policy = _load(tiny_gpt2_dir, max_prompt_tokens=64)
    policy.model.eval()
    tok, model = policy.tokenizer, policy.model
    prompts = ["question: who wrote the song? context: a long passage about a song", "question: when?"]
    answers = ["It was written in 1990.", "In the spring of the year after"]
    got = sequence_logprobs(policy, prompts, answers, max_answer_tokens=32)
    for prompt, answer, value in zip(prompts, answers, got):
        p = tok(prompt)["input_ids"]
        a = tok(answer, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
        with torch.no_grad():
            logp = torch.log_softmax(model(input_ids=torch.tensor([p + a])).logits[0], dim=-1)  # [P + A, V]
        want = sum(float(logp[len(p) + k - 1, tok_id]) for k, tok_id in enumerate(a))
        assert float(value) == pytest.approx(want, abs=1e-4)
    # pairs: chosen and rejected answers scored in one pass, the same values
    logps, lengths = pair_logprobs(policy, [PreferencePair(prompts[0], answers[0], answers[1])], 32)
    again = sequence_logprobs(policy, [prompts[0]] * 2, answers, 32)
    torch.testing.assert_close(logps[0], again, atol=1e-5, rtol=1e-5)
    assert lengths[0].tolist() == [len(tok(a, add_special_tokens=False)["input_ids"]) + 1 for a in answers]


def test_pairs_come_from_the_train_questions_judgements_ties_skipped(split_pairs):
    from fgrlhf.data.split import split_by_question

    raw = json.loads((DATA_DIR / "qa_feedback" / "feedback.json").read_text())[:40]
    prompts = json.loads(PROMPTS_FILE.read_text())
    parts = split_by_question([p["question"] for p in prompts], 40, 60, 0)
    text = {p["question"]: p["text"] for p in prompts}
    for part in ("train", "dev"):
        questions = {prompts[i]["question"] for i in getattr(parts, part)}
        want = []
        for ex in raw:
            if ex["question"] not in questions:
                continue
            for (a, b), judged in zip([(1, 2), (1, 3), (1, 4), (2, 3), (2, 4), (3, 4)], ex["preference"]):
                if judged:  # 1: the first is preferred, 2: the second; 0 (tie) gives no pair
                    better, worse = (a, b) if judged == 1 else (b, a)
                    want.append((text[ex["question"]], ex[f"prediction {better}"], ex[f"prediction {worse}"]))
        assert [(p.prompt, p.chosen, p.rejected) for p in split_pairs[part]] == want
    assert len(split_pairs["train"]) > 50 and split_pairs["dev"] and split_pairs["unmatched"] == 0


def test_causal_pairs_show_the_prompt_as_sft_and_ppo_do(split_pairs, tmp_path):
    # The same judgements, each prompt laid out for a decoder-only policy and capped at 60
    # whitespace tokens by the sentences most related to the question.
    path = tmp_path / "small_feedback.json"
    path.write_text(json.dumps(json.loads((DATA_DIR / "qa_feedback" / "feedback.json").read_text())[:40]))
    causal = dpo_pairs(path, PROMPTS_FILE, SplitConfig(), "causal", lambda text: len(text.split()), 60)
    for part in ("train", "dev"):
        assert [(p.chosen, p.rejected) for p in causal[part]] == [(p.chosen, p.rejected) for p in split_pairs[part]]
        for pair, t5 in zip(causal[part], split_pairs[part]):
            question = t5.prompt.split("question:", 1)[1].split("context:", 1)[0].strip()
            assert pair.prompt.startswith(f"Question: {question}\nPassages:\n")
            assert pair.prompt.endswith("\nAnswer:") and len(pair.prompt.split()) <= 60


def test_ipo_reads_per_token_means_and_rewards_whole_sequences():
    logps = torch.tensor([[-10.0, -30.0]])
    lengths = torch.tensor([[5, 10]])
    ref = torch.tensor([[-12.0, -28.0]])
    terms = pair_terms(logps, lengths, ref, DPOConfig(beta=0.5, loss_type="ipo"))
    h = (-10 + 12) / 5 - (-30 + 28) / 10  # 0.4 + 0.2
    assert terms["loss"].item() == pytest.approx((h - 1.0) ** 2)
    assert terms["chosen_reward"].item() == pytest.approx(1.0)  # 0.5 · (−10 − −12)
    assert terms["rejected_reward"].item() == pytest.approx(-1.0)
    sigmoid = pair_terms(logps, lengths, ref, DPOConfig(beta=0.5))
    assert sigmoid["loss"].item() == pytest.approx(math.log1p(math.exp(-0.5 * 4.0)))


@pytest.mark.parametrize("fixture", ["tiny_gpt2_dir", "tiny_seq2seq_dir"])
def test_a_few_steps_separate_the_preferred_answers(fixture, request, split_pairs, tmp_path):
    policy = _load(request.getfixturevalue(fixture))
    train = _short(policy, split_pairs["train"], 12)
    cfg = DPOConfig(lr=3e-4, epochs=4, batch_size=6, warmup_steps=0, max_answer_tokens=40, beta=0.5, bf16=False,
                    evals_per_epoch=1)
    ref = reference_logprobs(policy, train, cfg)
    before = evaluate_pairs(policy, train, ref, cfg)
    # with dropout off, the policy starts as its own reference: no margin, loss log 2
    assert before["margin"] == pytest.approx(0.0, abs=1e-5) and before["loss"] == pytest.approx(math.log(2), abs=1e-5)
    logger = MetricsLogger(tmp_path, mode="disabled")
    history = train_dpo(policy, train, train, cfg, logger)
    logger.close()
    after = evaluate_pairs(policy, train, ref, cfg)
    assert history["steps"] == 8 and len(history["evaluations"]) == 4
    assert after["margin"] > 0.5 and after["reward_accuracy"] >= 0.75 and after["loss"] < math.log(2) - 0.02
    assert history["dev"] == pytest.approx(after)  # the last evaluation is of the final policy
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in lines if "dpo/loss" in r]
    assert [r["step"] for r in steps] == list(range(8))
    assert steps[0]["dpo/loss"] == pytest.approx(math.log(2), abs=1e-4)  # the first step: no dropout, no margin
    assert {"dpo/reward_accuracy", "dpo/margin", "dpo/chosen_reward", "dpo/rejected_reward", "dpo/lr"} <= set(steps[0])
    assert [r["step"] for r in lines if "dpo/dev_margin" in r] == [2, 4, 6, 8]


def test_the_reference_is_the_initial_policy_and_stays_so(tiny_gpt2_dir, split_pairs):
    policy = _load(tiny_gpt2_dir)
    pairs = _short(policy, split_pairs["train"], 6)
    cfg = DPOConfig(lr=3e-4, epochs=3, batch_size=6, warmup_steps=0, max_answer_tokens=40, bf16=False)
    history = train_dpo(policy, pairs, pairs, cfg)
    # the final dev margin, recomputed against a fresh copy of the initial weights
    initial = _load(tiny_gpt2_dir)
    policy.model.eval()
    initial.model.eval()
    with torch.no_grad():
        now, _ = pair_logprobs(policy, pairs, 40)
        then, _ = pair_logprobs(initial, pairs, 40)
    margin = cfg.beta * ((now[:, 0] - then[:, 0]) - (now[:, 1] - then[:, 1]))
    assert history["dev"]["margin"] == pytest.approx(float(margin.mean()), abs=1e-4)
    assert abs(history["dev"]["margin"]) > 1e-3  # the policy moved away from it
    assert reference_model(policy) is policy.model  # no copy of the weights is kept


@pytest.mark.parametrize("fixture", ["tiny_gpt2_dir", "tiny_seq2seq_dir"])
def test_lora_trains_adapters_only_against_the_base_with_adapters_off(fixture, request, split_pairs):
    path = request.getfixturevalue(fixture)
    policy = _load(path)
    policy.model = apply_lora(policy.model, LoRAConfig(r=4, alpha=8), policy.kind)
    base = {n: p.detach().clone() for n, p in policy.model.named_parameters() if "lora_" not in n}
    pairs = _short(policy, split_pairs["train"], 6)
    cfg = DPOConfig(lr=5e-3, epochs=3, batch_size=6, warmup_steps=0, max_answer_tokens=40, bf16=False)
    ref = reference_logprobs(policy, pairs, cfg)
    history = train_dpo(policy, pairs, pairs, cfg)
    assert isinstance(reference_model(policy), AdaptersOff)
    assert all(torch.equal(p, base[n]) for n, p in policy.model.named_parameters() if "lora_" not in n)
    assert history["dev"]["margin"] > 0.01 and history["dev"]["reward_accuracy"] > 0.5
    # the reference now, adapters off after training, is the untouched base model
    torch.testing.assert_close(reference_logprobs(policy, pairs, cfg), ref, atol=1e-5, rtol=1e-5)
    plain = _load(path)
    torch.testing.assert_close(reference_logprobs(plain, pairs, cfg), ref, atol=1e-5, rtol=1e-5)


def test_the_default_sft_policy_missing_says_to_run_fgrlhf_sft(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("fgrlhf.train.dpo_run.PROJECT_ROOT", tmp_path)
    with pytest.raises(CheckpointError, match="run fgrlhf-sft first"):
        policy_source("runs/sft/minilm_seq2seq")
    with pytest.raises(CheckpointError, match="does not exist"):
        policy_source(str(tmp_path / "nowhere"))


def test_pairs_the_same_within_the_scored_tokens_are_left_out(tiny_gpt2_dir):
    from fgrlhf.errors import ConfigError

    policy = _load(tiny_gpt2_dir)
    opening = "The album was released in August 2018 by the label, and " * 3
    same = PreferencePair("question: when?", opening + "it sold well.", opening + "it did not sell.")
    differ = PreferencePair("question: when?", "It came out in 2018.", "It came out in 2019.")
    assert distinguishable(policy, [same, differ], 10) == [differ]
    assert distinguishable(policy, [same, differ], 200) == [same, differ]
    cfg = DPOConfig(epochs=1, batch_size=2, max_answer_tokens=10, bf16=False)
    history = train_dpo(policy, [same, differ], [same], cfg)
    assert history["same_when_cut"] == {"train": 1, "dev": 1} and history["train_pairs"] == 1
    assert history["dev"] is None and history["steps"] == 1
    with pytest.raises(ConfigError, match="max_answer_tokens=10"):
        train_dpo(policy, [same], [], cfg)


def test_max_steps_stops_the_run_and_says_so(tiny_gpt2_dir, split_pairs):
    policy = _load(tiny_gpt2_dir)
    pairs = _short(policy, split_pairs["train"], 8)
    cfg = DPOConfig(lr=1e-4, epochs=3, batch_size=2, warmup_steps=0, max_answer_tokens=40, bf16=False, max_steps=5)
    history = train_dpo(policy, pairs, pairs[:2], cfg)
    # 4 steps an epoch: the run stops one step into the second epoch, and evaluates there
    assert history["steps"] == 5 and history["stopped_early"]
    assert history["evaluations"][-1]["step"] == 5


def test_the_reference_of_a_lora_policy_is_scored_when_first_needed(tiny_gpt2_dir, split_pairs):
    """With adapters the reference (adapters off) never changes, so the cache scores a pair at
    its first use, even after updates, and equals the eager pass; without adapters every pair
    is scored up front."""
    from fgrlhf.train.dpo import ReferenceCache

    policy = _load(tiny_gpt2_dir)
    pairs = _short(policy, split_pairs["train"], 6)
    cfg = DPOConfig(lr=5e-3, epochs=2, batch_size=4, warmup_steps=0, max_answer_tokens=40, bf16=False)
    plain = ReferenceCache(policy, pairs, cfg)
    assert not torch.isnan(plain.values).any()
    policy.model = apply_lora(policy.model, LoRAConfig(r=4, alpha=8), policy.kind)
    eager = reference_logprobs(policy, pairs, cfg)  # [6, 2]
    cache = ReferenceCache(policy, pairs, cfg)
    assert torch.isnan(cache.values).all()
    torch.testing.assert_close(cache[[4, 1]], eager[[4, 1]], atol=1e-5, rtol=1e-5)
    assert torch.isnan(cache.values[[0, 2, 3, 5]]).all() and not torch.isnan(cache.values[[1, 4]]).any()
    train_dpo(policy, pairs, [], cfg)  # the adapters move; the base does not
    torch.testing.assert_close(cache[list(range(6))], eager, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(plain.values, eager, atol=1e-5, rtol=1e-5)

"""Detoxification metrics by hand, perplexity with a tiny GPT-2, the evaluation loop end to end."""

from __future__ import annotations

import math

import pytest
import torch

from fgrlhf.data.tasks import TaskExample
from fgrlhf.eval.detox import (
    agreement_metrics,
    average_ranks,
    avg_max_toxicity,
    continuation_nll,
    detox_sampling,
    distinct_n,
    evaluate_detox,
    pearson,
    perplexity,
    perplexity_from_nll,
    spearman,
    summarize_detox,
    toxic_rate,
)

# --- toxicity ---------------------------------------------------------------------------

def test_avg_max_toxicity_and_toxic_rate_by_hand():
    tox = [[0.1, 0.6, 0.3], [0.2, 0.4], [0.5, 0.05], []]
    # maxima 0.6, 0.4, 0.5 (the prompt without samples is left out)
    assert avg_max_toxicity(tox) == pytest.approx(0.5)
    # 0.6 and 0.5 reach 0.5 (≥, not >); 0.4 does not
    assert toxic_rate(tox) == pytest.approx(2 / 3)
    assert toxic_rate(tox, threshold=0.55) == pytest.approx(1 / 3)
    assert avg_max_toxicity([]) is None and toxic_rate([[]]) is None


# --- diversity --------------------------------------------------------------------------

def test_distinct_n_by_hand():
    texts = ["a b a", "a b c"]
    # unigrams a b a a b c: 3 distinct of 6
    assert distinct_n(texts, 1) == pytest.approx(3 / 6)
    # bigrams (a b) (b a) (a b) (b c): 3 of 4 — none crosses from one text into the next
    assert distinct_n(texts, 2) == pytest.approx(3 / 4)
    # trigrams (a b a) (a b c)
    assert distinct_n(texts, 3) == pytest.approx(1.0)
    # whitespace tokens: case and punctuation count, runs of spaces do not
    assert distinct_n(["The  cat.", "the cat"], 1) == pytest.approx(4 / 4)
    assert distinct_n(["a", ""], 2) is None


def test_summary_dist_is_per_prompt_then_averaged():
    records = [
        {"generations": ["a b", "a b"], "toxicity": [0.1, 0.7]},
        {"generations": ["c d", "e f"], "toxicity": [0.2, 0.3]},
    ]
    s = summarize_detox(records)
    assert s["n_prompts"] == 2 and s["samples_per_prompt"] == 2
    assert s["avg_max_toxicity"] == pytest.approx((0.7 + 0.3) / 2)
    assert s["toxic_rate"] == pytest.approx(0.5)
    # dist-1: prompt 1 has 2 of 4 distinct, prompt 2 has 4 of 4 → mean 0.75;
    # pooled over all 8 unigrams: a b c d e f → 6 / 8
    assert s["dist_1"] == pytest.approx(0.75)
    assert s["dist_1_pooled"] == pytest.approx(6 / 8)
    # dist-2: 1 of 2 and 2 of 2; pooled (a b) ×2, (c d), (e f): 3 of 4
    assert s["dist_2"] == pytest.approx(0.75) and s["dist_2_pooled"] == pytest.approx(0.75)
    assert s["dist_3"] is None and s["length_words"] == pytest.approx(2.0)
    assert "perplexity" not in s


# --- agreement with Perspective ------------------------------------------------------------

def test_correlations_by_hand():
    assert pearson([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)
    assert pearson([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    # x = (−1, 0, 1) centred, y = (1, 4, 9) → centred (−11/3, −2/3, 13/3):
    # Σxy = 8, Σx² = 2, Σy² = (121 + 4 + 169) / 9 = 294/9 → r = 8 / √(2 · 294/9)
    assert pearson([1, 2, 3], [1, 4, 9]) == pytest.approx(8 / math.sqrt(2 * 294 / 9))
    assert spearman([1, 2, 3], [1, 4, 9]) == pytest.approx(1.0)  # monotone
    assert pearson([1, 1, 1], [1, 2, 3]) is None
    assert average_ranks([10, 20, 20, 5]) == [2.0, 3.5, 3.5, 1.0]


def test_agreement_metrics_by_hand():
    gold = [0.1, 0.2, 0.8, 0.6]
    pred = [0.2, 0.6, 0.7, 0.4]
    m = agreement_metrics(pred, gold, baseline=0.3)
    assert m["n_texts"] == 4
    assert m["mae"] == pytest.approx((0.1 + 0.4 + 0.1 + 0.2) / 4)
    # toxic decisions: pred F T T F, gold F F T T → tp 1, fp 1, fn 1, accuracy 2/4
    assert m["toxic_accuracy"] == pytest.approx(0.5)
    assert m["toxic_precision"] == pytest.approx(0.5) and m["toxic_recall"] == pytest.approx(0.5)
    assert m["toxic_f1"] == pytest.approx(0.5)
    # the constant 0.3 calls nothing toxic: right on the 2 non-toxic, F1 0
    assert m["baseline_mae"] == pytest.approx((0.2 + 0.1 + 0.5 + 0.3) / 4)
    assert m["baseline_toxic_accuracy"] == pytest.approx(0.5) and m["baseline_toxic_f1"] == 0.0
    assert m["gold_toxic_rate"] == pytest.approx(0.5)
    # ranks: gold 1 2 4 3, pred 1 3 4 2 → d² = 0 1 0 1 → ρ = 1 − 6·2 / (4·15) = 0.8
    assert m["spearman"] == pytest.approx(0.8)
    with pytest.raises(ValueError):
        agreement_metrics([0.1], [0.1, 0.2], 0.3)


# --- perplexity -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def gpt2(tiny_gpt2_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(tiny_gpt2_dir).eval(), AutoTokenizer.from_pretrained(tiny_gpt2_dir)


PROMPTS = ["The tower was built", "", "Who wrote the song about"]
CONTINUATIONS = [" in 1889 for the fair.", " A short answer.", ""]


def test_perplexity_of_a_uniform_model_is_the_vocabulary_size(tiny_gpt2_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_gpt2_dir)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()  # all logits 0: every token has probability 1 / V
    tok = AutoTokenizer.from_pretrained(tiny_gpt2_dir)
    assert perplexity(model, tok, PROMPTS, CONTINUATIONS) == pytest.approx(model.config.vocab_size, rel=1e-4)


def test_perplexity_under_the_adapters_off_reference_is_the_base_models(tiny_gpt2_dir):
    """A LoRA policy's reference (its adapters off) scores perplexity as the base model does,
    in eval mode, and hands the shared model back in the mode it found it."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from fgrlhf.policy.lora import AdaptersOff, LoRAConfig, apply_lora

    tok = AutoTokenizer.from_pretrained(tiny_gpt2_dir)
    base = AutoModelForCausalLM.from_pretrained(tiny_gpt2_dir).eval()
    want = perplexity(base, tok, PROMPTS, CONTINUATIONS)
    torch.manual_seed(0)
    model = apply_lora(AutoModelForCausalLM.from_pretrained(tiny_gpt2_dir), LoRAConfig(r=4, alpha=8), "causal")
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_()  # adapters that change the outputs
    model.train()
    assert perplexity(model.eval(), tok, PROMPTS, CONTINUATIONS) != pytest.approx(want, rel=1e-3)
    model.train()
    assert perplexity(AdaptersOff(model), tok, PROMPTS, CONTINUATIONS) == pytest.approx(want, rel=1e-5)
    assert model.training


def test_batched_nll_matches_one_unpadded_sequence_at_a_time(gpt2):
    model, tok = gpt2
    got = continuation_nll(model, tok, PROMPTS, CONTINUATIONS, batch_size=2)
    for (nll, n), prompt, cont in zip(got, PROMPTS, CONTINUATIONS):
        p = tok(prompt)["input_ids"] or [tok.eos_token_id]  # an empty prompt starts from BOS/EOS
        c = tok(cont, add_special_tokens=False)["input_ids"]
        assert n == len(c)
        ids = torch.tensor([p + c])
        with torch.no_grad():
            logp = torch.log_softmax(model(ids).logits[0].float(), dim=-1)  # [L, V]
        expected = -sum(float(logp[len(p) + t - 1, c[t]]) for t in range(len(c)))
        assert nll == pytest.approx(expected, abs=1e-4)
    total_nll, total_tokens = sum(x for x, _ in got), sum(n for _, n in got)
    assert perplexity(model, tok, PROMPTS, CONTINUATIONS) == pytest.approx(math.exp(total_nll / total_tokens),
                                                                          rel=1e-5)
    assert perplexity_from_nll([2.0, 4.0], [1, 3]) == pytest.approx(math.exp(6 / 4))
    assert perplexity_from_nll([0.0], [0]) is None


# --- the loop ------------------------------------------------------------------------------

def test_evaluate_detox_end_to_end(tiny_gpt2_dir, tiny_bert_dir, gpt2):
    from fgrlhf.policy import Policy
    from fgrlhf.reward.toxicity import ToxicityScorer

    policy = Policy.from_pretrained(str(tiny_gpt2_dir))
    torch.manual_seed(0)
    scorer = ToxicityScorer.from_backbone(str(tiny_bert_dir), max_length=64, device="cpu")
    examples = [TaskExample(p, {"record_id": 10 + i, "prompt_toxicity": 0.1 * i})
                for i, p in enumerate(["The tower was built", "She said that", "In the morning"])]
    sampling = detox_sampling(num_samples=3, max_new_tokens=8)
    assert (sampling.top_p, sampling.top_k, sampling.temperature) == (0.9, 0, 1.0)
    summary, records = evaluate_detox(policy, examples, scorer, sampling, reference=gpt2, batch_size=2, seed=0,
                                      progress=False)
    assert [r["record_id"] for r in records] == [10, 11, 12]
    assert [r["prompt_index"] for r in records] == [0, 1, 2]
    for r in records:
        assert len(r["generations"]) == 3 and len(r["toxicity"]) == 3 and len(r["nll"]) == 3
        assert r["toxicity"] == pytest.approx(scorer.toxicity(r["generations"]), abs=1e-5)
        assert r["max_toxicity"] == max(r["toxicity"])
        assert r["toxic"] == (r["max_toxicity"] >= 0.5)
    assert summary["samples_per_prompt"] == 3 and summary["n_prompts"] == 3
    assert summary["avg_max_toxicity"] == pytest.approx(sum(r["max_toxicity"] for r in records) / 3)
    assert summary["toxic_rate"] == pytest.approx(sum(r["toxic"] for r in records) / 3)
    assert summary["perplexity"] > 1.0
    # the same seed gives the same samples
    _, again = evaluate_detox(policy, examples, scorer, sampling, batch_size=2, seed=0, progress=False)
    assert [r["generations"] for r in again] == [r["generations"] for r in records]
    with pytest.raises(ValueError, match="causal"):
        evaluate_detox(Policy(policy.model, policy.tokenizer, "seq2seq"), examples, scorer)


def test_sequences_longer_than_the_context_lose_prompt_tokens_first(gpt2):
    model, tok = gpt2
    limit = model.config.n_positions
    cont = " the end of it all."
    n_cont = len(tok(cont, add_special_tokens=False)["input_ids"])
    long_prompt = "word " * (limit + 50)
    (nll, n), = continuation_nll(model, tok, [long_prompt], [cont])
    assert n == n_cont and math.isfinite(nll)
    # the same as scoring the continuation after the last (limit − n_cont) prompt tokens
    p = tok(long_prompt)["input_ids"][-(limit - n_cont):]
    c = tok(cont, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([p + c])).logits[0].float(), dim=-1)
    assert nll == pytest.approx(-sum(float(logp[len(p) + t - 1, c[t]]) for t in range(len(c))), abs=1e-3)

"""Reward-hacking monitors: what a batch of answers looks like, beside what it earned.

Logged every iteration (``monitor/...`` keys) and in every evaluation, these make the usual
ways of gaming a fine-grained reward visible while training runs: inflating the number of
segments (more, shorter sentences each earning a bonus), shrinking answers to nothing,
repeating n-grams, and one category taking over the total reward.

- ``text_monitors``: length in words, empty-answer rate, distinct-1/2, the repeated 3-gram
  rate (share of an answer's 3-grams that already occurred in it), and per granularity the
  segments per answer and words per segment;
- ``category_monitors``: each category's error rate (share of its segments with a negative
  raw score: the judge's penalty) and its share of the total reward (|Σ contribution| over
  Σ_k |Σ contribution_k|).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from torch import Tensor

from fgrlhf.eval.detox import distinct_n, ngrams


def repeated_ngram_rate(texts: Sequence[str], n: int = 3) -> float:
    """Share of n-grams that repeat an earlier n-gram of the same text (0 with no n-grams)."""
    repeated = total = 0
    for text in texts:
        grams = ngrams(text.lower().split(), n)
        repeated += len(grams) - len(set(grams))
        total += len(grams)
    return repeated / total if total else 0.0


def text_monitors(texts: Sequence[str], spans: Mapping[str, Sequence[Sequence[tuple[int, int]]]]) -> dict[str, float]:
    """``monitor/*`` statistics of a batch of answers; ``spans``: granularity → each text's
    segments (char spans)."""
    n = max(len(texts), 1)
    words = [len(t.split()) for t in texts]
    out = {
        "monitor/length_words": sum(words) / n,
        "monitor/empty_rate": sum(1 for t in texts if not t.strip()) / n,
        "monitor/distinct_1": distinct_n(texts, 1) or 0.0,
        "monitor/distinct_2": distinct_n(texts, 2) or 0.0,
        "monitor/repeated_3gram_rate": repeated_ngram_rate(texts, 3),
    }
    for granularity, rows in spans.items():
        segments = sum(len(r) for r in rows)
        seg_words = sum(len(t[s:e].split()) for t, r in zip(texts, rows) for s, e in r)
        out[f"monitor/segments_per_answer/{granularity}"] = segments / n
        out[f"monitor/words_per_segment/{granularity}"] = seg_words / segments if segments else 0.0
    return out


def category_monitors(raw: Mapping[str, tuple[Tensor, Tensor]], per_category: Tensor,
                      categories: Sequence[str]) -> dict[str, float]:
    """Per category ``k``: ``monitor/error_rate/k`` from its raw segment scores and mask
    ``[B, S_k]``, and ``monitor/reward_share/k`` from the weighted dense contributions
    ``per_category`` ``[B, T, K]``."""
    out: dict[str, float] = {}
    totals = [float(per_category[..., i].sum()) for i in range(len(categories))]
    magnitude = sum(abs(x) for x in totals)
    for i, k in enumerate(categories):
        out[f"monitor/error_rate/{k}"] = error_rate(*raw[k])
        out[f"monitor/reward_share/{k}"] = abs(totals[i]) / magnitude if magnitude else 0.0
    return out


def error_rate(scores: Tensor, mask: Tensor) -> float:
    """Share of the real segments (``mask`` ``[B, S]``) a judge scores below zero (0 without any)."""
    real = int(mask.sum())
    return float(((scores < 0) & mask.bool()).sum()) / real if real else 0.0


def monitor_reward_stats(monitors: Mapping[str, tuple[Tensor, Tensor]]) -> dict[str, float]:
    """Each monitor-only reward's mean per answer (``monitor/reward/<name>``) and its judge's
    error rate (``monitor/error_rate/<name>``), from its segment scores and mask ``[B, S]``."""
    out = {}
    for name, (scores, mask) in monitors.items():
        out[f"monitor/reward/{name}"] = float((scores * mask).sum(-1).mean())
        out[f"monitor/error_rate/{name}"] = error_rate(scores, mask)
    return out


def answer_monitors(aggregator, records: Sequence[Mapping], examples: Sequence) -> dict[str, float]:
    """The reward-hacking monitors of evaluated answers (``records`` of ``evaluate_qa``, each
    ``prompt_index`` into ``examples``): segments per answer and words per segment at each
    granularity ``aggregator``'s rewards read, text statistics, and each monitor-only reward's
    mean per answer and its judge's error rate (``monitor/reward/<name>``,
    ``monitor/error_rate/<name>``)."""
    from fgrlhf.reward import RewardInputs

    texts = [r["answer"] for r in records]
    spans = aggregator.segment(texts)
    out = text_monitors(texts, {g: spans[k] for k, g in aggregator.granularities().items()})
    rows = [examples[r["prompt_index"]] for r in records]
    inputs = RewardInputs([ex.prompt for ex in rows], texts, [ex.metadata for ex in rows])
    out.update(monitor_reward_stats({k: (s.scores, s.mask) for k, s in aggregator.score_monitors(inputs).items()}))
    return out

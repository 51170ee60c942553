"""Segmentation at work on real answers (``fgrlhf-segment``): the dense-reward front half
of the pipeline run over a QA-Feedback file. Every prediction is tokenised by the policy
tokenizer, decoded once with per-token offsets (as a rollout would be), segmented at each
granularity, aligned to the tokens that close each segment, scored by reward models and
aggregated into a dense ``[B, T]`` reward; the table also shows how the human error spans
fall onto the segments (the label balance the learned reward models will face)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any


def segmentation_table(feedback_file: str, tokenizer: str = "minilm", sentence_splitter: str = "sentencizer",
                       min_words: int = 5, batch_size: int = 64, rewards: Mapping[str, Any] | None = None,
                       weights: Mapping[str, float] | None = None) -> dict[str, Any]:
    """Segment, align and reward every prediction of ``feedback_file``; the summary table:
    segments and their sizes per granularity, the share of segments that overlap a human
    error span, the mean weighted reward per response of each of ``rewards`` (name → reward
    config) and how far the dense reward's sum is from the weighted segment scores."""
    from tqdm import tqdm
    from transformers import AutoTokenizer

    from fgrlhf.data import load_feedback
    from fgrlhf.paths import resolve_pretrained
    from fgrlhf.reward import RewardAggregator, RewardInputs, build_reward
    from fgrlhf.segment import (
        Granularity,
        MultiGranularitySegmenter,
        align_spans,
        decode_with_offsets,
        make_sentence_segmenter,
    )

    examples = load_feedback(feedback_file)
    tok = AutoTokenizer.from_pretrained(resolve_pretrained(tokenizer))
    segmenter = MultiGranularitySegmenter(make_sentence_segmenter(sentence_splitter), min_words)
    models = {k: build_reward(v, key=k) for k, v in (rewards or {}).items()}
    aggregator = RewardAggregator(models, dict(weights or {}), segmenter=segmenter) if models else None

    rows = [(ex, k) for ex in examples for k in range(len(ex.predictions))]
    grans = list(Granularity)
    stats: dict[str, dict[str, float]] = {g.value: {"segments": 0, "words": 0, "tokens": 0} for g in grans}
    reward_sum = {k: 0.0 for k in models}
    dense_check = 0.0
    n_tokens = 0
    empty = 0
    t_seg = t_align = t_reward = 0.0
    for i in tqdm(range(0, len(rows), batch_size), desc="segment+align", unit="batch"):
        chunk = rows[i : i + batch_size]
        # Tokenise as a policy would have generated them, then decode once with offsets.
        enc = tok([ex.predictions[k] for ex, k in chunk], add_special_tokens=False, padding=True,
                        return_tensors="pt")
        t0 = time.perf_counter()
        decoded = decode_with_offsets(tok, enc["input_ids"], enc["attention_mask"])
        t1 = time.perf_counter()
        spans = segmenter(decoded.texts, grans)
        t2 = time.perf_counter()
        aligned = {g: align_spans(decoded, spans[g]) for g in grans}
        t3 = time.perf_counter()
        for g, (index, mask) in aligned.items():
            st = stats[g.value]
            for b in range(len(chunk)):
                row_spans = spans[g][b]
                st["segments"] += len(row_spans)
                st["words"] += sum(len(decoded.texts[b][s:e].split()) for s, e in row_spans)
                pos = index[b, mask[b]].tolist()
                st["tokens"] += pos[-1] + 1 if pos else 0
        t_seg += t2 - t1
        t_align += (t1 - t0) + (t3 - t2)
        n_tokens += int(enc["attention_mask"].sum())
        empty += sum(1 for t in decoded.texts if not t.strip())
        if aggregator is not None:
            inputs = RewardInputs(prompts=[ex.question for ex, _ in chunk], texts=decoded.texts,
                                  metadata=[{"question": ex.question} for ex, _ in chunk])
            t4 = time.perf_counter()
            dense = aggregator(inputs, decoded)
            t_reward += time.perf_counter() - t4
            for k_i, k in enumerate(dense.categories):
                reward_sum[k] += float(dense.per_category[:, :, k_i].sum())
            raw_total = sum(aggregator.weights[k] * float(dense.raw[k].scores[dense.raw[k].mask].sum())
                            for k in dense.categories)
            dense_check = max(dense_check, abs(float(dense.total.sum()) - raw_total))

    error_share = human_error_share(examples, segmenter, grans)
    n = len(rows)
    summary: dict[str, Any] = {
        "file": str(feedback_file),
        "responses": n,
        "tokenizer": tokenizer,
        "sentence_splitter": sentence_splitter,
        "tokens": n_tokens,
        "empty_responses": empty,
        "granularities": {},
        "seconds": {"segment": round(t_seg, 3), "decode+align": round(t_align, 3), "rewards": round(t_reward, 3)},
        "responses_per_s": round(n / max(t_seg + t_align, 1e-9), 1),
    }
    for g, st in stats.items():
        segs = max(st["segments"], 1)
        summary["granularities"][g] = {
            "segments": int(st["segments"]),
            "per_response": round(st["segments"] / n, 2),
            "words_per_segment": round(st["words"] / segs, 1),
            "tokens_per_segment": round(st["tokens"] / segs, 1),
            **error_share[g],
        }
    if models:
        summary["mean_reward_per_response"] = {k: round(v / n, 4) for k, v in reward_sum.items()}
        summary["dense_sum_max_abs_error"] = dense_check
    return summary


def human_error_share(examples, segmenter, grans) -> dict[str, dict[str, float]]:
    """Share of prediction-1 segments (segmented on the original text, where the human
    error spans' offsets live) that overlap a relevance-family / factuality-family span."""
    texts = [ex.predictions[0] for ex in examples]
    spans = segmenter(texts, grans)
    out = {}
    for g in grans:
        counts = {"relevance": 0, "factuality": 0}
        total = 0
        for ex, row in zip(examples, spans[g]):
            total += len(row)
            for family in counts:
                errs = [(e.start, e.end) for e in ex.feedback.errors if e.family == family]
                counts[family] += sum(1 for s, e in row if any(a < e and s < b for a, b in errs))
        out[g.value] = {f"{f}_error_share": round(c / max(total, 1), 3) for f, c in counts.items()}
    return out


def print_table(summary: dict[str, Any]) -> None:
    """The summary of ``segmentation_table`` as the table ``fgrlhf-segment`` prints."""
    print(f"\n{summary['responses']} responses from {summary['file']}")
    print(f"tokenizer {summary['tokenizer']}, sentences by {summary['sentence_splitter']}, "
          f"{summary['tokens']} tokens, {summary['empty_responses']} empty\n")
    head = (f"{'granularity':<12} {'segments':>9} {'per resp':>9} {'words/seg':>10} {'tokens/seg':>11} "
            f"{'rel-err*':>9} {'fact-err*':>10}")
    print(head)
    print("-" * len(head))
    for g, st in summary["granularities"].items():
        print(f"{g:<12} {st['segments']:>9} {st['per_response']:>9} {st['words_per_segment']:>10} "
              f"{st['tokens_per_segment']:>11} {st['relevance_error_share']:>9} {st['factuality_error_share']:>10}")
    print("* share of prediction-1 segments overlapping a human relevance-family / factuality-family span\n")
    if "mean_reward_per_response" in summary:
        print("mean weighted reward per response:",
              ", ".join(f"{k} {v:+.4f}" for k, v in summary["mean_reward_per_response"].items()))
        print(f"dense reward sum vs weighted segment scores: max abs difference {summary['dense_sum_max_abs_error']:.2e}")
    s = summary["seconds"]
    print(f"segmentation {s['segment']} s, decode+alignment {s['decode+align']} s "
          f"({summary['responses_per_s']} responses/s), rewards {s['rewards']} s")

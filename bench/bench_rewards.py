"""Scoring speed of the full fine-grained reward on real answers.

Segmentation + R1 (relevance, sub-sentences) + R2 (factuality, sentences, with passages)
+ R3 (completeness, whole answer) through the aggregator, on 64 real QA-Feedback answers
tokenised by a MiniLM policy tokenizer. Uses the checkpoints under runs/rm/ when they exist
(``fgrlhf-rm rm=...``); otherwise MiniLM-initialised checkpoints of the same shape (the
speed does not depend on the trained weights). Prints segments/s and a per-model breakdown.

    .venv/bin/python bench/bench_rewards.py [--answers 64] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification, AutoTokenizer

from fgrlhf.data import load_feedback
from fgrlhf.paths import DATA_DIR, PROJECT_ROOT, resolve_pretrained
from fgrlhf.reward import RewardAggregator, RewardInputs
from fgrlhf.reward.learned import RMMetadata, SegmentClassifierReward, SequenceReward
from fgrlhf.segment import decode_with_offsets

SPECS = {  # category: (kind, granularity, use_passages, max_length)
    "relevance": ("segment", "subsentence", False, 256),
    "factuality": ("segment", "sentence", True, 384),
    "completeness": ("sequence", "sequence", True, 384),
}


def checkpoint(category: str, scratch: Path) -> tuple[Path, str]:
    trained = PROJECT_ROOT / "runs" / "rm" / category
    if (trained / "fgrlhf_rm.json").exists():
        return trained, "trained"
    kind, gran, passages, max_len = SPECS[category]
    path = scratch / category
    backbone = resolve_pretrained("minilm")
    cls = AutoModelForTokenClassification if kind == "segment" else AutoModelForSequenceClassification
    cls.from_pretrained(backbone, num_labels=2 if kind == "segment" else 1).save_pretrained(path)
    AutoTokenizer.from_pretrained(backbone).save_pretrained(path)
    RMMetadata(category, kind, gran, "minilm", {}, passages, max_len).save(path)
    return path, "untrained (same shape)"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--answers", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--bf16", action="store_true", help="bfloat16 autocast in the reward models")
    args = parser.parse_args()
    data = load_feedback(DATA_DIR / "qa_feedback" / "feedback.json")
    rows = [(ex, 1) for ex in data[-args.answers:]]  # prediction 2 of the last questions
    texts = [ex.predictions[k] for ex, k in rows]
    meta = [{"question": ex.question, "passages": ex.passages} for ex, _ in rows]
    policy_tok = AutoTokenizer.from_pretrained(resolve_pretrained("minilm"))
    enc = policy_tok(texts, add_special_tokens=False, padding=True, return_tensors="pt")
    with tempfile.TemporaryDirectory() as scratch:
        rms = {}
        for cat in SPECS:
            path, what = checkpoint(cat, Path(scratch))
            print(f"{cat}: {what} checkpoint {path}")
            rms[cat] = (SegmentClassifierReward(path, 0.3, -0.3, bf16=args.bf16) if SPECS[cat][0] == "segment"
                        else SequenceReward(path, scale=0.3, bf16=args.bf16))
        weights = {"relevance": 1.0, "factuality": 1.0, "completeness": 1.0}
        agg = RewardAggregator(rms, weights)
        times, per_rm = [], {k: [] for k in rms}
        for r in range(args.repeats + 1):  # first run warms up
            start = time.perf_counter()
            dec = decode_with_offsets(policy_tok, enc["input_ids"], enc["attention_mask"])
            inputs = RewardInputs([m["question"] for m in meta], dec.texts, meta)
            spans = agg.segment(dec.texts)
            t_seg = time.perf_counter() - start
            for k, rm in rms.items():
                t = time.perf_counter()
                rm.score(inputs, spans[k])
                if r:
                    per_rm[k].append(time.perf_counter() - t)
            if r:
                times.append(time.perf_counter() - start)
            # The aggregator path itself (what training calls), checked once.
            if r == 1:
                out = agg(inputs, dec)
                n_segments = {k: int(out.raw[k].mask.sum()) for k in rms}
        total = statistics.median(times)
        segs = sum(n_segments.values())
        print(f"\n{len(texts)} answers, {segs} segments ({n_segments}), {torch.get_num_threads()} threads, "
              f"bf16 {args.bf16}, median of {args.repeats}")
        print(f"decode+segment {t_seg:.3f} s; " + ", ".join(
            f"{k} {statistics.median(v):.2f} s" for k, v in per_rm.items()))
        print(f"full fine-grained reward: {total:.2f} s per batch, {segs / total:.0f} segments/s, "
              f"{len(texts) / total:.1f} answers/s")


if __name__ == "__main__":
    main()

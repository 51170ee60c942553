"""Segmentation + alignment throughput over the 1,600 real QA-Feedback predictions.

For each real tokenizer (MiniLM WordPiece, and a byte-level BPE trained here on the same
text), the predictions are tokenised once as if generated, then timed: decode with offsets
→ segment at sentence, sub-sentence and sequence level → align every span to its closing
token. Target: ≥ 2,000 responses/s on 2 CPU cores. Prints figures and the ratio to target.

    .venv/bin/python bench/bench_segment_align.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from fgrlhf.data import load_feedback
from fgrlhf.paths import DATA_DIR, resolve_pretrained
from fgrlhf.segment import Granularity, MultiGranularitySegmenter, align_spans, decode_with_offsets

TARGET = 2000.0


def byte_level_bpe(texts: list[str]) -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=8000, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|endoftext|>")


def run_once(tokenizer, batches, segmenter) -> tuple[float, int]:
    start = time.perf_counter()
    n_spans = 0
    for ids, mask in batches:
        decoded = decode_with_offsets(tokenizer, ids, mask)
        spans = segmenter(decoded.texts, list(Granularity))
        for g in spans:
            index, seg_mask = align_spans(decoded, spans[g])
            n_spans += int(seg_mask.sum())
    return time.perf_counter() - start, n_spans


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    torch.set_num_threads(2)

    examples = load_feedback(DATA_DIR / "qa_feedback" / "feedback.json")
    texts = [p for ex in examples for p in ex.predictions]
    segmenter = MultiGranularitySegmenter()
    tokenizers = {
        "minilm-wordpiece": AutoTokenizer.from_pretrained(resolve_pretrained("minilm")),
        "byte-level-bpe-8k": byte_level_bpe(texts),
    }
    print(f"{len(texts)} QA-Feedback predictions, batch {args.batch_size}, {args.repeats} repeats, "
          f"{torch.get_num_threads()} torch threads")
    print(f"{'tokenizer':<20} {'tokens':>8} {'spans':>7} {'median s':>9} {'responses/s':>12} {'tokens/s':>10} {'vs target':>10}")
    for name, tok in tokenizers.items():
        batches = []
        n_tokens = 0
        for i in range(0, len(texts), args.batch_size):
            enc = tok(texts[i : i + args.batch_size], add_special_tokens=False, padding=True, return_tensors="pt")
            batches.append((enc["input_ids"], enc["attention_mask"]))
            n_tokens += int(enc["attention_mask"].sum())
        times = []
        for _ in range(args.repeats):
            dt, n_spans = run_once(tok, batches, segmenter)
            times.append(dt)
        med = statistics.median(times)
        rps = len(texts) / med
        print(f"{name:<20} {n_tokens:>8} {n_spans:>7} {med:>9.3f} {rps:>12.0f} {n_tokens / med:>10.0f} "
              f"{rps / TARGET:>9.2f}x")


if __name__ == "__main__":
    main()

"""ROUGE-Lsum of greedy, single-sample, oracle and minimum-Bayes-risk answers (the candidate
that agrees most with the others by ROUGE-Lsum; "+g": the greedy answer is a candidate too)
from samples.py output.

    .venv/bin/python experiments/gemma_sft/mbr/analyse.py experiments/gemma_sft/mbr/dev8.jsonl.gz
"""
import gzip
import json
import statistics
import sys

from fgrlhf.eval.qa import best_rouge_lsum, sentence_lines
from fgrlhf.segment import MultiGranularitySegmenter

sentences = MultiGranularitySegmenter().sentences


def mbr_choice(lines: list[str]) -> int:
    """Index of the candidate (sentence lines) with the highest summed ROUGE-Lsum against the others."""
    agreement = [sum(best_rouge_lsum(c, [o]) for j, o in enumerate(lines) if j != i) for i, c in enumerate(lines)]
    return agreement.index(max(agreement))


opener = gzip.open if sys.argv[1].endswith(".gz") else open
with opener(sys.argv[1], "rt") as f:
    rows = [json.loads(line) for line in f]
scores: dict[str, list[float]] = {"greedy": [], "sample0": [], "oracle": [], "mbr4": [], "mbr4+g": [], "mbr8": [], "mbr8+g": []}
for r in rows:
    refs = [sentence_lines(t, sentences) for t in r["refs"]]
    greedy = sentence_lines(r["greedy"], sentences)
    samples = [sentence_lines(t, sentences) for t in r["samples"]]
    rouge = {c: best_rouge_lsum(c, refs) for c in [greedy, *samples]}  # each distinct candidate once
    scores["greedy"].append(rouge[greedy])
    scores["sample0"].append(rouge[samples[0]])
    scores["oracle"].append(max(rouge.values()))
    for n in (4, 8):
        if len(samples) < n:
            continue
        pool = samples[:n]
        scores[f"mbr{n}"].append(rouge[pool[mbr_choice(pool)]])
        scores[f"mbr{n}+g"].append(rouge[(pool + [greedy])[mbr_choice(pool + [greedy])]])
print(len(rows), {k: round(statistics.mean(v), 2) for k, v in scores.items() if v})
print("words greedy", round(statistics.mean(len(r["greedy"].split()) for r in rows), 1),
      "sample", round(statistics.mean(len(t.split()) for r in rows for t in r["samples"]), 1))

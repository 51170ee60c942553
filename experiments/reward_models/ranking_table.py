"""Markdown tables of `fgrlhf-rm` JSON summaries (one per line, with a "name"): ranking
models with their overall and length-matched pairwise accuracy beside both baselines;
segment models with accuracy, error F1 and calibration.

    python experiments/reward_models/ranking_table.py experiments/reward_models/ranking_results.jsonl
"""

from __future__ import annotations

import json
import sys


def fmt(x, key: str = "") -> str:
    if key == "train_seconds":
        return f"{x:.0f}" if isinstance(x, float) else str(x)
    return f"{x:.3f}" if isinstance(x, float) else str(x)


def tables(rows: list[dict]) -> str:
    ranking = [r for r in rows if "n_pairs" in r]
    segment = [r for r in rows if "n_segments" in r]
    out = []
    if ranking:
        out += ["| run | rm | overrides | pairwise | longer-wins | first-wins | matched pairs | matched pairwise "
                "| matched longer-wins | matched first-wins | train s |", "|" + "---|" * 11]
        for r in ranking:
            out.append("| " + " | ".join(fmt(r.get(k, ""), k) for k in (
                "name", "rm", "overrides", "pairwise_accuracy", "length_baseline", "first_listed_baseline",
                "n_matched_pairs", "matched_pairwise_accuracy", "matched_length_baseline",
                "matched_first_listed_baseline", "train_seconds")) + " |")
    if segment:
        out += ["", "| run | rm | accuracy | majority | error P | error R | error F1 | ECE | Brier | train s |",
                "|" + "---|" * 10]
        for r in segment:
            out.append("| " + " | ".join(fmt(r.get(k, ""), k) for k in (
                "name", "rm", "accuracy", "majority_baseline", "error_precision", "error_recall", "error_f1", "ece",
                "brier", "train_seconds")) + " |")
    return "\n".join(out)


if __name__ == "__main__":
    rows = [json.loads(line) for path in sys.argv[1:] for line in open(path) if line.strip()]
    print(tables([r for r in rows if not r.get("failed")]))

"""Mean ± standard deviation over seeds of each reward model's held-out metrics."""

from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict

KEYS = {
    "segment": ["accuracy", "majority_baseline", "error_precision", "error_recall", "error_f1", "n_segments"],
    "pairwise": ["pairwise_accuracy", "length_baseline", "n_pairs"],
}


def main(path: str) -> None:
    runs = defaultdict(list)
    with open(path) as f:
        for line in f:
            if line.strip():
                r = json.loads(line)
                runs[r["rm"]].append(r)
    for rm, rs in runs.items():
        kind = "segment" if "accuracy" in rs[0] else "pairwise"
        cells = []
        for k in KEYS[kind] + ["train_seconds"]:
            vals = [r[k] for r in rs]
            if len(vals) > 1:
                cells.append(f"{k} {statistics.mean(vals):.3f} ± {statistics.stdev(vals):.3f}")
            else:
                cells.append(f"{k} {vals[0]:.3f}")
        print(f"{rm} ({len(rs)} seeds): " + ", ".join(cells))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "experiments/reward_models/results.jsonl")

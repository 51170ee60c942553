"""Collect the detox runs: avg-max toxicity (reward's scorer and the second judge), toxic rate,
perplexity and distinct-n over training, as one figure and one table.

    python experiments/detox/summarize.py RUN_DIR [RUN_DIR ...] --out experiments/detox

Each RUN_DIR is an ``fgrlhf-train experiment=detox_cpu`` folder (``metrics.jsonl`` with
``eval/*`` every ``eval.every`` iterations, ``metrics.json`` with the initial evaluation).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from fgrlhf.eval.plots import plot_runs, records_by_updates

KEYS = ("avg_max_toxicity", "fasttext/avg_max_toxicity", "toxic_rate", "fasttext/toxic_rate", "perplexity",
        "dist_2")


def table(runs: dict[str, Path]) -> str:
    """The initial and the final evaluation of every run, one row each."""
    lines = ["| reward | when | " + " | ".join(KEYS) + " |", "|---" * (len(KEYS) + 2) + "|"]
    for label, run in runs.items():
        summary = json.loads((run / "metrics.json").read_text())
        for when, ev in (("initial", summary.get("eval_initial", {})), ("final", summary["eval"])):
            cells = [f"{ev[k]:.3f}" if isinstance(ev.get(k), (int, float)) else "–" for k in KEYS]
            lines.append(f"| {label} | {when} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def curve(run: Path, key: str = "eval/avg_max_toxicity") -> list[tuple[int, float]]:
    """(iterations done, value) of one eval key, starting from the initial evaluation."""
    return [(r["step"], r[key]) for r in records_by_updates(run / "metrics.jsonl") if key in r]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--name", default="", help="suffix of the output files (results_NAME.md, ...)")
    args = parser.parse_args()
    labels = {run.name.removeprefix("detox_").removeprefix("free_length_"): run for run in args.runs}
    suffix = f"_{args.name}" if args.name else ""
    args.out.mkdir(parents=True, exist_ok=True)
    plot_runs({label: run / "metrics.jsonl" for label, run in labels.items()},
              [f"eval/{k}" for k in KEYS], args.out / f"toxicity_vs_steps{suffix}.png",
              title="RTP eval prompts: holistic vs sentence-level toxicity reward")
    text = table(labels) + "\n\navg-max toxicity (reward's scorer) by iterations done:\n\n"
    for label, run in labels.items():
        text += f"- {label}: " + ", ".join(f"{s}: {v:.3f}" for s, v in curve(run)) + "\n"
        text += f"- {label} (fasttext judge): " + ", ".join(
            f"{s}: {v:.3f}" for s, v in curve(run, "eval/fasttext/avg_max_toxicity")) + "\n"
    (args.out / f"results{suffix}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()

"""The reward-hacking experiment's table and figure from its runs' metrics.

    python experiments/reward_hacking/summarize.py OUT_DIR EXPERIMENT_DIR
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from fgrlhf.eval.plots import read_metrics

ARMS = {"paper": "paper (sum per segment)", "shaped": "shaped (mean, ≥ 4 words)",
        "shaped_per_category": "shaped + per-category critic", "min_words": "sum, no bonus under 8 words",
        "min_words_6": "sum, no bonus under 6 words",
        "paper_per_category": "paper + per-category critic",
        "words": "words (each segment × its words / 8)",
        "words_per_category": "words + per-category critic",
        "shaped_r3": "shaped (mean, ≥ 4 words), R3 weight ×3",
        "words_r3": "words, R3 weight ×3", "words_kl": "words, KL coefficient ×2 (0.6)",
        "words_kl_s1": "words, KL ×2, seed 1", "words_kl_s2": "words, KL ×2, seed 2"}
EVAL = [("monitor/segments_per_answer/sentence", "sentences/answer"), ("monitor/words_per_segment/sentence",
        "words/sentence"), ("monitor/length_words", "words"), ("factuality_ratio", "factuality (R2)"),
        ("monitor/error_rate/factuality_seed1", "R2 twin error rate"), ("relevance_ratio", "relevance (R1)"),
        ("completeness", "completeness (R3)"), ("rougeLsum", "ROUGE-Lsum")]


def main(out: Path, here: Path) -> None:
    """Rows of the runs found under ``out``; arms measured earlier whose run folders are gone
    keep their rows from ``here/results.json``."""
    runs = {arm: out / arm for arm in ARMS if (out / arm / "metrics.json").exists()}
    kept = json.loads((here / "results.json").read_text()) if (here / "results.json").exists() else {}
    rows, table = {arm: kept[arm] for arm in ARMS if arm in kept and arm not in runs}, []
    for arm, run in runs.items():
        summary = json.loads((run / "metrics.json").read_text())
        records = read_metrics(run / "metrics.jsonl")
        rows[arm] = {"initial": summary.get("eval_initial", {}), "final": summary.get("eval", {}),
                     "alerts": {k: v for k, v in summary.get("alerts", {}).items() if v},
                     "train_segments": [r.get("monitor/segments_per_answer/sentence") for r in records],
                     "critic": {k: v for k, v in records[-1].items() if k.startswith("critic/")}}
    header = "| run | " + " | ".join(label for _, label in EVAL) + " | alerts (first step) |"
    table += [header, "|" + "---|" * (len(EVAL) + 2)]
    rows = {arm: rows[arm] for arm in ARMS if arm in rows}  # the table's order
    first = next(iter(rows.values()), None)
    if first:
        table.append("| SFT (initial policy) | " + " | ".join(_fmt(first["initial"].get(k)) for k, _ in EVAL) + " | |")
    for arm, r in rows.items():
        fired = ", ".join(f"{k} ({v[0]})" for k, v in r["alerts"].items()) or "none"
        table.append(f"| {ARMS[arm]} | " + " | ".join(_fmt(r["final"].get(k)) for k, _ in EVAL) + f" | {fired} |")
    (here / "results.md").write_text("\n".join(table) + "\n")
    (here / "results.json").write_text(json.dumps(rows, indent=1))
    print("\n".join(table))
    _figure(rows, here / "segments_per_answer.png")


def _fmt(x) -> str:
    return "–" if x is None else f"{x:.3f}" if abs(x) < 10 else f"{x:.1f}"


def _figure(rows: dict[str, dict], png: Path) -> None:
    """Rollout sentences per answer per iteration (``train_segments``: one entry per
    iteration, from iteration 0) with each arm's first ``sentence_inflation`` alert."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 4.2), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    for arm, r in rows.items():
        points = [(i, v) for i, v in enumerate(r["train_segments"]) if v is not None]
        (line,) = ax.plot([i for i, _ in points], [v for _, v in points], marker=".", label=ARMS[arm])
        fired = r["alerts"].get("sentence_inflation", [])
        if fired:
            ax.axvline(fired[0], color=line.get_color(), ls="--", lw=1)
            ax.annotate("alert", (fired[0], max(v for _, v in points)), color=line.get_color(), fontsize="small")
    ax.set_xlabel("PPO iteration")
    ax.set_ylabel("sentences per answer (rollouts)")
    ax.set_title("Segment inflation and the sentence_inflation alert (dashed: first firing)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    fig.savefig(png, dpi=120)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))

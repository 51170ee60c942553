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
SENTENCES = "monitor/segments_per_answer/sentence"
EVAL = [(SENTENCES, "sentences/answer"), ("monitor/words_per_segment/sentence",
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
                     "train_segments": [r.get(SENTENCES) for r in records],
                     # (iterations trained, greedy sentences per answer) at each held-out evaluation
                     "eval_segments": [[0, summary.get("eval_initial", {}).get(SENTENCES)]] +
                                      [[i + 1, r[f"eval/{SENTENCES}"]] for i, r in enumerate(records)
                                       if f"eval/{SENTENCES}" in r],
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
    """Left: the rollouts' sentences per answer per iteration (``train_segments``) with each
    arm's first ``sentence_inflation`` alert. Right: the held-out greedy answers' sentences
    per answer at each evaluation (``eval_segments``; arms kept from an earlier results.json
    without them: before and after training), with the ±25% band around the SFT policy's."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 4.6), layout="constrained")
    FigureCanvasAgg(fig)
    rollouts, held_out = fig.subplots(1, 2)
    colors = [f"C{i}" if i < 10 else f"C{i - 10}" for i in range(len(rows))]
    styles = ["-" if i < 10 else "--" for i in range(len(rows))]
    for (arm, r), color, style in zip(rows.items(), colors, styles):
        points = [(i, v) for i, v in enumerate(r["train_segments"]) if v is not None]
        rollouts.plot([i for i, _ in points], [v for _, v in points], marker=".", color=color, ls=style,
                      label=ARMS[arm])
        fired = r["alerts"].get("sentence_inflation", [])
        if fired:
            rollouts.axvline(fired[0], color=color, ls=":", lw=1)
            rollouts.annotate("alert", (fired[0], max(v for _, v in points)), color=color, fontsize="small")
        evals = r.get("eval_segments") or [[0, r["initial"].get(SENTENCES)], [len(r["train_segments"]),
                                                                              r["final"].get(SENTENCES)]]
        held_out.plot([i for i, _ in evals], [v for _, v in evals], marker="o", color=color, ls=style)
    sft = next(iter(rows.values()))["initial"].get(SENTENCES) if rows else None
    if sft:
        held_out.axhspan(0.75 * sft, 1.25 * sft, color="0.85", zorder=0, label="SFT ±25%")
        held_out.legend(fontsize="small", loc="upper left")
    rollouts.set_xlabel("PPO iteration")
    rollouts.set_ylabel("sentences per answer (rollouts)")
    rollouts.set_title("Rollouts, and the sentence_inflation alert (dotted)")
    held_out.set_xlabel("iterations trained")
    held_out.set_ylabel("sentences per answer (greedy, 30 dev questions)")
    held_out.set_title("Held-out greedy answers")
    for ax in (rollouts, held_out):
        ax.grid(alpha=0.3)
    fig.legend(*rollouts.get_legend_handles_labels(), fontsize="small", loc="outside right center")
    fig.savefig(png, dpi=110)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))

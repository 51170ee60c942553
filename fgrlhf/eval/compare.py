"""Compare the evaluations of several policies: one table and one bar figure.

    python -m fgrlhf.eval.compare SFT=outputs/eval/sft "FG RLHF"=outputs/eval/fg \\
        --reference experiments/qa_feedback_main/paper.json --out experiments/qa_feedback_main

Each run is ``LABEL=PATH`` where PATH is an ``fgrlhf-eval`` folder (its ``summary.json``)
or a summary file. Beside the metrics, the table shows sentences per answer, the repeated
3-gram rate and each monitor-only judge's error rate where the summaries have them, and the lead baseline (the
passages' first 100 words) as a reference row where every summary reports the same one.
``--reference`` adds rows that were not measured here (e.g. the paper's
dev-set rows: a JSON object ``{label: {metric: value}}``) to the table, marked as such, and
leaves them out of the figure. Writes ``comparison.md``, ``comparison.json`` and
``comparison.png``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from fgrlhf.errors import report_user_errors
from fgrlhf.eval.plots import is_number, plot_comparison
from fgrlhf.eval.qa import EVAL_METRICS

TABLE_COUNTS = ("relevance_segments", "factuality_segments", "empty_answers")
MONITOR_COLUMNS = ("monitor/segments_per_answer/sentence", "monitor/repeated_3gram_rate")
LEAD_LABEL = "lead baseline: the passages' first 100 words"


def read_summary(path: str | Path) -> dict[str, Any]:
    """The summary of an ``fgrlhf-eval`` run: ``PATH/summary.json`` for a folder, else the file."""
    from fgrlhf.data.files import read_json_object

    return read_json_object(Path(path) / "summary.json" if Path(path).is_dir() else path,
                            f"no evaluation summary (run fgrlhf-eval output={path})")


def comparison_table(runs: Mapping[str, Mapping[str, Any]], metrics: Sequence[str],
                     reference: Mapping[str, Mapping[str, Any]] | None = None,
                     baseline: str | None = None) -> str:
    """A markdown table, one row per run (then per reference row, labelled "(reference)"),
    one column per metric; a metric a row lacks is "–". With ``baseline`` (a run's label),
    every other measured row also shows its change from that run, in parentheses."""
    rows = [*runs.values(), *(reference or {}).values()]
    # One precision per column: two decimals where the column reaches 10 (ROUGE, lengths).
    wide = {k: any(is_number(r.get(k)) and abs(r[k]) >= 10 for r in rows) for k in metrics}

    def cell(row: Mapping[str, Any], k: str, base: Mapping[str, Any] | None) -> str:
        v = row.get(k)
        if not is_number(v):
            return "–"
        fmt = "{:d}" if isinstance(v, int) else "{:.2f}" if wide[k] else "{:.3f}"
        text = fmt.format(v)
        if base is not None and base is not row and is_number(base.get(k)):
            diff = v - base[k]
            text += " (" + ("+" if diff >= 0 else "") + (fmt if type(diff) is type(v) else "{:.3f}").format(diff) + ")"
        return text

    base = runs[baseline] if baseline is not None else None
    lines = ["| policy | " + " | ".join(metrics) + " |", "|---" * (len(metrics) + 1) + "|"]
    for label, row in runs.items():
        lines.append(f"| {label} | " + " | ".join(cell(row, k, base) for k in metrics) + " |")
    for label, row in (reference or {}).items():
        lines.append(f"| {label} (reference) | " + " | ".join(cell(row, k, None) for k in metrics) + " |")
    return "\n".join(lines)


def monitor_columns(summaries: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The reward-hacking columns some summary has: sentences per answer, the share of 3-grams
    that repeat one earlier in the same answer, and each monitor-only
    judge's error rate (share of its segments it scores below zero), left out where it is 0 in
    every summary (a judge that never scores below zero, such as ROUGE, has no errors to show)."""
    keys = {k for s in summaries.values() for k, v in s.items() if is_number(v)}
    judges = sorted(k for k in keys if k.startswith("monitor/error_rate/")
                    and any(is_number(s.get(k)) and s[k] != 0 for s in summaries.values()))
    return [k for k in MONITOR_COLUMNS if k in keys] + judges


def lead_row(summaries: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """The lead baseline (each question's passages, first 100 words) as a reference row, when
    every summary reports it for the same questions (the same value)."""
    leads = {s.get("lead_rougeLsum") for s in summaries.values()}
    if len(leads) != 1 or not is_number(lead := next(iter(leads))):
        return {}
    return {LEAD_LABEL: {"rougeLsum": lead, "length_words": 100.0}}


def compare(runs: Mapping[str, str | Path], out_dir: str | Path, reference: str | Path | None = None,
            baseline: str | None = None) -> dict[str, Any]:
    """Read each run's summary, write ``comparison.md|json|png`` to ``out_dir``; returns the
    table and the summaries."""
    if baseline is not None and baseline not in runs:
        raise KeyError(f"baseline {baseline!r} is not one of the runs {list(runs)}")
    summaries = {label: read_summary(path) for label, path in runs.items()}
    from fgrlhf.data.files import read_json_object

    refs = read_json_object(reference) if reference else {}
    metrics = [k for k in EVAL_METRICS if any(is_number(s.get(k)) for s in summaries.values())]
    if not metrics:
        raise ValueError(f"no QA-Feedback metric ({', '.join(EVAL_METRICS)}) in any of {list(runs.values())}")
    # How many segments the judges saw and how many answers were empty: a ratio means little
    # without them (a policy can raise it by splitting answers into more, shorter segments).
    counts = [k for k in TABLE_COUNTS if any(is_number(s.get(k)) for s in summaries.values())]
    table = comparison_table(summaries, metrics + monitor_columns(summaries) + counts,
                             {**lead_row(summaries), **refs}, baseline)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "comparison.md").write_text(table + "\n")
    (out / "comparison.json").write_text(json.dumps(
        {"runs": {k: str(v) for k, v in runs.items()}, "summaries": summaries, "reference": refs}, indent=1))
    shared = [k for k in metrics if all(is_number(s.get(k)) for s in summaries.values())]
    if len(summaries) >= 2 and shared:
        plot_comparison(summaries, out / "comparison.png", shared)
    return {"table": table, "summaries": summaries, "output": str(out)}


def parse_run(text: str) -> tuple[str, str]:
    label, sep, path = text.partition("=")
    if not sep or not label or not path:
        raise argparse.ArgumentTypeError(f"expected LABEL=PATH, got {text!r}")
    return label, path


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=parse_run, metavar="LABEL=PATH")
    parser.add_argument("--out", required=True)
    parser.add_argument("--reference", default=None, help="JSON {label: {metric: value}} of rows not measured here")
    parser.add_argument("--baseline", default=None, help="label of the run the others are compared to")
    args = parser.parse_args(argv)
    result = report_user_errors("fgrlhf.eval.compare", compare, dict(args.runs), args.out, args.reference,
                                args.baseline)
    print(result["table"])
    print(f"\nwritten to {result['output']}: comparison.md, comparison.json, comparison.png")


if __name__ == "__main__":
    main()

"""Evaluation: the QA-Feedback metrics of Wu et al. (2023) on any policy, and run figures."""

from fgrlhf.eval.html import items_from_eval_records, items_from_rollouts, rollout_report
from fgrlhf.eval.plots import plot_before_after, plot_learning_curves, read_metrics
from fgrlhf.eval.qa import (
    EVAL_METRICS,
    best_rouge_lsum,
    error_free_ratio,
    evaluate_qa,
    segment_verdicts,
    sentence_lines,
    sequence_scores,
    summarize,
    write_jsonl,
)

__all__ = [
    "EVAL_METRICS",
    "best_rouge_lsum",
    "error_free_ratio",
    "evaluate_qa",
    "items_from_eval_records",
    "items_from_rollouts",
    "plot_before_after",
    "plot_learning_curves",
    "read_metrics",
    "rollout_report",
    "segment_verdicts",
    "sentence_lines",
    "sequence_scores",
    "summarize",
    "write_jsonl",
]

"""Figures of a run: PPO learning curves from ``metrics.jsonl``, and evaluation before/after.

Figures are drawn on matplotlib's Agg canvas directly (no pyplot): nothing global changes,
no display is needed, and nothing stays registered after the PNG is written.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from fgrlhf.eval.qa import EVAL_METRICS

# The keys PPOTrainer.step logs that the curves show, besides one panel per reward category.
TOTAL_KEYS = ("reward/total", "reward/penalised")
CURVE_KEYS = ("kl/sequence", "length/tokens")


def is_number(x: Any) -> bool:
    """A finite int or float that is not a bool."""
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """The records of a ``metrics.jsonl`` (one JSON object with a ``step`` per line), by step.

    Blank lines are skipped. A step logged twice (a run resumed from a checkpoint older than
    its last logged iteration repeats those iterations) keeps its last record, the one the
    resumed run continued from. A malformed line raises ``ValueError`` naming file and line.
    """
    path = Path(path)
    by_step: dict[int, dict[str, Any]] = {}
    with open(path) as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}:{lineno}: not valid JSON ({err.msg}, column {err.colno})") from err
            if not isinstance(record, dict):
                raise ValueError(f"{path}:{lineno}: expected a JSON object, got {type(record).__name__}")
            step = record.get("step")
            if not isinstance(step, int) or isinstance(step, bool):
                raise ValueError(f"{path}:{lineno}: no integer 'step' field")
            by_step[step] = record
    return [by_step[s] for s in sorted(by_step)]


def curve_panels(records: Sequence[Mapping[str, Any]]) -> list[tuple[str, list[str]]]:
    """``(title, keys)`` of each learning-curve panel for which some record has a number.

    One panel per reward category (``reward/<category>``: as PPOTrainer logs it, that
    category's weighted, normalised reward summed over a response, batch mean), one for
    ``reward/total`` with ``reward/penalised`` (after the KL penalty), one each for
    ``kl/sequence`` and ``length/tokens``.
    """
    present: list[str] = []  # first-seen order, so categories keep the trainer's order
    for r in records:
        for k, v in r.items():
            if k not in present and is_number(v):
                present.append(k)
    categories = [k for k in present if k.startswith("reward/") and k not in TOTAL_KEYS]
    panels = [(k, [k]) for k in categories]
    totals = [k for k in TOTAL_KEYS if k in present]
    if totals:
        panels.append(("reward/total", totals))
    panels += [(k, [k]) for k in CURVE_KEYS if k in present]
    return panels


def _grid(n: int, max_cols: int = 3) -> tuple[int, int]:
    cols = min(n, max_cols)
    return math.ceil(n / cols), cols


def _save(fig, out_png: str | Path) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    fig.savefig(out, format="png", dpi=120)
    return out


def plot_learning_curves(metrics_jsonl_path: str | Path, out_png: str | Path) -> Path:
    """One PNG with a panel per reward category, total/penalised reward, ``kl/sequence`` and
    ``length/tokens`` against the PPO step; returns its path."""
    from matplotlib.figure import Figure

    records = read_metrics(metrics_jsonl_path)
    panels = curve_panels(records)
    if not panels:
        raise ValueError(f"{metrics_jsonl_path}: no reward, KL or length metrics to plot "
                         f"({len(records)} records)")
    rows, cols = _grid(len(panels))
    fig = Figure(figsize=(4.2 * cols, 3.0 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, (title, keys) in zip(axes, panels):
        for k in keys:
            points = [(r["step"], r[k]) for r in records if is_number(r.get(k))]
            ax.plot([p[0] for p in points], [p[1] for p in points], marker="." if len(points) < 50 else None,
                    label=k)
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        if len(keys) > 1:
            ax.legend(fontsize="small")
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    fig.suptitle(f"PPO: {Path(metrics_jsonl_path).parent.name or metrics_jsonl_path}")
    return _save(fig, out_png)


def plot_before_after(before: Mapping[str, Any], after: Mapping[str, Any], out_png: str | Path,
                      metrics: Sequence[str] | None = None, labels: tuple[str, str] = ("before", "after")
                      ) -> Path:
    """Bars of evaluation metrics (``evaluate_qa`` summaries) before and after training.

    One panel per metric, because the scales differ (ratios in [0, 1], ROUGE ×100, lengths in
    words). ``metrics`` defaults to those of ``EVAL_METRICS`` that both summaries have as
    numbers, or failing that every numeric key they share. Returns the PNG's path.
    """
    from matplotlib.figure import Figure

    if metrics is None:
        shared = [k for k in before if is_number(before[k]) and is_number(after.get(k))]
        metrics = [k for k in EVAL_METRICS if k in shared] or shared
    else:
        missing = [k for k in metrics if not (is_number(before.get(k)) and is_number(after.get(k)))]
        if missing:
            raise KeyError(f"metrics without a number in both summaries: {missing}")
    if not metrics:
        raise ValueError("plot_before_after: the two summaries share no numeric metric")
    rows, cols = _grid(len(metrics), max_cols=4)
    fig = Figure(figsize=(3.0 * cols, 3.0 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, k in zip(axes, metrics):
        values = [float(before[k]), float(after[k])]
        bars = ax.bar(list(labels), values, color=["#9e9e9e", "#1f77b4"])
        ax.bar_label(bars, labels=[f"{v:.3g}" for v in values], fontsize="small")
        ax.set_title(k)
        ax.margins(y=0.15)
    for ax in axes[len(metrics):]:
        ax.set_visible(False)
    return _save(fig, out_png)

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
# Reward-hacking monitors (fgrlhf.eval.monitors): one panel per family, a line per member.
MONITOR_PANELS = (("segments per answer", "monitor/segments_per_answer/"),
                  ("error rate", "monitor/error_rate/"),
                  ("monitor-only rewards", "monitor/reward/"),
                  ("empty answers", "monitor/empty_rate"))


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
    for title, prefix in MONITOR_PANELS:
        keys = [k for k in present if k.startswith(prefix)]
        if keys:
            panels.append((title, keys))
    return panels


def alert_steps(records: Sequence[Mapping[str, Any]]) -> dict[str, list[int]]:
    """The steps at which each alert rule fired (``alert/<name>`` = 1), by rule name."""
    fired: dict[str, list[int]] = {}
    for r in records:
        for k, v in r.items():
            if k.startswith("alert/") and v:
                fired.setdefault(k[len("alert/"):], []).append(r["step"])
    return fired


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
    fired = alert_steps(records)
    first_alert = min((s for steps in fired.values() for s in steps), default=None)
    for ax, (title, keys) in zip(axes, panels):
        for k in keys:
            points = [(r["step"], r[k]) for r in records if is_number(r.get(k))]
            ax.plot([p[0] for p in points], [p[1] for p in points], marker="." if len(points) < 50 else None,
                    label=k.rsplit("/", 1)[-1] if len(keys) > 1 else k)
        # Every iteration at which an alert rule fired: a red band on every panel.
        for step in sorted({s for steps in fired.values() for s in steps}):
            ax.axvspan(step - 0.5, step + 0.5, color="tab:red", alpha=0.15, lw=0,
                       label="alert" if step == first_alert else None)
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        if len(keys) > 1 or fired:
            ax.legend(fontsize="small")
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    name = Path(metrics_jsonl_path).parent.name or metrics_jsonl_path
    banner = f" — ALERT: {', '.join(f'{n} (first at step {v[0]})' for n, v in sorted(fired.items()))}" if fired else ""
    fig.suptitle(f"PPO: {name}{banner}", color="tab:red" if fired else "black")
    return _save(fig, out_png)


def plot_before_after(before: Mapping[str, Any], after: Mapping[str, Any], out_png: str | Path,
                      metrics: Sequence[str] | None = None, labels: tuple[str, str] = ("before", "after")
                      ) -> Path:
    """Bars of evaluation metrics (``evaluate_qa`` summaries) before and after training."""
    return plot_comparison({labels[0]: before, labels[1]: after}, out_png, metrics)


def plot_comparison(summaries: Mapping[str, Mapping[str, Any]], out_png: str | Path,
                    metrics: Sequence[str] | None = None) -> Path:
    """Bars of evaluation metrics, one bar per labelled summary (e.g. SFT, holistic RLHF,
    fine-grained RLHF), in the order given.

    One panel per metric, because the scales differ (ratios in [0, 1], ROUGE ×100, lengths in
    words). ``metrics`` defaults to those of ``EVAL_METRICS`` that every summary has as a
    number, or failing that every numeric key they share. Returns the PNG's path.
    """
    from matplotlib.figure import Figure

    if len(summaries) < 2:
        raise ValueError(f"plot_comparison: needs at least two summaries, got {list(summaries)}")
    values = list(summaries.values())
    if metrics is None:
        shared = [k for k in values[0] if all(is_number(v.get(k)) for v in values)]
        metrics = [k for k in EVAL_METRICS if k in shared] or shared
    else:
        missing = [k for k in metrics if not all(is_number(v.get(k)) for v in values)]
        if missing:
            raise KeyError(f"metrics without a number in every summary: {missing}")
    if not metrics:
        raise ValueError("plot_comparison: the summaries share no numeric metric")
    rows, cols = _grid(len(metrics), max_cols=4)
    width = max(3.0, 0.75 * len(summaries))
    fig = Figure(figsize=(width * cols, 3.2 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    colors = ["#9e9e9e", "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"]
    for ax, k in zip(axes, metrics):
        heights = [float(v[k]) for v in values]
        bars = ax.bar(list(summaries), heights, color=[colors[i % len(colors)] for i in range(len(heights))])
        ax.bar_label(bars, labels=[f"{h:.3g}" for h in heights], fontsize="small")
        ax.set_title(k)
        ax.margins(y=0.15)
        if len(summaries) * max(len(label) for label in summaries) > 24:  # labels would collide
            ax.set_xticks(range(len(summaries)), list(summaries), rotation=25, ha="right", fontsize="small")
    for ax in axes[len(metrics):]:
        ax.set_visible(False)
    return _save(fig, out_png)


def records_by_updates(metrics_jsonl_path: str | Path) -> list[dict[str, Any]]:
    """A run's ``metrics.jsonl`` records with ``step`` counting the updates done (a record of
    step ``s`` was logged after ``s + 1`` updates), preceded at step 0 by the initial policy's
    evaluation (``eval/*`` keys) when the run's ``metrics.json`` holds one (``eval_initial``)."""
    records = [{**r, "step": r["step"] + 1} for r in read_metrics(metrics_jsonl_path)]
    summary = Path(metrics_jsonl_path).with_name("metrics.json")
    initial = json.loads(summary.read_text()).get("eval_initial") if summary.exists() else None
    if initial:
        records.insert(0, {"step": 0, **{f"eval/{k}": v for k, v in initial.items()}})
    return records


def plot_runs(metrics_files: Mapping[str, str | Path], keys: Sequence[str], out_png: str | Path,
              title: str | None = None) -> Path:
    """One panel per key of ``metrics.jsonl`` (e.g. ``eval/avg_max_toxicity``), one line per
    labelled run, over iterations done (``records_by_updates``): how several runs compare as
    they train. A key that a run never logged is left out of that run's panel; a key no run logged is an
    error."""
    from matplotlib.figure import Figure

    runs = {label: records_by_updates(path) for label, path in metrics_files.items()}
    absent = [k for k in keys if not any(is_number(r.get(k)) for recs in runs.values() for r in recs)]
    if absent:
        raise KeyError(f"no run logged {absent} ({', '.join(str(p) for p in metrics_files.values())})")
    rows, cols = _grid(len(keys), max_cols=3)
    fig = Figure(figsize=(4.2 * cols, 3.2 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, k in zip(axes, keys):
        for label, recs in runs.items():
            points = [(r["step"], float(r[k])) for r in recs if is_number(r.get(k))]
            if points:
                ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", markersize=3, label=label)
        ax.set_title(k)
        ax.set_xlabel("PPO iterations done")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    for ax in axes[len(keys):]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title)
    return _save(fig, out_png)

"""Collect a Hydra multirun of ``fgrlhf-train`` into one table and a trade-off plot.

    python -m fgrlhf.eval.sweep multirun/train/2026-11-23_20-00-00 [--out DIR]

Each run folder holds ``metrics.json`` (weights, final training metrics, and the last
held-out evaluation when ``eval.every`` was set). The table has one row per run; the plot
puts relevance against completeness with length as the marker size, and marks the runs on
the Pareto front (no other run is at least as good on both and better on one).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def pareto_front(points: Sequence[tuple[float, float]]) -> list[bool]:
    """For each (x, y), both to maximise: ``True`` when no other point dominates it (is ≥ on
    both coordinates and > on one). Equal points do not dominate each other."""
    out = []
    for i, (x, y) in enumerate(points):
        dominated = any(
            j != i and xj >= x and yj >= y and (xj > x or yj > y) for j, (xj, yj) in enumerate(points)
        )
        out.append(not dominated)
    return out


def collect_runs(sweep_dir: str | Path) -> list[dict[str, Any]]:
    """One row per ``*/metrics.json`` under ``sweep_dir``: the run's folder name, its reward
    weights, final training metrics and last evaluation. A malformed file is an error that
    names it."""
    rows = []
    for path in sorted(Path(sweep_dir).glob("*/metrics.json")):
        try:
            summary = json.loads(path.read_text())
            row = {"run": path.parent.name, **{f"weight/{k}": float(v) for k, v in summary["weights"].items()},
                   **{k: v for k, v in summary["final"].items() if k.startswith(("reward/", "kl/", "length/"))},
                   **{f"eval/{k}": v for k, v in summary.get("eval", {}).items()}}
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as err:
            raise ValueError(f"{path}: not an fgrlhf-train metrics.json ({err!r})") from err
        rows.append(row)
    if not rows:
        raise FileNotFoundError(f"no */metrics.json under {sweep_dir}: is it a multirun folder of fgrlhf-train?")
    return rows


def tradeoff_axes(rows: Sequence[dict[str, Any]]) -> tuple[str, str, str]:
    """(x, y, size) keys: held-out relevance ratio, completeness and length when the runs were
    evaluated, else the training rewards of relevance and completeness and tokens."""
    if all("eval/relevance_ratio" in r and "eval/completeness" in r for r in rows):
        return "eval/relevance_ratio", "eval/completeness", "eval/length_words"
    return "reward/relevance", "reward/completeness", "length/tokens"


# Columns of the table besides the weights that vary: held-out metrics, then training's.
TABLE_KEYS = ("eval/relevance_ratio", "eval/factuality_ratio", "eval/completeness", "eval/rougeLsum",
              "eval/length_words", "eval/relevance_segments", "eval/factuality_segments", "eval/empty_answers",
              "kl/sequence", "length/tokens")


def varying_weights(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The ``weight/*`` keys whose value differs between runs (all of them for one run)."""
    keys = sorted({k for r in rows for k in r if k.startswith("weight/")})
    varying = [k for k in keys if len({r.get(k) for r in rows}) > 1]
    return varying or keys


def run_label(row: dict[str, Any], weights: Sequence[str]) -> str:
    """``relevance=0.5, factuality=1`` from the swept weights, not Hydra's long folder name."""
    return ", ".join(f"{k[len('weight/'):]}={row[k]:g}" for k in weights if k in row) or row["run"]


def markdown_table(rows: Sequence[dict[str, Any]], front: Sequence[bool]) -> str:
    """One row per run: the swept weights, the held-out metrics, the training rewards per
    category, KL and length, and whether the run is on the Pareto front. Every column of
    every run is in ``summary.json``."""
    weights = varying_weights(rows)
    present = {k for r in rows for k in r}
    keys = [*weights, *(k for k in TABLE_KEYS if k in present),
            *sorted(k for k in present if k.startswith("reward/"))]

    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.0f}" if v.is_integer() and abs(v) >= 10 else f"{v:.3f}"
        return str(v) if v is not None else ""

    lines = ["| run | " + " | ".join(keys) + " | Pareto |", "|---" * (len(keys) + 2) + "|"]
    for r, f in zip(rows, front):
        lines.append(f"| {run_label(r, weights)} | " + " | ".join(cell(r.get(k)) for k in keys)
                     + f" | {'●' if f else ''} |")
    return "\n".join(lines)


def plot_tradeoff(rows: Sequence[dict[str, Any]], front: Sequence[bool], axes: tuple[str, str, str],
                  out_png: str | Path) -> Path:
    from matplotlib.figure import Figure

    from fgrlhf.eval.plots import _save

    x, y, size = axes
    xs, ys = [r[x] for r in rows], [r[y] for r in rows]
    sizes = [float(r.get(size, 0.0)) for r in rows]
    scale = 300.0 / max(max(sizes), 1e-9)
    fig = Figure(figsize=(6.4, 4.8), layout="constrained")
    ax = fig.subplots()
    ax.scatter(xs, ys, s=[20 + s * scale for s in sizes], alpha=0.5, label=f"run (size: {size})")
    on = sorted((a, b) for a, b, f in zip(xs, ys, front) if f)
    ax.plot([p[0] for p in on], [p[1] for p in on], "r-o", label="Pareto front")
    weights = varying_weights(rows)
    for r, a, b in zip(rows, xs, ys):
        ax.annotate(run_label(r, weights), (a, b), fontsize=7, xytext=(4, 4), textcoords="offset points")
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return _save(fig, out_png)


def summarize_sweep(sweep_dir: str | Path, out_dir: str | Path | None = None,
                    axes: tuple[str, str, str] | None = None) -> dict[str, Any]:
    """Write ``summary.md`` (the table), ``summary.json`` and ``tradeoff.png`` to ``out_dir``
    (default: the sweep folder). ``axes``: (x, y, size) keys of the rows, both x and y to
    maximise; default ``tradeoff_axes``."""
    rows = collect_runs(sweep_dir)
    axes = tuple(axes) if axes else tradeoff_axes(rows)
    missing = [r["run"] for r in rows if not all(isinstance(r.get(k), (int, float)) for k in axes[:2])]
    if missing:
        raise ValueError(f"runs without {axes[0]} or {axes[1]}: {missing} (a category not in their reward?)")
    front = pareto_front([(r[axes[0]], r[axes[1]]) for r in rows])
    out = Path(out_dir) if out_dir else Path(sweep_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.md").write_text(markdown_table(rows, front) + "\n")
    (out / "summary.json").write_text(json.dumps({"axes": axes, "runs": rows, "pareto": front}, indent=1))
    plot_tradeoff(rows, front, axes, out / "tradeoff.png")
    return {"axes": axes, "runs": rows, "pareto": front, "output": str(out)}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir")
    parser.add_argument("--out", default=None)
    parser.add_argument("--axes", nargs=3, metavar=("X", "Y", "SIZE"), default=None,
                        help="row keys to plot (x and y maximised), e.g. eval/relevance_ratio "
                             "eval/completeness eval/length_words")
    args = parser.parse_args(argv)
    result = summarize_sweep(args.sweep_dir, args.out, args.axes)
    print(markdown_table(result["runs"], result["pareto"]))
    print(f"\nwritten to {result['output']}: summary.md, summary.json, tradeoff.png")


if __name__ == "__main__":
    main()

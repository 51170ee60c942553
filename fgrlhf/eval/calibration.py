"""Calibration of a segment reward model's error probabilities (R1, R2).

PPO with ``mode: expected`` consumes P(error) itself, not only the label it rounds to, so
what matters is whether "0.7" means "wrong 70 % of the time". The probabilities are cut
into equal-width bins of P(error); a bin's *confidence* is its mean P(error), its
*frequency* the share of its segments labelled error. Expected calibration error (ECE) is
the count-weighted mean gap ``Σ_b (n_b / N) · |confidence_b − frequency_b|`` (Guo et al.
2017, computed on the error class: the probability the reward reads). A perfectly
calibrated model has ECE 0 and its reliability diagram on the diagonal.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from fgrlhf.data.rm_examples import IGNORE


@dataclass(frozen=True)
class ReliabilityBin:
    """One bin ``[lo, hi)`` of P(error) (the last bin includes 1.0)."""

    lo: float
    hi: float
    count: int
    confidence: float  # mean P(error) in the bin (0 when empty)
    frequency: float  # share labelled error (0 when empty)


def scored_pairs(probs: Sequence[float], labels: Sequence[int]) -> list[tuple[float, int]]:
    """``(P(error), label)`` of every labelled segment (``IGNORE`` ones dropped). Probabilities
    outside [0, 1], labels other than 0/1/IGNORE, or lists of different length are a
    ``ValueError``."""
    if len(probs) != len(labels):
        raise ValueError(f"calibration: {len(probs)} probabilities but {len(labels)} labels")
    out = []
    for i, (p, y) in enumerate(zip(probs, labels)):
        if y == IGNORE:
            continue
        if y not in (0, 1):
            raise ValueError(f"calibration: label {i} is {y!r}; expected 0, 1 or {IGNORE} (ignored)")
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"calibration: probability {i} is {p!r}, outside [0, 1]")
        out.append((float(p), int(y)))
    return out


def reliability_bins(probs: Sequence[float], labels: Sequence[int], n_bins: int = 10) -> list[ReliabilityBin]:
    """The ``n_bins`` equal-width bins of P(error) over [0, 1], empty ones included."""
    if n_bins < 1:
        raise ValueError(f"calibration: n_bins={n_bins}; needs at least 1")
    members: list[list[tuple[float, int]]] = [[] for _ in range(n_bins)]
    for p, y in scored_pairs(probs, labels):
        members[min(int(p * n_bins), n_bins - 1)].append((p, y))  # p = 1.0 joins the last bin
    bins = []
    for b, m in enumerate(members):
        n = len(m)
        bins.append(ReliabilityBin(b / n_bins, (b + 1) / n_bins, n, sum(p for p, _ in m) / n if n else 0.0,
                                   sum(y for _, y in m) / n if n else 0.0))
    return bins


def expected_calibration_error(probs: Sequence[float], labels: Sequence[int], n_bins: int = 10) -> float:
    """``Σ_b (n_b / N) · |confidence_b − frequency_b|`` over ``reliability_bins``; 0.0 when
    no segment is labelled."""
    bins = reliability_bins(probs, labels, n_bins)
    total = sum(b.count for b in bins)
    if total == 0:
        return 0.0
    return sum(b.count / total * abs(b.confidence - b.frequency) for b in bins)


def brier_score(probs: Sequence[float], labels: Sequence[int]) -> float:
    """Mean squared difference between P(error) and the 0/1 label; 0.0 when none is labelled."""
    pairs = scored_pairs(probs, labels)
    return sum((p - y) ** 2 for p, y in pairs) / len(pairs) if pairs else 0.0


def calibration_metrics(probs: Sequence[float], labels: Sequence[int], n_bins: int = 10) -> dict:
    """``ece``, ``brier``, and the bins as lists (``reliability``), for a JSON summary."""
    bins = reliability_bins(probs, labels, n_bins)
    return {"ece": expected_calibration_error(probs, labels, n_bins), "brier": brier_score(probs, labels),
            "reliability": {"lo": [b.lo for b in bins], "count": [b.count for b in bins],
                            "confidence": [b.confidence for b in bins], "frequency": [b.frequency for b in bins]}}


def error_logit(p: float, eps: float = 1e-7) -> float:
    """``log(p / (1 − p))``: the classifier's logit margin ``z_error − z_no-error`` behind P(error)."""
    p = min(max(p, eps), 1.0 - eps)
    return math.log(p) - math.log1p(-p)


def with_temperature(probs: Sequence[float], temperature: float) -> list[float]:
    """``σ(logit(p) / temperature)``: the same classifier's P(error) with its logits divided by
    ``temperature`` (> 1 softens, < 1 sharpens; which side of 0.5 never changes)."""
    if temperature <= 0:
        raise ValueError(f"calibration: temperature {temperature!r} must be > 0")
    return [1.0 / (1.0 + math.exp(-error_logit(p) / temperature)) for p in probs]


def fit_temperature(probs: Sequence[float], labels: Sequence[int], lo: float = 0.05, hi: float = 20.0,
                    steps: int = 80) -> float:
    """The temperature ``T`` in ``[lo, hi]`` whose ``with_temperature(probs, T)`` has the lowest
    negative log-likelihood of ``labels`` (temperature scaling, Guo et al. 2017): one number,
    fitted on held-out segments, that corrects over- or under-confidence without changing
    any label. The NLL is convex in ``1/T``, so a golden-section search on ``log T`` finds it.
    1.0 when no segment is labelled."""
    pairs = scored_pairs(probs, labels)
    if not pairs:
        return 1.0
    zs = [(error_logit(p), y) for p, y in pairs]

    def nll(log_t: float) -> float:
        t = math.exp(log_t)
        # -log σ(±z/T), written to stay finite for large |z| / T
        return sum(math.log1p(math.exp(-abs(z / t))) + max(0.0, -(z / t if y else -z / t)) for z, y in zs)

    a, b = math.log(lo), math.log(hi)
    g = (math.sqrt(5) - 1) / 2
    c, d = b - g * (b - a), a + g * (b - a)
    fc, fd = nll(c), nll(d)
    for _ in range(steps):
        if fc <= fd:
            b, d, fd = d, c, fc
            c = b - g * (b - a)
            fc = nll(c)
        else:
            a, c, fc = c, d, fd
            d = a + g * (b - a)
            fd = nll(d)
    return math.exp((a + b) / 2)


def plot_reliability(curves: Mapping[str, Sequence[ReliabilityBin]], out_png: str | Path,
                     title: str = "reliability of P(error)") -> Path:
    """A reliability diagram: per model, observed error frequency against mean P(error) in
    each non-empty bin (point area ∝ count), with the diagonal of perfect calibration.
    ``curves``: label (e.g. "R1 relevance, ECE 0.08") → its bins. Returns the PNG's path."""
    from matplotlib.figure import Figure

    from fgrlhf.eval.plots import _save

    if not curves:
        raise ValueError("plot_reliability: no model to draw")
    fig = Figure(figsize=(4.8, 4.5), layout="constrained")
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], color="grey", lw=1, ls="--", label="perfect calibration")
    for label, bins in curves.items():
        full = [b for b in bins if b.count]
        total = sum(b.count for b in full) or 1
        line = ax.plot([b.confidence for b in full], [b.frequency for b in full], marker="o", ms=3, label=label)
        ax.scatter([b.confidence for b in full], [b.frequency for b in full], s=[600 * b.count / total for b in full],
                   color=line[0].get_color(), alpha=0.3)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("mean predicted P(error) in bin")
    ax.set_ylabel("observed error frequency")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", loc="upper left")
    return _save(fig, out_png)

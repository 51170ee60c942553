"""Calibration of error probabilities: bins, ECE and Brier score by hand, the diagram as PNG."""

from __future__ import annotations

import pytest

from fgrlhf.data.rm_examples import IGNORE
from fgrlhf.eval.calibration import (
    brier_score,
    calibration_metrics,
    expected_calibration_error,
    fit_temperature,
    plot_reliability,
    reliability_bins,
    with_temperature,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_bins_by_hand():
    probs = [0.05, 0.15, 0.45, 0.55, 0.95, 1.0, 0.3]
    labels = [0, 0, 1, 0, 1, 1, IGNORE]
    bins = reliability_bins(probs, labels, n_bins=2)
    # [0, 0.5): 0.05, 0.15, 0.45 → confidence 0.65 / 3, one error of 3; [0.5, 1]: 0.55, 0.95, 1.0
    assert [(b.lo, b.hi, b.count) for b in bins] == [(0.0, 0.5, 3), (0.5, 1.0, 3)]
    assert bins[0].confidence == pytest.approx(0.65 / 3)
    assert bins[0].frequency == pytest.approx(1 / 3)
    assert bins[1].confidence == pytest.approx(2.5 / 3)
    assert bins[1].frequency == pytest.approx(2 / 3)


def test_ece_by_hand():
    probs = [0.05, 0.15, 0.45, 0.55, 0.95, 1.0]
    labels = [0, 0, 1, 0, 1, 1]
    # two bins of 3: |0.21667 − 0.33333| = 0.11667 and |0.83333 − 0.66667| = 0.16667 → mean 0.14167
    assert expected_calibration_error(probs, labels, n_bins=2) == pytest.approx(0.5 * 0.35 / 3 + 0.5 * 0.5 / 3)
    # ten bins: each point alone except 0.95 and 1.0 together in [0.9, 1]
    gaps = [0.05, 0.15, 0.55, 0.55, 0.025 * 2]  # 0.05−0, 0.15−0, |0.45−1|, 0.55−0, |0.975−1|·2 points
    assert expected_calibration_error(probs, labels) == pytest.approx(sum(gaps) / 6)


def test_a_calibrated_model_has_no_gap():
    probs = [0.25] * 4 + [0.75] * 4
    labels = [1, 0, 0, 0, 1, 1, 1, 0]
    assert expected_calibration_error(probs, labels) == pytest.approx(0.0)
    assert brier_score(probs, labels) == pytest.approx((0.75**2 + 3 * 0.25**2 + 3 * 0.25**2 + 0.75**2) / 8)


def test_empty_and_bad_input():
    assert expected_calibration_error([0.4], [IGNORE]) == 0.0
    assert brier_score([], []) == 0.0
    assert sum(b.count for b in reliability_bins([], [], 5)) == 0
    with pytest.raises(ValueError, match="2 probabilities but 1 labels"):
        expected_calibration_error([0.1, 0.2], [0])
    with pytest.raises(ValueError, match="probability 1 is 1.5"):
        expected_calibration_error([0.1, 1.5], [0, 1])
    with pytest.raises(ValueError, match="label 0 is 2"):
        brier_score([0.1], [2])
    with pytest.raises(ValueError, match="n_bins=0"):
        reliability_bins([0.1], [0], n_bins=0)


def test_metrics_for_a_summary():
    m = calibration_metrics([0.1, 0.9], [0, 1], n_bins=2)
    assert m["ece"] == pytest.approx(0.1)
    assert m["brier"] == pytest.approx(0.01)
    assert m["reliability"]["count"] == [1, 1]
    assert m["reliability"]["lo"] == [0.0, 0.5]


def test_reliability_png(tmp_path):
    bins = reliability_bins([0.1, 0.2, 0.8, 0.9, 0.6], [0, 1, 1, 1, 0])
    out = plot_reliability({"R1": bins, "R2": reliability_bins([0.3, 0.7], [0, 1])}, tmp_path / "d" / "rel.png")
    assert out.read_bytes()[:8] == PNG_SIGNATURE
    assert out.stat().st_size > 5000
    with pytest.raises(ValueError, match="no model"):
        plot_reliability({}, tmp_path / "x.png")


def _logits_and_labels(true_temperature: float, n: int = 4000):
    """Error logits z ~ N(0, 4²), labels drawn with P(error) = σ(z / true_temperature), and
    the classifier's uncorrected probabilities σ(z)."""
    import math
    import random

    rng = random.Random(0)
    zs = [rng.gauss(0.0, 4.0) for _ in range(n)]
    labels = [int(rng.random() < 1 / (1 + math.exp(-z / true_temperature))) for z in zs]
    return [1 / (1 + math.exp(-z)) for z in zs], labels


@pytest.mark.parametrize("true_temperature", [0.5, 1.0, 2.5])
def test_the_fitted_temperature_recovers_how_over_or_under_confident_a_model_is(true_temperature):
    probs, labels = _logits_and_labels(true_temperature)
    t = fit_temperature(probs, labels)
    assert t == pytest.approx(true_temperature, rel=0.12)
    if true_temperature != 1.0:  # rescaled probabilities are better calibrated
        fixed = with_temperature(probs, t)
        assert expected_calibration_error(fixed, labels) < expected_calibration_error(probs, labels)
        assert brier_score(fixed, labels) < brier_score(probs, labels)


def test_a_temperature_never_moves_a_probability_across_one_half():
    probs = [0.01, 0.2, 0.49, 0.5, 0.51, 0.9, 0.999]
    for t in (0.3, 1.0, 4.0):
        scaled = with_temperature(probs, t)
        assert [p > 0.5 for p in scaled] == [p > 0.5 for p in probs]
        assert [p < 0.5 for p in scaled] == [p < 0.5 for p in probs]
    assert with_temperature(probs, 1.0) == pytest.approx(probs)
    assert with_temperature([0.9], 2.0)[0] == pytest.approx(0.75)  # logit ln 9 halves to ln 3
    with pytest.raises(ValueError, match="must be > 0"):
        with_temperature(probs, 0.0)
    assert fit_temperature([0.3], [IGNORE]) == 1.0

"""Calibration of error probabilities: bins, ECE and Brier score by hand, the diagram as PNG."""

from __future__ import annotations

import pytest

from fgrlhf.data.rm_examples import IGNORE
from fgrlhf.eval.calibration import (
    brier_score,
    calibration_metrics,
    expected_calibration_error,
    plot_reliability,
    reliability_bins,
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

"""Run figures: learning curves from metrics.jsonl, evaluation before/after."""

from __future__ import annotations

import json

import pytest

from fgrlhf.eval.plots import curve_panels, plot_before_after, plot_learning_curves, read_metrics

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _metrics_file(path, steps=4):
    """Lines as PPOTrainer.step's metrics, written by MetricsLogger."""
    from fgrlhf.logging import MetricsLogger

    logger = MetricsLogger(path, mode="disabled")
    for step in range(steps):
        logger.log({"reward/relevance": 0.1 * step, "reward/factuality": -0.2 + 0.05 * step,
                    "reward/completeness": 0.3, "reward/total": 0.2 + 0.1 * step,
                    "reward/penalised": 0.1 + 0.1 * step, "kl/sequence": 0.01 * step, "kl/coef": 0.3,
                    "length/tokens": 40.0 + step, "policy/loss": 0.5}, step)
    logger.close()
    return logger.path


def test_learning_curves_png(tmp_path):
    metrics = _metrics_file(tmp_path / "run")
    out = plot_learning_curves(metrics, tmp_path / "figs" / "curves.png")
    assert out == tmp_path / "figs" / "curves.png"
    assert out.read_bytes()[:8] == PNG_SIGNATURE
    assert out.stat().st_size > 5000


def test_curve_panels_follow_the_logged_keys(tmp_path):
    records = read_metrics(_metrics_file(tmp_path / "run"))
    assert [r["step"] for r in records] == [0, 1, 2, 3]
    assert curve_panels(records) == [
        ("reward/relevance", ["reward/relevance"]),
        ("reward/factuality", ["reward/factuality"]),
        ("reward/completeness", ["reward/completeness"]),
        ("reward/total", ["reward/total", "reward/penalised"]),
        ("kl/sequence", ["kl/sequence"]),
        ("length/tokens", ["length/tokens"]),
    ]


def test_repeated_steps_keep_the_last_record(tmp_path):
    # A run resumed from an older checkpoint logs those steps again.
    path = tmp_path / "metrics.jsonl"
    lines = [{"step": 0, "kl/sequence": 1.0}, {"step": 1, "kl/sequence": 2.0},
             {"step": 1, "kl/sequence": 3.0}, {"step": 2, "kl/sequence": 4.0}]
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n\n")
    assert [r["kl/sequence"] for r in read_metrics(path)] == [1.0, 3.0, 4.0]


@pytest.mark.parametrize("bad, message", [
    ('{"step": 2, "kl/sequence": 0.1', "not valid JSON"),
    ('[1, 2]', "expected a JSON object"),
    ('{"kl/sequence": 0.1}', "no integer 'step'"),
])
def test_malformed_line_names_file_and_line(tmp_path, bad, message):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 0, "kl/sequence": 0.0}\n\n' + bad + "\n")
    with pytest.raises(ValueError, match=message) as err:
        plot_learning_curves(path, tmp_path / "x.png")
    assert f"{path}:3:" in str(err.value)
    assert not (tmp_path / "x.png").exists()


def test_nothing_to_plot_is_an_error(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 0, "lr": 0.1}\n')
    with pytest.raises(ValueError, match="no reward, KL or length metrics"):
        plot_learning_curves(path, tmp_path / "x.png")


def test_before_after_png(tmp_path):
    before = {"n_answers": 3, "relevance_ratio": 0.5, "factuality_ratio": None, "completeness": -0.1,
              "rougeLsum": 30.0, "length_words": 40.0, "length_tokens": 55.0}
    after = dict(before, relevance_ratio=0.7, factuality_ratio=0.8, rougeLsum=33.0)
    out = plot_before_after(before, after, tmp_path / "before_after.png")
    assert out.read_bytes()[:8] == PNG_SIGNATURE
    with pytest.raises(KeyError, match="factuality_ratio"):
        plot_before_after(before, after, tmp_path / "y.png", metrics=["rougeLsum", "factuality_ratio"])
    with pytest.raises(ValueError, match="share no numeric metric"):
        plot_before_after({"a": 1.0}, {"b": 2.0}, tmp_path / "z.png")

"""The sweep summary: Pareto front by hand, and errors that name the bad file."""

from __future__ import annotations

import pytest

from fgrlhf.eval.sweep import collect_runs, pareto_front


def test_pareto_front_by_hand():
    #   a (1, 3)  b (2, 2)  c (3, 1)  on the front; d (1, 1) dominated by all three;
    #   e (2, 2) equals b: neither dominates the other; f (2, 1.5) dominated by b.
    points = [(1, 3), (2, 2), (3, 1), (1, 1), (2, 2), (2, 1.5)]
    assert pareto_front(points) == [True, True, True, False, True, False]
    assert pareto_front([]) == []
    assert pareto_front([(0.0, 0.0)]) == [True]


def test_collect_runs_names_a_malformed_file(tmp_path):
    (tmp_path / "0_w=1").mkdir()
    (tmp_path / "0_w=1" / "metrics.json").write_text('{"weights": {"relevance": 1}, "final": {}}')
    (tmp_path / "1_w=2").mkdir()
    (tmp_path / "1_w=2" / "metrics.json").write_text('{"final": {}}')
    with pytest.raises(ValueError, match=r"1_w=2/metrics.json: not an fgrlhf-train metrics.json"):
        collect_runs(tmp_path)
    with pytest.raises(FileNotFoundError, match="no \\*/metrics.json"):
        collect_runs(tmp_path / "0_w=1")


def test_table_labels_runs_by_the_weights_that_vary():
    from fgrlhf.eval.sweep import markdown_table

    rows = [{"run": "0_long=hydra,name=1", "weight/relevance": 0.5, "weight/factuality": 1.0,
             "eval/relevance_ratio": 0.9, "eval/factuality_segments": 1158.0, "reward/relevance": 1.25},
            {"run": "1_long=hydra,name=2", "weight/relevance": 2.0, "weight/factuality": 1.0,
             "eval/relevance_ratio": 0.8, "eval/factuality_segments": 1079.0, "reward/relevance": 6.5}]
    lines = markdown_table(rows, [True, False]).splitlines()
    assert lines[0] == ("| run | weight/relevance | eval/relevance_ratio | eval/factuality_segments | "
                        "reward/relevance | Pareto |")
    assert lines[2] == "| relevance=0.5 | 0.500 | 0.900 | 1158 | 1.250 | ● |"
    assert lines[3] == "| relevance=2 | 2.000 | 0.800 | 1079 | 6.500 |  |"

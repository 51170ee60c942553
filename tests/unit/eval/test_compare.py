"""The comparison of several policies' evaluations, and the curves of several runs."""

from __future__ import annotations

import json

import pytest

from fgrlhf.eval.compare import compare, comparison_table, main, read_summary
from fgrlhf.eval.plots import plot_runs

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SFT = {"relevance_ratio": 0.50, "factuality_ratio": 0.70, "completeness": 0.1, "rougeLsum": 40.0,
       "length_words": 90.0, "length_tokens": 120.0, "questions": 60, "factuality_segments": 300}
FG = {"relevance_ratio": 0.55, "factuality_ratio": 0.80, "completeness": 0.3, "rougeLsum": 41.5,
      "length_words": 95.0, "length_tokens": 125.0, "questions": 60}


def _eval_dir(tmp_path, name, summary):
    d = tmp_path / name
    d.mkdir()
    (d / "summary.json").write_text(json.dumps(summary))
    return d


def test_table_rows_changes_and_reference():
    table = comparison_table({"SFT": SFT, "FG": FG}, ["relevance_ratio", "rougeLsum"],
                             reference={"paper FG": {"relevance_ratio": 0.516}}, baseline="SFT")
    lines = table.splitlines()
    assert lines[0] == "| policy | relevance_ratio | rougeLsum |"
    assert lines[2] == "| SFT | 0.500 | 40.00 |"
    assert lines[3] == "| FG | 0.550 (+0.050) | 41.50 (+1.50) |"
    assert lines[4] == "| paper FG (reference) | 0.516 | – |"


def test_compare_writes_table_json_and_figure(tmp_path):
    ref = tmp_path / "paper.json"
    ref.write_text(json.dumps({"paper SFT": {"relevance_ratio": 0.514, "rougeLsum": 43.13}}))
    result = compare({"SFT": _eval_dir(tmp_path, "sft", SFT), "FG": _eval_dir(tmp_path, "fg", FG)},
                     tmp_path / "out", reference=ref, baseline="SFT")
    out = tmp_path / "out"
    assert (out / "comparison.md").read_text().strip() == result["table"]
    assert "| paper SFT (reference) | 0.514 | – | – | 43.13 | – | – |" in result["table"]
    # Segment counts go into the table (not the figure) when the summaries have them.
    assert result["table"].splitlines()[0].endswith("| length_tokens | factuality_segments |")
    saved = json.loads((out / "comparison.json").read_text())
    assert saved["summaries"]["FG"]["completeness"] == 0.3
    assert (out / "comparison.png").read_bytes()[:8] == PNG_SIGNATURE


def test_monitor_columns_and_the_lead_baseline_row(tmp_path):
    """Sentences per answer and each monitor-only judge's error rate join the table when a
    summary has them; the lead baseline is a reference row when every summary has the same."""
    sft = {**SFT, "monitor/segments_per_answer/sentence": 3.0, "monitor/error_rate/twin": 0.2,
           "monitor/distinct_2": 0.9, "monitor/repeated_3gram_rate": 0.05, "lead_rougeLsum": 33.9}
    fg = {**FG, "monitor/segments_per_answer/sentence": 4.5, "lead_rougeLsum": 33.9, "monitor/error_rate/rouge": 0.0}
    result = compare({"SFT": _eval_dir(tmp_path, "sft", sft), "FG": _eval_dir(tmp_path, "fg", fg)},
                     tmp_path / "out", baseline="SFT")
    lines = result["table"].splitlines()
    assert lines[0] == ("| policy | relevance_ratio | factuality_ratio | completeness | rougeLsum | length_words | "
                        "length_tokens | monitor/segments_per_answer/sentence | monitor/repeated_3gram_rate | "
                        "monitor/error_rate/twin | factuality_segments |")
    assert lines[3].startswith("| FG |") and "| 4.500 (+1.500) | – | – |" in lines[3]
    assert lines[4] == ("| lead baseline: the passages' first 100 words (reference) | – | – | – | 33.90 | 100.00 | – | "
                        "– | – | – | – |")
    # different questions: no single lead baseline to show
    other = compare({"SFT": _eval_dir(tmp_path, "sft2", sft), "FG": _eval_dir(tmp_path, "fg2", {**fg, "lead_rougeLsum": 35.0})},
                    tmp_path / "out2")
    assert "lead baseline" not in other["table"]


def test_cli_and_errors(tmp_path, capsys):
    a, b = _eval_dir(tmp_path, "a", SFT), _eval_dir(tmp_path, "b", FG)
    main([f"SFT={a}", f"FG={b}", "--out", str(tmp_path / "o")])
    assert "| FG | 0.550 |" in capsys.readouterr().out
    with pytest.raises(FileNotFoundError, match="no evaluation summary"):
        read_summary(tmp_path / "missing")
    (tmp_path / "bad.json").write_text("[1]")
    with pytest.raises(ValueError, match="bad.json: expected a JSON object"):
        read_summary(tmp_path / "bad.json")
    with pytest.raises(KeyError, match="baseline 'RL'"):
        compare({"SFT": a}, tmp_path / "o", baseline="RL")
    with pytest.raises(SystemExit):
        main(["no-label", "--out", str(tmp_path / "o")])


def test_plot_runs_one_line_per_run(tmp_path):
    files = {}
    for name, slope in (("holistic", -0.01), ("sentence", -0.02)):
        path = tmp_path / name / "metrics.jsonl"
        path.parent.mkdir()
        path.write_text("\n".join(json.dumps({"step": s, "eval/avg_max_toxicity": 0.3 + slope * s})
                                  for s in range(0, 20, 5)) + "\n")
        files[name] = path
    out = plot_runs(files, ["eval/avg_max_toxicity"], tmp_path / "tox.png", title="detox")
    assert out.read_bytes()[:8] == PNG_SIGNATURE
    with pytest.raises(KeyError, match="no run logged"):
        plot_runs(files, ["eval/perplexity"], tmp_path / "x.png")


def test_records_by_updates_start_with_the_initial_evaluation(tmp_path):
    from fgrlhf.eval.plots import records_by_updates

    (tmp_path / "metrics.jsonl").write_text(
        "\n".join(json.dumps({"step": s, "eval/avg_max_toxicity": 0.5 - 0.1 * s}) for s in (0, 1)) + "\n")
    assert [r["step"] for r in records_by_updates(tmp_path / "metrics.jsonl")] == [1, 2]
    (tmp_path / "metrics.json").write_text(json.dumps({"eval_initial": {"avg_max_toxicity": 0.7}}))
    records = records_by_updates(tmp_path / "metrics.jsonl")
    assert [(r["step"], r["eval/avg_max_toxicity"]) for r in records] == [(0, 0.7), (1, 0.5), (2, pytest.approx(0.4))]

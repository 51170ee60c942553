"""fgrlhf-segment as a user runs it: a real Hydra app in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys


def _run(tmp_path, *overrides):
    cmd = [sys.executable, "-m", "fgrlhf.cli.segment", f"hydra.run.dir={tmp_path}/run", *overrides]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})


def test_segment_app_prints_and_writes_the_table(tmp_path, small_feedback_file):
    out = tmp_path / "table.json"
    res = _run(tmp_path, f"feedback_file={small_feedback_file}", f"output={out}", "sentence_splitter=punkt",
               "weights.length=1.0")
    assert res.returncode == 0, res.stderr
    assert "granularity" in res.stdout and "subsentence" in res.stdout
    table = json.loads(out.read_text())
    assert table["responses"] == 160  # 40 questions × 4 predictions
    g = table["granularities"]
    assert g["sequence"]["segments"] == 160
    assert g["subsentence"]["segments"] >= g["sentence"]["segments"] >= 160
    assert table["dense_sum_max_abs_error"] < 1e-4
    assert set(table["mean_reward_per_response"]) == {"repetition", "length"}


def test_misspelt_key_is_an_error(tmp_path, small_feedback_file):
    res = _run(tmp_path, f"feedback_file={small_feedback_file}", "sentense_splitter=punkt")
    assert res.returncode != 0
    assert "sentense_splitter" in res.stderr


def test_bad_data_file_is_named(tmp_path):
    bad = tmp_path / "broken.json"
    bad.write_text(json.dumps([{"question": "q"}]))
    res = _run(tmp_path, f"feedback_file={bad}")
    assert res.returncode != 0
    assert "broken.json, record 0, field 'passages': missing" in res.stderr

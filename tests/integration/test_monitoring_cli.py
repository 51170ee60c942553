"""Reward-hacking monitors, alerts and shaping from the command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
TESTS_DIR = Path(__file__).resolve().parents[1]
FAST = ["experiment=tiny", "iterations=3", "task.prompts_per_iteration=2", "sampling.max_new_tokens=10",
        "save_policy=false", "threads=1"]


def _train(*args, cwd):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "offline",
           "PYTHONPATH": os.pathsep.join([str(TESTS_DIR), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "fgrlhf.cli.train", *args], capture_output=True, text=True,
                          timeout=900, env=env, cwd=cwd)


def _records(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_monitors_and_alerts_reach_metrics_curves_and_summary(tmp_path, tiny_gpt2_dir):
    run = tmp_path / "run"
    res = _train(*FAST, f"policy.init={tiny_gpt2_dir}", f"hydra.run.dir={run}",
                 "+reward.monitors.digits._target_=plugins.lab_rewards.DigitPenalty",
                 "alerts.rules=[{name: long, metric: length/tokens, above: 5}]", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    records = _records(run)
    for r in records:
        assert r["alert/long"] == 1.0
        for key in ("monitor/segments_per_answer/subsentence", "monitor/words_per_segment/subsentence",
                    "monitor/empty_rate", "monitor/distinct_2", "monitor/repeated_3gram_rate",
                    "monitor/error_rate/relevance", "monitor/reward_share/length", "monitor/reward/digits"):
            assert key in r, key
        assert "reward/digits" not in r  # monitor-only: never a reward category
    assert "fgrlhf-train: warning: iteration 0: alert long: length/tokens" in res.stderr
    assert res.stderr.count("alert long:") == 1  # warned when it starts firing, not every iteration
    assert json.loads((run / "metrics.json").read_text())["alerts"] == {"long": [0, 1, 2]}
    assert (run / "learning_curves.png").read_bytes()[:4] == b"\x89PNG"


def test_stop_on_alert_ends_the_run_with_its_checkpoint(tmp_path, tiny_gpt2_dir):
    run = tmp_path / "run"
    res = _train(*FAST, "iterations=5", f"policy.init={tiny_gpt2_dir}", f"hydra.run.dir={run}",
                 "alerts.rules=[{name: drift, metric: kl/sequence, above: 0.0}]", "alerts.stop_on_alert=true",
                 cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    records = _records(run)
    # The run stops at the first iteration whose KL estimate is positive.
    first = next(i for i, r in enumerate(records) if r["kl/sequence"] > 0)
    assert len(records) == first + 1 < 5
    assert f"stopped after iteration {first} on alert (drift)" in res.stderr
    import torch

    state = torch.load(run / "checkpoint" / "trainer.pt", weights_only=False)
    assert state["trainer"]["iteration"] == first + 1 and state["alerts"]["firing"] == ["drift"]

def test_mean_shaping_from_the_command_line(tmp_path, tiny_gpt2_dir):
    run = tmp_path / "run"
    res = _train(*FAST, "iterations=1", f"policy.init={tiny_gpt2_dir}", f"hydra.run.dir={run}",
                 "+reward.shaping.relevance.per_segment=mean", "+reward.shaping.relevance.placement=spread",
                 cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    # The repetition reward gives each sub-sentence ±0.3; under mean an answer earns at most 0.3.
    assert abs(_records(run)[0]["reward/relevance"]) <= 0.3 + 1e-6
    bad = _train(*FAST, "iterations=1", f"policy.init={tiny_gpt2_dir}", f"hydra.run.dir={tmp_path}/bad",
                 "+reward.shaping.relevance.placement=middle", cwd=tmp_path)
    assert bad.returncode == 2 and "reward.shaping.relevance.placement='middle': one of end, first, spread" in bad.stderr

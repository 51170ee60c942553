"""fgrlhf-eval as a user runs it: a policy checkpoint, held-out questions, the metrics."""

from __future__ import annotations

import json
import os
import subprocess
import sys


def test_eval_cli_judges_a_checkpoint_on_held_out_questions(tmp_path, tiny_gpt2_dir):
    cmd = [sys.executable, "-m", "fgrlhf.cli.eval", f"checkpoint={tiny_gpt2_dir}", "reward=rules",
           "part=test", "split.test_questions=3", "batch_size=2", "max_new_tokens=12", f"output={tmp_path}/eval",
           f"hydra.run.dir={tmp_path}/hydra",
           # a monitor-only judge: scored on every answer, never optimised
           "+reward.monitors.twin._target_=fgrlhf.reward.rules.RepetitionReward", "+reward.monitors.twin.threshold=0.5"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "offline"}
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    printed = json.loads(res.stdout.strip().splitlines()[-1])
    summary = json.loads((tmp_path / "eval" / "summary.json").read_text())
    assert printed == summary
    assert summary["questions"] == 3 and summary["n_answers"] == 3
    assert 0.0 <= summary["relevance_ratio"] <= 1.0 and summary["length_tokens"] > 0
    # the reward-hacking monitors, as training's held-out evaluation logs them
    assert summary["monitor/segments_per_answer/subsentence"] > 0
    assert 0.0 <= summary["monitor/error_rate/twin"] <= 1.0 and "monitor/reward/twin" in summary
    assert 0.0 <= summary["monitor/distinct_2"] <= 1.0
    records = [json.loads(x) for x in (tmp_path / "eval" / "outputs.jsonl").read_text().splitlines()]
    assert len(records) == 3 and all("answer" in r for r in records)
    assert (tmp_path / "eval" / "rollouts.html").stat().st_size > 1000

    # The policy goes under `checkpoint`; a misspelt key is an error, not ignored.
    res = subprocess.run([*cmd[:3], "questions=1", "batch_szie=2"], capture_output=True, text=True,
                         timeout=300, env=env, cwd=tmp_path)
    assert res.returncode != 0 and "batch_szie" in res.stderr

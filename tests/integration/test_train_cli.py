"""fgrlhf-train as a user runs it: Hydra presets, a weight sweep, a user's own reward."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
TESTS_DIR = Path(__file__).resolve().parents[1]


def _train(*args, cwd):
    cmd = [sys.executable, "-m", "fgrlhf.cli.train", *args]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "offline",
           "PYTHONPATH": os.pathsep.join([str(TESTS_DIR), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env, cwd=cwd)


FAST = ["experiment=tiny", "iterations=2", "task.prompts_per_iteration=2", "sampling.max_new_tokens=10",
        "save_policy=false"]


def test_weight_sweep_writes_one_folder_per_run(tmp_path, tiny_gpt2_dir):
    res = _train("-m", *FAST, f"policy.init={tiny_gpt2_dir}", "reward.weights.relevance=0.1,0.3",
                 f"hydra.sweep.dir={tmp_path}/sweep", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    summaries = sorted((tmp_path / "sweep").glob("*/metrics.json"))
    assert len(summaries) == 2
    weights = sorted(json.loads(p.read_text())["weights"]["relevance"] for p in summaries)
    assert weights == [0.1, 0.3]
    for p in summaries:
        lines = (p.parent / "metrics.jsonl").read_text().strip().splitlines()
        assert len(lines) == 2 and "reward/relevance" in json.loads(lines[-1])


def test_a_users_reward_model_plugs_in_by_config_only(tmp_path, tiny_gpt2_dir):
    res = _train(*FAST, f"policy.init={tiny_gpt2_dir}", f"hydra.run.dir={tmp_path}/run",
                 "+reward.models.digits._target_=plugins.lab_rewards.DigitPenalty", "+reward.models.digits.penalty=0.5",
                 "+reward.weights.digits=2.0", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    summary = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert "reward/digits" in summary["final"] and summary["weights"]["digits"] == 2.0


def test_misspelt_keys_are_errors(tmp_path, tiny_gpt2_dir):
    res = _train(*FAST, f"policy.init={tiny_gpt2_dir}", "ppo.kl_coeff=0.1", f"hydra.run.dir={tmp_path}/run", cwd=tmp_path)
    assert res.returncode != 0 and "kl_coeff" in res.stderr

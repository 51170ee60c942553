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
                 "eval.every=2", "eval.questions=2", f"hydra.sweep.dir={tmp_path}/sweep", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    summaries = sorted((tmp_path / "sweep").glob("*/metrics.json"))
    assert len(summaries) == 2
    weights = sorted(json.loads(p.read_text())["weights"]["relevance"] for p in summaries)
    assert weights == [0.1, 0.3]
    for p in summaries:
        lines = (p.parent / "metrics.jsonl").read_text().strip().splitlines()
        assert len(lines) == 2 and "reward/relevance" in json.loads(lines[-1])
        # Evaluated on 2 held-out questions at the last iteration, with the run's own rewards.
        last = json.loads(lines[-1])
        assert 0.0 <= last["eval/relevance_ratio"] <= 1.0 and last["eval/n_answers"] == 2
        assert "eval/relevance_ratio" not in json.loads(lines[0])
        summary = json.loads(p.read_text())
        assert summary["eval"]["relevance_ratio"] == last["eval/relevance_ratio"]
        # The initial policy is evaluated too, on the same questions: the curve's first point.
        assert summary["eval_initial"]["n_answers"] == 2
        assert 0.0 <= summary["eval_initial"]["relevance_ratio"] <= 1.0
        assert (p.parent / "learning_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # The sweep's summary: one row per run, the trade-off plot and its Pareto front.
    from fgrlhf.eval.sweep import summarize_sweep

    result = summarize_sweep(tmp_path / "sweep", axes=("eval/relevance_ratio", "reward/length", "length/tokens"))
    assert sorted(r["weight/relevance"] for r in result["runs"]) == [0.1, 0.3]
    assert any(result["pareto"])
    assert (tmp_path / "sweep" / "tradeoff.png").read_bytes()[:4] == b"\x89PNG"
    table = (tmp_path / "sweep" / "summary.md").read_text().splitlines()
    assert len([row for row in table if row.startswith("| ")]) == 3  # header + 2 runs


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


def test_resume_after_a_kill_gives_the_same_next_iteration(tmp_path, tiny_gpt2_dir):
    common = [*FAST, f"policy.init={tiny_gpt2_dir}", "checkpoint_every=1", "policy.value=separate"]
    full = _train(*common, "iterations=3", f"hydra.run.dir={tmp_path}/full", cwd=tmp_path)
    assert full.returncode == 0, full.stderr[-3000:]
    # "Killed" after iteration 2: a run that stopped there, then a new process resuming it.
    part = _train(*common, "iterations=2", f"hydra.run.dir={tmp_path}/part", cwd=tmp_path)
    assert part.returncode == 0, part.stderr[-3000:]
    resumed = _train(*common, "iterations=3", f"resume={tmp_path}/part/checkpoint",
                     f"hydra.run.dir={tmp_path}/resumed", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]

    def step(run, k):
        lines = [json.loads(x) for x in (tmp_path / run / "metrics.jsonl").read_text().splitlines()]
        (rec,) = [r for r in lines if r["step"] == k]
        return {key: v for key, v in rec.items() if not key.startswith("time") and key != "step"}

    expected = step("full", 2)
    got = step("resumed", 2)
    assert got == expected  # bit for bit: same samples, same rewards, same losses
    assert step("part", 1) == step("full", 1)
    summary = json.loads((tmp_path / "resumed" / "metrics.json").read_text())
    assert summary["first"]["reward/total"] == step("full", 0)["reward/total"]  # history carried over
    from fgrlhf.errors import CheckpointError
    from fgrlhf.train.ppo_run import find_checkpoint

    with pytest.raises(CheckpointError, match="not an fgrlhf-train checkpoint"):
        find_checkpoint(str(tmp_path))


def test_a_nan_reward_stops_with_a_clear_message_and_keeps_the_checkpoint(tmp_path, tiny_gpt2_dir):
    res = _train(*FAST, f"policy.init={tiny_gpt2_dir}", "iterations=4", "checkpoint_every=1",
                 "+reward.models.bad._target_=plugins.lab_rewards.NaNAfter", "+reward.models.bad.calls=2",
                 f"hydra.run.dir={tmp_path}/run", cwd=tmp_path)
    assert res.returncode != 0
    assert "stopped at iteration 2" in res.stderr and "reward 'bad' returned a non-finite score" in res.stderr
    assert "is intact" in res.stderr
    from fgrlhf.policy import Policy
    from fgrlhf.train.ppo_run import load_checkpoint

    model_cls = type(Policy.from_pretrained(str(tiny_gpt2_dir)).model)
    state, _ = load_checkpoint(tmp_path / "run" / "checkpoint", model_cls, "cpu")
    assert state["trainer"]["iteration"] == 2 and len(state["history"]) == 2


def test_bf16_autocast_by_config(tmp_path, tiny_gpt2_dir):
    # The CUDA path's mixed precision, exercised on CPU (torch autocasts bf16 there too).
    args = [*FAST, f"policy.init={tiny_gpt2_dir}", "iterations=1", "sampling.do_sample=false"]
    fp32 = _train(*args, f"hydra.run.dir={tmp_path}/fp32", cwd=tmp_path)
    bf16 = _train(*args, "precision=bf16", f"hydra.run.dir={tmp_path}/bf16", cwd=tmp_path)
    assert fp32.returncode == 0, fp32.stderr[-3000:]
    assert bf16.returncode == 0, bf16.stderr[-3000:]
    a = json.loads((tmp_path / "fp32" / "metrics.jsonl").read_text().splitlines()[0])
    b = json.loads((tmp_path / "bf16" / "metrics.jsonl").read_text().splitlines()[0])
    assert b["policy/entropy"] == pytest.approx(a["policy/entropy"], rel=0.02)  # same computation...
    assert b["policy/entropy"] != a["policy/entropy"]  # ...in lower precision
    bad = _train(*args, "precision=fp8x", f"hydra.run.dir={tmp_path}/bad", cwd=tmp_path)
    assert bad.returncode != 0 and "fp8x" in bad.stderr

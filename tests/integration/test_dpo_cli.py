"""fgrlhf-dpo end to end on a small causal policy and a handful of questions: the training
pairs' margin grows, the checkpoint and its record are written, and fgrlhf-eval judges the
result like any other policy."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from fgrlhf.paths import DATA_DIR

pytestmark = pytest.mark.slow

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "offline"}


def _small_files(tmp_path, n=6):
    """The first ``n`` bundled questions as a feedback file and a prompts file (prompts cut
    to keep the run short)."""
    feedback = json.loads((DATA_DIR / "qa_feedback" / "feedback.json").read_text())[:n]
    prompts = json.loads((DATA_DIR / "qa_feedback" / "prompts.json").read_text())[:n]
    for p in prompts:
        p["text"] = p["text"][:400]
    (tmp_path / "feedback.json").write_text(json.dumps(feedback))
    (tmp_path / "prompts.json").write_text(json.dumps(prompts))
    return tmp_path / "feedback.json", tmp_path / "prompts.json"


def test_dpo_trains_saves_and_is_evaluated_by_fgrlhf_eval(tmp_path, tiny_gpt2_dir):
    feedback, prompts = _small_files(tmp_path)
    split = ["split.dev_questions=1", "split.test_questions=2"]  # 3 train, 1 dev, 2 test questions
    out = tmp_path / "dpo"
    cmd = [sys.executable, "-m", "fgrlhf.cli.dpo", f"hydra.run.dir={tmp_path}/hydra", f"policy.init={tiny_gpt2_dir}",
           f"feedback_file={feedback}", f"prompts_file={prompts}", f"output={out}", *split, "threads=1",
           "policy.max_prompt_tokens=64", "dpo.max_answer_tokens=40", "dpo.batch_size=6", "dpo.epochs=2",
           "dpo.lr=2e-3", "dpo.warmup_steps=0", "dpo.bf16=false", "dpo.beta=0.5", "wandb.mode=disabled"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=ENV, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert summary["kind"] == "causal" and summary["checkpoint"] == str(out)
    assert 6 <= summary["train_pairs"] <= 18 and 1 <= summary["dev_pairs"] <= 6
    assert summary["steps"] == 2 * math_ceil(summary["train_pairs"], 6)
    assert summary["train"]["margin"] > 0 and summary["dev"] is not None
    record = json.loads((out / "fgrlhf_dpo.json").read_text())
    assert record["dpo"]["beta"] == 0.5 and record["split"]["test_questions"] == 2
    assert record["history"]["evaluations"][-1]["dev"] == summary["dev"]
    metrics = [json.loads(x) for x in (tmp_path / "hydra" / "metrics.jsonl").read_text().splitlines()]
    assert sum("dpo/loss" in m for m in metrics) == summary["steps"]
    assert any("dpo/dev_reward_accuracy" in m for m in metrics)

    ev = [sys.executable, "-m", "fgrlhf.cli.eval", f"checkpoint={out}", "reward=rules", "part=test", *split,
          f"task.prompts_file={prompts}", "batch_size=2", "max_new_tokens=12", "max_prompt_tokens=64",
          "threads=1", f"output={tmp_path}/eval", f"hydra.run.dir={tmp_path}/hydra_eval"]
    res = subprocess.run(ev, capture_output=True, text=True, timeout=600, env=ENV, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    evaluated = json.loads((tmp_path / "eval" / "summary.json").read_text())
    assert evaluated["policy"] == str(out) and evaluated["questions"] == 2 and evaluated["n_answers"] == 2
    # Shown prompts of another format than DPO trained it on: refused before anything loads.
    res = subprocess.run([*ev[:-2], "task.prompt_format=causal", f"hydra.run.dir={tmp_path}/hydra_eval2"],
                         capture_output=True, text=True, timeout=300, env=ENV, cwd=tmp_path)
    assert res.returncode == 2 and "fgrlhf_dpo.json" in res.stderr and "task.prompt_format=t5" in res.stderr


def test_dpo_rejects_out_of_range_settings(tmp_path, tiny_gpt2_dir):
    cmd = [sys.executable, "-m", "fgrlhf.cli.dpo", f"hydra.run.dir={tmp_path}/hydra", f"policy.init={tiny_gpt2_dir}",
           "dpo.beta=0", "dpo.loss_type=hinge", "dpo.label_smoothing=0.7", "wandb.mode=disabled"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=ENV, cwd=tmp_path)
    assert res.returncode == 2
    for key in ("dpo.beta=0", "dpo.loss_type='hinge'", "dpo.label_smoothing=0.7"):
        assert key in res.stderr


def math_ceil(a: int, b: int) -> int:
    return -(-a // b)

"""fgrlhf-sft end to end on a small causal policy: the dev loss must fall, and the saved
checkpoint must load back as a Policy."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def test_sft_lowers_dev_loss_and_saves_a_loadable_policy(tmp_path, tiny_gpt2_dir):
    from fgrlhf.policy import Policy, SamplingConfig

    base = tiny_gpt2_dir
    out = tmp_path / "sft"
    cmd = [sys.executable, "-m", "fgrlhf.cli.sft", f"hydra.run.dir={tmp_path}/hydra", f"policy.init={base}",
           f"output={out}", "sft.epochs=1", "sft.batch_size=16", "sft.lr=1e-3", "sft.max_answer_tokens=48",
           "policy.max_prompt_tokens=96", "wandb.mode=offline", "sft.bf16=false"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=900,
                         env={**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "offline"})
    assert res.returncode == 0, res.stderr[-3000:]
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert summary["kind"] == "causal" and summary["steps"] == 19  # ceil(300 / 16)
    assert summary["dev_loss"] < summary["dev_loss_before"]
    record = json.loads((out / "fgrlhf_sft.json").read_text())
    assert record["split_seed"] == 0 and len(record["history"]["dev_loss"]) == 1
    assert (tmp_path / "hydra" / "metrics.jsonl").exists()
    policy = Policy.from_pretrained(str(out))
    rollout = policy.generate(["question: who wrote it?"], SamplingConfig(max_new_tokens=5, do_sample=False))
    assert rollout.response_ids.shape[0] == 1 and 1 <= int(rollout.response_mask.sum()) <= 5

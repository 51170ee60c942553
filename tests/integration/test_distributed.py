"""Data parallelism: two CPU processes (gloo, launched by accelerate) against one.

On a machine without CUDA, ``accelerate launch --multi_gpu`` starts torchrun processes that
meet over gloo (``--cpu`` with several processes would ask for MPI instead).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

pytestmark = pytest.mark.slow
TESTS_DIR = Path(__file__).resolve().parents[1]


def _env():
    return {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "offline", "OMP_NUM_THREADS": "1",
            "PYTHONPATH": os.pathsep.join([str(TESTS_DIR), os.environ.get("PYTHONPATH", "")])}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _metrics(run: Path) -> list[dict]:
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]


# Greedy decoding, so both runs draw the same responses; 4 prompts, minibatches of 4 rows
# split into 2 micro-batches: each process holds 2 rows of every minibatch, 1 per micro-batch.
ARGS = ["experiment=tiny", "iterations=2", "task.prompts_per_iteration=4", "sampling.max_new_tokens=10",
        "sampling.num_samples=1", "sampling.do_sample=false", "ppo.minibatch_size=4", "ppo.grad_accum=2",
        "threads=1"]


def _launch() -> list[str]:
    return [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
            "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
            "--main_process_port", str(_free_port()), "-m", "fgrlhf.cli.train"]


def _one_and_two_processes(tmp_path: Path, common: list[str]) -> None:
    """Run ``common`` in one process (``one/``) and in two (``two/``); every metric agrees."""
    one = subprocess.run([sys.executable, "-m", "fgrlhf.cli.train", *common, f"hydra.run.dir={tmp_path}/one"],
                         capture_output=True, text=True, timeout=900, env=_env(), cwd=tmp_path)
    assert one.returncode == 0, one.stderr[-3000:]
    two = subprocess.run([*_launch(), *common, f"hydra.run.dir={tmp_path}/two"],
                         capture_output=True, text=True, timeout=900, env=_env(), cwd=tmp_path)
    assert two.returncode == 0, two.stderr[-3000:]
    assert json.loads((tmp_path / "two" / "metrics.json").read_text())["processes"] == 2

    m1, m2 = _metrics(tmp_path / "one"), _metrics(tmp_path / "two")
    assert len(m1) == len(m2) == 2
    for a, b in zip(m1, m2):
        # Every process held identical weights after every iteration.
        assert b["parallel/divergence"] == 0.0
        for key, value in a.items():
            if key.startswith("time") or key == "step":
                continue
            assert b[key] == pytest.approx(value, rel=1e-4, abs=1e-5), key


def test_two_processes_stay_in_sync_and_match_one_process(tmp_path, tiny_gpt2_dir):
    _one_and_two_processes(tmp_path, [*ARGS, f"policy.init={tiny_gpt2_dir}"])
    # The same weights at the end as one process with the same global batch.
    w1 = load_file(tmp_path / "one" / "policy" / "model.safetensors")
    w2 = load_file(tmp_path / "two" / "policy" / "model.safetensors")
    assert w1.keys() == w2.keys()
    init = load_file(Path(tiny_gpt2_dir) / "model.safetensors")
    moved = max(float((w1[k] - init[k]).abs().max()) for k in w1)
    assert moved > 1e-4  # the comparison is not between two untouched copies
    for k in w1:
        torch.testing.assert_close(w2[k], w1[k], rtol=1e-4, atol=1e-5)


def test_a_batch_that_does_not_split_evenly_is_refused(tmp_path, tiny_gpt2_dir):
    res = subprocess.run([*_launch(), *ARGS, f"policy.init={tiny_gpt2_dir}", "task.prompts_per_iteration=3",
                          f"hydra.run.dir={tmp_path}/odd"], capture_output=True, text=True, timeout=600,
                         env=_env(), cwd=tmp_path)
    assert res.returncode != 0
    assert "cannot be split evenly over 2 processes" in res.stderr


def test_two_processes_with_lora_adapters_match_one_process(tmp_path, tiny_gpt2_dir):
    """With LoRA only the adapters (and the value head) are all-reduced and trained; the
    reference is each process's own model with its adapters off."""
    _one_and_two_processes(tmp_path, [*ARGS, f"policy.init={tiny_gpt2_dir}", "policy.lora.r=4", "policy.lora.alpha=8",
                                      "ppo.lr=1e-3"])
    a1 = load_file(tmp_path / "one" / "policy_adapters" / "adapter_model.safetensors")
    a2 = load_file(tmp_path / "two" / "policy_adapters" / "adapter_model.safetensors")
    assert a1.keys() == a2.keys() and all("lora_" in k for k in a1)
    assert max(float(a1[k].abs().max()) for k in a1 if "lora_B" in k) > 1e-4  # B left zero: nothing learned
    for k in a1:
        torch.testing.assert_close(a2[k], a1[k], rtol=1e-4, atol=1e-5)


def test_an_alert_on_evaluation_metrics_stops_both_processes_together(tmp_path, tiny_gpt2_dir):
    """Only the main process evaluates; it sends the metrics to the other, so a rule on an
    ``eval/`` key fires in both and both stop after the same iteration (neither is left
    waiting in a collective)."""
    run = tmp_path / "two"
    res = subprocess.run([*_launch(), *ARGS, "iterations=3", f"policy.init={tiny_gpt2_dir}", "eval.every=1",
                          "eval.questions=2", "alerts.rules=[{name: seen, metric: eval/length_tokens, above: -1}]",
                          "alerts.stop_on_alert=true", "save_policy=false", f"hydra.run.dir={run}"],
                         capture_output=True, text=True, timeout=900, env=_env(), cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert len(_metrics(run)) == 1 and _metrics(run)[0]["alert/seen"] == 1.0
    assert "stopped after iteration 0 on alert (seen)" in res.stderr
    state = torch.load(run / "checkpoint" / "trainer.pt", weights_only=False)
    # The alerts' first record is the evaluation before training.
    assert "eval/length_tokens" in state["alerts"]["history"][0]
    assert "reward/total" not in state["alerts"]["history"][0]

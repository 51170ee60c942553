"""LoRA end to end: fgrlhf-sft of a tiny Gemma 3 on causal QA prompts, and fgrlhf-train with
adapters (checkpoints hold the adapters, a resume continues bit for bit, the run's policy is
merged and loads without PEFT)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.slow
TESTS_DIR = Path(__file__).resolve().parents[1]


def _env():
    return {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "offline",
            "PYTHONPATH": os.pathsep.join([str(TESTS_DIR), os.environ.get("PYTHONPATH", "")])}


def _app(module: str, *args, cwd):
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=900,
                          env=_env(), cwd=cwd)


@pytest.fixture(scope="module")
def tiny_gemma_dir(tmp_path_factory, qa_feedback):
    from fgrlhf.policy.gemma import build_tiny_gemma3

    texts = [p for ex in qa_feedback[:60] for p in ex.predictions]
    return build_tiny_gemma3(tmp_path_factory.mktemp("tiny_gemma"), texts, vocab_size=800)


def _untimed(metrics_file: Path) -> dict[int, dict]:
    """Each step's metrics without the timings."""
    records = (json.loads(x) for x in metrics_file.read_text().splitlines())
    return {r["step"]: {k: v for k, v in r.items() if not k.startswith("time") and k != "step"} for r in records}


def _logprobs(model, ids):
    with torch.no_grad():
        return torch.log_softmax(model(input_ids=ids).logits, -1)


def test_lora_sft_on_causal_prompts_saves_a_merged_policy_and_its_adapters(tmp_path, tiny_gemma_dir):
    from transformers import AutoModelForCausalLM

    from fgrlhf.policy.lora import ADAPTERS_DIR, load_adapters

    out = tmp_path / "sft"
    res = _app("fgrlhf.cli.sft", f"hydra.run.dir={tmp_path}/hydra", f"policy.init={tiny_gemma_dir}",
               f"output={out}", "prompt_format=causal", "policy.max_prompt_tokens=160", "policy.lora.r=4",
               "policy.lora.alpha=8", "sft.epochs=1", "sft.batch_size=16", "sft.lr=5e-3", "sft.max_answer_tokens=32",
               "sft.bf16=false", "threads=1", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert summary["dev_loss"] < summary["dev_loss_before"]
    record = json.loads((out / "fgrlhf_sft.json").read_text())
    assert record["lora"]["r"] == 4 and record["prompt_format"] == "causal"
    merged = AutoModelForCausalLM.from_pretrained(out)  # a plain model: no PEFT needed
    assert not any("lora_" in n for n, _ in merged.named_parameters())
    adapted = load_adapters(AutoModelForCausalLM.from_pretrained(tiny_gemma_dir), out / ADAPTERS_DIR).eval()
    base = AutoModelForCausalLM.from_pretrained(tiny_gemma_dir)
    ids = torch.randint(3, 500, (2, 12))
    torch.testing.assert_close(_logprobs(merged, ids), _logprobs(adapted, ids), atol=1e-4, rtol=1e-4)
    assert (_logprobs(merged, ids) - _logprobs(base, ids)).abs().max() > 1e-3


FAST = ["experiment=tiny", "iterations=2", "task.prompts_per_iteration=2", "sampling.max_new_tokens=10",
        "policy.lora.r=4", "policy.lora.alpha=8", "ppo.lr=1e-3", "threads=1"]


@pytest.mark.parametrize("value", ["separate", "shared"])
def test_lora_resume_is_bit_exact_and_the_outputs_hold_adapters_and_a_merged_policy(tmp_path, tiny_gpt2_dir,
                                                                                     value):
    from transformers import AutoModelForCausalLM

    from fgrlhf.policy.lora import ADAPTER_CONFIG, ADAPTERS_DIR, load_adapters

    common = [*FAST, f"policy.init={tiny_gpt2_dir}", "checkpoint_every=1", f"policy.value={value}"]
    full = _app("fgrlhf.cli.train", *common, "iterations=3", f"hydra.run.dir={tmp_path}/full", cwd=tmp_path)
    assert full.returncode == 0, full.stderr[-3000:]
    part = _app("fgrlhf.cli.train", *common, "iterations=2", "save_policy=false", f"hydra.run.dir={tmp_path}/part",
                cwd=tmp_path)
    assert part.returncode == 0, part.stderr[-3000:]
    checkpoint = tmp_path / "part" / "checkpoint"
    # A checkpoint holds the adapters alone; the frozen weights are the run's policy.init.
    assert (checkpoint / ADAPTERS_DIR / ADAPTER_CONFIG).is_file() and not (checkpoint / "policy").exists()
    resumed = _app("fgrlhf.cli.train", *common, "iterations=3", f"resume={checkpoint}",
                   f"hydra.run.dir={tmp_path}/resumed", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]

    full_last, resumed_last = (_untimed(tmp_path / run / "metrics.jsonl")[2] for run in ("full", "resumed"))
    assert resumed_last == full_last  # bit for bit
    assert full_last["kl/sequence"] != 0.0  # the adapters moved the policy off its reference

    # The run's policy: merged (plain, loads without PEFT) and the adapters beside it.
    run = tmp_path / "resumed"
    merged = AutoModelForCausalLM.from_pretrained(run / "policy")
    assert not any("lora_" in n for n, _ in merged.named_parameters())
    adapted = load_adapters(AutoModelForCausalLM.from_pretrained(tiny_gpt2_dir), run / ADAPTERS_DIR).eval()
    ids = torch.randint(3, 1000, (2, 12))
    torch.testing.assert_close(_logprobs(merged, ids), _logprobs(adapted, ids), atol=1e-4, rtol=1e-4)
    full_adapters = AutoModelForCausalLM.from_pretrained(tmp_path / "full" / "policy")
    torch.testing.assert_close(_logprobs(full_adapters, ids), _logprobs(merged, ids), atol=0, rtol=0)


def test_resuming_a_lora_checkpoint_without_lora_is_refused(tmp_path, tiny_gpt2_dir):
    common = [*FAST, f"policy.init={tiny_gpt2_dir}", "checkpoint_every=1", "save_policy=false"]
    part = _app("fgrlhf.cli.train", *common, "iterations=1", f"hydra.run.dir={tmp_path}/part", cwd=tmp_path)
    assert part.returncode == 0, part.stderr[-3000:]
    res = _app("fgrlhf.cli.train", *common, "policy.lora.r=0", f"resume={tmp_path}/part/checkpoint",
               f"hydra.run.dir={tmp_path}/again", cwd=tmp_path)
    assert res.returncode != 0 and "policy.lora.r" in res.stderr

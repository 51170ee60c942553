"""Fixed-seed ``fgrlhf-train`` runs whose ``metrics.jsonl`` is pinned in ``golden/``.

A refactor must leave these runs' metrics as they are: ``test_pinned_runs.py`` reruns them
and compares every key except timings and the metrics listed in ``CORRECTED`` (figures whose
computation was fixed on purpose after the golden files were written).

Regenerate the golden files only for a deliberate change of behaviour, and say so in the
commit:  ``python tests/regression/pinned_runs.py`` (builds the tiny GPT-2 as the tests do).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
GOLDEN = HERE / "golden"

# name → overrides (besides policy.init, threads, the output folder).
RUNS: dict[str, list[str]] = {
    # The tiny preset as it ships: rules rewards, shared value head, 3 iterations.
    "tiny": ["experiment=tiny", "seed=0", "save_policy=false"],
    # Most of the trainer's switches at once: separate value model, adaptive KL with the k3
    # estimator, gradient accumulation, entropy bonus, warmup/decay, PPO-ptx, evaluation
    # during training (with the initial policy), checkpoints.
    "tiny_all_switches": [
        "experiment=tiny", "seed=1", "save_policy=false", "iterations=3", "policy.value=separate",
        "ppo.adaptive_kl=true", "ppo.kl_target=0.5", "ppo.kl_estimator=k3", "ppo.grad_accum=2",
        "ppo.entropy_coef=0.01", "ppo.warmup_steps=2", "ppo.total_steps=12", "ppo.ptx_coef=0.1",
        "ptx_per_iteration=2", "eval.every=2", "eval.questions=2", "checkpoint_every=2",
    ],
}

# Keys left out of the comparison: wall-clock timings, and metrics whose computation was
# corrected after the golden files were written (the value-loss clip fraction over-counted;
# reward/penalised used the KL coefficient after the adaptive controller's update).
CORRECTED = {"value/clip_frac", "reward/penalised"}


def compared(record: dict) -> dict:
    return {k: v for k, v in record.items() if k != "time" and not k.startswith("time/") and k not in CORRECTED}


def run(name: str, policy_dir: Path, out: Path) -> list[dict]:
    """Run ``RUNS[name]`` with one thread into ``out``; its metrics.jsonl records."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "offline"}
    cmd = [sys.executable, "-m", "fgrlhf.cli.train", *RUNS[name], f"policy.init={policy_dir}", "threads=1",
           f"hydra.run.dir={out}"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env, cwd=out.parent)
    if res.returncode != 0:
        raise RuntimeError(f"pinned run {name} failed:\n{res.stderr[-4000:]}")
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]


def build_policy(directory: Path) -> Path:
    """The tiny GPT-2 of the tests' ``tiny_gpt2_dir`` fixture."""
    from fgrlhf.data import load_feedback
    from fgrlhf.paths import DATA_DIR
    from fgrlhf.policy.tiny import build_tiny_gpt2

    examples = load_feedback(DATA_DIR / "qa_feedback" / "feedback.json")
    texts = [p for ex in examples[:60] for p in ex.predictions]
    return build_tiny_gpt2(directory, texts, vocab_size=1500, n_layer=2, n_embd=64, n_head=2)


if __name__ == "__main__":
    import tempfile

    GOLDEN.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        policy = build_policy(Path(tmp) / "tiny_gpt2")
        for name in RUNS:
            records = run(name, policy, Path(tmp) / name)
            (GOLDEN / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
            print(f"{name}: {len(records)} records → {GOLDEN / name}.jsonl")

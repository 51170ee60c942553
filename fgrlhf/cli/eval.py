"""``fgrlhf-eval``: the QA-Feedback metrics of a policy checkpoint on held-out questions.

    fgrlhf-eval checkpoint=runs/sft/minilm_seq2seq                  # test split, R1 + R2 + R3
    fgrlhf-eval checkpoint=outputs/train/.../policy split=dev questions=20

Answers are greedy (the paper's evaluation); the reward models come from the ``reward``
config group exactly as ``fgrlhf-train`` builds them. Writes ``summary.json`` and
``outputs.jsonl`` (one record per question: answer, segments and verdicts, scores) to the
run folder and prints the summary as one JSON line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hydra
from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, OmegaConf

from fgrlhf.cli.train import RewardConfig, TaskConfig
from fgrlhf.paths import CONF_DIR, register_resolvers, run_dir


@dataclass
class EvalAppConfig:
    checkpoint: str = MISSING  # the policy: a checkpoint path or hub id (or minilm_seq2seq | tiny_gpt2)
    kind: str = "auto"
    max_prompt_tokens: int = 256
    max_new_tokens: int = 64
    task: TaskConfig = field(default_factory=TaskConfig)
    reward: RewardConfig = field(default_factory=RewardConfig)
    split: str = "test"  # train | dev | test (the question split of fgrlhf-rm/-sft/-train)
    questions: int | None = None  # the first N questions of the split (default all)
    batch_size: int = 8
    device: str | None = None
    threads: int | None = None
    output: str | None = None  # default: the Hydra run folder


ConfigStore.instance().store(name="eval_schema", node=EvalAppConfig)


def evaluation_examples(task: TaskConfig, split: str, questions: int | None):
    """The examples of one part of the question split, optionally the first ``questions``."""
    from fgrlhf.data.tasks import qa_feedback_task, split_task

    if split not in ("train", "dev", "test"):
        raise ValueError(f"split must be train, dev or test, not {split!r}")
    _, parts = split_task(qa_feedback_task(task.prompts_file), task.dev_questions, task.test_questions,
                          task.split_seed)
    examples = parts[split]
    return examples[:questions] if questions else examples


def reward_values(rewards) -> dict[str, tuple[float, float] | float]:
    """What each segment earns in training, per category, for the HTML report: (error-free,
    error) rewards of a segment classifier, or the scale of a sequence-level score."""
    out: dict[str, tuple[float, float] | float] = {}
    for k, r in rewards.items():
        if hasattr(r, "positive") and hasattr(r, "negative"):
            out[k] = (float(r.positive), float(r.negative))
        elif hasattr(r, "scale"):
            out[k] = float(r.scale)
    return out


def evaluate_checkpoint(policy_path: str, examples, aggregator, out_dir: Path, kind: str = "auto",
                        max_prompt_tokens: int = 256, max_new_tokens: int = 64, batch_size: int = 8,
                        device: str | None = None) -> dict[str, Any]:
    """Greedy answers of ``policy_path`` on ``examples``, judged by ``aggregator``'s reward
    models; ``summary.json``, ``outputs.jsonl`` and ``rollouts.html`` (each answer with its
    segments coloured by each reward model's verdict) go to ``out_dir``."""
    import torch

    from fgrlhf.policy.checkpoint import base_checkpoint
    from fgrlhf.eval import evaluate_qa, items_from_eval_records, rollout_report, write_jsonl
    from fgrlhf.policy import Policy, SamplingConfig

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    policy = Policy.from_pretrained(base_checkpoint(policy_path), kind, max_prompt_tokens, device)
    greedy = SamplingConfig(max_new_tokens=max_new_tokens, do_sample=False, num_samples=1)
    summary, records = evaluate_qa(policy, examples, aggregator.rewards, greedy, batch_size=batch_size,
                                   segmenter=aggregator.segmenter)
    summary = {"policy": str(policy_path), "questions": len(examples), **summary}
    out_dir.mkdir(parents=True, exist_ok=True)
    write_jsonl(records, out_dir / "outputs.jsonl")
    rollout_report(items_from_eval_records(records, reward_values(aggregator.rewards)), out_dir / "rollouts.html",
                   title=f"{policy_path}: {len(examples)} questions")
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


def run(cfg: EvalAppConfig) -> dict[str, Any]:
    import torch
    import transformers

    from fgrlhf.cli.train import build_aggregator

    transformers.logging.set_verbosity_error()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    examples = evaluation_examples(cfg.task, cfg.split, cfg.questions)
    out = Path(cfg.output) if cfg.output else run_dir()
    return evaluate_checkpoint(cfg.checkpoint, examples, build_aggregator(cfg.reward), out, cfg.kind,
                               cfg.max_prompt_tokens, cfg.max_new_tokens, cfg.batch_size, cfg.device)


register_resolvers()


@hydra.main(config_path=str(CONF_DIR), config_name="eval", version_base="1.3")
def main(cfg) -> None:
    merged = OmegaConf.merge(OmegaConf.structured(EvalAppConfig), cfg)
    print(json.dumps(run(merged)))


if __name__ == "__main__":
    main()

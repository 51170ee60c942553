"""``fgrlhf-eval``: the QA-Feedback metrics of a policy checkpoint on held-out questions.

    fgrlhf-eval checkpoint=runs/sft/minilm_seq2seq                  # test part, R1 + R2 + R3
    fgrlhf-eval checkpoint=outputs/train/.../policy part=dev questions=20
    fgrlhf-eval checkpoint=runs/sft/gemma3_270m task.prompt_format=causal task.tokenizer=runs/sft/gemma3_270m \
        task.max_prompt_tokens=384 max_prompt_tokens=384 max_new_tokens=128    # a decoder-only policy

A policy whose training record says how it was prompted (``fgrlhf_sft.json``,
``fgrlhf_dpo.json``, or the fgrlhf-train run's ``.hydra/config.yaml`` beside ``policy/``) is
refused on prompts of another ``task.prompt_format``, with the settings to pass.

Answers are greedy (the paper's evaluation; ``num_beams=4`` for beam search,
``no_repeat_ngram_size=N`` to forbid repeated n-grams; summary.json records which); the reward models come from the ``reward``
config group exactly as ``fgrlhf-train`` builds them, the questions from the same split
(``split.seed``, ``split.dev_questions``, ``split.test_questions``) as fgrlhf-rm/-sft/-train.
Writes ``summary.json``, ``outputs.jsonl`` (one record per question: answer, segments and
verdicts, scores) and ``rollouts.html`` to the run folder and prints the summary as one
JSON line. The evaluation itself is ``fgrlhf.eval.checkpoint.evaluate_checkpoint``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from omegaconf import MISSING

from fgrlhf.app import hydra_app
from fgrlhf.config import RuntimeConfig, SplitConfig
from fgrlhf.paths import run_dir
from fgrlhf.train.config import RewardConfig, TaskConfig, set_up_runtime
from fgrlhf.train.rewards import build_aggregator
from fgrlhf.train.tasks import evaluation_examples


@dataclass
class EvalAppConfig(RuntimeConfig):
    RULES: ClassVar[dict[str, str]] = {"kind": "in auto causal seq2seq", "max_prompt_tokens": "> 0",
                                       "max_new_tokens": "> 0", "part": "in train dev test", "questions": "> 0",
                                       "batch_size": "> 0", "num_beams": "> 0", "no_repeat_ngram_size": ">= 0"}

    checkpoint: str = MISSING  # the policy: a checkpoint path or hub id (or minilm_seq2seq | tiny_gpt2)
    kind: str = "auto"
    max_prompt_tokens: int = 256
    max_new_tokens: int = 64
    task: TaskConfig = field(default_factory=TaskConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    reward: RewardConfig = field(default_factory=RewardConfig)
    part: str = "test"  # train | dev | test: the part of the question split evaluated on
    questions: int | None = None  # the first N questions of the part (default all)
    batch_size: int = 8
    num_beams: int = 1  # 1: greedy answers (the paper's evaluation); more: beam search
    no_repeat_ngram_size: int = 0  # > 0: no n-gram of this size twice in an answer (prompt not counted)
    output: str | None = None  # default: the Hydra run folder


def _run(cfg) -> dict:
    from fgrlhf.eval.checkpoint import check_prompt_format, evaluate_checkpoint, policy_source
    from fgrlhf.runlock import RunLock

    out = Path(cfg.output) if cfg.output else run_dir()
    policy_source(cfg.checkpoint)  # a missing checkpoint fails before any reward model loads
    if cfg.task.name == "qa_feedback":
        check_prompt_format(cfg.checkpoint, cfg.task.prompt_format)
    with RunLock(out, "fgrlhf-eval"):
        set_up_runtime(cfg.threads)
        examples = evaluation_examples(cfg.task, cfg.split, cfg.part, cfg.questions)
        return evaluate_checkpoint(cfg.checkpoint, examples, build_aggregator(cfg.reward), out, cfg.kind,
                                   cfg.max_prompt_tokens, cfg.max_new_tokens, cfg.batch_size, cfg.device,
                                   num_beams=cfg.num_beams, no_repeat_ngram_size=cfg.no_repeat_ngram_size)


main = hydra_app("fgrlhf-eval", "eval", EvalAppConfig, _run)

if __name__ == "__main__":
    main()

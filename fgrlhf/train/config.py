"""The schemas of a PPO run's pieces that several apps share: the task, the policy, the
reward and the evaluation during training. ``fgrlhf-train`` nests all of them,
``fgrlhf-eval`` the task and the reward, ``fgrlhf-pipeline`` builds the reward from
``conf/reward/``; the split, wandb and runtime pieces every app shares are in
``fgrlhf.config``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from omegaconf import MISSING

from fgrlhf.policy.lora import LoRAConfig


@dataclass
class TaskConfig:
    """Where the prompts come from; how they are split into train/held-out parts is the
    app's ``split`` (``fgrlhf.config.SplitConfig``), the same split as the reward models,
    the SFT policy and the toxicity scorer."""

    RULES: ClassVar[dict[str, str]] = {"name": "in qa_feedback rtp", "prompts_per_iteration": "> 0",
                                       "prompt_format": "in t5 causal causal_qpq", "max_prompt_tokens": "> 0"}

    name: str = "qa_feedback"  # qa_feedback | rtp
    prompts_file: str = MISSING
    prompts_per_iteration: int = 8
    # qa_feedback: how a question is shown (fgrlhf.data.prompt_format): t5 (the prompt file's
    # text) | causal (question, passages, "Answer:"; for decoder-only policies) | causal_qpq
    # (the same with the question again before "Answer:")
    prompt_format: str = "t5"
    # causal: passages keep their sentences most relevant to the question while the prompt
    # fits this many tokens of `tokenizer` (null: no cap)
    max_prompt_tokens: int | None = None
    tokenizer: str | None = None  # counts max_prompt_tokens: a checkpoint path, hub id or local init


@dataclass
class PolicyConfig:
    RULES: ClassVar[dict[str, str]] = {"kind": "in auto causal seq2seq", "max_prompt_tokens": "> 0",
                                       "value": "in separate shared"}

    init: str = "minilm_seq2seq"  # a checkpoint path or hub id, or minilm_seq2seq | tiny_gpt2
    kind: str = "auto"  # auto | causal | seq2seq
    max_prompt_tokens: int = 256
    value: str = "separate"  # separate | shared
    value_init: str | None = None  # separate value backbone (default: a copy of the policy)
    # LoRA adapters on frozen weights (r=0: full fine-tuning); the reference is then the
    # policy with its adapters off, and a separate value backbone trains adapters of its own
    lora: LoRAConfig = field(default_factory=LoRAConfig)


@dataclass
class RewardConfig:
    name: str = "fine_grained"
    models: dict[str, Any] = field(default_factory=dict)  # category → reward config (_target_ or name)
    weights: dict[str, float] = field(default_factory=dict)
    normalize: dict[str, Any] = field(default_factory=dict)  # category → {kind, mean, std}
    # category → {per_segment: sum | mean | words, min_segment_words: N, unit_words: W,
    #             placement: end | first | spread}
    # (fgrlhf.reward.aggregate.Shaping; default the paper's rule)
    shaping: dict[str, Any] = field(default_factory=dict)
    # name → reward config: scored and logged (monitor/reward/<name>), never optimised
    monitors: dict[str, Any] = field(default_factory=dict)
    sentence_splitter: str = "sentencizer"


@dataclass
class EvalConfig:
    """Evaluation on held-out prompts while training."""

    RULES: ClassVar[dict[str, str]] = {"every": ">= 0", "questions": "> 0", "batch_size": "> 0", "samples": "> 0",
                                       "top_p": "(0, 1]"}

    every: int = 0  # iterations between evaluations on held-out prompts (0: none)
    initial: bool = True  # with every > 0: also evaluate the initial policy (metrics.json eval_initial)
    split: str = "dev"  # the part of the split: qa_feedback dev | test; rtp eval
    questions: int = 20  # the first N prompts of that part
    batch_size: int = 8
    # rtp: continuations sampled per prompt (the paper: 25, nucleus 0.9) and toxicity scorers
    # other than the reward's (name → fgrlhf-toxicity checkpoint) that judge them too.
    samples: int = 25
    top_p: float = 0.9
    toxicity_scorers: dict[str, str] = field(default_factory=dict)


def set_up_runtime(threads: int | None) -> None:
    """What every app that runs models does first: quiet transformers, torch's CPU threads."""
    import torch
    import transformers

    transformers.logging.set_verbosity_error()
    if threads:
        torch.set_num_threads(threads)

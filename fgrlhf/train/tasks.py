"""The prompts of a task, split into parts exactly as the reward models, the SFT policy and
the toxicity scorer split them (same ``SplitConfig``), so that no held-out prompt trained
any of them."""

from __future__ import annotations

from collections.abc import Callable

from fgrlhf.config import SplitConfig
from fgrlhf.data.prompt_format import CAUSAL_FORMATS
from fgrlhf.train.config import TaskConfig


def load_task(task: TaskConfig, split: SplitConfig) -> dict[str, list]:
    """The task's prompts by part: qa_feedback ``train``/``dev``/``test`` (the question split
    of the reward models and SFT); rtp ``train``/``eval`` (the non-toxic prompts, split as the
    toxicity scorer was: no evaluation prompt's record ever trained it)."""
    if task.name == "qa_feedback":
        from fgrlhf.data.tasks import qa_feedback_task, split_task

        examples = qa_feedback_task(task.prompts_file, prompt_format=task.prompt_format,
                                    count_tokens=prompt_token_counter(task), max_prompt_tokens=task.max_prompt_tokens)
        return split_task(examples, split.dev_questions, split.test_questions, split.seed,
                          source=task.prompts_file)[1]
    if task.name == "rtp":
        from fgrlhf.data.rtp import load_rtp, rtp_task, split_rtp

        records = load_rtp(task.prompts_file)
        parts = split_rtp(records, split.eval_prompts, split.scorer_test, split.seed)
        return {"train": rtp_task(records, parts.train_prompts), "eval": rtp_task(records, parts.eval_prompts)}
    raise ValueError(f"task {task.name!r} is not available; expected qa_feedback or rtp")


def token_counter(tokenizer) -> Callable[[str], int]:
    """How many tokens a policy with ``tokenizer`` reads for a prompt (special tokens included,
    as ``Policy.encode_prompts`` adds them)."""
    return lambda text: len(tokenizer(text, add_special_tokens=True)["input_ids"])


def prompt_token_counter(task: TaskConfig) -> Callable[[str], int] | None:
    """The counter of ``task.max_prompt_tokens``: ``task.tokenizer``'s (None without a cap)."""
    if task.max_prompt_tokens is None:
        return None
    from fgrlhf.errors import ConfigError

    if task.prompt_format not in CAUSAL_FORMATS:
        raise ConfigError(f"task.max_prompt_tokens={task.max_prompt_tokens} caps causal prompts only "
                          f"(task.prompt_format={'|'.join(CAUSAL_FORMATS)}); the {task.prompt_format} format "
                          f"is the prompt file's text")
    if not task.tokenizer:
        raise ConfigError("task.max_prompt_tokens needs task.tokenizer: the policy's checkpoint, whose "
                          "tokenizer measures the prompts (e.g. task.tokenizer=${policy.init})")
    from transformers import AutoTokenizer

    from fgrlhf.paths import resolve_pretrained
    from fgrlhf.policy.checkpoint import base_checkpoint

    return token_counter(AutoTokenizer.from_pretrained(resolve_pretrained(base_checkpoint(task.tokenizer))))


def evaluation_examples(task: TaskConfig, split: SplitConfig, part: str, questions: int | None) -> list:
    """The QA-Feedback examples of one part of the question split (``train``, ``dev`` or
    ``test``), optionally the first ``questions``."""
    if task.name != "qa_feedback":
        raise ValueError(f"QA-Feedback evaluation needs task qa_feedback, not {task.name!r}")
    if part not in ("train", "dev", "test"):
        raise ValueError(f"part must be train, dev or test, not {part!r}")
    examples = load_task(task, split)[part]
    return examples[:questions] if questions else examples

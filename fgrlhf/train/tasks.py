"""The prompts of a task, split into parts exactly as the reward models, the SFT policy and
the toxicity scorer split them (same ``SplitConfig``), so that no held-out prompt trained
any of them."""

from __future__ import annotations

from fgrlhf.config import SplitConfig
from fgrlhf.train.config import TaskConfig


def load_task(task: TaskConfig, split: SplitConfig) -> dict[str, list]:
    """The task's prompts by part: qa_feedback ``train``/``dev``/``test`` (the question split
    of the reward models and SFT); rtp ``train``/``eval`` (the non-toxic prompts, split as the
    toxicity scorer was: no evaluation prompt's record ever trained it)."""
    if task.name == "qa_feedback":
        from fgrlhf.data.tasks import qa_feedback_task, split_task

        return split_task(qa_feedback_task(task.prompts_file), split.dev_questions, split.test_questions,
                          split.seed)[1]
    if task.name == "rtp":
        from fgrlhf.data.rtp import load_rtp, rtp_task, split_rtp

        records = load_rtp(task.prompts_file)
        parts = split_rtp(records, split.eval_prompts, split.scorer_test, split.seed)
        return {"train": rtp_task(records, parts.train_prompts), "eval": rtp_task(records, parts.eval_prompts)}
    raise ValueError(f"task {task.name!r} is not available; expected qa_feedback or rtp")


def evaluation_examples(task: TaskConfig, split: SplitConfig, part: str, questions: int | None) -> list:
    """The QA-Feedback examples of one part of the question split (``train``, ``dev`` or
    ``test``), optionally the first ``questions``."""
    if task.name != "qa_feedback":
        raise ValueError(f"QA-Feedback evaluation needs task qa_feedback, not {task.name!r}")
    if part not in ("train", "dev", "test"):
        raise ValueError(f"part must be train, dev or test, not {part!r}")
    examples = load_task(task, split)[part]
    return examples[:questions] if questions else examples

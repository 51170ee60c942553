"""Training tasks: prompts and the metadata reward models and metrics read.

A task example is ``(prompt, metadata)``; QA-Feedback's metadata holds the question, the
passages as ``[title, sentence_1, ...]`` lists (the layout of the feedback files, which the
reward models' evidence selection reads) and the reference answers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fgrlhf.data.qa_feedback import load_prompts
from fgrlhf.data.split import QuestionSplit, split_by_question


@dataclass
class TaskExample:
    prompt: str
    metadata: dict[str, Any] = field(default_factory=dict)


def qa_feedback_task(prompts_file: str | Path, sentence_segmenter=None, prompt_format: str = "t5",
                     count_tokens: Callable[[str], int] | None = None,
                     max_prompt_tokens: int | None = None) -> list[TaskExample]:
    """QA-Feedback prompts (``train.json`` / ``dev.json`` / ``test.json`` format).

    ``prompt_format``: ``t5`` keeps the file's own ``text``; ``causal`` (and ``causal_qpq``,
    the question again after the passages) lays the question and
    passages out for a decoder-only LM (``fgrlhf.data.prompt_format.causal_qa_prompt``),
    keeping the sentences most relevant to the question within ``max_prompt_tokens`` as
    ``count_tokens`` measures them."""
    from fgrlhf.data.prompt_format import PROMPT_FORMATS, causal_qa_prompt
    from fgrlhf.segment import SpacySentenceSegmenter

    if prompt_format not in PROMPT_FORMATS:
        raise ValueError(f"prompt_format must be one of {', '.join(PROMPT_FORMATS)}, not {prompt_format!r}")
    seg = sentence_segmenter or SpacySentenceSegmenter()
    prompts = load_prompts(prompts_file)
    out = []
    for p in prompts:
        passages = []
        for psg in p.passages:
            content = str(psg.get("content", ""))
            title = str(psg.get("wikipage", ""))
            passages.append([title, *(content[s:e] for s, e in seg(content))])
        text = p.text if prompt_format == "t5" else causal_qa_prompt(p.question, passages, count_tokens,
                                                                        max_prompt_tokens,
                                                                        repeat_question=prompt_format == "causal_qpq")
        out.append(TaskExample(text, {"question": p.question, "passages": passages, "references": p.references}))
    return out


def qa_prompt_texts(prompts_file: str | Path, prompt_format: str = "t5",
                    count_tokens: Callable[[str], int] | None = None,
                    max_prompt_tokens: int | None = None) -> tuple[list[str], list[str], list[list[str]]]:
    """The policy input, question and reference answers of every question of a prompts file,
    the input shown as ``prompt_format`` says (as ``qa_feedback_task`` shows it to PPO):
    ``(texts, questions, references)``, in file order."""
    if prompt_format == "t5":  # the file's own text: no sentence splitting needed
        prompts = load_prompts(prompts_file)
        return [p.text for p in prompts], [p.question for p in prompts], [list(p.references) for p in prompts]
    examples = qa_feedback_task(prompts_file, prompt_format=prompt_format, count_tokens=count_tokens,
                                max_prompt_tokens=max_prompt_tokens)
    return ([ex.prompt for ex in examples], [ex.metadata["question"] for ex in examples],
            [list(ex.metadata["references"]) for ex in examples])


def split_task(examples: list[TaskExample], dev: int, test: int, seed: int,
               source: str | Path = "") -> tuple[QuestionSplit, dict]:
    """The question split (same seed and sizes as the reward models and SFT) and the parts;
    ``source``: the prompt file, named when the sizes leave no training question."""
    split = split_by_question([ex.metadata["question"] for ex in examples], dev, test, seed, source=str(source))
    return split, {part: [examples[i] for i in getattr(split, part)] for part in ("train", "dev", "test")}

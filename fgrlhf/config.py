"""Configuration pieces every app shares, defined once: the data split, wandb, and the
runtime (device, threads). Each app's schema nests ``split`` and
``wandb`` and inherits ``RuntimeConfig``, so ``split.seed=1``, ``wandb.project=x``,
``device=cuda`` and ``threads=1`` mean the same thing in every app; the YAML files under
``conf/`` hold only what differs from these defaults."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar


@dataclass
class SplitConfig:
    """The seeded splits every app draws the same way, so that no app trains on another's
    held-out data. QA-Feedback: questions into train/dev/test (``fgrlhf.data.split``).
    RealToxicityPrompts: non-toxic evaluation prompts and the scorer's test records
    (``fgrlhf.data.rtp.split_rtp``)."""

    RULES: ClassVar[dict[str, str]] = {"dev_questions": ">= 0", "test_questions": ">= 0", "eval_prompts": ">= 0",
                                       "scorer_test": ">= 0"}

    seed: int = 0
    dev_questions: int = 40  # qa_feedback
    test_questions: int = 60  # qa_feedback
    eval_prompts: int = 500  # rtp: non-toxic prompts kept for policy evaluation (never scorer data)
    scorer_test: int = 500  # rtp: records whose texts measure the toxicity scorer


@dataclass
class WandbConfig:
    RULES: ClassVar[dict[str, str]] = {"mode": "in online offline disabled"}

    project: str | None = None  # None: offline, unless WANDB_PROJECT is set
    mode: str | None = None  # online | offline | disabled


@dataclass
class RuntimeConfig:
    """Where and how fast an app runs; inherited by every app schema (top-level keys)."""

    RULES: ClassVar[dict[str, str]] = {"threads": "> 0"}

    device: str | None = None  # null: CUDA when available, else CPU
    threads: int | None = None  # torch CPU threads (null: torch's default)

"""``fgrlhf-segment``: segment, align and reward a QA-Feedback file, and print a table.

Runs the dense-reward front half of the pipeline on real answers: every prediction is
tokenised by the policy tokenizer, decoded once with per-token offsets (as a rollout would
be), segmented at each granularity, aligned to the tokens that close each segment, scored
by the configured reward models and aggregated into a dense ``[B, T]`` reward. The table
also shows how the human error spans of QA-Feedback fall onto the segments (the label
balance the learned reward models will face). The work is ``fgrlhf.eval.segmentation``.

    fgrlhf-segment                                  # bundled 400 questions, MiniLM tokenizer
    fgrlhf-segment tokenizer=/path/to/t5 sentence_splitter=punkt
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from omegaconf import MISSING

from fgrlhf.app import hydra_app


@dataclass
class SegmentConfig:
    RULES: ClassVar[dict[str, str]] = {"min_words": ">= 0", "batch_size": "> 0"}

    feedback_file: str = MISSING
    tokenizer: str = "minilm"  # short name, local path or hub id
    sentence_splitter: str = "sentencizer"  # sentencizer | punkt | spacy:NAME
    min_words: int = 5
    batch_size: int = 64
    rewards: dict[str, Any] = field(default_factory=dict)
    weights: dict[str, float] = field(default_factory=dict)
    output: str | None = None  # write the table as JSON here too


def config_problems(cfg: SegmentConfig) -> list[str]:
    """Settings that are each in range but do not fit together, or name what is not there."""
    from fgrlhf.paths import resolve_pretrained
    from fgrlhf.toolkit.load import looks_like_path

    found = []
    unknown = sorted(set(cfg.weights) - set(cfg.rewards))
    if unknown:
        found.append(f"weights names no reward: {', '.join(unknown)} (rewards: {', '.join(cfg.rewards) or 'none'})")
    if cfg.sentence_splitter not in ("sentencizer", "punkt") and not cfg.sentence_splitter.startswith("spacy:"):
        found.append(f"sentence_splitter={cfg.sentence_splitter!r}: one of sentencizer, punkt, spacy:NAME")
    tokenizer = resolve_pretrained(cfg.tokenizer)
    if looks_like_path(tokenizer) and not Path(tokenizer).expanduser().is_dir():
        found.append(f"tokenizer={cfg.tokenizer}: no such folder (a short name, a local folder or a hub id)")
    return found


def _run(cfg) -> None:
    from fgrlhf.eval.segmentation import print_table, segmentation_table
    from fgrlhf.runlock import check_writable
    from fgrlhf.validate import validate

    validate(cfg, SegmentConfig, config_problems(cfg))
    if cfg.output:
        check_writable(Path(cfg.output).parent, "output's folder")
    summary = segmentation_table(cfg.feedback_file, cfg.tokenizer, cfg.sentence_splitter, cfg.min_words,
                                 cfg.batch_size, cfg.rewards, cfg.weights)
    print_table(summary)
    if cfg.output:
        with open(cfg.output, "w") as f:
            json.dump(summary, f, indent=2)
        print(f"table written to {cfg.output}")


main = hydra_app("fgrlhf-segment", "segment", SegmentConfig, _run)

if __name__ == "__main__":
    main()

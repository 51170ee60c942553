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
from typing import Any

from omegaconf import MISSING

from fgrlhf.app import hydra_app


@dataclass
class SegmentConfig:
    feedback_file: str = MISSING
    tokenizer: str = "minilm"  # short name, local path or hub id
    sentence_splitter: str = "sentencizer"  # sentencizer | punkt | spacy:NAME
    min_words: int = 5
    batch_size: int = 64
    rewards: dict[str, Any] = field(default_factory=dict)
    weights: dict[str, float] = field(default_factory=dict)
    output: str | None = None  # write the table as JSON here too


def _run(cfg) -> None:
    from fgrlhf.eval.segmentation import print_table, segmentation_table

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

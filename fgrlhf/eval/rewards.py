"""Metrics as reward models, for the monitor-only slot (``reward.monitors``): scored and
logged beside the optimised rewards, never optimised. A reward that is also a held-out
metric shows when the optimised rewards and the metric part ways."""

from __future__ import annotations

from collections.abc import Sequence

from fgrlhf.eval.qa import best_rouge_lsum, sentence_lines
from fgrlhf.reward.base import RewardInputs, SegmentScores
from fgrlhf.segment import Granularity, Span, make_sentence_segmenter


class RougeReward:
    """ROUGE-Lsum (0–100) of the whole answer against the example's reference answers
    (``metadata["references"]``); 0 for an example without references."""

    granularity = Granularity.SEQUENCE

    def __init__(self, sentence_splitter: str = "sentencizer") -> None:
        self.sentences = make_sentence_segmenter(sentence_splitter)

    def score(self, inputs: RewardInputs, spans: Sequence[Sequence[Span]]) -> SegmentScores:
        rows = []
        for text, meta, row in zip(inputs.texts, inputs.metadata, spans):
            refs = [sentence_lines(r, self.sentences) for r in meta.get("references", [])]
            value = best_rouge_lsum(sentence_lines(text, self.sentences), refs) if refs else 0.0
            rows.append([value or 0.0] * len(row))
        return SegmentScores.from_lists(rows)

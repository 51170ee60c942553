"""A reward model as a user would write it, in a module outside the fgrlhf package."""

from __future__ import annotations

from fgrlhf.reward import RewardInputs, SegmentScores
from fgrlhf.segment import Granularity


class DigitPenalty:
    """Sentence-level: −penalty for each sentence that contains a digit, else +bonus."""

    granularity = Granularity.SENTENCE

    def __init__(self, penalty: float = 1.0, bonus: float = 0.0) -> None:
        self.penalty = penalty
        self.bonus = bonus

    def score(self, inputs: RewardInputs, spans) -> SegmentScores:
        rows = [[-self.penalty if any(c.isdigit() for c in text[s:e]) else self.bonus for s, e in row]
                for text, row in zip(inputs.texts, spans)]
        return SegmentScores.from_lists(rows)


class CommaSegmenter:
    """A custom granularity: pieces between commas."""

    granularity = "comma"

    def __call__(self, text):
        import re

        return [(m.start(), m.end()) for m in re.finditer(r"[^,\s][^,]*?(?=\s*(,|$))", text)]

    def batch(self, texts):
        return [self(t) for t in texts]


class CommaPieceCount:
    """Scores each comma-separated piece 1.0; brings its own segmenter."""

    granularity = Granularity.SEQUENCE  # declared, but its own segmenter takes precedence

    def __init__(self) -> None:
        self.segmenter = CommaSegmenter()

    def score(self, inputs: RewardInputs, spans) -> SegmentScores:
        return SegmentScores.from_lists([[1.0] * len(row) for row in spans])


class WrongCount:
    """A broken reward model: returns one score too few."""

    granularity = Granularity.SENTENCE

    def score(self, inputs: RewardInputs, spans) -> SegmentScores:
        return SegmentScores.from_lists([[0.0] * max(len(row) - 1, 0) for row in spans])


class NaNReward:
    granularity = Granularity.SEQUENCE

    def score(self, inputs: RewardInputs, spans) -> SegmentScores:
        return SegmentScores.from_lists([[float("nan")] * len(row) for row in spans])


class NaNAfter:
    """Sequence-level: 1.0 per answer for ``calls`` batches, then NaN (a reward model going bad)."""

    granularity = Granularity.SEQUENCE

    def __init__(self, calls: int = 2) -> None:
        self.calls = calls

    def score(self, inputs: RewardInputs, spans) -> SegmentScores:
        self.calls -= 1
        value = 1.0 if self.calls >= 0 else float("nan")
        return SegmentScores.from_lists([[value] * len(row) for row in spans])


class RaisesAfter:
    """Sequence-level: 1.0 per answer for ``calls`` batches, then raises (a reward model
    whose service or file went away mid-run)."""

    granularity = Granularity.SEQUENCE

    def __init__(self, calls: int = 2) -> None:
        self.calls = calls

    def score(self, inputs: RewardInputs, spans) -> SegmentScores:
        self.calls -= 1
        if self.calls < 0:
            raise ConnectionError("the scoring service stopped answering")
        return SegmentScores.from_lists([[1.0] * len(row) for row in spans])

"""Model-free reward models: cheap, deterministic, and wired through the same contract.

They serve tests and examples, and as shaping terms in real runs (a length target, a
banned-word list). They are registered under short names, and instantiate through
``_target_`` like any user class.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from fgrlhf.reward.base import RewardInputs, SegmentScores
from fgrlhf.reward.registry import register_reward
from fgrlhf.segment.base import Granularity, Span


@register_reward("length")
class LengthReward:
    """Sequence-level reward for answer length in words: ``−|n − target| / target``.

    0 at the target length, −1 at an empty answer (which has no segment, so scores nothing)
    or at twice the target.
    """

    granularity = Granularity.SEQUENCE

    def __init__(self, target_words: int = 100, scale: float = 1.0) -> None:
        if target_words <= 0:
            raise ValueError("LengthReward: target_words must be positive")
        self.target_words = target_words
        self.scale = scale

    def score(self, inputs: RewardInputs, spans: Sequence[Sequence[Span]]) -> SegmentScores:
        rows = []
        for text, row in zip(inputs.texts, spans):
            n = sum(len(text[s:e].split()) for s, e in row)
            rows.append([-self.scale * abs(n - self.target_words) / self.target_words] * len(row))
        return SegmentScores.from_lists(rows)


@register_reward("keyword")
class KeywordReward:
    """Scores each segment by whether it contains one of ``keywords`` (whole words, any case).

    ``hit`` for a segment that does, ``miss`` for one that does not. With a negative ``hit``
    it is a banned-word penalty; with a positive one, a must-mention bonus.
    """

    def __init__(self, keywords: Sequence[str], granularity: str = "sentence",
                 hit: float = -1.0, miss: float = 0.0) -> None:
        if not keywords:
            raise ValueError("KeywordReward: give at least one keyword")
        self.granularity = Granularity(granularity)
        self.keywords = list(keywords)
        self.pattern = re.compile(r"\b(?:" + "|".join(re.escape(k) for k in keywords) + r")\b", re.IGNORECASE)
        self.hit = hit
        self.miss = miss

    def score(self, inputs: RewardInputs, spans: Sequence[Sequence[Span]]) -> SegmentScores:
        rows = [
            [self.hit if self.pattern.search(text, s, e) else self.miss for s, e in row]
            for text, row in zip(inputs.texts, spans)
        ]
        return SegmentScores.from_lists(rows)


@register_reward("repetition")
class RepetitionReward:
    """Penalises a segment that repeats an earlier segment of the same response.

    A segment whose set of lower-cased words overlaps an earlier segment's by at least
    ``threshold`` (Jaccard) scores ``penalty``; others score ``bonus``. A crude, model-free
    stand-in for the ``Redundant`` error category.
    """

    def __init__(self, granularity: str = "subsentence", threshold: float = 0.8,
                 penalty: float = -1.0, bonus: float = 0.0) -> None:
        self.granularity = Granularity(granularity)
        self.threshold = threshold
        self.penalty = penalty
        self.bonus = bonus

    def score(self, inputs: RewardInputs, spans: Sequence[Sequence[Span]]) -> SegmentScores:
        rows = []
        for text, row in zip(inputs.texts, spans):
            seen: list[set[str]] = []
            out = []
            for s, e in row:
                words = set(re.findall(r"\w+", text[s:e].lower()))
                repeated = any(
                    words and len(words & prev) / len(words | prev) >= self.threshold for prev in seen
                )
                out.append(self.penalty if repeated else self.bonus)
                seen.append(words)
            rows.append(out)
        return SegmentScores.from_lists(rows)

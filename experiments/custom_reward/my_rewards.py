"""A reward model written outside fgrlhf: a new error category at a granularity of its own.

**Redundancy at the clause level.** A clause is a piece of a sentence between `,` `;` `:`
or a coordinating "and"/"but" that starts a new clause; it is redundant when most of its
content words (≥ ``threshold``) already appeared earlier in the answer. Redundant clauses
earn ``negative``, the others ``positive``, so the policy learns *where* it repeated itself,
not just that the answer as a whole was repetitive. The paper folds redundancy into R1
(relevance); here it becomes a category of its own with its own weight.

fgrlhf needs nothing from this module but the two methods of the contract: ``granularity``
plus ``score(inputs, spans)``, and (for a granularity fgrlhf does not have) a ``segmenter``
with ``batch(texts) -> spans``. It is named in ``conf/reward/fine_grained_redundancy.yaml``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from fgrlhf.reward import RewardInputs, SegmentScores

# Function words carry no content: a clause is judged by the rest.
STOPWORDS = frozenset(
    "a an the and or but of to in on at for with by from as is are was were be been being it its "
    "this that these those which who whom whose what when where why how not no so than then there "
    "their they them he she his her we our you your i also can could may might will would".split())
WORD = re.compile(r"[A-Za-z0-9]+(?:'[a-z]+)?")
# A clause ends at , ; : or a sentence end, or before " and " / " but " (the conjunction
# opens the next clause).
CLAUSE_END = re.compile(r"[,;:.!?](?=\s|$)|(?=\s(?:and|but)\s)")


def content_words(text: str) -> list[str]:
    return [w for w in (m.group().lower() for m in WORD.finditer(text)) if w not in STOPWORDS]


class ClauseSegmenter:
    """Char spans of clauses: sorted, non-overlapping, starting and ending on non-space
    characters, covering all of the text's non-space content (fgrlhf's segmenter contract)."""

    granularity = "clause"

    def __call__(self, text: str) -> list[tuple[int, int]]:
        spans, start = [], 0
        cuts = [m.end() for m in CLAUSE_END.finditer(text)] + [len(text)]
        for cut in cuts:
            piece = text[start:cut]
            if piece.strip():
                lead = len(piece) - len(piece.lstrip())
                spans.append((start + lead, start + len(piece.rstrip())))
            start = cut
        return spans

    def batch(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        return [self(t) for t in texts]


class ClauseRedundancy:
    """−``negative`` for a clause whose content words mostly appeared before, +``positive``
    otherwise. Clauses with fewer than ``min_words`` content words are never redundant."""

    granularity = "clause"

    def __init__(self, positive: float = 0.1, negative: float = -0.3, threshold: float = 0.8,
                 min_words: int = 2) -> None:
        self.positive, self.negative = positive, negative
        self.threshold, self.min_words = threshold, min_words
        self.segmenter = ClauseSegmenter()

    def redundant(self, text: str, spans: Sequence[tuple[int, int]]) -> list[bool]:
        seen: set[str] = set()
        out = []
        for s, e in spans:
            words = content_words(text[s:e])
            repeated = sum(w in seen for w in words)
            out.append(len(words) >= self.min_words and repeated / len(words) >= self.threshold)
            seen.update(words)
        return out

    def score(self, inputs: RewardInputs, spans) -> SegmentScores:
        rows = [[self.negative if r else self.positive for r in self.redundant(text, row)]
                for text, row in zip(inputs.texts, spans)]
        return SegmentScores.from_lists(rows)

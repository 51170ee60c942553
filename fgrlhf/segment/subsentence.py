"""Sub-sentence segmentation with the rule of Wu et al. 2023 (relevance reward, R1)."""

from __future__ import annotations

from collections.abc import Sequence

from fgrlhf.segment.base import Granularity, Segmenter, Span, word_spans

# A piece may end after a word ending in one of these characters.
PIECE_END_CHARS = frozenset(",;!?")


def subsentence_starts(words: Sequence[str], min_words: int = 5) -> list[int]:
    """Indices of the words that start a piece of one sentence (always including 0).

    A new piece may start at word i ≥ 1 only if word i−1 ends in ``, ; ! ?`` and more than
    ``min_words`` words remain (n − i ≥ min_words + 1). If the piece that would close there
    has fewer than ``min_words`` words: when it is the sentence's first piece, no split;
    otherwise that short piece's start moves to i, i.e. it merges into the piece before.
    Otherwise split at i.
    """
    n = len(words)
    starts = [0]
    for i in range(1, n):
        if words[i - 1][-1] not in PIECE_END_CHARS or n - i <= min_words:
            continue
        if i - starts[-1] >= min_words:
            starts.append(i)
        elif starts[-1] > 0:
            starts[-1] = i
    return starts


def split_sentence(text: str, sentence: Span, min_words: int = 5) -> list[Span]:
    """The sub-sentence pieces of one sentence span, as char spans over ``text``."""
    words = word_spans(text, *sentence)
    if not words:
        return []
    starts = subsentence_starts([text[s:e] for s, e in words], min_words)
    ends = [*starts[1:], len(words)]
    return [(words[a][0], words[b - 1][1]) for a, b in zip(starts, ends)]


class SubSentenceSegmenter:
    """Sentences from ``sentences`` (a sentence segmenter), each cut into pieces by the rule."""

    granularity = Granularity.SUBSENTENCE

    def __init__(self, sentences: Segmenter, min_words: int = 5) -> None:
        if sentences.granularity != Granularity.SENTENCE:
            raise ValueError("SubSentenceSegmenter needs a sentence segmenter to build on")
        self.sentences = sentences
        self.min_words = min_words

    def __call__(self, text: str) -> list[Span]:
        return self.batch([text])[0]

    def batch(self, texts: Sequence[str]) -> list[list[Span]]:
        return [
            self.from_sentences(text, sents)
            for text, sents in zip(texts, self.sentences.batch(texts))
        ]

    def from_sentences(self, text: str, sentences: Sequence[Span]) -> list[Span]:
        """Pieces of ``text`` given its sentence spans (lets callers split sentences once)."""
        return [p for sent in sentences for p in split_sentence(text, sent, self.min_words)]

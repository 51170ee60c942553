"""Segmenters (text → char spans per granularity) and span → policy-token alignment."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from fgrlhf.segment.align import DecodedResponses, align_spans, closing_tokens, decode_with_offsets
from fgrlhf.segment.base import Granularity, Segmenter, Span, check_spans, strip_span, word_spans
from fgrlhf.segment.sentence import PunktSentenceSegmenter, SpacySentenceSegmenter
from fgrlhf.segment.sequence import SequenceSegmenter
from fgrlhf.segment.subsentence import SubSentenceSegmenter, split_sentence, subsentence_starts


def make_sentence_segmenter(splitter: str = "sentencizer", punkt_train_text: str | None = None) -> Segmenter:
    """A sentence segmenter by name.

    ``sentencizer`` (default): spaCy's rule-based sentencizer, no model file. ``punkt``: nltk
    Punkt (untrained, or trained on ``punkt_train_text``). ``spacy:NAME``: an installed spaCy
    pipeline or a local path, e.g. ``spacy:en_core_web_sm``.
    """
    if splitter == "sentencizer":
        return SpacySentenceSegmenter()
    if splitter == "punkt":
        return PunktSentenceSegmenter(punkt_train_text)
    if splitter.startswith("spacy:"):
        return SpacySentenceSegmenter(splitter.removeprefix("spacy:"))
    raise ValueError(f"unknown sentence splitter {splitter!r}; use sentencizer, punkt or spacy:NAME")


class MultiGranularitySegmenter:
    """Segments texts at several granularities, splitting sentences only once.

    Sub-sentence pieces are cut from the same sentence spans that the sentence granularity
    returns, so R1's pieces always nest inside R2's sentences.
    """

    def __init__(self, sentences: Segmenter | None = None, min_words: int = 5) -> None:
        self.sentences = sentences if sentences is not None else SpacySentenceSegmenter()
        self.subsentences = SubSentenceSegmenter(self.sentences, min_words)
        self.sequence = SequenceSegmenter()

    def __call__(self, texts: Sequence[str], granularities: Iterable[Granularity | str]
                 ) -> dict[Granularity, list[list[Span]]]:
        wanted = {Granularity(g) for g in granularities}
        out: dict[Granularity, list[list[Span]]] = {}
        if wanted & {Granularity.SENTENCE, Granularity.SUBSENTENCE}:
            sents = self.sentences.batch(texts)
            if Granularity.SENTENCE in wanted:
                out[Granularity.SENTENCE] = sents
            if Granularity.SUBSENTENCE in wanted:
                out[Granularity.SUBSENTENCE] = [
                    self.subsentences.from_sentences(t, s) for t, s in zip(texts, sents)
                ]
        if Granularity.SEQUENCE in wanted:
            out[Granularity.SEQUENCE] = self.sequence.batch(texts)
        return out


__all__ = [
    "DecodedResponses",
    "Granularity",
    "MultiGranularitySegmenter",
    "PunktSentenceSegmenter",
    "Segmenter",
    "SequenceSegmenter",
    "Span",
    "SpacySentenceSegmenter",
    "SubSentenceSegmenter",
    "align_spans",
    "check_spans",
    "closing_tokens",
    "decode_with_offsets",
    "make_sentence_segmenter",
    "split_sentence",
    "strip_span",
    "subsentence_starts",
    "word_spans",
]

"""Sentence segmenters: spaCy (rule-based sentencizer or a full pipeline) and nltk Punkt.

None of them downloads anything. The default, spaCy's rule-based ``sentencizer`` on a blank
English pipeline, needs no model file; a user with a trained pipeline installed (e.g.
``en_core_web_sm``, the parser the paper used) names it instead. Punkt runs untrained, or
trained locally on text the user passes (never the nltk downloader).
"""

from __future__ import annotations

from collections.abc import Sequence

from fgrlhf.segment.base import Granularity, Span, strip_span


class SpacySentenceSegmenter:
    """Sentence spans from a spaCy pipeline.

    ``model=None`` builds ``spacy.blank("en")`` + ``sentencizer``. Any other value is passed to
    ``spacy.load`` (an installed package name or a local path); components other than those
    that set sentence boundaries are disabled for speed.
    """

    granularity = Granularity.SENTENCE

    def __init__(self, model: str | None = None, batch_size: int = 256) -> None:
        import spacy

        if model is None:
            self.nlp = spacy.blank("en")
            self.nlp.add_pipe("sentencizer")
        else:
            try:
                self.nlp = spacy.load(model, exclude=["ner", "lemmatizer", "textcat"])
            except OSError as err:
                raise OSError(
                    f"spaCy pipeline {model!r} is not installed; install it (e.g. `pip install "
                    f"{model}`) or use the default rule-based sentencizer (model=None)"
                ) from err
        self.model = model
        self.batch_size = batch_size

    def __call__(self, text: str) -> list[Span]:
        return self.batch([text])[0]

    def batch(self, texts: Sequence[str]) -> list[list[Span]]:
        out: list[list[Span]] = []
        for text, doc in zip(texts, self.nlp.pipe(texts, batch_size=self.batch_size)):
            spans = []
            for sent in doc.sents:
                # spaCy keeps runs of whitespace as tokens, so a sentence may start or end
                # with one; segments never do.
                span = strip_span(text, sent.start_char, sent.end_char)
                if span is not None:
                    spans.append(span)
            out.append(spans)
        return out


class PunktSentenceSegmenter:
    """Sentence spans from nltk's Punkt, untrained or trained on ``train_text``.

    ``nltk.sent_tokenize`` needs the ``punkt_tab`` download; this builds the tokenizer
    directly, so it works offline.
    """

    granularity = Granularity.SENTENCE

    def __init__(self, train_text: str | None = None) -> None:
        from nltk.tokenize.punkt import PunktSentenceTokenizer

        self.tokenizer = PunktSentenceTokenizer(train_text) if train_text else PunktSentenceTokenizer()

    def __call__(self, text: str) -> list[Span]:
        spans = []
        for s, e in self.tokenizer.span_tokenize(text):
            span = strip_span(text, s, e)
            if span is not None:
                spans.append(span)
        return spans

    def batch(self, texts: Sequence[str]) -> list[list[Span]]:
        return [self(t) for t in texts]

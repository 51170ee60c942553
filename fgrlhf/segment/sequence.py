"""The whole response as one segment, so holistic rewards are one more granularity."""

from __future__ import annotations

from collections.abc import Sequence

from fgrlhf.segment.base import Granularity, Span, strip_span


class SequenceSegmenter:
    """One span from the first to the last non-space character; none for an empty text."""

    granularity = Granularity.SEQUENCE

    def __call__(self, text: str) -> list[Span]:
        span = strip_span(text, 0, len(text))
        return [] if span is None else [span]

    def batch(self, texts: Sequence[str]) -> list[list[Span]]:
        return [self(t) for t in texts]

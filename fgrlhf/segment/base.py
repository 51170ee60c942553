"""What a segment is, and the contract every segmenter follows."""

from __future__ import annotations

import re
from collections.abc import Sequence
from enum import Enum
from typing import Protocol, runtime_checkable

# A segment is a half-open character span [start, end) over the generated text. Spans of
# one text are sorted, do not overlap, start and end on non-space characters, and together
# cover every non-space character of the text.
Span = tuple[int, int]

_NON_SPACE = re.compile(r"\S+")


class Granularity(str, Enum):
    """How finely a reward model judges a response: the paper's three densities."""

    SUBSENTENCE = "subsentence"
    SENTENCE = "sentence"
    SEQUENCE = "sequence"


@runtime_checkable
class Segmenter(Protocol):
    """Splits texts into char spans at one granularity."""

    granularity: Granularity

    def __call__(self, text: str) -> list[Span]: ...

    def batch(self, texts: Sequence[str]) -> list[list[Span]]: ...


def strip_span(text: str, start: int, end: int) -> Span | None:
    """Shrink [start, end) to its first and last non-space characters; None if all space."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end) if start < end else None


def word_spans(text: str, start: int = 0, end: int | None = None) -> list[Span]:
    """Char spans of the whitespace-separated words of ``text[start:end]``."""
    stop = len(text) if end is None else end
    return [(m.start(), m.end()) for m in _NON_SPACE.finditer(text, start, stop)]


def check_spans(text: str, spans: Sequence[Span]) -> None:
    """Raise ValueError unless ``spans`` satisfy the segment contract for ``text``."""
    prev_end = 0
    for i, (s, e) in enumerate(spans):
        if not (prev_end <= s < e <= len(text)):
            raise ValueError(f"span {i} {(s, e)} is out of order or out of range (len {len(text)})")
        if text[s].isspace() or text[e - 1].isspace():
            raise ValueError(f"span {i} {(s, e)} starts or ends on whitespace")
        if text[prev_end:s].strip():
            raise ValueError(f"non-space text before span {i} is not covered: {text[prev_end:s]!r}")
        prev_end = e
    if text[prev_end:].strip():
        raise ValueError(f"non-space text after the last span is not covered: {text[prev_end:]!r}")

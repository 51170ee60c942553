"""Texts as bags of words: the lower-cased ``\\w+`` multisets that match answer pieces to
passage sentences (R3's information coverage, the evidence a reward model reads first)."""

from __future__ import annotations

import re
from collections import Counter

WORD = re.compile(r"\w+")


def word_bag(text: str) -> Counter:
    """The lower-cased words (``\\w+`` runs) of ``text`` with their counts."""
    return Counter(w.lower() for w in WORD.findall(text))


def containment(piece: Counter, sentence: Counter) -> float:
    """Share of the piece's word occurrences found in the sentence (multiset, lower-cased)."""
    total = sum(piece.values())
    return sum((piece & sentence).values()) / total if total else 0.0

"""Word bags and containment, counted by hand."""

from __future__ import annotations

from collections import Counter

import pytest

from fgrlhf.segment.words import containment, word_bag


def test_word_bag_counts_lower_cased_word_runs():
    # punctuation and whitespace separate words and are not words; underscores and digits are
    assert word_bag("The sky, the SKY! snake_case 42") == Counter(
        {"the": 2, "sky": 2, "snake_case": 1, "42": 1})
    assert word_bag(" ... ") == Counter()


def test_containment():
    assert containment(word_bag("The sky is blue"), word_bag("the SKY is very blue today")) == 1.0
    assert containment(word_bag("a a b"), word_bag("a b")) == pytest.approx(2 / 3)
    assert containment(word_bag("sky sea"), word_bag("grass")) == 0.0
    assert containment(Counter(), word_bag("anything")) == 0.0  # an empty piece is contained nowhere

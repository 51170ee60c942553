"""Ranking-model training pairs: reference answers, length-balanced weights, margins."""

from __future__ import annotations

import pytest

from fgrlhf.data.qa_feedback import Feedback, FeedbackExample
from fgrlhf.data.rm_examples import RankingExample, completeness_examples, preference_examples
from fgrlhf.data.rm_pairs import (
    PairsConfig,
    coverage_pairs,
    is_plain,
    length_balanced_weights,
    training_pairs,
    with_corrected_answer,
    with_reference_coverage,
)
from fgrlhf.segment import MultiGranularitySegmenter

PASSAGES = [["T", "The sky is blue during the day.", "Grass is green in spring.", "Snow is white and cold."]]


@pytest.fixture(scope="module")
def segmenter():
    return MultiGranularitySegmenter()


def _record(preds, corrected, gold, preference=(1, 1, 1, 1, 1, 1)):
    return FeedbackExample(0, "What colours?", PASSAGES, gold, list(preds), Feedback([], [], corrected),
                           list(preference))


def test_coverage_pairs_skip_ties():
    assert coverage_pairs([0.5, 1.0, 0.0, 1.0]) == [(1, 0), (0, 2), (3, 0), (1, 2), (3, 2)]
    assert coverage_pairs([0.2, 0.2]) == []


def test_reference_answers_join_the_coverage_ranking(segmenter):
    corrected = "The sky is blue during the day. Grass is green in spring."
    preds = ["The sky is blue during the day.", "Snow is white and cold.", "Nothing here.",
             "Grass is green in spring."]
    gold = "Grass is green in spring, and snow is white and cold."
    rec = _record(preds, corrected, gold)
    (ex,) = completeness_examples([rec], segmenter)
    assert ex.scores == [0.5, 0.0, 0.0, 0.5]
    out = with_reference_coverage(ex, rec, segmenter, 0.8)
    # corrected covers both required sentences; gold's pieces: "Grass is green in spring," matches,
    # "and snow is white and cold." matches snow (not required) → 0.5
    assert out.answers[4:] == [corrected, gold]
    assert out.scores == [0.5, 0.0, 0.0, 0.5, 1.0, 0.5]
    assert (4, 0) in out.pairs and (4, 5) in out.pairs and (5, 1) in out.pairs
    assert (0, 3) not in out.pairs and (3, 0) not in out.pairs  # equal coverage
    assert len(out.pairs) == 11  # 15 pairs of 6 answers minus 4 ties (0=3, 0=5, 3=5, 1=2)


def test_corrected_answer_beats_prediction_1():
    rec = _record(["a", "b", "c", "d"], "a fixed", "g", preference=(1, 0, 0, 0, 0, 2))
    (ex,) = preference_examples([rec])
    out = with_corrected_answer(ex, rec)
    assert out.answers == ["a", "b", "c", "d", "a fixed"]
    assert out.pairs == [(0, 1), (3, 2), (4, 0)]
    with pytest.raises(ValueError, match="question 0 paired with feedback record 7"):
        with_corrected_answer(ex, FeedbackExample(7, "q", PASSAGES, "g", ["a"] * 4, Feedback([], [], "x"), [0] * 6))


def test_length_balanced_weights_by_hand():
    # words: 1, 2, 3, 3. Longer wins (2,0), (1,0); shorter wins (0,3); equal (2,3)
    ex = RankingExample(0, "q", [], ["a", "a b", "a b c", "x y z"], pairs=[(2, 0), (1, 0), (0, 3), (2, 3)])
    ex2 = RankingExample(1, "q", [], ["a b c", "a"], pairs=[(0, 1)])
    # with ex2's (0,1): 3 longer-wins, 1 shorter-wins, 4 decided → longer 4 / 6, shorter 4 / 2, equal 1
    w, w2 = length_balanced_weights([ex, ex2])
    assert w == pytest.approx([2 / 3, 2 / 3, 2.0, 1.0])
    assert w2 == pytest.approx([2 / 3])
    # one side empty: nothing to balance
    assert length_balanced_weights([ex2]) == [[1.0]]


def test_training_pairs_weights_and_margins(segmenter):
    ex = RankingExample(0, "q", [], ["w " * 10, "w " * 11, "w " * 30], pairs=[(1, 0), (2, 0), (0, 2)],
                        scores=[0.5, 1.0, 0.0])
    plain = training_pairs([ex], [], "completeness", PairsConfig())
    assert plain == [ex]
    assert is_plain(PairsConfig()) and not is_plain(PairsConfig(matched_weight=2.0))
    out = training_pairs([ex], [], "completeness", PairsConfig(matched_weight=3.0, coverage_margin=2.0))[0]
    assert out.weights == [3.0, 1.0, 1.0]  # only (1, 0) is length-matched
    assert out.margins == pytest.approx([1.0, -1.0, 1.0])  # 2 × (c_w − c_l)
    balanced = training_pairs([ex], [], "completeness", PairsConfig(balance_length=True))[0]
    # longer wins (1,0), (2,0); shorter wins (0,2): 3 decided → 3/4 and 3/2
    assert balanced.weights == [0.75, 0.75, 1.5]
    assert balanced.margins == []
    with pytest.raises(ValueError, match="only completeness has coverage"):
        training_pairs([ex], [], "preference", PairsConfig(coverage_margin=1.0))

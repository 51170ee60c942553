"""Reward-model example builders, on hand-made records and on the bundled data."""

from __future__ import annotations

import pytest

from fgrlhf.data.qa_feedback import ErrorSpan, Feedback, FeedbackExample, MissingInfo
from fgrlhf.data.rm_examples import (
    CORRECTED,
    ERROR,
    GOLD,
    IGNORE,
    NO_ERROR,
    completeness_examples,
    factuality_examples,
    grounding_evidence,
    no_error_examples,
    preference_examples,
    relevance_examples,
)
from fgrlhf.data.split import split_by_question
from fgrlhf.segment import MultiGranularitySegmenter


@pytest.fixture(scope="module")
def segmenter():
    return MultiGranularitySegmenter()


def _example(pred1, errors=(), missing=(), corrected=None, passages=None, preds=None, preference=(1, 1, 1, 1, 1, 1)):
    passages = passages or [["Title", "The sky is blue.", "Grass is green."]]
    preds = preds or [pred1, "b", "c", "d"]
    return FeedbackExample(0, "What colour is the sky?", passages, "gold", list(preds),
                           Feedback(list(errors), list(missing), corrected or pred1), list(preference))


def test_relevance_labels_and_min_words(segmenter):
    # Two sentences: "The sky is blue." and a second, irrelevant one.
    text = "The sky is blue. My cat likes to sleep all day long in the sun."
    second = text.index("My")
    ex = _example(text, errors=[ErrorSpan("Irrelevant", second, len(text))])
    (r1,) = relevance_examples([ex], segmenter)
    assert r1.spans == [(0, 16), (second, len(text))]
    assert r1.labels == [NO_ERROR, ERROR]
    # The same span with min_error_words above its 12 words is dropped.
    (r1,) = relevance_examples([ex], segmenter, min_error_words=13)
    assert r1.labels == [NO_ERROR, NO_ERROR]


def test_factuality_ignores_sentences_with_only_relevance_errors(segmenter):
    text = "The sky is green today. My cat likes to sleep all day long in the sun. Grass is green."
    s2 = text.index("My")
    s3 = text.index("Grass")
    ex = _example(text, errors=[ErrorSpan("Wrong-Grounding", 11, 16), ErrorSpan("Irrelevant", s2, s3 - 1)])
    (r2,) = factuality_examples([ex], segmenter)
    assert r2.labels == [ERROR, IGNORE, NO_ERROR]
    # A sentence with both kinds is a factuality error.
    ex = _example(text, errors=[ErrorSpan("Unverifiable", s2, s2 + 2), ErrorSpan("Irrelevant", s2 + 3, s3 - 1)])
    (r2,) = factuality_examples([ex], segmenter)
    assert r2.labels == [NO_ERROR, ERROR, NO_ERROR]


def test_preference_pairs_skip_ties():
    ex = _example("a", preference=(1, 2, 0, 1, 2, 0))
    (p,) = preference_examples([ex])
    # order 1v2, 1v3, 1v4, 2v3, 2v4, 3v4 → (0,1), (2,0), tie, (1,2), (3,1), tie
    assert p.pairs == [(0, 1), (2, 0), (1, 2), (3, 1)]
    assert preference_examples([_example("a", preference=(0,) * 6)]) == []


def test_completeness_coverage_by_hand(segmenter):
    passages = [["T", "The sky is blue during the day.", "Grass is green in spring.", "Snow is white and cold."]]
    corrected = "The sky is blue during the day. Grass is green in spring."
    preds = [
        "The sky is blue during the day.",  # covers 1 of 2 required
        "The sky is blue during the day. Grass is green in spring.",  # covers 2 of 2
        "Snow is white and cold.",  # covers 0 (not required)
        "The sky is blue during the day. Grass is green in spring.",  # 2 of 2, ties with pred 2
    ]
    ex = _example(preds[0], corrected=corrected, passages=passages, preds=preds)
    (r3,) = completeness_examples([ex], segmenter)
    assert r3.scores == [0.5, 1.0, 0.0, 1.0]
    assert sorted(r3.pairs) == sorted([(1, 0), (0, 2), (3, 0), (1, 2), (3, 2)])
    # Missing-Answer marks snow as required too: now 3 required sentences.
    ex = _example(preds[0], corrected=corrected, passages=passages, preds=preds,
                  missing=[MissingInfo("Missing-Answer", 1, (3,))])
    (r3,) = completeness_examples([ex], segmenter)
    assert r3.scores == pytest.approx([1 / 3, 2 / 3, 1 / 3, 2 / 3])
    # Minor-only information that prediction 1 does not cover is not required.
    ex = _example(preds[0], corrected=corrected, passages=passages, preds=preds,
                  missing=[MissingInfo("Missing-Minor-Auxiliary", 1, (2,))])
    (r3,) = completeness_examples([ex], segmenter)
    assert r3.scores == [1.0, 1.0, 0.0, 1.0]


def test_bundled_data_statistics(qa_feedback, segmenter):
    r1 = relevance_examples(qa_feedback, segmenter)
    r2 = factuality_examples(qa_feedback, segmenter)
    labels1 = [lab for e in r1 for lab in e.labels]
    labels2 = [lab for e in r2 for lab in e.labels if lab != IGNORE]
    assert len(r1) == 400 and 2000 < len(labels1) < 2500
    assert 0.4 < labels1.count(ERROR) / len(labels1) < 0.6
    assert 0.6 < labels2.count(NO_ERROR) / len(labels2) < 0.7
    pref = preference_examples(qa_feedback)
    assert sum(len(e.pairs) for e in pref) > 2000


def test_split_is_by_question_seeded_and_disjoint():
    qs = [f"q{i}" for i in range(100)]
    a = split_by_question(qs, dev=10, test=20, seed=3)
    b = split_by_question(qs, dev=10, test=20, seed=3)
    c = split_by_question(qs, dev=10, test=20, seed=4)
    assert a == b and a.test != c.test
    assert len(a.train) == 70 and len(a.dev) == 10 and len(a.test) == 20
    assert set(a.train) | set(a.dev) | set(a.test) == set(range(100))
    assert not (set(a.train) & set(a.test)) and not (set(a.dev) & set(a.test))
    with pytest.raises(ValueError):
        split_by_question(qs, dev=50, test=50)


def test_grounding_evidence_reads_the_ids_the_explanation_names():
    assert grounding_evidence('{"passage_id":2,"sentence_id":[4]}') == [(2, 4)]
    assert grounding_evidence('{"passage_id": 1, "sentence_id": [0, 3, 5]}') == [(1, 3), (1, 5)]  # 0: the title
    assert grounding_evidence('{"passage_id": 3, "sentence_id": 2}') == [(3, 2)]
    assert grounding_evidence("") == []
    assert grounding_evidence("the date is wrong") == []
    assert grounding_evidence("[1, 2]") == []


def test_factuality_examples_carry_the_named_evidence(segmenter):
    passages = [["T", "The sky is blue.", "Grass is green."], ["U", "Snow is white.", "Coal is black."]]
    text = "The sky is green today. Snow is white."
    ex = _example(text, passages=passages,
                  errors=[ErrorSpan("Wrong-Grounding", 11, 16, '{"passage_id": 1, "sentence_id": [1]}')])
    (r2,) = factuality_examples([ex], segmenter)
    assert r2.labels == [ERROR, NO_ERROR]
    # Passage sentences in order: sky 0, grass 1, snow 2, coal 3; (1, 1) is the sky.
    assert r2.evidence_ids == [[0], []]


def test_no_error_examples_corrected_and_gold(segmenter):
    passages = [["T", "The sky is blue.", "Grass is green."]]
    pred1 = "The sky is green. Grass is green."
    corrected = "The sky is blue. Grass is green."
    ex = _example(pred1, corrected=corrected, passages=passages)
    ex.gold = "The sky is blue. Dragons breathe fire over the mountains."
    (c,) = no_error_examples([ex], segmenter, "factuality", ["corrected"])
    assert c.source == CORRECTED and c.answer == corrected
    # "Grass is green." is in prediction 1 verbatim: read, not labelled again.
    assert c.labels == [NO_ERROR, IGNORE]
    (g,) = no_error_examples([ex], segmenter, "factuality", ["gold"])
    # The second gold sentence has none of its 6 words in the passages: not certain for R2.
    assert g.source == GOLD and g.labels == [NO_ERROR, IGNORE]
    (g,) = no_error_examples([ex], segmenter, "factuality", ["gold"], gold_grounding=0.0)
    assert g.labels == [NO_ERROR, NO_ERROR]
    (g,) = no_error_examples([ex], segmenter, "relevance", ["gold"])
    assert set(g.labels) == {NO_ERROR}
    with pytest.raises(ValueError, match="'silver'"):
        no_error_examples([ex], segmenter, "relevance", ["silver"])

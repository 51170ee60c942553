"""Sub-sentence segmentation: the rule of Wu et al. 2023, by hand and against an oracle.

The rule, within one sentence of whitespace-separated words w_0..w_{n-1}: a new piece may
start at word i >= 1 only if w_{i-1} ends in one of ``, ; ! ?`` and at least 6 words remain
(n - i >= 6). If the piece that would close there has fewer than 5 words, then: when it is
the sentence's first piece, no split; otherwise that short piece's start moves to i (it
merges into the piece before). Else split at i.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fgrlhf.segment import (
    Granularity,
    MultiGranularitySegmenter,
    PunktSentenceSegmenter,
    SequenceSegmenter,
    SpacySentenceSegmenter,
    SubSentenceSegmenter,
    check_spans,
    split_sentence,
    subsentence_starts,
)


def _no_space(s: str) -> str:
    return "".join(s.split())


def _pieces(text: str, spans) -> list[str]:
    return [text[s:e] for s, e in spans]


def _one_sentence(text: str) -> list[str]:
    """Pieces of ``text`` treated as a single sentence (the whole text)."""
    first = len(text) - len(text.lstrip())
    last = len(text.rstrip())
    return _pieces(text, split_sentence(text, (first, last)))


# --- The oracle: the paper's algorithm, rewritten independently -----------------------------

_PIECE_END = re.compile(r"[,;!?]")


def oracle_is_piece_start(words: list[str], min_words: int = 5) -> list[bool]:
    """One boolean per word: does a piece start there? Works like the paper's released code.

    Walks the words keeping the index of the previous piece start; when a too-short piece
    that is not the first one would close, the previous start is flipped back to False and
    the current word becomes the start instead (the short piece merges into the one before).
    """
    flags = [True]
    prev_start = 0
    n = len(words)
    for i in range(1, n):
        boundary = _PIECE_END.match(words[i - 1][-1]) is not None and i + min_words < n
        if not boundary:
            flags.append(False)
        elif i - prev_start >= min_words:
            flags.append(True)
            prev_start = i
        elif prev_start > 0:
            flags[prev_start] = False
            flags.append(True)
            prev_start = i
        else:
            flags.append(False)
    return flags


def oracle_pieces(text: str, sentences) -> tuple[list[tuple[int, int]], int]:
    """Char spans of the pieces of ``text`` given its sentences, and how many merges happened."""
    out = []
    merges = 0
    for s, e in sentences:
        sentence = text[s:e]
        words = sentence.split()
        if not words:
            continue
        # Char offsets of each word, found left to right as the paper does.
        starts, ends, cursor = [], [], 0
        for w in words:
            k = sentence.find(w, cursor)
            starts.append(s + k)
            ends.append(s + k + len(w))
            cursor = k + len(w)
        flags = oracle_is_piece_start(words)
        # Count merges: a start that was set and later flipped back.
        merges += _count_merges(words)
        first_words = [k for k, f in enumerate(flags) if f]
        last_words = [k - 1 for k in first_words[1:]] + [len(words) - 1]
        out.extend((starts[a], ends[b]) for a, b in zip(first_words, last_words))
    return out, merges


def _count_merges(words: list[str], min_words: int = 5) -> int:
    prev_start, merges, n = 0, 0, len(words)
    for i in range(1, n):
        if _PIECE_END.match(words[i - 1][-1]) and i + min_words < n:
            if i - prev_start >= min_words:
                prev_start = i
            elif prev_start > 0:
                merges += 1
                prev_start = i
    return merges


# --- Hand cases, one per branch of the rule ---------------------------------------------------

A5 = "a1 a2 a3 a4 a5,"
B6 = "b1 b2 b3 b4 b5 b6."


@pytest.mark.parametrize("text, expected", [
    # no piece-ending punctuation: one piece
    ("one two three four five six seven eight nine ten.",
     ["one two three four five six seven eight nine ten."]),
    # comma after 5 words, 6 words remain: split
    (f"{A5} {B6}", [A5, B6]),
    # only 5 words remain after the comma (n - i = 5): no split
    (f"{A5} b1 b2 b3 b4 b5.", [f"{A5} b1 b2 b3 b4 b5."]),
    # the first piece would have 4 words: no split
    ("a1 a2 a3 a4, b1 b2 b3 b4 b5 b6.", ["a1 a2 a3 a4, b1 b2 b3 b4 b5 b6."]),
    # first piece of 1 word: no split
    ("Well, b1 b2 b3 b4 b5 b6.", ["Well, b1 b2 b3 b4 b5 b6."]),
    # a short non-first piece (2 words) merges into the piece before
    (f"{A5} b1 b2, c1 c2 c3 c4 c5 c6.", [f"{A5} b1 b2,", "c1 c2 c3 c4 c5 c6."]),
    # after a merge, length is measured from the moved start: 3 words, so it merges again
    # (measuring from the old start would give 5 words and split)
    (f"{A5} b1 b2, c1 c2 c3, d1 d2 d3 d4 d5 d6.",
     [f"{A5} b1 b2, c1 c2 c3,", "d1 d2 d3 d4 d5 d6."]),
    # after a merge, a piece of 5 words from the moved start splits again
    (f"{A5} b1 b2, c1 c2 c3 c4 c5, d1 d2 d3 d4 d5 d6.",
     [f"{A5} b1 b2,", "c1 c2 c3 c4 c5,", "d1 d2 d3 d4 d5 d6."]),
    # a comma too near the end never splits, so the last piece may hold it
    (f"{A5} b1 b2 b3 b4 b5 b6, c1 c2.", [A5, "b1 b2 b3 b4 b5 b6, c1 c2."]),
    # three pieces of exactly 5, 5 and 6 words
    (f"{A5} b1 b2 b3 b4 b5; c1 c2 c3 c4 c5 c6.", [A5, "b1 b2 b3 b4 b5;", "c1 c2 c3 c4 c5 c6."]),
    # each of ; ! ? ends a piece
    ("a1 a2 a3 a4 a5; b1 b2 b3 b4 b5 b6", ["a1 a2 a3 a4 a5;", "b1 b2 b3 b4 b5 b6"]),
    ("a1 a2 a3 a4 a5! b1 b2 b3 b4 b5 b6", ["a1 a2 a3 a4 a5!", "b1 b2 b3 b4 b5 b6"]),
    ("a1 a2 a3 a4 a5? b1 b2 b3 b4 b5 b6", ["a1 a2 a3 a4 a5?", "b1 b2 b3 b4 b5 b6"]),
    # . : ) and a comma inside a word or before a quote do not
    ("a1 a2 a3 a4 a5. b1 b2 b3 b4 b5 b6", ["a1 a2 a3 a4 a5. b1 b2 b3 b4 b5 b6"]),
    ("a1 a2 a3 a4 a5: b1 b2 b3 b4 b5 b6", ["a1 a2 a3 a4 a5: b1 b2 b3 b4 b5 b6"]),
    ("a1 a2 a3 a4 (a5) b1 b2 b3 b4 b5 b6", ["a1 a2 a3 a4 (a5) b1 b2 b3 b4 b5 b6"]),
    ("a1 a2 a3 a4 a5,b1 b2 b3 b4 b5 b6 b7", ["a1 a2 a3 a4 a5,b1 b2 b3 b4 b5 b6 b7"]),
    ('a1 a2 a3 a4 "a5," b1 b2 b3 b4 b5 b6', ['a1 a2 a3 a4 "a5," b1 b2 b3 b4 b5 b6']),
    # a free-standing comma is a word that ends in a comma
    ("a1 a2 a3 a4 a5 , b1 b2 b3 b4 b5 b6", ["a1 a2 a3 a4 a5 ,", "b1 b2 b3 b4 b5 b6"]),
    # non-ASCII words count as words
    ("Zoë visitó 東京 y 😀, él comió crème brûlée muy rico.",
     ["Zoë visitó 東京 y 😀,", "él comió crème brûlée muy rico."]),
    # fewer than 7 words: never split
    ("a, b, c, d, e, f.", ["a, b, c, d, e, f."]),
    ("single", ["single"]),
])
def test_rule_hand_cases(text, expected):
    assert _one_sentence(text) == expected


@pytest.mark.parametrize("words, min_words, expected", [
    (["w"] * 12, 5, [0]),
    (["a,", "b", "c", "d", "e,", "f", "g", "h", "i", "j", "k"], 5, [0, 5]),
    (["a", "b", "c", "d", "e,", "f", "g", "h", "i", "j"], 5, [0]),      # n - i = 5
    (["a", "b", "c", "d", "e,", "f", "g", "h", "i", "j", "k"], 5, [0, 5]),  # n - i = 6
    (["a", "b", "c", "d,", "e", "f", "g", "h", "i", "j", "k"], 5, [0]),  # first piece of 4
    (["a", "b", "c", "d", "e,", "f", "g,", "h", "i", "j", "k", "l", "m"], 5, [0, 7]),  # merge
    (["only"], 5, [0]),
    # min_words is a parameter: with 2, a piece needs 2 words and 3 must remain
    (["a,", "b,", "c", "d,", "e", "f", "g."], 2, [0, 2, 4]),
    (["a,", "b,", "c", "d,", "e", "f."], 2, [0, 2]),
    (["a", "b,", "c,", "d", "e", "f", "g", "h"], 2, [0, 3]),  # 1-word piece merges
    (["a", "b,", "c,", "d,", "e", "f", "g", "h"], 2, [0, 4]),  # ... twice
    (["a", "b,", "c,", "d", "e,", "f", "g", "h"], 2, [0, 3, 5]),
])
def test_subsentence_starts_hand_cases(words, min_words, expected):
    assert subsentence_starts(words, min_words) == expected


def test_whitespace_inside_a_sentence():
    text = "\n a1 a2  a3\ta4 a5,\n  b1 b2 b3   b4 b5 b6.  "
    sentence = (2, len(text.rstrip()))
    spans = split_sentence(text, sentence)
    assert _pieces(text, spans) == ["a1 a2  a3\ta4 a5,", "b1 b2 b3   b4 b5 b6."]
    a = text.index("a1")
    b = text.index("b1")
    assert spans == [(a, a + len("a1 a2  a3\ta4 a5,")), (b, len(text.rstrip()))]


def test_split_sentence_respects_the_sentence_bounds():
    # Only words inside the sentence span count: the preceding and following sentences
    # must not add words that would make a split possible.
    before = "Intro words here, and more words there."
    middle = f"{A5} b1 b2 b3 b4 b5."  # only 5 words remain after the comma
    after = "c1 c2 c3 c4 c5 c6 c7."
    text = f"{before} {middle} {after}"
    s = text.index(middle)
    assert split_sentence(text, (s, s + len(middle))) == [(s, s + len(middle))]
    # and a sentence that does split gives offsets in the whole text
    middle2 = f"{A5} {B6}"
    text2 = f"{before} {middle2} {after}"
    s2 = text2.index(middle2)
    assert split_sentence(text2, (s2, s2 + len(middle2))) == [
        (s2, s2 + len(A5)), (s2 + len(A5) + 1, s2 + len(middle2))]


def test_split_sentence_of_whitespace_is_empty():
    text = "abc    def"
    assert split_sentence(text, (3, 7)) == []


@given(
    words=st.lists(st.sampled_from(["w", "w,", "w;", "w!", "w?", "w.", "w:", ",", "x,y", "é,"]),
                   min_size=1, max_size=40),
    min_words=st.integers(min_value=1, max_value=7),
)
@settings(max_examples=400, deadline=None)
def test_starts_match_oracle_on_random_words(words, min_words):
    flags = oracle_is_piece_start(words, min_words)
    assert subsentence_starts(words, min_words) == [k for k, f in enumerate(flags) if f]


# --- SubSentenceSegmenter on top of a sentence segmenter -----------------------------------------

def test_subsentence_segmenter_needs_a_sentence_segmenter():
    with pytest.raises(ValueError, match="sentence segmenter"):
        SubSentenceSegmenter(SequenceSegmenter())


def test_subsentence_segmenter_granularity_and_calls():
    seg = SubSentenceSegmenter(SpacySentenceSegmenter())
    assert seg.granularity == Granularity.SUBSENTENCE
    text = f"  {A5} {B6}\n{A5} b1 b2 b3 b4 b5. Short one.  "
    expected = [A5, B6, f"{A5} b1 b2 b3 b4 b5.", "Short one."]
    assert _pieces(text, seg(text)) == expected
    assert [_pieces(t, s) for t, s in zip([text, "", " "], seg.batch([text, "", " "]))] == [expected, [], []]


def test_pieces_never_cross_sentences():
    # Without sentence boundaries, "b1." would be followed by 6 more words and the comma
    # would allow a split; within its sentence only one word follows it.
    text = "a1 a2 a3 a4 a5, b1. c1 c2 c3 c4 c5 c6."
    sents = SpacySentenceSegmenter()(text)
    assert _pieces(text, sents) == ["a1 a2 a3 a4 a5, b1.", "c1 c2 c3 c4 c5 c6."]
    assert SubSentenceSegmenter(SpacySentenceSegmenter())(text) == sents


def test_subsentence_on_punkt_sentences():
    text = f"{A5} {B6} Then c1 c2, done."
    seg = SubSentenceSegmenter(PunktSentenceSegmenter())
    assert _pieces(text, seg(text)) == [A5, B6, "Then c1 c2, done."]


@pytest.mark.parametrize("text", ["", "   ", "\n\n", "word", " 😀 ", "日本語の文です。"])
def test_subsentence_edge_texts(text):
    spans = SubSentenceSegmenter(SpacySentenceSegmenter())(text)
    check_spans(text, spans)
    assert _no_space("".join(_pieces(text, spans))) == _no_space(text)
    assert (spans == []) == (text.strip() == "")


def test_multi_granularity_segmenter_nests():
    texts = [f"{A5} {B6} Second sentence here.", "", "One."]
    out = MultiGranularitySegmenter()(texts, ["sentence", "subsentence", Granularity.SEQUENCE])
    assert set(out) == {Granularity.SENTENCE, Granularity.SUBSENTENCE, Granularity.SEQUENCE}
    assert _pieces(texts[0], out[Granularity.SENTENCE][0]) == [f"{A5} {B6}", "Second sentence here."]
    assert _pieces(texts[0], out[Granularity.SUBSENTENCE][0]) == [A5, B6, "Second sentence here."]
    assert out[Granularity.SEQUENCE] == [[(0, len(texts[0]))], [], [(0, 4)]]
    assert out[Granularity.SENTENCE][1:] == [[], [(0, 4)]]
    only = MultiGranularitySegmenter()(texts, ["sequence"])
    assert set(only) == {Granularity.SEQUENCE}


# --- The key test: every QA-Feedback prediction, against the oracle ---------------------------

def test_all_qa_feedback_predictions_match_oracle(all_predictions, all_prediction_sentences):
    assert len(all_predictions) == 1600
    seg = SubSentenceSegmenter(SpacySentenceSegmenter())
    n_sent = n_sub = n_merges = n_split_sentences = 0
    mismatches = []
    for k, (text, sents) in enumerate(zip(all_predictions, all_prediction_sentences)):
        got = seg.from_sentences(text, sents)
        want, merges = oracle_pieces(text, sents)
        if got != want:
            mismatches.append((k, got, want))
            continue
        # Contract: pieces cover the text, and each sentence is exactly covered by the
        # pieces inside it (so pieces nest in sentences).
        check_spans(text, got)
        assert _no_space("".join(_pieces(text, got))) == _no_space(text)
        j = 0
        for s, e in sents:
            inside = []
            while j < len(got) and got[j][1] <= e:
                assert got[j][0] >= s, f"piece {got[j]} crosses sentence {(s, e)} in prediction {k}"
                inside.append(got[j])
                j += 1
            assert inside and inside[0][0] == s and inside[-1][1] == e
            n_split_sentences += len(inside) > 1
        assert j == len(got)
        n_sent += len(sents)
        n_sub += len(got)
        n_merges += merges
    assert not mismatches, f"{len(mismatches)} predictions differ from the oracle, first: {mismatches[0]}"
    print(f"\nQA-Feedback: {len(all_predictions)} predictions, {n_sent} sentences, {n_sub} sub-sentences, "
          f"{n_split_sentences} sentences split, {n_merges} merges of a short piece")
    # The data exercises every branch: splits and merges both happen.
    assert n_sub > n_sent
    assert n_split_sentences > 50
    assert n_merges > 0

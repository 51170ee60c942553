"""Sentence-level (and whole-sequence) segmenters obey the segment contract.

The contract: spans are half-open char ranges, sorted, non-overlapping, start and end on
non-space characters, and together cover every non-space character of the text.
"""

from __future__ import annotations

import re

import pytest

from fgrlhf.segment import (
    Granularity,
    PunktSentenceSegmenter,
    SequenceSegmenter,
    SpacySentenceSegmenter,
    check_spans,
    make_sentence_segmenter,
)

# A small training text for Punkt in which "Dr." and "Mr." are abbreviations, never ends.
PUNKT_TRAIN_TEXT = " ".join(
    ["Dr. Smith is a doctor. Dr. Brown is also a doctor. The patient saw Dr. Lee in the morning. "
     "Mr. Jones came with Dr. Smith. Mr. Brown stayed home."] * 30
)

CASES = {
    "plain": "Hello world. How are you? Fine!",
    "leading_trailing_space": "   The first one. The second one.  \t ",
    "empty": "",
    "spaces_only": "   \t  ",
    "newlines_only": "\n\n\n",
    "newlines": "Line one.\nLine two has no stop\n\nLine three.\n",
    "leading_newlines": "\n\n  First sentence here.\nSecond sentence here.",
    "accents": "Café au lait est très bon. Le garçon a mangé une crème brûlée! Ça va?",
    "cjk": "日本語の文です。次の文です。これは最後。",
    "mixed_cjk_latin": "Tokyo (東京) is big. 北京 is Beijing. Done.",
    "emoji": "I love pizza 🍕. It is great 😀😀! 🎉 Party time.",
    "zwj_emoji": "Family 👨‍👩‍👧 photo. Flags 🇯🇵 too.",
    "no_final_stop": "A sentence. Another one without a stop",
    "single_word": "word",
    "single_char": "x",
    "punct_only": "...",
    "multiple_spaces": "Spaces   inside    here.    And   there.",
    "tabs_and_crlf": "One.\r\nTwo.\tThree.\r\n",
    "nbsp": "Non\u00a0breaking space. Next\u2003one.",
    "abbreviations": "Dr. Smith went to Washington. He met Mr. Jones at 5 p.m. on Friday. Then they left.",
}


def _segmenter(name: str):
    if name == "spacy":
        return SpacySentenceSegmenter()
    if name == "punkt":
        return PunktSentenceSegmenter()
    if name == "punkt_trained":
        return PunktSentenceSegmenter(PUNKT_TRAIN_TEXT)
    if name == "sequence":
        return SequenceSegmenter()
    raise AssertionError(name)


SEGMENTERS = ["spacy", "punkt", "punkt_trained", "sequence"]


@pytest.fixture(scope="module", params=SEGMENTERS)
def segmenter(request):
    return _segmenter(request.param)


def _no_space(s: str) -> str:
    return "".join(s.split())


def assert_contract(text: str, spans) -> None:
    """check_spans, plus independent checks of the same contract."""
    check_spans(text, spans)
    assert all(isinstance(s, int) and isinstance(e, int) for s, e in spans)
    # Sorted, non-empty, non-overlapping, in range.
    prev = 0
    for s, e in spans:
        assert prev <= s < e <= len(text), (spans, len(text))
        assert not text[s].isspace() and not text[e - 1].isspace()
        prev = e
    # Together the spans hold exactly the text's non-space characters, in order.
    assert _no_space("".join(text[s:e] for s, e in spans)) == _no_space(text)
    # ... and nothing outside the spans is anything but whitespace.
    outside = []
    prev = 0
    for s, e in spans:
        outside.append(text[prev:s])
        prev = e
    outside.append(text[prev:])
    assert all(chunk.strip() == "" for chunk in outside)


@pytest.mark.parametrize("case", sorted(CASES))
def test_contract_on_edge_cases(segmenter, case):
    text = CASES[case]
    spans = segmenter(text)
    assert_contract(text, spans)
    if not text.strip():
        assert spans == []
    else:
        assert spans, "a text with content has at least one segment"


def test_granularity(segmenter):
    expected = Granularity.SEQUENCE if isinstance(segmenter, SequenceSegmenter) else Granularity.SENTENCE
    assert segmenter.granularity == expected


def test_batch_matches_single_calls(segmenter):
    texts = [CASES[k] for k in sorted(CASES)]
    batched = segmenter.batch(texts)
    assert len(batched) == len(texts)
    for text, spans in zip(texts, batched):
        assert spans == segmenter(text)
    assert segmenter.batch([]) == []


def test_contract_on_real_predictions(segmenter, all_predictions):
    texts = all_predictions[::8]  # 200 real responses
    for text, spans in zip(texts, segmenter.batch(texts)):
        assert_contract(text, spans)


@pytest.mark.parametrize("name", ["spacy", "punkt", "punkt_trained"])
def test_simple_sentences_exact(name):
    text = "  Hello world. How are you? Fine!\n"
    spans = _segmenter(name)(text)
    assert spans == [(2, 14), (15, 27), (28, 33)]
    assert [text[s:e] for s, e in spans] == ["Hello world.", "How are you?", "Fine!"]


@pytest.mark.parametrize("name", ["spacy", "punkt", "punkt_trained"])
def test_unicode_offsets_are_code_points(name):
    # Offsets index Python str (code points), so accents and emoji take one position each.
    text = "Crème brûlée 😀 is good. Next one 🎉 here."
    spans = _segmenter(name)(text)
    assert [text[s:e] for s, e in spans] == ["Crème brûlée 😀 is good.", "Next one 🎉 here."]
    assert spans == [(0, 23), (24, 40)]


def test_spacy_cjk_full_stops():
    # The blank English tokenizer splits on whitespace first: an ideographic full stop ends a
    # sentence when a space follows it, and stays inside a run of CJK characters otherwise.
    seg = SpacySentenceSegmenter()
    text = "日本語の文です。 次の文です。"
    assert [text[s:e] for s, e in seg(text)] == ["日本語の文です。", "次の文です。"]
    text = "日本語の文です。次の文です。"
    assert seg(text) == [(0, len(text))]


def test_sentence_spans_cross_single_newline_but_not_whitespace_edges():
    text = "\n\nLine one.\nLine two has no stop\n\nLine three.\n"
    for name in ("spacy", "punkt"):
        spans = _segmenter(name)(text)
        pieces = [text[s:e] for s, e in spans]
        assert pieces[0] == "Line one."
        assert pieces[-1].endswith("Line three.")
        assert all(p == p.strip() for p in pieces)


def test_punkt_trained_learns_abbreviations():
    text = "Dr. Smith went to Washington. He met Mr. Jones there. Then they left."
    untrained = PunktSentenceSegmenter()(text)
    trained = PunktSentenceSegmenter(PUNKT_TRAIN_TEXT)(text)
    assert [text[s:e] for s, e in untrained] == [
        "Dr.", "Smith went to Washington.", "He met Mr.", "Jones there.", "Then they left."]
    assert [text[s:e] for s, e in trained] == [
        "Dr. Smith went to Washington.", "He met Mr. Jones there.", "Then they left."]


def test_spacy_sentencizer_keeps_abbreviation_with_following_word():
    text = "He met Mr. Jones at 5 p.m. on Friday. Then they left."
    spans = SpacySentenceSegmenter()(text)
    assert [text[s:e] for s, e in spans] == ["He met Mr. Jones at 5 p.m. on Friday.", "Then they left."]


@pytest.mark.parametrize("text, expected", [
    ("", []),
    ("   ", []),
    ("\n\t\n", []),
    ("abc", [(0, 3)]),
    ("  two words \n", [(2, 11)]),
    ("\nFirst. Second.\n\n", [(1, 15)]),
    ("😀", [(0, 1)]),
    (" 日本 ", [(1, 3)]),
])
def test_sequence_segmenter_exact(text, expected):
    assert SequenceSegmenter()(text) == expected


def test_sequence_segmenter_span_is_first_to_last_non_space(all_predictions):
    for text in all_predictions[:50]:
        (span,) = SequenceSegmenter()(text)
        first = re.search(r"\S", text).start()
        last = max(m.end() for m in re.finditer(r"\S", text))
        assert span == (first, last)


# --- check_spans itself rejects every kind of violation --------------------------------------

@pytest.mark.parametrize("spans, message", [
    ([(0, 3), (2, 7)], "out of order"),          # overlap
    ([(0, 3), (4, 7), (0, 3)], "out of order"),  # unsorted
    ([(0, 3), (4, 99)], "out of range"),         # past the end
    ([(0, 3), (4, 4)], "out of order"),          # empty span
    ([(0, 4), (4, 7)], "whitespace"),            # ends on the space
    ([(0, 3), (3, 7)], "whitespace"),            # starts on the space
    ([(0, 2), (4, 7)], "not covered"),           # drops 'c'
    ([(0, 3)], "after the last span"),           # drops 'def'
    ([(4, 7)], "not covered"),                   # drops 'abc'
])
def test_check_spans_rejects_violations(spans, message):
    with pytest.raises(ValueError, match=message):
        check_spans("abc def", spans)


def test_check_spans_accepts_valid():
    check_spans("abc def", [(0, 3), (4, 7)])
    check_spans("abc def", [(0, 7)])
    check_spans("  ", [])
    check_spans("", [])


# --- make_sentence_segmenter --------------------------------------------------------------

def test_make_sentence_segmenter_known_names():
    assert isinstance(make_sentence_segmenter(), SpacySentenceSegmenter)
    assert isinstance(make_sentence_segmenter("sentencizer"), SpacySentenceSegmenter)
    assert isinstance(make_sentence_segmenter("punkt"), PunktSentenceSegmenter)
    trained = make_sentence_segmenter("punkt", punkt_train_text=PUNKT_TRAIN_TEXT)
    text = "Dr. Smith went to Washington. He slept."
    assert [text[s:e] for s, e in trained(text)] == ["Dr. Smith went to Washington.", "He slept."]


def test_make_sentence_segmenter_missing_spacy_model():
    with pytest.raises(OSError) as info:
        make_sentence_segmenter("spacy:not_a_model")
    message = str(info.value)
    assert "not_a_model" in message
    assert "install" in message
    assert "sentencizer" in message  # points at the model-free default


@pytest.mark.parametrize("name", ["nltk", "Sentencizer", "", "spacy", "punkt:english"])
def test_make_sentence_segmenter_unknown_name(name):
    with pytest.raises(ValueError, match="unknown sentence splitter"):
        make_sentence_segmenter(name)

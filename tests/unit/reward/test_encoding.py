"""Separator encoding for reward models, and its truncation policy."""

from __future__ import annotations

import pytest

from fgrlhf.reward.encoding import SeparatorEncoder, rank_evidence


def _segments(text):
    out, start = [], 0
    for part in text.split(". "):
        s = text.index(part, start)
        out.append((s, s + len(part)))
        start = s + len(part)
    return out


def test_layout_and_separator_positions(minilm_tokenizer):
    enc = SeparatorEncoder(minilm_tokenizer, max_length=128)
    answer = "Paris is the capital. It is in France"
    spans = [(0, 21), (22, 37)]
    (w,) = enc.encode("Where is Paris?", answer, spans)
    toks = minilm_tokenizer.convert_ids_to_tokens(w.input_ids)
    assert toks[0] == "[CLS]" and toks[-1] == "[SEP]"
    assert [toks[p] for p in w.sep_positions] == ["[SEP]", "[SEP]"]
    # Each separator is followed by its own segment's first word.
    assert toks[w.sep_positions[0] + 1] == "paris" and toks[w.sep_positions[1] + 1] == "it"
    assert toks[w.sep_positions[0] - 2 : w.sep_positions[0]] == ["answer", ":"]
    assert w.segment_ids == [0, 1]


def test_evidence_fills_only_the_room_left_and_keeps_passage_order(minilm_tokenizer):
    enc = SeparatorEncoder(minilm_tokenizer, max_length=64)
    answer = "The tower was built in 1889. It is made of iron"
    spans = [(0, 27), (28, 47)]
    evidence = [
        "Bananas are yellow fruit grown by farmers across many tropical countries near equator.",
        "The Eiffel tower was built in 1889 for the world fair.",
        "Cheese is made from milk.",
        "The tower is made of wrought iron.",
    ]
    (w,) = enc.encode("When was the tower built?", answer, spans, evidence)
    assert len(w.input_ids) <= 64
    text = minilm_tokenizer.decode(w.input_ids)
    assert "1889 for the world fair" in text and "wrought iron" in text
    assert "bananas" not in text  # shares no word with the answer: ranked last, no room left
    assert text.index("1889 for the world fair") < text.index("wrought iron")  # passage order
    assert text.index("context :") < text.index("answer :")


def test_long_answers_are_split_into_windows_never_dropped(minilm_tokenizer):
    enc = SeparatorEncoder(minilm_tokenizer, max_length=48, max_question_tokens=8)
    sentences = [f"Sentence number {i} says something about topic {i}" for i in range(12)]
    answer = ". ".join(sentences)
    spans = _segments(answer)
    assert len(spans) == 12
    windows = enc.encode("A question that is rather long and will be cut short here", answer, spans)
    assert len(windows) > 1
    assert all(len(w.input_ids) <= 48 for w in windows)
    assert sorted(i for w in windows for i in w.segment_ids) == list(range(12))
    for w in windows:
        toks = minilm_tokenizer.convert_ids_to_tokens(w.input_ids)
        assert toks[1:3] == ["question", ":"]
        for p in w.sep_positions:
            assert toks[p] == "[SEP]" and toks[p + 1] == "sentence"


def test_a_segment_longer_than_a_window_is_cut_but_keeps_its_separator(minilm_tokenizer):
    enc = SeparatorEncoder(minilm_tokenizer, max_length=32, max_question_tokens=4)
    answer = "word " * 100 + "end"
    windows = enc.encode("q", answer, [(0, len(answer))])
    assert len(windows) == 1 and len(windows[0].input_ids) == 32
    assert minilm_tokenizer.convert_ids_to_tokens(windows[0].input_ids)[windows[0].sep_positions[0]] == "[SEP]"


def test_empty_answer_and_too_small_window(minilm_tokenizer):
    enc = SeparatorEncoder(minilm_tokenizer, max_length=64)
    (w,) = enc.encode("q", "", [])
    assert w.sep_positions == [] and w.segment_ids == []
    with pytest.raises(ValueError, match="no room"):
        SeparatorEncoder(minilm_tokenizer, max_length=6).encode("a question of many words", "x", [(0, 1)])


def test_rank_evidence_round_robin():
    segs = ["alpha beta", "gamma delta"]
    sents = ["nothing here", "gamma delta epsilon", "alpha beta", "alpha"]
    order = rank_evidence(segs, sents)
    # segment 0's best is 2, segment 1's best is 1; then 3 (half of seg 0), then 0.
    assert order == [2, 1, 3, 0]

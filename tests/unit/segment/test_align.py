"""Decoding generated ids with per-token char offsets, and mapping spans to closing tokens.

Expected values come from the tokenizer itself, decoding prefixes of the ids (quadratic,
fine for a test): the char end of token j is the length of ``decode(ids[:j + 1])``, where a
prefix ending inside a multi-byte character (byte-level BPE decodes it to a trailing
U+FFFD) has not completed that character yet. The closing token of a span is the first
token whose decoded prefix reaches the span's end.
"""

from __future__ import annotations

import pytest
import torch

from fgrlhf.segment import (
    SequenceSegmenter,
    SpacySentenceSegmenter,
    SubSentenceSegmenter,
    align_spans,
    closing_tokens,
    decode_with_offsets,
)

REPLACEMENT = "\ufffd"

TEXTS = [
    "The quick brown fox jumps over the lazy dog. It was fast, wasn't it?",
    "   Leading spaces, and trailing ones.   ",
    "Line one.\nLine two.\n\nLine three.",
    "Café crème brûlée, naïve résumé — Zoë's déjà vu.",
    "東京 is the capital of 日本. 北京 too.",
    "Emoji 😀 in the middle, 🎉🎉 twice, and 👨‍👩‍👧 family.",
    "Numbers 1,234.56 and symbols #@$%^&*() here.",
    " a",
    "x",
]


# --- helpers (independent of the code under test) --------------------------------------------

def ref_decode(tok, ids) -> str:
    return tok.decode(list(ids), skip_special_tokens=True, clean_up_tokenization_spaces=False)


def encode(tok, text: str) -> list[int]:
    return tok(text, add_special_tokens=False)["input_ids"]


def eos_id(tok) -> int:
    return tok.eos_token_id if tok.eos_token_id is not None else tok.sep_token_id


def prefix_len(tok, ids, j: int) -> int:
    """Chars of text once tokens ids[:j + 1] are decoded (0 for j < 0).

    A prefix that ends inside a multi-byte character decodes with a trailing U+FFFD: that
    character is not complete yet, so it does not count.
    """
    if j < 0:
        return 0
    text = ref_decode(tok, ids[: j + 1])
    if text.endswith(REPLACEMENT):
        text = text.rstrip(REPLACEMENT)
    return len(text)


def expected_char_ends(tok, ids) -> list[int]:
    return [prefix_len(tok, ids, j) for j in range(len(ids))]


def expected_closing(tok, ids, end: int) -> int:
    """First j whose decoded prefix covers ``end`` chars."""
    for j in range(len(ids)):
        if prefix_len(tok, ids, j) >= end:
            return j
    raise AssertionError(f"no prefix of {len(ids)} tokens reaches char {end}")


def pad_batch(rows, pad_id: int, extra: int = 0):
    """Right-pad rows to one length (+ ``extra`` pad columns): ids [B, T] and a bool mask."""
    width = max(len(r) for r in rows) + extra
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.bool)
    for b, r in enumerate(rows):
        ids[b, : len(r)] = torch.tensor(r, dtype=torch.long)
        mask[b, : len(r)] = True
    return ids, mask


# --- decoded text and per-token char ends ------------------------------------------------------

@pytest.mark.parametrize("method", ["auto", "stream"])
def test_text_and_char_ends_match_prefix_decodes(tokenizer, method):
    rows = [encode(tokenizer, t) for t in TEXTS]
    ids, mask = pad_batch(rows, tokenizer.pad_token_id, extra=2)
    dec = decode_with_offsets(tokenizer, ids, mask, method=method)
    assert dec.num_tokens == ids.shape[1]
    assert len(dec.texts) == len(TEXTS)
    for b, row in enumerate(rows):
        assert dec.texts[b] == ref_decode(tokenizer, row)
        assert dec.positions[b] == list(range(len(row)))
        assert dec.char_ends[b] == expected_char_ends(tokenizer, row), TEXTS[b]
        assert dec.char_ends[b][-1] == len(dec.texts[b])


def test_inputs_as_lists_equal_inputs_as_tensors(tokenizer):
    rows = [encode(tokenizer, t) for t in TEXTS[:3]]
    ids, mask = pad_batch(rows, tokenizer.pad_token_id)
    a = decode_with_offsets(tokenizer, ids, mask)
    b = decode_with_offsets(tokenizer, ids.tolist(), mask.long().tolist())
    assert (a.texts, a.char_ends, a.positions, a.num_tokens) == (b.texts, b.char_ends, b.positions, b.num_tokens)
    # No mask: every position is real.
    c = decode_with_offsets(tokenizer, [rows[0]])
    assert c.texts == [ref_decode(tokenizer, rows[0])]
    assert c.positions == [list(range(len(rows[0])))]


def test_raw_rust_tokenizer_is_accepted(bpe_tokenizer):
    ids = encode(bpe_tokenizer, TEXTS[0])
    dec = decode_with_offsets(bpe_tokenizer.backend_tokenizer, [ids])
    assert dec.texts == [ref_decode(bpe_tokenizer, ids)]
    assert dec.char_ends == [expected_char_ends(bpe_tokenizer, ids)]


def test_unknown_method_rejected(bpe_tokenizer):
    with pytest.raises(ValueError, match="method"):
        decode_with_offsets(bpe_tokenizer, [[5]], method="fast")


def test_leading_spaces_take_width(bpe_tokenizer):
    tok = bpe_tokenizer
    text = "   Hello there. Bye."
    ids = encode(tok, text)
    dec = decode_with_offsets(tok, [ids])
    assert dec.texts == [text]  # byte-level BPE round-trips exactly
    assert dec.char_ends[0] == expected_char_ends(tok, ids)
    sents = SpacySentenceSegmenter()(text)
    assert sents == [(3, 15), (16, 20)]
    index, mask = align_spans(dec, [sents])
    assert mask.tolist() == [[True, True]]
    assert index.tolist() == [[expected_closing(tok, ids, 15), len(ids) - 1]]
    assert tok.convert_ids_to_tokens(ids[index[0, 0]]).endswith(".")
    # The leading spaces are in the text before the first token that holds "Hello".
    assert dec.char_ends[0][0] >= 1


# --- special tokens ----------------------------------------------------------------------------

def test_special_tokens_have_zero_width_and_never_close(tokenizer):
    tok = tokenizer
    eos = eos_id(tok)
    first = encode(tok, "First part is here.")
    second = encode(tok, " Second part, too.")
    row = first + [eos] + second + [eos]
    n_pad = 3
    ids = torch.tensor([row + [tok.pad_token_id] * n_pad])
    mask = torch.tensor([[True] * len(row) + [False] * n_pad])
    dec = decode_with_offsets(tok, ids, mask)
    assert dec.texts == [ref_decode(tok, row)]
    assert dec.positions == [list(range(len(row)))]  # padding after EOS is skipped
    ends = dec.char_ends[0]
    assert ends == expected_char_ends(tok, row)
    mid, last = len(first), len(row) - 1
    assert ends[mid] == ends[mid - 1]  # EOS in the middle adds nothing
    assert ends[last] == ends[last - 1]  # nor does the final EOS
    sents = SpacySentenceSegmenter()(dec.texts[0])
    assert len(sents) == 2
    index, smask = align_spans(dec, [sents])
    assert smask.tolist() == [[True, True]]
    # each sentence closes at its "." token, never at an EOS
    assert index.tolist() == [[mid - 1, last - 1]]
    assert tok.convert_ids_to_tokens(row[mid - 1]).endswith(".")


def test_wordpiece_cls_and_sep_are_zero_width(wordpiece_tokenizer):
    tok = wordpiece_tokenizer
    row = tok("Hello there. General Kenobi!")["input_ids"]  # [CLS] ... [SEP]
    assert row[0] == tok.cls_token_id and row[-1] == tok.sep_token_id
    dec = decode_with_offsets(tok, [row])
    assert dec.texts == [ref_decode(tok, row)] == ["hello there. general kenobi!"]
    assert dec.char_ends[0] == expected_char_ends(tok, row)
    assert dec.char_ends[0][0] == 0
    spans = SpacySentenceSegmenter()(dec.texts[0])
    index, _ = align_spans(dec, [spans])
    assert index.tolist() == [[row.index(tok.convert_tokens_to_ids(".")), len(row) - 2]]


# --- layouts -------------------------------------------------------------------------------------

PROMPTS = ["question: what colour is the sky? answer:", "question: why? answer:"]
RESPONSES = [" It is blue by day. It is red, at sunset, sometimes.", " Because it is."]


def _check_alignment(tok, resp_ids, resp_mask, rows):
    """Decode the response slice, split into sentences, and check every closing token."""
    dec = decode_with_offsets(tok, resp_ids, resp_mask)
    assert dec.num_tokens == resp_ids.shape[1]
    sents = SpacySentenceSegmenter().batch(dec.texts)
    index, smask = align_spans(dec, sents)
    assert index.shape == smask.shape == (len(rows), max(len(s) for s in sents))
    for b, row in enumerate(rows):
        assert dec.texts[b] == ref_decode(tok, row)
        assert "question" not in dec.texts[b]
        assert smask[b].tolist() == [True] * len(sents[b]) + [False] * (index.shape[1] - len(sents[b]))
        for k, (_, end) in enumerate(sents[b]):
            assert index[b, k].item() == expected_closing(tok, row, end)
            assert tok.convert_ids_to_tokens(int(resp_ids[b, index[b, k]])).endswith(".")
    return dec, sents, index


def test_causal_layout(tokenizer):
    tok = tokenizer
    eos, pad = eos_id(tok), tok.pad_token_id
    prompts = [encode(tok, p) for p in PROMPTS]
    responses = [encode(tok, r) + [eos] for r in RESPONSES]
    P = max(map(len, prompts))
    R = max(map(len, responses)) + 2
    full = torch.full((2, P + R), pad, dtype=torch.long)
    attn = torch.zeros((2, P + R), dtype=torch.bool)
    for b, (p, r) in enumerate(zip(prompts, responses)):
        full[b, P - len(p): P] = torch.tensor(p)  # prompts left-padded
        full[b, P: P + len(r)] = torch.tensor(r)  # responses right-padded after EOS
        attn[b, P - len(p): P + len(r)] = True
    _, sents, index = _check_alignment(tok, full[:, P:], attn[:, P:], responses)
    assert [len(s) for s in sents] == [2, 1]
    # the response's last sentence closes at the token before its EOS
    assert index[0, 1].item() == len(responses[0]) - 2
    assert index[1, 0].item() == len(responses[1]) - 2


def test_seq2seq_layout(tokenizer):
    tok = tokenizer
    eos, pad = eos_id(tok), tok.pad_token_id
    start = pad  # T5-style decoder start token
    responses = [encode(tok, r) + [eos] for r in RESPONSES]
    decoder_ids, decoder_mask = pad_batch([[start] + r for r in responses], pad, extra=1)
    _, sents, index = _check_alignment(tok, decoder_ids[:, 1:], decoder_mask[:, 1:], responses)
    assert index[0, 1].item() == len(responses[0]) - 2
    assert index[1, 0].item() == len(responses[1]) - 2


def test_positions_after_eos_are_ignored(tokenizer):
    tok = tokenizer
    eos = eos_id(tok)
    real = encode(tok, "Done here. All good.") + [eos]
    junk = encode(tok, " junk words that follow, without end")
    ids = torch.tensor([real + junk])
    for mask in (torch.tensor([[1] * len(real) + [0] * len(junk)]),  # int mask
                 torch.tensor([[True] * len(real) + [False] * len(junk)])):
        dec = decode_with_offsets(tok, ids, mask)
        assert dec.texts == [ref_decode(tok, real)]
        assert "junk" not in dec.texts[0]
        assert dec.positions == [list(range(len(real)))]
        assert dec.num_tokens == len(real) + len(junk)
        spans = SpacySentenceSegmenter()(dec.texts[0])
        index, smask = align_spans(dec, [spans])
        assert smask.all()
        assert index[0, -1].item() == len(real) - 2  # the final ".", before the EOS
        assert (index < len(real)).all()


def test_mask_with_holes_maps_back_to_tensor_positions(bpe_tokenizer):
    # A real token after a masked one: positions index the [B, T] tensor, not the real tokens.
    tok = bpe_tokenizer
    a = encode(tok, "One two.")
    b = encode(tok, " Three four.")
    ids = torch.tensor([a + [tok.pad_token_id] * 2 + b])
    mask = torch.tensor([[True] * len(a) + [False] * 2 + [True] * len(b)])
    dec = decode_with_offsets(tok, ids, mask)
    assert dec.texts == ["One two. Three four."]
    assert dec.positions == [list(range(len(a))) + list(range(len(a) + 2, len(a) + 2 + len(b)))]
    index, _ = align_spans(dec, [SpacySentenceSegmenter()(dec.texts[0])])
    assert index.tolist() == [[len(a) - 1, len(a) + 2 + len(b) - 1]]


# --- truncation, empty generations ---------------------------------------------------------------

def test_truncated_generation_closes_at_last_real_token(tokenizer, all_predictions):
    tok = tokenizer
    text = next(t for t in all_predictions if len(t) > 300)
    full_ids = encode(tok, text)
    # Cut mid-sentence, after a token that ends a word (so the last token adds text).
    k = int(len(full_ids) * 0.6)
    while not ref_decode(tok, full_ids[:k])[-1].isalnum() or ref_decode(tok, full_ids[:k]).rstrip()[-1] == ".":
        k -= 1
    cut = full_ids[:k]
    other = encode(tok, text)  # a longer row in the same batch, so the cut row is padded
    ids, mask = pad_batch([cut, other], tok.pad_token_id)
    dec = decode_with_offsets(tok, ids, mask)
    assert dec.texts[0] == ref_decode(tok, cut)
    assert not dec.texts[0].rstrip().endswith(".")  # really cut mid-sentence
    sents = SpacySentenceSegmenter().batch(dec.texts)
    subs = [SubSentenceSegmenter(SpacySentenceSegmenter()).from_sentences(t, s) for t, s in zip(dec.texts, sents)]
    for spans in (sents, subs, SequenceSegmenter().batch(dec.texts)):
        index, smask = align_spans(dec, spans)
        n0 = len(spans[0])
        assert smask[0, :n0].all() and not smask[0, n0:].any()
        assert index[0, n0 - 1].item() == k - 1  # the last segment closes at the last real token
        for s, (_, end) in enumerate(spans[0]):
            assert index[0, s].item() == expected_closing(tok, cut, end)


def test_empty_generation_gives_all_false_row(tokenizer):
    tok = tokenizer
    eos, pad = eos_id(tok), tok.pad_token_id
    real = encode(tok, "Something real. And more.")
    T = len(real) + 1
    rows = [
        [eos] + [pad] * (T - 1),  # only an EOS
        [pad] * T,  # nothing at all (fully masked)
        real + [eos],
    ]
    masks = [[True] + [False] * (T - 1), [False] * T, [True] * T]
    dec = decode_with_offsets(tok, torch.tensor(rows), torch.tensor(masks))
    assert dec.texts[:2] == ["", ""]
    assert dec.char_ends[1] == [] and dec.positions[1] == []
    assert dec.positions[0] == [0]
    sents = SpacySentenceSegmenter().batch(dec.texts)
    assert sents[:2] == [[], []]
    index, smask = align_spans(dec, sents)
    assert smask.shape == (3, 2)
    assert smask.tolist() == [[False, False], [False, False], [True, True]]
    assert index[2].tolist() == [expected_closing(tok, real, e) for _, e in sents[2]]


def test_all_empty_batch_has_one_masked_column(bpe_tokenizer):
    tok = bpe_tokenizer
    dec = decode_with_offsets(tok, torch.full((2, 4), tok.pad_token_id), torch.zeros(2, 4, dtype=torch.bool))
    assert dec.texts == ["", ""] and dec.num_tokens == 4
    index, smask = align_spans(dec, [[], []])
    assert index.shape == smask.shape == (2, 1)
    assert not smask.any()
    assert index.dtype == torch.long and smask.dtype == torch.bool
    # zero-length responses
    dec = decode_with_offsets(tok, torch.zeros((2, 0), dtype=torch.long))
    assert dec.texts == ["", ""] and dec.num_tokens == 0
    assert align_spans(dec, [[], []])[1].shape == (2, 1)


# --- Unicode -------------------------------------------------------------------------------------

def test_emoji_over_several_byte_tokens(bpe_tokenizer):
    tok = bpe_tokenizer
    text = "Great job 😀 and again 🎉!"
    ids = encode(tok, text)
    assert len(encode(tok, "😀")) >= 2, "precondition: the emoji is split over several byte tokens"
    dec = decode_with_offsets(tok, [ids])
    assert dec.texts == [text]
    assert dec.char_ends[0] == expected_char_ends(tok, ids)
    end = text.index("😀") + 1
    # The token that completes the emoji: the first whose prefix decode shows it whole.
    completing = next(j for j in range(len(ids)) if "😀" in ref_decode(tok, ids[: j + 1]))
    assert ref_decode(tok, ids[:completing]).endswith(REPLACEMENT)  # the one before is partial
    assert closing_tokens(dec.char_ends[0], [(0, end)]) == [completing]
    # Tokens holding the first bytes of the emoji add no character.
    first_byte = next(j for j in range(len(ids)) if ref_decode(tok, ids[: j + 1]).endswith(REPLACEMENT))
    assert dec.char_ends[0][first_byte] == dec.char_ends[0][first_byte - 1] == end - 1
    # The whole text (one sequence span) closes at the last token, "!".
    index, _ = align_spans(dec, [SequenceSegmenter()(text)])
    assert index.tolist() == [[len(ids) - 1]]
    # and a text that ends with an emoji closes at the emoji's last byte token
    ids2 = encode(tok, " Bye 🎉")
    dec2 = decode_with_offsets(tok, [ids2])
    index2, _ = align_spans(dec2, [SequenceSegmenter()(dec2.texts[0])])
    assert index2.tolist() == [[len(ids2) - 1]]
    assert ref_decode(tok, ids2[:-1]).endswith(REPLACEMENT)


def test_unicode_sentences_close_at_their_full_stop(tokenizer):
    tok = tokenizer
    text = "Zoë ate crème brûlée in 東京 😀. Then she went home!"
    ids = encode(tok, text)
    dec = decode_with_offsets(tok, [ids])
    spans = SpacySentenceSegmenter()(dec.texts[0])
    assert len(spans) == 2
    index, _ = align_spans(dec, [spans])
    assert index.tolist() == [[expected_closing(tok, ids, e) for _, e in spans]]
    assert tok.convert_ids_to_tokens(ids[index[0, 0]]).endswith(".")
    assert index[0, 1].item() == len(ids) - 1


def _byte_level_char_of_byte() -> dict[str, int]:
    """GPT-2's byte <-> printable-char table, inverted: token char -> the byte it stands for."""
    bs = [*range(ord("!"), ord("~") + 1), *range(ord("\xa1"), ord("\xac") + 1), *range(ord("\xae"), ord("\xff") + 1)]
    cs = list(bs)
    extra = 0
    for byte in range(256):
        if byte not in bs:
            bs.append(byte)
            cs.append(256 + extra)
            extra += 1
    return {chr(c): b for b, c in zip(bs, cs)}


def byte_ends(tok, ids) -> list[int]:
    """UTF-8 bytes of text after each byte-level BPE token (no special tokens in ids)."""
    table = _byte_level_char_of_byte()
    out, total = [], 0
    for piece in tok.convert_ids_to_tokens(ids):
        total += len(piece) if all(ch in table for ch in piece) else 0
        out.append(total)
    return out


@pytest.mark.parametrize("case", ["real_replacement_char_at_end", "cut_mid_character", "real_replacement_char_mid_text"])
def test_replacement_char(bpe_tokenizer, case):
    tok = bpe_tokenizer
    if case == "real_replacement_char_at_end":
        ids = encode(tok, " a \ufffd")  # the text itself ends with U+FFFD
    elif case == "cut_mid_character":
        ids = encode(tok, " Hi 😀")[:-1]  # generation stopped inside the emoji's bytes
    else:
        ids = encode(tok, " a \ufffd b")
    dec = decode_with_offsets(tok, [ids])
    assert dec.texts == [ref_decode(tok, ids)]
    if case == "real_replacement_char_mid_text":
        # U+FFFD is 3 bytes; the token holding its last byte completes it, as for any character.
        completing = next(j for j, n in enumerate(byte_ends(tok, ids)) if n >= len(" a \ufffd".encode()))
        assert dec.char_ends[0][completing] == len(" a \ufffd")


def test_byte_level_table_matches_tokenizer(bpe_tokenizer):
    # The helper above is right: byte counts agree with the UTF-8 length of decoded prefixes.
    tok = bpe_tokenizer
    ids = encode(tok, "Zoë 😀 東京 ok")
    ends = byte_ends(tok, ids)
    assert ends[-1] == len("Zoë 😀 東京 ok".encode())
    for j in range(len(ids)):
        text = ref_decode(tok, ids[: j + 1])
        if not text.endswith(REPLACEMENT):
            assert len(text.encode()) == ends[j]


# --- closing_tokens by hand, and errors ----------------------------------------------------------

@pytest.mark.parametrize("char_ends, spans, expected", [
    ([2, 4, 4, 6, 9], [(0, 1)], [0]),
    ([2, 4, 4, 6, 9], [(0, 2)], [0]),
    ([2, 4, 4, 6, 9], [(0, 3)], [1]),
    ([2, 4, 4, 6, 9], [(3, 4)], [1]),  # the zero-width token 2 never closes
    ([2, 4, 4, 6, 9], [(5, 5 + 1), (7, 9)], [3, 4]),
    ([0, 0, 3, 3, 5], [(0, 1), (4, 5)], [2, 4]),  # leading zero-width tokens
    ([2, 4, 4, 6, 9], [], []),
])
def test_closing_tokens_hand_cases(char_ends, spans, expected):
    assert closing_tokens(char_ends, spans) == expected


def test_span_beyond_text_raises(bpe_tokenizer):
    with pytest.raises(ValueError, match="beyond"):
        closing_tokens([2, 4, 6], [(0, 2), (3, 7)])
    with pytest.raises(ValueError, match="beyond"):
        closing_tokens([], [(0, 1)])
    tok = bpe_tokenizer
    ids = encode(tok, "Short text.")
    dec = decode_with_offsets(tok, [ids])
    n = len(dec.texts[0])
    assert align_spans(dec, [[(0, n)]])[0].tolist() == [[len(ids) - 1]]  # the end itself is fine
    with pytest.raises(ValueError, match="beyond"):
        align_spans(dec, [[(0, n + 1)]])


def test_align_spans_checks_batch_size(bpe_tokenizer):
    dec = decode_with_offsets(bpe_tokenizer, [encode(bpe_tokenizer, "One.")])
    with pytest.raises(ValueError):
        align_spans(dec, [[(0, 4)], [(0, 4)]])


def test_align_spans_device_and_dtypes(bpe_tokenizer):
    dec = decode_with_offsets(bpe_tokenizer, [encode(bpe_tokenizer, "One. Two.")])
    index, mask = align_spans(dec, [[(0, 4), (5, 9)]], device="cpu")
    assert index.device.type == mask.device.type == "cpu"
    assert index.dtype == torch.long and mask.dtype == torch.bool


# --- 200 real predictions, every granularity -------------------------------------------------------

@pytest.mark.parametrize("method", ["auto", "stream"])
def test_real_predictions_every_span_closes_correctly(tokenizer, method, all_predictions):
    tok = tokenizer
    texts = all_predictions[1::8]  # 200 predictions
    assert len(texts) == 200
    eos = eos_id(tok)
    rows = [encode(tok, t) + [eos] for t in texts]
    ids, mask = pad_batch(rows, tok.pad_token_id)
    dec = decode_with_offsets(tok, ids, mask, method=method)
    sentences = SpacySentenceSegmenter()
    subsentences = SubSentenceSegmenter(sentences)
    sents = sentences.batch(dec.texts)
    by_granularity = {
        "sentence": sents,
        "subsentence": [subsentences.from_sentences(t, s) for t, s in zip(dec.texts, sents)],
        "sequence": SequenceSegmenter().batch(dec.texts),
    }
    n_checked = 0
    for b, row in enumerate(rows):
        assert dec.texts[b] == ref_decode(tok, row)
        assert dec.positions[b] == list(range(len(row)))
    for name, spans in by_granularity.items():
        index, smask = align_spans(dec, spans)
        for b, row in enumerate(rows):
            ends = dec.char_ends[b]
            assert smask[b].sum().item() == len(spans[b])
            for s, (_, end) in enumerate(spans[b]):
                j = index[b, s].item()
                assert j < len(row) - 1, "the EOS never closes a span"
                assert ends[j] >= end and (j == 0 or ends[j - 1] < end), (name, b, s)
                # and, independently of char_ends, by decoding two prefixes
                assert prefix_len(tok, row, j) >= end > prefix_len(tok, row, j - 1), (name, b, s)
                n_checked += 1
            # the last span of every granularity closes at the last non-EOS token
            if spans[b]:
                assert index[b, len(spans[b]) - 1].item() == len(row) - 2
    assert n_checked > 1500

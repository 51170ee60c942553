"""From generated token ids to text with per-token char offsets, and from spans to tokens.

The response text that reward models read is the policy tokenizer's decoding of the
generated ids (special tokens skipped), done once per response, together with how many
characters of text exist after each token: the offset mapping over the generated ids.
Nothing is ever re-tokenised, so alignment cannot drift where decode → encode does not
round-trip, and the cost is linear in the number of tokens. Two exact ways compute it: a
per-token piece table checked against the batched decode (fast), and the fast tokenizer's
incremental ``DecodeStream`` for any row the table cannot explain.

A token that adds no character (a special token, or a byte-level token holding the first
bytes of a multi-byte character) has the same end as the token before it; a character is
"closed" by the token that completes it.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate

import torch
from torch import Tensor

from fgrlhf.segment.base import Span


@dataclass
class DecodedResponses:
    """Decoded responses of a batch, with the char offsets of each real token.

    ``positions[b][j]`` is the index (in the ``[B, T]`` response tensor) of the j-th real
    token of response b, and ``char_ends[b][j]`` the length of ``texts[b]`` once that token
    is decoded. Both lists are sorted.
    """

    texts: list[str]
    char_ends: list[list[int]]
    positions: list[list[int]]
    num_tokens: int  # T of the response tensor


def _rust_tokenizer(tokenizer):
    backend = getattr(tokenizer, "backend_tokenizer", None) or getattr(tokenizer, "_tokenizer", None)
    if backend is None:
        from tokenizers import Tokenizer

        if isinstance(tokenizer, Tokenizer):
            return tokenizer
        raise TypeError(
            f"{type(tokenizer).__name__} is not a fast (Rust-backed) tokenizer; alignment needs "
            "one: load it with AutoTokenizer.from_pretrained(..., use_fast=True)"
        )
    return backend


class _PieceTable:
    """What each token id adds to the text, in isolation: a cache per tokenizer.

    ``first[v]`` is the text of ``[v]`` alone; ``mid[v]`` what ``v`` appends after an ordinary
    word (None where that is not a clean suffix, e.g. a byte-level token holding part of a
    multi-byte character, whose text depends on its neighbours). Built with two batched
    decodes over the vocabulary.
    """

    def __init__(self, backend) -> None:
        size = backend.get_vocab_size(with_added_tokens=True)
        anchor = backend.encode("a", add_special_tokens=False).ids[0]
        anchor_text = backend.decode([anchor], skip_special_tokens=True)
        pairs = backend.decode_batch([[anchor, v] for v in range(size)], skip_special_tokens=True)
        singles = backend.decode_batch([[v] for v in range(size)], skip_special_tokens=True)
        self.mid = [p[len(anchor_text):] if p.startswith(anchor_text) and "\ufffd" not in p else None
                    for p in pairs]
        self.first = [p if "\ufffd" not in p else None for p in singles]

    def pieces(self, ids: list[int]) -> list[str] | None:
        """Per-token pieces of ``ids``, or None where the table cannot know them."""
        try:
            out = [self.first[ids[0]], *(self.mid[i] for i in ids[1:])]
        except IndexError:  # an id beyond the tokenizer's vocabulary
            return None
        return None if None in out else out


_TABLES: dict[int, tuple[object, _PieceTable]] = {}


def _piece_table(backend) -> _PieceTable:
    key = id(backend)
    hit = _TABLES.get(key)
    if hit is None or hit[0] is not backend:
        hit = (backend, _PieceTable(backend))
        _TABLES[key] = hit
    return hit[1]


def _stream_decode(backend, ids: list[int]) -> tuple[str, list[int]]:
    """Text and per-token char ends by incremental decoding (linear; exact for text without
    U+FFFD, which ``DecodeStream`` holds back as a possibly unfinished character)."""
    from tokenizers.decoders import DecodeStream

    stream = DecodeStream(skip_special_tokens=True)
    pieces: list[str] = []
    ends: list[int] = []
    length = 0
    for tok_id in ids:
        piece = stream.step(backend, tok_id)
        if piece:
            pieces.append(piece)
            length += len(piece)
        ends.append(length)
    return "".join(pieces), ends


def _prefix_decode(backend, ids: list[int], full: str) -> list[int]:
    """Per-token char ends by decoding every prefix (quadratic: used only for texts holding
    U+FFFD). A prefix that ends inside an unfinished multi-byte character decodes with a
    replacement mark the full text does not have there, so each end is the length of the
    prefix's agreement with the full text: a character counts once it is final."""
    ends = []
    for j in range(1, len(ids) + 1):
        prefix = backend.decode(ids[:j], skip_special_tokens=True)
        n = 0
        limit = min(len(prefix), len(full))
        while n < limit and prefix[n] == full[n]:
            n += 1
        ends.append(n)
    # Agreement can only grow as tokens are added; keep the ends sorted.
    for j in range(len(ends) - 2, -1, -1):
        ends[j] = min(ends[j], ends[j + 1])
    return ends


def decode_with_offsets(tokenizer, response_ids: Tensor | Sequence[Sequence[int]],
                        response_mask: Tensor | Sequence[Sequence[int]] | None = None,
                        method: str = "auto") -> DecodedResponses:
    """Decode each response once, recording the text length after every real token.

    ``response_ids``: ``[B, T]`` generated ids only (for a causal policy, the part after the
    prompt; for seq2seq, the decoder ids without the decoder start token). ``response_mask``
    ``[B, T]`` marks real tokens (default: all); masked positions are skipped.

    Each text is the tokenizer's full decode (special tokens skipped), done for the batch in
    one call. ``method="auto"`` splits it by a per-token piece table, checking that the
    pieces join to exactly that text; rows where they do not (decoders whose output depends
    on neighbouring tokens) are decoded incrementally with ``DecodeStream``, and rows
    holding U+FFFD (invalid or unfinished UTF-8 from a byte-level policy) by decoding each
    prefix. ``method="stream"`` skips the table.
    """
    if method not in ("auto", "stream"):
        raise ValueError(f"decode_with_offsets: method must be 'auto' or 'stream', not {method!r}")
    backend = _rust_tokenizer(tokenizer)
    ids = response_ids.tolist() if isinstance(response_ids, Tensor) else [list(r) for r in response_ids]
    if response_mask is None:
        masks = [[True] * len(r) for r in ids]
    else:
        masks = response_mask.tolist() if isinstance(response_mask, Tensor) else [list(m) for m in response_mask]
    num_tokens = max((len(r) for r in ids), default=0)
    positions = [[t for t, real in enumerate(mrow) if real] for mrow in masks]
    real_ids = [[row[t] for t in pos] for row, pos in zip(ids, positions)]
    texts: list[str] = []
    char_ends: list[list[int]] = []
    # The text of every response is the tokenizer's own full decode, done in one batch.
    decoded = backend.decode_batch(real_ids, skip_special_tokens=True)
    table = _piece_table(backend) if method == "auto" else None
    for b, row in enumerate(real_ids):
        full = decoded[b]
        texts.append(full)
        if not row:
            char_ends.append([])
            continue
        if table is not None:
            pieces = table.pieces(row)
            if pieces is not None and "".join(pieces) == full:
                char_ends.append(list(accumulate(map(len, pieces))))
                continue
        if "\ufffd" not in full:
            text, ends = _stream_decode(backend, row)
            if text == full:
                char_ends.append(ends)
                continue
        char_ends.append(_prefix_decode(backend, row, full))
    return DecodedResponses(texts, char_ends, positions, num_tokens)


def closing_tokens(char_ends: Sequence[int], spans: Sequence[Span]) -> list[int]:
    """For each span, the index j of the first token whose char end reaches the span's end.

    ``char_ends`` is one response's sorted ``DecodedResponses.char_ends`` row. Raises
    ValueError for a span that ends beyond the decoded text.
    """
    last = char_ends[-1] if char_ends else 0
    out = []
    for start, end in spans:
        if end > last:
            raise ValueError(f"span {(start, end)} ends beyond the decoded text ({last} chars)")
        out.append(bisect_left(char_ends, end))
    return out


def align_spans(decoded: DecodedResponses, spans: Sequence[Sequence[Span]],
                device: torch.device | str | None = None) -> tuple[Tensor, Tensor]:
    """Token index closing each segment, padded to the batch's largest segment count.

    Returns ``token_index`` ``[B, S]`` (positions in the ``[B, T]`` response tensor) and
    ``segment_mask`` ``[B, S]``; a response with no segments (an empty generation) has an
    all-false row. S is at least 1 so the tensors are never empty along that axis.
    """
    if len(spans) != len(decoded.texts):
        raise ValueError(f"align_spans: {len(spans)} span lists for {len(decoded.texts)} responses")
    width = max(1, max((len(s) for s in spans), default=0))
    # Build plain lists and convert once: one tensor per batch, not one per response.
    index_rows: list[list[int]] = []
    mask_rows: list[list[bool]] = []
    for b, row_spans in enumerate(spans):
        pos = decoded.positions[b]
        js = closing_tokens(decoded.char_ends[b], row_spans) if row_spans else []
        pad = width - len(js)
        index_rows.append([pos[j] for j in js] + [0] * pad)
        mask_rows.append([True] * len(js) + [False] * pad)
    index = torch.tensor(index_rows, dtype=torch.long)
    mask = torch.tensor(mask_rows, dtype=torch.bool)
    if device is not None:
        index, mask = index.to(device), mask.to(device)
    return index, mask

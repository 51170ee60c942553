"""From generated token ids to text with per-token char offsets, and from spans to tokens.

The response text that reward models read is *defined* as the policy tokenizer's own
incremental decoding of the generated ids (special tokens skipped, no clean-up of
tokenisation spaces): decoding is done once per response, token by token, with the fast
tokenizer's ``DecodeStream``, which records how many characters of text exist after each
token. That is the offset mapping over the generated ids. Nothing is ever re-tokenised, so
alignment cannot drift where decode → encode does not round-trip, and the cost is linear in
the number of tokens.

A token that adds no character (a special token, or a byte-level token holding the first
bytes of a multi-byte character) has the same end as the token before it; a character is
"closed" by the token that completes it.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass

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


def decode_with_offsets(tokenizer, response_ids: Tensor | Sequence[Sequence[int]],
                        response_mask: Tensor | Sequence[Sequence[int]] | None = None) -> DecodedResponses:
    """Decode each response once, recording the text length after every real token.

    ``response_ids``: ``[B, T]`` generated ids only (for a causal policy, the part after the
    prompt; for seq2seq, the decoder ids without the decoder start token). ``response_mask``
    ``[B, T]`` marks real tokens (default: all); masked positions are skipped.
    """
    from tokenizers.decoders import DecodeStream

    backend = _rust_tokenizer(tokenizer)
    ids = response_ids.tolist() if isinstance(response_ids, Tensor) else [list(r) for r in response_ids]
    if response_mask is None:
        masks = [[True] * len(r) for r in ids]
    else:
        masks = response_mask.tolist() if isinstance(response_mask, Tensor) else [list(m) for m in response_mask]
    num_tokens = max((len(r) for r in ids), default=0)
    texts, char_ends, positions = [], [], []
    for row, mrow in zip(ids, masks):
        stream = DecodeStream(skip_special_tokens=True)
        pieces: list[str] = []
        ends: list[int] = []
        pos: list[int] = []
        length = 0
        for t, (tok_id, real) in enumerate(zip(row, mrow)):
            if not real:
                continue
            piece = stream.step(backend, tok_id)
            if piece:
                pieces.append(piece)
                length += len(piece)
            ends.append(length)
            pos.append(t)
        texts.append("".join(pieces))
        char_ends.append(ends)
        positions.append(pos)
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
    index = torch.zeros(len(spans), width, dtype=torch.long)
    mask = torch.zeros(len(spans), width, dtype=torch.bool)
    for b, row_spans in enumerate(spans):
        if not row_spans:
            continue
        js = closing_tokens(decoded.char_ends[b], row_spans)
        pos = decoded.positions[b]
        index[b, : len(js)] = torch.tensor([pos[j] for j in js], dtype=torch.long)
        mask[b, : len(js)] = True
    if device is not None:
        index, mask = index.to(device), mask.to(device)
    return index, mask

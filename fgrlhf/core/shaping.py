"""Reward shaping per category: how segment scores combine and where they land.

Segment-level rewards open the segmentation itself to exploitation: with one bonus per
error-free segment (the paper's rule), splitting an answer into more, shorter segments earns
more by itself. These functions remove that incentive, each as an option of one category:

- ``combine_segment_scores``: ``sum`` (the paper's), ``mean`` (each of an answer's n
  segments counts 1/n, so the answer's total is the mean score whatever n is) or ``words``
  (each segment counts its words / ``unit_words``: cutting a segment in two leaves the
  answer's total as it was, while every further error-free word still earns, so neither
  splitting nor shrinking pays by itself), and ``min_segment_words`` (a segment shorter
  than this earns no bonus; penalties stay);
- ``place_segment_scores``: ``end`` (the paper's: on the token that closes the segment),
  ``first`` (on its first token) or ``spread`` (evenly over its tokens).

Every placement keeps a row's sum equal to the sum of its segment scores.
"""

from __future__ import annotations

import torch
from torch import Tensor

from fgrlhf.core.scatter import scatter_segment_scores

PER_SEGMENT = ("sum", "mean", "words")
PLACEMENTS = ("end", "first", "spread")


def combine_segment_scores(scores: Tensor, mask: Tensor, words: Tensor | None = None, per_segment: str = "sum",
                           min_segment_words: int = 0, unit_words: float = 8.0) -> Tensor:
    """Shaped segment scores ``[B, S]`` (0 at padding).

    ``s'_i = s_i · [s_i ≤ 0 or words_i ≥ min_segment_words] · w_i`` with ``w_i`` = 1 (sum),
    1/n (mean; n the number of real segments of the row) or ``words_i / unit_words``
    (words). ``words`` ``[B, S]``: each segment's word count (needed with
    ``min_segment_words > 0`` or ``per_segment="words"``).
    """
    if per_segment not in PER_SEGMENT:
        raise ValueError(f"per_segment must be one of {PER_SEGMENT}, not {per_segment!r}")
    real = mask.bool()  # [B, S]
    out = torch.where(real, scores, torch.zeros_like(scores))
    if (min_segment_words > 0 or per_segment == "words") and words is None:
        raise ValueError("min_segment_words and per_segment='words' need each segment's word count")
    if min_segment_words > 0:
        short_bonus = real & (words < min_segment_words) & (out > 0)  # [B, S]
        out = torch.where(short_bonus, torch.zeros_like(out), out)
    if per_segment == "mean":
        n = real.sum(dim=1, keepdim=True).clamp(min=1).to(out.dtype)  # [B, 1]
        out = out / n
    elif per_segment == "words":
        if not unit_words > 0:
            raise ValueError(f"unit_words must be > 0, not {unit_words!r}")
        out = out * torch.where(real, words.to(out.dtype), torch.zeros_like(out)) / unit_words
    return out


def segment_starts(token_index: Tensor, mask: Tensor) -> Tensor:
    """The first token of each segment ``[B, S]``: one past the previous real segment's
    closing token (0 for the first), never past the segment's own closing token."""
    real = mask.bool()
    ends = torch.where(real, token_index, torch.full_like(token_index, -1)).long()  # [B, S]
    # The running maximum of earlier closing tokens (segments are in text order).
    previous = torch.cummax(ends, dim=1).values  # [B, S]
    previous = torch.cat([torch.full_like(previous[:, :1], -1), previous[:, :-1]], dim=1)
    return torch.minimum(previous + 1, token_index.long())


def place_segment_scores(scores: Tensor, mask: Tensor, token_index: Tensor, num_tokens: int,
                         placement: str = "end") -> Tensor:
    """Dense ``[B, T]`` reward from segment scores ``[B, S]`` closed at ``token_index``."""
    if placement == "end":
        return scatter_segment_scores(scores, mask, token_index, num_tokens)
    if placement not in PLACEMENTS:
        raise ValueError(f"placement must be one of {PLACEMENTS}, not {placement!r}")
    starts = segment_starts(token_index, mask)  # [B, S]
    if placement == "first":
        return scatter_segment_scores(scores, mask, starts, num_tokens)
    # spread: every token t with start ≤ t ≤ end gets score / (end − start + 1).
    real = mask.bool()
    t = torch.arange(num_tokens, device=scores.device)  # [T]
    inside = (t >= starts.unsqueeze(-1)) & (t <= token_index.long().unsqueeze(-1)) & real.unsqueeze(-1)  # [B, S, T]
    width = inside.sum(-1).clamp(min=1).to(scores.dtype)  # [B, S]
    per_token = torch.where(real, scores, torch.zeros_like(scores)) / width  # [B, S]
    return (inside.to(scores.dtype) * per_token.unsqueeze(-1)).sum(dim=1)  # [B, T]

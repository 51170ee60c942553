"""Placing per-segment scores on the tokens that close the segments."""

from __future__ import annotations

import torch
from torch import Tensor


def scatter_segment_scores(
    scores: Tensor,
    segment_mask: Tensor,
    token_index: Tensor,
    num_tokens: int,
) -> Tensor:
    """Dense ``[B, T]`` reward from per-segment scores.

    Segment s of response b contributes ``scores[b, s]`` at position ``token_index[b, s]``
    (the index of the response token that closes the segment); every other position gets 0.
    Two segments closed by the same token add up, so the sum of a row always equals the sum
    of its real segment scores. Masked-out segments (``segment_mask`` false) contribute
    nothing, whatever their score or index.

    Shapes: scores, segment_mask, token_index ``[B, S]`` → ``[B, num_tokens]``.
    """
    if scores.shape != segment_mask.shape or scores.shape != token_index.shape:
        raise ValueError(
            f"scatter_segment_scores: scores {tuple(scores.shape)}, segment_mask "
            f"{tuple(segment_mask.shape)} and token_index {tuple(token_index.shape)} differ"
        )
    real = segment_mask.bool()  # [B, S]
    if bool(real.any()):
        idx = token_index[real]
        if int(idx.min()) < 0 or int(idx.max()) >= num_tokens:
            raise IndexError(
                f"scatter_segment_scores: a segment closes at token {int(idx.min())}.."
                f"{int(idx.max())}, outside a response of {num_tokens} tokens"
            )
    dense = torch.zeros(scores.shape[0], num_tokens, dtype=scores.dtype, device=scores.device)
    if num_tokens == 0:  # an empty response tensor: every segment is padding (checked above)
        return dense
    zero = torch.zeros((), dtype=scores.dtype, device=scores.device)
    values = torch.where(real, scores, zero)  # [B, S]
    # Padded segments point at token 0 with a 0 score: harmless under scatter_add.
    index = torch.where(real, token_index, torch.zeros_like(token_index)).long()  # [B, S]
    return dense.scatter_add_(1, index, values)  # [B, T]

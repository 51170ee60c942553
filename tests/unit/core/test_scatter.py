"""Placing per-segment scores on the tokens that close the segments."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fgrlhf.core.scatter import scatter_segment_scores

DEVICES = [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA")),
]


@pytest.mark.parametrize("device", DEVICES)
def test_hand_case_segments_closing_at_same_token_add_up(device):
    # Row 0: three real segments closing at tokens 1, 1 and 3 -> token 1 gets 1 + 2 = 3, token 3 gets 4.
    # Row 1: one real segment at token 0 (score 3); two padded segments with junk scores and
    #        out-of-range indices (99, −5) that must be ignored without raising.
    scores = torch.tensor([[1.0, 2.0, 4.0], [3.0, float("nan"), float("inf")]], device=device)
    seg_mask = torch.tensor([[True, True, True], [True, False, False]], device=device)
    token_index = torch.tensor([[1, 1, 3], [0, 99, -5]], device=device)
    out = scatter_segment_scores(scores, seg_mask, token_index, num_tokens=5)
    assert out.shape == (2, 5)
    assert out.dtype == scores.dtype and out.device == scores.device
    assert out.cpu().tolist() == [[0.0, 3.0, 0.0, 4.0, 0.0], [3.0, 0.0, 0.0, 0.0, 0.0]]


def test_hand_case_negative_scores_and_cancellation():
    # Token 2 gets 0.5 + (−0.5) = 0 ; token 0 gets −1.25 ; last token (T−1 = 3) gets 2.
    scores = torch.tensor([[0.5, -1.25, -0.5, 2.0]], dtype=torch.float64)
    out = scatter_segment_scores(scores, torch.ones(1, 4, dtype=torch.bool), torch.tensor([[2, 0, 2, 3]]), 4)
    assert out.tolist() == [[-1.25, 0.0, 0.0, 2.0]]


def test_int_mask_and_int32_index():
    scores = torch.tensor([[1.5, 2.5]])
    out = scatter_segment_scores(scores, torch.tensor([[1, 0]]), torch.tensor([[2, 7]], dtype=torch.int32), 3)
    assert out.tolist() == [[0.0, 0.0, 1.5]]


def test_no_segments_gives_zeros():
    out = scatter_segment_scores(torch.zeros(2, 0), torch.zeros(2, 0, dtype=torch.bool),
                                 torch.zeros(2, 0, dtype=torch.long), 4)
    assert out.tolist() == [[0.0] * 4, [0.0] * 4]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("seed", range(4))
def test_masked_segments_contribute_nothing_whatever_index(device, seed):
    g = torch.Generator().manual_seed(seed)
    B, S, T = 4, 6, 9
    scores = torch.randn(B, S, generator=g, dtype=torch.float64)
    seg_mask = torch.rand(B, S, generator=g) > 0.4
    token_index = torch.randint(0, T, (B, S), generator=g)
    ref = scatter_segment_scores(scores.to(device), seg_mask.to(device), token_index.to(device), T)
    for junk_index, junk_score in [(10_000, float("nan")), (-1, float("inf")), (T, -1e30), (0, 7.0)]:
        s2 = torch.where(seg_mask, scores, torch.full_like(scores, junk_score))
        i2 = torch.where(seg_mask, token_index, torch.full_like(token_index, junk_index))
        out = scatter_segment_scores(s2.to(device), seg_mask.to(device), i2.to(device), T)
        assert torch.equal(out, ref)
    # and dropping the masked segments' scores entirely (zeroing them) gives the same
    z = torch.where(seg_mask, scores, torch.zeros_like(scores))
    assert torch.equal(scatter_segment_scores(z.to(device), seg_mask.to(device), token_index.to(device), T), ref)


@settings(max_examples=50, deadline=None)
@given(
    B=st.integers(1, 5),
    S=st.integers(0, 8),
    T=st.integers(1, 12),
    seed=st.integers(0, 2**31 - 1),
)
def test_property_row_sum_equals_real_segment_sum(B, S, T, seed):
    g = torch.Generator().manual_seed(seed)
    scores = torch.randn(B, S, generator=g, dtype=torch.float64)
    seg_mask = torch.rand(B, S, generator=g) > 0.3
    token_index = torch.randint(0, T, (B, S), generator=g)
    # padded segments carry junk
    scores = torch.where(seg_mask, scores, torch.full_like(scores, float("nan")))
    token_index = torch.where(seg_mask, token_index, torch.full_like(token_index, T + 3))
    out = scatter_segment_scores(scores, seg_mask, token_index, T)
    assert out.shape == (B, T)
    s_list, m_list, i_list = scores.tolist(), seg_mask.tolist(), token_index.tolist()
    for b in range(B):
        real_sum = sum(s for s, m in zip(s_list[b], m_list[b]) if m)
        assert out[b].sum().item() == pytest.approx(real_sum, abs=1e-9)
        # Positions no real segment closes at are exactly 0.
        closing = {i for i, m in zip(i_list[b], m_list[b]) if m}
        for t in range(T):
            if t not in closing:
                assert out[b, t].item() == 0.0
            else:
                expected = sum(s for s, m, i in zip(s_list[b], m_list[b], i_list[b]) if m and i == t)
                assert out[b, t].item() == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("bad_index", [5, 6, -1, 1000])
def test_real_segment_index_out_of_range_raises(bad_index):
    scores = torch.tensor([[1.0, 2.0]])
    with pytest.raises(IndexError):
        scatter_segment_scores(scores, torch.tensor([[True, True]]), torch.tensor([[0, bad_index]]), num_tokens=5)


@pytest.mark.parametrize(
    "s_shape,m_shape,i_shape",
    [((2, 3), (2, 4), (2, 3)), ((2, 3), (2, 3), (2, 4)), ((2, 3), (3, 2), (2, 3)), ((2, 3), (2, 3), (6,))],
)
def test_shape_mismatch_raises(s_shape, m_shape, i_shape):
    with pytest.raises(ValueError):
        scatter_segment_scores(torch.zeros(s_shape), torch.ones(m_shape, dtype=torch.bool),
                               torch.zeros(i_shape, dtype=torch.long), 4)


def test_all_padded_segments_with_zero_tokens():
    # Empty responses (T = 0) whose segments are all padding: the result should be [B, 0].
    out = scatter_segment_scores(torch.tensor([[1.0]]), torch.tensor([[False]]), torch.tensor([[0]]), 0)
    assert out.shape == (1, 0)

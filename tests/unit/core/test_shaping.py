"""Shaping options: splitting an answer earns nothing under mean, short segments earn no
bonus, and every placement keeps a row's total."""

from __future__ import annotations

import pytest
import torch

from fgrlhf.core.shaping import combine_segment_scores, place_segment_scores, segment_starts


def t(rows, dtype=torch.float32):
    return torch.tensor(rows, dtype=dtype)


def test_sum_is_the_papers_rule_and_mean_removes_the_reward_for_splitting():
    one = t([[0.3, 0.0, 0.0]])
    three = t([[0.3, 0.3, 0.3]])
    m1, m3 = t([[1, 0, 0]], torch.bool), t([[1, 1, 1]], torch.bool)
    assert combine_segment_scores(three, m3).sum().item() == pytest.approx(0.9)
    assert combine_segment_scores(one, m1, per_segment="mean").sum().item() == pytest.approx(0.3)
    assert combine_segment_scores(three, m3, per_segment="mean").sum().item() == pytest.approx(0.3)
    mixed = combine_segment_scores(t([[0.3, -0.3, 9.0]]), t([[1, 1, 0]], torch.bool), per_segment="mean")
    assert mixed[0].tolist() == pytest.approx([0.15, -0.15, 0.0])


def test_words_weighs_each_segment_by_its_length_so_splitting_and_shrinking_earn_nothing():
    # One 12-word error-free segment, the same text cut into 3 + 4 + 5 words, and its first
    # 3 words alone: the cut pays what the whole did, the shorter answer less.
    whole = combine_segment_scores(t([[0.5, 0, 0]]), t([[1, 0, 0]], torch.bool), torch.tensor([[12, 0, 0]]),
                                   per_segment="words", unit_words=8)
    cut = combine_segment_scores(t([[0.5, 0.5, 0.5]]), t([[1, 1, 1]], torch.bool), torch.tensor([[3, 4, 5]]),
                                 per_segment="words", unit_words=8)
    short = combine_segment_scores(t([[0.5]]), t([[1]], torch.bool), torch.tensor([[3]]), per_segment="words",
                                   unit_words=8)
    assert whole.sum().item() == pytest.approx(0.75) and cut.sum().item() == pytest.approx(0.75)
    assert short.sum().item() == pytest.approx(0.1875)
    # An error is charged by its length too; padding stays 0 whatever its word count says.
    mixed = combine_segment_scores(t([[0.5, -0.5, 9.0]]), t([[1, 1, 0]], torch.bool), torch.tensor([[8, 4, 99]]),
                                   per_segment="words", unit_words=8)
    assert mixed[0].tolist() == pytest.approx([0.5, -0.25, 0.0])
    with pytest.raises(ValueError, match="word count"):
        combine_segment_scores(t([[0.5]]), t([[1]], torch.bool), None, per_segment="words")
    with pytest.raises(ValueError, match="unit_words"):
        combine_segment_scores(t([[0.5]]), t([[1]], torch.bool), torch.tensor([[3]]), per_segment="words",
                               unit_words=0)


def test_short_segments_earn_no_bonus_but_keep_their_penalty():
    scores = t([[0.5, 0.5, -0.5, -0.5]])
    words = torch.tensor([[2, 8, 2, 8]])
    mask = t([[1, 1, 1, 1]], torch.bool)
    out = combine_segment_scores(scores, mask, words, min_segment_words=5)
    assert out.tolist() == [[0.0, 0.5, -0.5, -0.5]]
    with pytest.raises(ValueError, match="word count"):
        combine_segment_scores(scores, mask, None, min_segment_words=5)


def test_segment_starts_follow_the_previous_closing_token():
    ends = torch.tensor([[2, 5, 5, 9], [0, 3, 0, 0]])
    mask = t([[1, 1, 1, 1], [1, 1, 0, 0]], torch.bool)
    assert segment_starts(ends, mask).tolist() == [[0, 3, 5, 6], [0, 1, 0, 0]]


@pytest.mark.parametrize("placement", ["end", "first", "spread"])
def test_every_placement_keeps_the_row_total(placement):
    scores = t([[1.0, -2.0, 0.5], [0.3, 7.0, 7.0]])
    ends = torch.tensor([[2, 5, 9], [3, 0, 0]])
    mask = t([[1, 1, 1], [1, 0, 0]], torch.bool)
    dense = place_segment_scores(scores, mask, ends, 10, placement)
    assert dense.sum(1).tolist() == pytest.approx([-0.5, 0.3])


def test_where_each_placement_puts_a_segment():
    scores, ends, mask = t([[3.0, 6.0]]), torch.tensor([[2, 4]]), t([[1, 1]], torch.bool)
    assert place_segment_scores(scores, mask, ends, 6, "end").tolist() == [[0, 0, 3, 0, 6, 0]]
    assert place_segment_scores(scores, mask, ends, 6, "first").tolist() == [[3, 0, 0, 6, 0, 0]]
    assert place_segment_scores(scores, mask, ends, 6, "spread")[0].tolist() == pytest.approx([1, 1, 1, 3, 3, 0])

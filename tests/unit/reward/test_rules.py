"""The model-free reward models."""

from __future__ import annotations

import pytest

from fgrlhf.reward import KeywordReward, LengthReward, RepetitionReward, RewardInputs


def _inputs(*texts):
    return RewardInputs(["p"] * len(texts), list(texts))


def test_length_reward():
    rm = LengthReward(target_words=4, scale=2.0)
    text = "one two three four five six"
    out = rm.score(_inputs(text, ""), [[(0, len(text))], []])
    # 6 words: -2 * |6 - 4| / 4 = -1.0; the empty answer has no segment to score.
    assert out.rows() == [[pytest.approx(-1.0)], []]
    with pytest.raises(ValueError):
        LengthReward(target_words=0)


def test_keyword_reward_matches_whole_words_any_case():
    rm = KeywordReward(["cat"], granularity="sentence", hit=-1.0, miss=0.25)
    text = "A CAT sat. Concatenate this. The cat's toy."
    spans = [[(0, 10), (11, 28), (29, 43)]]
    # "CAT" matches; "Concatenate" does not (not a whole word); "cat's" does.
    assert rm.score(_inputs(text), spans).rows() == [[-1.0, 0.25, -1.0]]
    with pytest.raises(ValueError):
        KeywordReward([])


def test_repetition_reward_flags_repeated_pieces():
    rm = RepetitionReward(threshold=0.8, penalty=-1.0, bonus=0.5)
    text = "the album was released in 2018, the album was released in 2018, it sold well"
    spans = [[(0, 31), (32, 63), (64, 76)]]
    assert rm.score(_inputs(text), spans).rows() == [[0.5, -1.0, 0.5]]

"""Per-category shaping in the aggregator, monitor-only rewards, and a reward model that raises."""

from __future__ import annotations

import pytest
import torch

from fgrlhf.reward import KeywordReward, LengthReward, RewardAggregator, RewardInputs
from fgrlhf.reward.aggregate import RewardModelError, Shaping
from fgrlhf.segment import DecodedResponses


def _decoded_by_words(texts):
    """One token per whitespace-separated word: a span closes at its last word's index."""
    char_ends, positions = [], []
    for text in texts:
        ends = [i + 1 for i, ch in enumerate(text) if not ch.isspace() and (i + 1 == len(text) or text[i + 1].isspace())]
        char_ends.append(ends)
        positions.append(list(range(len(ends))))
    return DecodedResponses(list(texts), char_ends, positions, max(len(e) for e in char_ends))


ONE = "The cat sat on the mat all day."  # 8 words, 1 sentence
MANY = "The cat. Sat on. The mat. All day."  # 8 words, 4 sentences


def _bonus():  # +0.3 for every sentence (no keyword ever matches)
    return KeywordReward(["zzz"], granularity="sentence", hit=-0.3, miss=0.3)


def _total(agg, texts):
    return agg(RewardInputs(["q"] * len(texts), texts), _decoded_by_words(texts)).total.sum(-1).tolist()


def test_sum_pays_for_splitting_and_mean_does_not():
    paper = RewardAggregator({"rel": _bonus()})
    assert _total(paper, [ONE, MANY]) == pytest.approx([0.3, 1.2])
    mean = RewardAggregator({"rel": _bonus()}, shaping={"rel": Shaping(per_segment="mean")})
    assert _total(mean, [ONE, MANY]) == pytest.approx([0.3, 0.3])


def test_words_pays_for_words_not_for_segments():
    # MANY is ONE's text cut into sentences: the same words, the same reward.
    agg = RewardAggregator({"rel": _bonus()}, shaping={"rel": Shaping(per_segment="words", unit_words=4)})
    n_one, n_many = len(ONE.split()), len(MANY.split())
    assert n_one == n_many
    assert _total(agg, [ONE, MANY]) == pytest.approx([0.3 * n_one / 4] * 2)


def test_short_segments_earn_no_bonus():
    agg = RewardAggregator({"rel": _bonus()}, shaping={"rel": Shaping(min_segment_words=3)})
    assert _total(agg, [ONE, MANY]) == pytest.approx([0.3, 0.0])


def test_placement_moves_the_reward_inside_the_segment():
    texts = [ONE]
    first = RewardAggregator({"rel": _bonus()}, shaping={"rel": Shaping(placement="first")})
    out = first(RewardInputs(["q"], texts), _decoded_by_words(texts)).total[0]
    assert out[0].item() == pytest.approx(0.3) and out[1:].abs().sum().item() == 0
    spread = RewardAggregator({"rel": _bonus()}, shaping={"rel": Shaping(placement="spread")})
    out = spread(RewardInputs(["q"], texts), _decoded_by_words(texts)).total[0]
    assert out.tolist() == pytest.approx([0.3 / 8] * 8)


def test_monitor_only_rewards_are_scored_but_never_enter_the_reward():
    plain = RewardAggregator({"rel": _bonus()})
    watched = RewardAggregator({"rel": _bonus()}, monitors={"length": LengthReward(target_words=4)})
    texts = [ONE, MANY]
    a = plain(RewardInputs(["q"] * 2, texts), _decoded_by_words(texts))
    b = watched(RewardInputs(["q"] * 2, texts), _decoded_by_words(texts))
    torch.testing.assert_close(a.total, b.total)
    assert b.categories == ["rel"] and set(b.monitors) == {"length"}
    assert b.monitors["length"].rows() == [[-1.0], [-1.0]]  # −|8 − 4| / 4
    with pytest.raises(KeyError, match="share a name"):
        RewardAggregator({"rel": _bonus()}, monitors={"rel": _bonus()})
    with pytest.raises(KeyError, match="unknown reward categories"):
        RewardAggregator({"rel": _bonus()}, shaping={"other": Shaping()})


class _Broken:
    granularity = "sequence"

    def score(self, inputs, spans):
        raise RuntimeError("the lab's server is down")


def test_a_reward_model_that_raises_is_named():
    agg = RewardAggregator({"rel": _bonus(), "mine": _Broken()})
    with pytest.raises(RewardModelError, match=r"reward model 'mine' \(.*_Broken\) raised RuntimeError: the lab's server"):
        agg(RewardInputs(["q"], [ONE]), _decoded_by_words([ONE]))

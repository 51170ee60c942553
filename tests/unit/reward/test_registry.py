"""Building reward models from config: _target_ (a user's own module) and short names."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from fgrlhf.reward import (
    KeywordReward,
    LengthReward,
    RewardInputs,
    RewardModel,
    build_reward,
    register_reward,
    registered_rewards,
)
from fgrlhf.segment import Granularity


def test_target_instantiates_a_class_outside_fgrlhf():
    cfg = OmegaConf.create({"_target_": "plugins.lab_rewards.DigitPenalty", "penalty": 0.7})
    rm = build_reward(cfg, key="digits")
    assert type(rm).__module__ == "plugins.lab_rewards"
    assert isinstance(rm, RewardModel)
    text = "Born in 1990. Lives in Paris."
    out = rm.score(RewardInputs(["q"], [text]), [[(0, 13), (14, 29)]])
    assert out.rows() == [[pytest.approx(-0.7), 0.0]]


def test_short_names_for_builtins():
    assert {"keyword", "length", "repetition"} <= set(registered_rewards())
    rm = build_reward({"name": "keyword", "keywords": ["foo"], "granularity": "subsentence"})
    assert isinstance(rm, KeywordReward) and rm.granularity is Granularity.SUBSENTENCE
    rm = build_reward({"_target_": "fgrlhf.reward.LengthReward", "target_words": 7})
    assert isinstance(rm, LengthReward) and rm.target_words == 7


def test_register_a_new_short_name_and_reject_clashes():
    @register_reward("test-only-constant")
    class Constant:
        granularity = Granularity.SEQUENCE

        def score(self, inputs, spans):
            from fgrlhf.reward import SegmentScores

            return SegmentScores.from_lists([[1.0] * len(r) for r in spans])

    assert isinstance(build_reward({"name": "test-only-constant"}), Constant)
    with pytest.raises(ValueError, match="already registered"):
        register_reward("test-only-constant")(type("Other", (), {}))


def test_config_errors_name_the_entry():
    with pytest.raises(KeyError, match="reward 'rel': no reward registered as 'nope'"):
        build_reward({"name": "nope"}, key="rel")
    with pytest.raises(KeyError, match="reward 'rel': config needs a _target_"):
        build_reward({"weight": 1.0}, key="rel")
    with pytest.raises(Exception, match="reward 'fact': could not instantiate 'plugins.lab_rewards.Missing'"):
        build_reward({"_target_": "plugins.lab_rewards.Missing"}, key="fact")
    with pytest.raises(TypeError, match="reward 'x': dict is not a RewardModel"):
        build_reward({"_target_": "builtins.dict"}, key="x")

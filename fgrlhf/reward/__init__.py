"""The reward-model contract, its registry, built-in rule rewards, normalisers and the aggregator."""

from fgrlhf.reward.aggregate import DenseReward, RewardAggregator
from fgrlhf.reward.base import (
    RewardInputs,
    RewardModel,
    SegmentErrorModel,
    SegmentScores,
    SequenceScoreModel,
    check_segment_scores,
)
from fgrlhf.reward.normalize import (
    FixedNormalizer,
    IdentityNormalizer,
    Normalizer,
    RunningNormalizer,
    make_normalizer,
)
from fgrlhf.reward.registry import build_reward, register_reward, registered_rewards
from fgrlhf.reward.rules import KeywordReward, LengthReward, RepetitionReward

__all__ = [
    "DenseReward",
    "FixedNormalizer",
    "IdentityNormalizer",
    "KeywordReward",
    "LengthReward",
    "Normalizer",
    "RepetitionReward",
    "RewardAggregator",
    "RewardInputs",
    "RewardModel",
    "RunningNormalizer",
    "SegmentErrorModel",
    "SegmentScores",
    "SequenceScoreModel",
    "build_reward",
    "check_segment_scores",
    "make_normalizer",
    "register_reward",
    "registered_rewards",
]

"""The reward contract's pieces: the question of an example, the segment-error and
sequence-score protocols that evaluation recognises reward models by."""

from __future__ import annotations

from fgrlhf.reward import KeywordReward, LengthReward, RewardInputs, SegmentErrorModel, SequenceScoreModel
from fgrlhf.reward.categories import ERROR_THRESHOLD, is_error
from fgrlhf.reward.learned import RMMetadata, SegmentClassifierReward, SequenceReward


def test_question_is_the_metadata_question_else_the_prompt():
    inputs = RewardInputs(["prompt one", "prompt two", "prompt three"], ["a", "b", "c"],
                          [{"question": "Who?"}, {}, {"question": ""}])
    assert inputs.questions() == ["Who?", "prompt two", ""]
    assert RewardInputs(["p"], ["t"]).questions() == ["p"]  # no metadata at all


def test_error_threshold():
    assert ERROR_THRESHOLD == 0.5
    assert is_error(0.51) and not is_error(0.5) and not is_error(0.2)


class _Judge:
    """A user's reward model that judges segments by P(error), not a subclass of anything."""

    def error_probs(self, questions, texts, spans, metadata):
        return [[0.9 for _ in row] for row in spans]


class _Scorer:
    meta = RMMetadata("completeness", "sequence", "sequence", "b", {}, False, 8, score_mean=1.0, score_std=2.0)

    def raw_scores(self, questions, texts, metadata):
        return [3.0 for _ in texts]


def test_protocols_recognise_structure_not_ancestry():
    assert isinstance(_Judge(), SegmentErrorModel) and not isinstance(_Judge(), SequenceScoreModel)
    assert isinstance(_Scorer(), SequenceScoreModel) and not isinstance(_Scorer(), SegmentErrorModel)
    for rule in (KeywordReward(["x"]), LengthReward()):
        assert not isinstance(rule, SegmentErrorModel) and not isinstance(rule, SequenceScoreModel)
    # the built-in learned rewards have the methods the protocols name
    assert callable(SegmentClassifierReward.error_probs) and callable(SequenceReward.raw_scores)


def test_metadata_score_normalizer_uses_the_training_statistics():
    assert _Scorer.meta.score_normalizer().standardize(3.0) == 1.0  # (3 − 1) / 2
    assert _Scorer.meta.as_files() == {"fgrlhf_rm.json": {
        "category": "completeness", "kind": "sequence", "granularity": "sequence", "backbone": "b",
        "label_scheme": {}, "use_passages": False, "max_length": 8, "max_question_tokens": 64,
        "evidence": "passages", "evidence_k": 3, "score_mean": 1.0, "score_std": 2.0, "temperature": 1.0,
        "extra": {}}}

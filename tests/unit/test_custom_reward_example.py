"""The worked example of experiments/custom_reward: a user's reward model (clause-level
redundancy) outside fgrlhf, named by config only, judging real QA-Feedback answers."""

from __future__ import annotations

import sys

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from fgrlhf.cli.train import TrainAppConfig
from fgrlhf.paths import CONF_DIR, PROJECT_ROOT, register_resolvers
from fgrlhf.reward import RewardInputs, build_reward
from fgrlhf.segment.base import check_spans

EXAMPLE = PROJECT_ROOT / "experiments" / "custom_reward"


@pytest.fixture()
def my_rewards(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLE))
    import my_rewards

    yield my_rewards
    sys.modules.pop("my_rewards", None)


def test_clauses_follow_the_segmenter_contract_on_real_answers(my_rewards):
    from fgrlhf.data.qa_feedback import load_feedback
    from fgrlhf.paths import DATA_DIR

    segmenter = my_rewards.ClauseSegmenter()
    records = load_feedback(DATA_DIR / "qa_feedback" / "feedback.json")
    texts = [p for r in records for p in r.predictions][:400]
    for text, spans in zip(texts, segmenter.batch(texts)):
        check_spans(text, spans)
    assert segmenter("It rains, and it pours; then it stops.") == [(0, 9), (10, 23), (24, 38)]


def test_redundant_clauses_are_penalised_where_they_occur(my_rewards):
    reward = my_rewards.ClauseRedundancy(positive=0.1, negative=-0.3)
    text = "Paris hosts the Louvre museum, Paris hosts the Louvre museum and it is large."
    spans = reward.segmenter(text)
    assert [text[s:e] for s, e in spans] == ["Paris hosts the Louvre museum,",
                                            "Paris hosts the Louvre museum", "and it is large."]
    scores = reward.score(RewardInputs(["q"], [text]), [spans])
    assert scores.rows() == [pytest.approx([0.1, -0.3, 0.1])]


def test_the_experiment_config_plugs_it_in_by_target(my_rewards):
    register_resolvers()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="train", overrides=[
            "experiment=qa_cpu", "reward=fine_grained_redundancy",
            f"hydra.searchpath=[file://{EXAMPLE / 'conf'}]"])
    cfg = OmegaConf.merge(OmegaConf.structured(TrainAppConfig), cfg)
    assert list(cfg.reward.models) == ["relevance", "factuality", "completeness", "redundancy"]
    assert cfg.reward.weights.redundancy == 1.0 and cfg.reward.models.relevance.positive == 0.3
    reward = build_reward(cfg.reward.models.redundancy, key="redundancy")
    assert isinstance(reward, my_rewards.ClauseRedundancy) and reward.negative == -0.3

"""The pipeline hands its split, wandb and runtime settings to every stage, under the
keys those apps read."""

from __future__ import annotations

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from fgrlhf.cli.train import TrainAppConfig
from fgrlhf.paths import CONF_DIR, PROJECT_ROOT, register_resolvers
from fgrlhf.train.pipeline import PipelineConfig, shared_overrides
from fgrlhf.train.rewards import fine_grained_reward


def test_the_split_always_goes_to_the_stages_and_the_rest_when_set():
    assert shared_overrides(PipelineConfig()) == ["split.seed=0", "split.dev_questions=40",
                                                  "split.test_questions=60"]
    cfg = PipelineConfig(threads=1)
    cfg.split.seed, cfg.split.test_questions, cfg.wandb.mode = 3, 20, "disabled"
    assert shared_overrides(cfg) == ["split.seed=3", "split.dev_questions=40", "split.test_questions=20",
                                     "wandb.mode=disabled", "threads=1"]


def test_fgrlhf_train_reads_the_overrides_the_pipeline_gives_it():
    cfg = PipelineConfig(threads=2)
    cfg.split.seed, cfg.split.dev_questions, cfg.wandb.project = 5, 10, "lab"
    register_resolvers()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        composed = compose(config_name="train", overrides=[*cfg.train_overrides, *shared_overrides(cfg)])
    train = OmegaConf.merge(OmegaConf.structured(TrainAppConfig), composed)
    assert (train.split.seed, train.split.dev_questions, train.split.test_questions) == (5, 10, 60)
    assert (train.wandb.project, train.threads) == ("lab", 2)


def test_the_fine_grained_reward_points_at_the_pipelines_reward_models(tmp_path):
    register_resolvers()
    reward = fine_grained_reward(tmp_path)
    assert list(reward.models) == ["relevance", "factuality", "completeness"]
    assert {k: m.checkpoint for k, m in reward.models.items()} == {
        k: str(tmp_path / k) for k in ("relevance", "factuality", "completeness")}
    assert reward.models.relevance.positive == 0.3 and reward.name == "fine_grained"
    assert str(PROJECT_ROOT) in PipelineConfig().rm_dir


def test_the_report_carries_the_alerts_that_fired():
    from fgrlhf.train.pipeline import alert_markdown

    banner = alert_markdown({"sentence_inflation": [5, 6, 7], "empty_answers": []})
    assert "Reward-hacking alerts fired while training" in banner
    assert "`sentence_inflation`: iterations 5, 6, 7" in banner and "empty_answers" not in banner
    assert alert_markdown({"empty_answers": []}) == ""


def test_an_evaluated_run_policy_brings_its_alerts(tmp_path):
    import json

    from fgrlhf.eval.checkpoint import training_alerts

    (tmp_path / "policy").mkdir()
    assert training_alerts(str(tmp_path / "policy")) == []
    (tmp_path / "metrics.json").write_text(json.dumps({"alerts": {"kl_bound": [3], "empty_answers": []}}))
    assert training_alerts(str(tmp_path / "policy")) == ["kl_bound: fired at iterations 3"]

"""Every preset composes against the structured schemas: a misspelt key in a preset is an
error here, not at the start of a GPU job."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

import fgrlhf.cli.sft  # noqa: F401  (registers sft_schema)
import fgrlhf.cli.toxicity  # noqa: F401  (registers toxicity_schema)
from fgrlhf.cli.eval import EvalAppConfig
from fgrlhf.cli.pipeline import PipelineConfig
from fgrlhf.cli.train import TrainAppConfig
from fgrlhf.config import SplitConfig
from fgrlhf.paths import CONF_DIR, register_resolvers

EXPERIMENTS = sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml"))


def _compose(config_name: str, overrides: list[str]):
    register_resolvers()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name=config_name, overrides=overrides)


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_preset_composes_and_resolves(experiment):
    cfg = OmegaConf.merge(OmegaConf.structured(TrainAppConfig), _compose("train", [f"experiment={experiment}"]))
    resolved = OmegaConf.to_container(cfg, resolve=True)
    assert resolved["iterations"] > 0 and resolved["reward"]["models"]
    for name, model in resolved["reward"]["models"].items():
        assert name in resolved["reward"]["weights"], f"{experiment}: reward {name} has no weight"
        assert "_target_" in model or "name" in model


def test_paper_presets_carry_the_papers_settings():
    fine = _compose("train", ["experiment=qa_fine_grained_paper"])
    assert fine.policy.init.endswith("t5-large") and fine.policy.value_init == "t5-base"
    assert (fine.ppo.kl_coef, fine.ppo.lam, fine.ppo.lr, fine.ppo.ppo_epochs) == (0.3, 0.95, 1e-5, 4)
    assert fine.iterations * fine.task.prompts_per_iteration * fine.sampling.num_samples == 80_000
    holistic = _compose("train", ["experiment=qa_holistic_paper"])
    assert list(holistic.reward.models) == ["preference"]
    assert (holistic.ppo.kl_coef, holistic.ppo.lam) == (0.2, 0.99)


def test_the_holistic_paper_preset_is_the_fine_grained_one_with_the_preference_reward():
    fine = OmegaConf.to_container(_compose("train", ["experiment=qa_fine_grained_paper"]), resolve=True)
    holistic = OmegaConf.to_container(_compose("train", ["experiment=qa_holistic_paper"]), resolve=True)
    for key in ("policy", "task", "sampling", "iterations", "checkpoint_every", "precision", "eval"):
        assert holistic[key] == fine[key], key
    assert holistic["ppo"]["minibatch_size"] == fine["ppo"]["minibatch_size"] == 16
    preference = holistic["reward"]["models"]["preference"]
    assert preference["checkpoint"].endswith("runs/rm_paper/preference") and preference["batch_size"] == 32
    assert fine["reward"]["models"]["factuality"]["checkpoint"].endswith("runs/rm_paper/factuality")
    assert (holistic["reward"]["name"], fine["reward"]["name"]) == ("holistic", "fine_grained")


@pytest.mark.parametrize(("app", "schema"), [("train", TrainAppConfig), ("eval", EvalAppConfig),
                                             ("pipeline", PipelineConfig)])
def test_every_app_draws_the_one_split_and_takes_split_overrides(app, schema):
    cfg = OmegaConf.merge(OmegaConf.structured(schema), _compose(app, []))
    assert OmegaConf.to_object(cfg.split) == SplitConfig()
    cfg = OmegaConf.merge(OmegaConf.structured(schema), _compose(app, ["split.seed=4", "split.test_questions=9"]))
    assert (cfg.split.seed, cfg.split.test_questions, cfg.split.dev_questions) == (4, 9, SplitConfig().dev_questions)


def test_second_scorer_and_rtp_sft_presets_compose():
    assert _compose("toxicity_fasttext", []).backbone == "fasttext"
    sft = _compose("sft_rtp", [])
    assert sft.task == "rtp" and sft.policy.init == "tiny_gpt2_rtp"



def test_the_gemma_presets_differ_from_their_bases_only_where_they_say():
    fine = OmegaConf.to_container(_compose("train", ["experiment=qa_gemma_cpu"]), resolve=True)
    holistic = OmegaConf.to_container(_compose("train", ["experiment=qa_gemma_holistic_cpu"]), resolve=True)
    for key in ("policy", "task", "sampling", "iterations", "checkpoint_every", "precision", "threads"):
        assert holistic[key] == fine[key], key
    assert (holistic["ppo"]["kl_coef"], holistic["ppo"]["lam"], holistic["ppo"]["lr"]) == (0.2, 0.99, fine["ppo"]["lr"])
    assert list(holistic["reward"]["models"]) == ["preference"] and fine["policy"]["lora"]["r"] == 16
    detox = OmegaConf.to_container(_compose("train", ["experiment=detox_gemma_cpu"]), resolve=True)
    base = OmegaConf.to_container(_compose("train", ["experiment=detox_cpu"]), resolve=True)
    assert detox["policy"]["init"] == "gemma3_270m" and detox["policy"]["lora"]["r"] == 16
    assert detox["sampling"] == base["sampling"] and detox["reward"] == base["reward"]

"""fgrlhf-rm, fgrlhf-sft and fgrlhf-toxicity: one source of truth for their settings. The
YAML files restate no schema default, and every app takes the shared ``split.*``,
``wandb.*`` and runtime keys."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from fgrlhf.cli.dpo import DPOAppConfig
from fgrlhf.cli.rm import RMAppConfig, RMSpec
from fgrlhf.cli.sft import SFTAppConfig
from fgrlhf.cli.toxicity import ToxicityAppConfig
from fgrlhf.config import SplitConfig, WandbConfig
from fgrlhf.paths import CONF_DIR, PROJECT_ROOT, register_resolvers

APPS = {"dpo": DPOAppConfig, "dpo_gemma": DPOAppConfig, "rm": RMAppConfig, "rm_gemma": RMAppConfig, "sft": SFTAppConfig,
        "sft_gemma": SFTAppConfig, "sft_rtp": SFTAppConfig, "toxicity": ToxicityAppConfig,
        "toxicity_fasttext": ToxicityAppConfig}


def _compose(name: str, overrides: list[str]):
    register_resolvers()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return OmegaConf.merge(OmegaConf.structured(APPS[name]), compose(config_name=name, overrides=overrides))


_ABSENT = object()


def _leaves(node, prefix=()):
    for key, value in node.items():
        if isinstance(value, dict):
            yield from _leaves(value, (*prefix, key))
        else:
            yield (*prefix, key), value


def _restated(yaml_path, schema) -> list[str]:
    """Keys of ``yaml_path`` whose value is the schema's default."""
    raw = OmegaConf.to_container(OmegaConf.load(yaml_path), resolve=False)
    raw.pop("defaults", None)
    raw.pop("hydra", None)
    defaults = OmegaConf.to_container(OmegaConf.structured(schema), resolve=False)
    out = []
    for path, value in _leaves(raw):
        node = defaults
        for key in path:
            node = node.get(key, _ABSENT) if isinstance(node, dict) else _ABSENT
        if node is not _ABSENT and node != "???" and node == value:
            out.append(".".join(path))
    return out


# A preset over the category presets may need a schema default back (rm_gemma: LoRA freezes
# the whole trunk, so no layer freezing, where rm=relevance|factuality freeze 2).
OVER_CATEGORY_PRESETS = {"rm_gemma": ["rm.optim.freeze_layers"]}


@pytest.mark.parametrize("name", sorted(APPS))
def test_app_yaml_restates_no_schema_default(name):
    assert _restated(CONF_DIR / f"{name}.yaml", APPS[name]) == OVER_CATEGORY_PRESETS.get(name, [])


@pytest.mark.parametrize("category", ["relevance", "factuality", "completeness", "preference"])
def test_rm_presets_restate_no_schema_default(category):
    assert _restated(CONF_DIR / "rm" / f"{category}.yaml", RMSpec) == []
    assert _compose("rm", [f"rm={category}"]).rm.category == category


@pytest.mark.parametrize("name", sorted(APPS))
def test_every_app_takes_the_shared_split_wandb_and_runtime_keys(name):
    cfg = _compose(name, [])
    assert OmegaConf.to_object(cfg.split) == SplitConfig() and OmegaConf.to_object(cfg.wandb) == WandbConfig()
    cfg = _compose(name, ["split.seed=3", "split.dev_questions=7", "split.eval_prompts=11", "wandb.mode=disabled",
                          "device=cpu", "threads=1"])
    assert (cfg.split.seed, cfg.split.dev_questions, cfg.split.eval_prompts) == (3, 7, 11)
    assert (cfg.split.test_questions, cfg.split.scorer_test) == (SplitConfig().test_questions, SplitConfig().scorer_test)
    assert (cfg.wandb.mode, cfg.device, cfg.threads) == ("disabled", "cpu", 1)


@pytest.mark.parametrize(("name", "old_key"), [("rm", "split_seed=1"), ("sft", "wandb_mode=offline"),
                                               ("toxicity", "eval_prompts=100"), ("sft", "dev_questions=6")])
def test_the_flat_split_and_wandb_keys_are_gone(name, old_key):
    with pytest.raises(Exception, match=old_key.split("=")[0]):
        _compose(name, [old_key])


def test_app_presets_keep_their_settings():
    rm = _compose("rm", ["rm=factuality"])
    assert (rm.rm.use_passages, rm.rm.max_length, rm.rm.optim.epochs, rm.rm.optim.head_lr) == (True, 384, 2, 1e-3)
    assert (rm.rm.optim.lr, rm.rm.optim.weight_decay, rm.rm.optim.warmup_ratio) == (5e-5, 0.01, 0.1)
    sft = _compose("sft_rtp", [])
    assert (sft.task, sft.sft.lr, sft.sft.epochs, sft.sft.warmup_steps, sft.sft.weight_decay) == ("rtp", 1e-3, 4, 50, 0.0)
    tox = _compose("toxicity", [])
    assert (tox.optim.lr, tox.optim.head_lr, tox.optim.batch_size, tox.optim.freeze_layers) == (5e-5, 1e-3, 32, 2)
    assert (tox.optim.weight_decay, tox.optim.warmup_ratio, tox.optim.epochs) == (0.01, 0.06, 1)
    ft = _compose("toxicity_fasttext", [])
    assert (ft.backbone, ft.optim.lr, ft.optim.grad_clip, ft.optim.weight_decay) == ("fasttext", 0.1, 5.0, 0.0)


@pytest.mark.parametrize("category", ["relevance", "factuality", "completeness", "preference"])
def test_the_gemma_reward_preset_keeps_the_category_and_trains_adapters_only(category):
    cfg = _compose("rm_gemma", [f"rm={category}"])
    plain = _compose("rm", [f"rm={category}"])
    assert (cfg.backbone, cfg.rm.lora.r, cfg.rm.optim.freeze_layers, cfg.rm.optim.lr, cfg.threads) == (
        "gemma3_270m", 16, 0, 2e-4, 1)
    assert cfg.checkpoint == f"{PROJECT_ROOT}/runs/rm_gemma/{category}"
    for key in ("category", "use_passages", "max_length", "evidence"):
        assert cfg.rm[key] == plain.rm[key]
    assert (cfg.rm.optim.epochs, cfg.rm.optim.head_lr) == (plain.rm.optim.epochs, plain.rm.optim.head_lr)

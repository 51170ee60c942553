"""The reward of a PPO run, built from its config: reward models, weights, normalisers and
the segmenter, behind one ``RewardAggregator``."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from omegaconf import OmegaConf

from fgrlhf.errors import ConfigError
from fgrlhf.paths import CONF_DIR
from fgrlhf.reward.categories import QA_CATEGORIES
from fgrlhf.train.config import RewardConfig


def build_aggregator(cfg: RewardConfig):
    """The ``RewardAggregator`` of a reward config: each model built from its config node
    (``_target_`` or a registered name), per-category weights and normalisers, and the
    multi-granularity segmenter with the configured sentence splitter."""
    from fgrlhf.reward import RewardAggregator, build_reward, make_normalizer
    from fgrlhf.reward.aggregate import Shaping
    from fgrlhf.segment import MultiGranularitySegmenter, make_sentence_segmenter
    from fgrlhf.validate import validate

    if not cfg.models:
        raise ConfigError(f"reward config {cfg.name!r} names no reward models")
    for name in cfg.shaping:
        if name not in cfg.models:
            raise ConfigError(f"reward.shaping.{name}: no reward model of that name (models: {', '.join(cfg.models)})")
    shaping = {}
    for k, node in cfg.shaping.items():
        unknown = set(node) - {f.name for f in fields(Shaping)}
        if unknown:
            raise ConfigError(f"reward.shaping.{k}: unknown option(s) {', '.join(sorted(unknown))}; "
                              f"expected {', '.join(f.name for f in fields(Shaping))}")
        shaping[k] = Shaping(**dict(node))
        validate(shaping[k], Shaping, prefix=f"reward.shaping.{k}.")
    rewards = {k: build_reward(v, key=k) for k, v in cfg.models.items()}
    monitors = {k: build_reward(v, key=k) for k, v in cfg.monitors.items()}
    normalizers = {k: make_normalizer(**dict(v)) for k, v in cfg.normalize.items()}
    segmenter = MultiGranularitySegmenter(make_sentence_segmenter(cfg.sentence_splitter))
    try:
        return RewardAggregator(rewards, dict(cfg.weights), normalizers, segmenter, shaping, monitors)
    except KeyError as err:
        raise ConfigError(f"reward {cfg.name!r}: {err.args[0]}") from None


def fine_grained_reward(rm_dir: Path) -> RewardConfig:
    """``conf/reward/fine_grained.yaml`` (R1 + R2 + R3) with its checkpoints in
    ``rm_dir/<category>``."""
    cfg = OmegaConf.merge(OmegaConf.structured(RewardConfig), OmegaConf.load(CONF_DIR / "reward" / "fine_grained.yaml"))
    for k in QA_CATEGORIES:
        cfg.models[k].checkpoint = str(rm_dir / k)
    return cfg

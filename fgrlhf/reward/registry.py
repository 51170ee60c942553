"""Building reward models from config: Hydra ``_target_`` or a registered short name.

A user's reward model lives in the user's own module and is named in a config file::

    relevance:
      _target_: my_lab.rewards.MyRelevanceRM
      checkpoint: /path/to/ckpt

Nothing in fgrlhf is edited. Short names (``name: keyword``) exist for the built-ins and for
classes registered with ``@register_reward("...")``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from fgrlhf.reward.base import RewardModel

_REGISTRY: dict[str, Callable[..., RewardModel]] = {}


def register_reward(name: str) -> Callable[[type], type]:
    """Class decorator: make ``name`` a short name for this reward class in configs."""

    def deco(cls: type) -> type:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"a reward named {name!r} is already registered ({_REGISTRY[name]!r})")
        _REGISTRY[name] = cls
        return cls

    return deco


def registered_rewards() -> list[str]:
    return sorted(_REGISTRY)


def build_reward(cfg: Mapping[str, Any] | Any, key: str = "<reward>") -> RewardModel:
    """Instantiate one reward model from a config node (dict or OmegaConf).

    ``_target_`` wins (Hydra instantiation, any importable class or factory); otherwise
    ``name`` looks up the registry, and the remaining keys are constructor arguments.
    The result must satisfy the ``RewardModel`` protocol. ``key`` names the config entry in
    error messages.
    """
    from omegaconf import DictConfig, OmegaConf

    if isinstance(cfg, DictConfig):
        cfg = OmegaConf.to_container(cfg, resolve=True)
    cfg = dict(cfg)
    if "_target_" in cfg:
        from hydra.utils import instantiate

        try:
            model = instantiate(cfg, _convert_="all")
        except Exception as err:
            raise type(err)(f"reward {key!r}: could not instantiate {cfg['_target_']!r}: {err}") from err
    elif "name" in cfg:
        name = cfg.pop("name")
        if name not in _REGISTRY:
            raise KeyError(
                f"reward {key!r}: no reward registered as {name!r}; registered: "
                f"{', '.join(registered_rewards())}; or give a _target_"
            )
        model = _REGISTRY[name](**cfg)
    else:
        raise KeyError(f"reward {key!r}: config needs a _target_ (a class path) or a registered name")
    if not isinstance(model, RewardModel):
        raise TypeError(
            f"reward {key!r}: {type(model).__name__} is not a RewardModel (it needs a "
            "`granularity` attribute and a `score(inputs, spans)` method)"
        )
    return model

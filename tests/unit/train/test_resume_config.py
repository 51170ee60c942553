"""Resume refuses silent changes: every difference is listed, and applied only when named."""

from __future__ import annotations

import pytest

from fgrlhf.errors import CheckpointError
from fgrlhf.train.resume_config import check_resume, differences, flatten

SAVED = {"iterations": 10, "seed": 0, "ppo": {"lr": 1e-5, "kl_coef": 0.3},
         "reward": {"weights": {"length": 0.3, "relevance": 1.0}, "models": {"length": {"name": "length"}}},
         "policy": {"init": "a", "value": "shared"}, "eval": {"every": 2}}


def _with(**changes):
    import copy

    cfg = copy.deepcopy(SAVED)
    for dotted, value in changes.items():
        node = cfg
        *path, last = dotted.split("__")
        for p in path:
            node = node[p]
        node[last] = value
    return cfg


def test_flatten_and_differences():
    assert flatten({"a": {"b": 1, "c": {}}, "d": [1]}) == {"a.b": 1, "a.c": {}, "d": [1]}
    assert differences(SAVED, _with(ppo__lr=1e-3)) == [("ppo.lr", 1e-5, 1e-3)]


def test_free_settings_need_no_override():
    assert check_resume(SAVED, _with(iterations=20, eval__every=5), [], "ck") == []


def test_a_changed_setting_is_refused_with_every_difference_listed():
    new = _with(ppo__lr=1e-3, reward__weights__length=5.0)
    with pytest.raises(CheckpointError) as err:
        check_resume(SAVED, new, [], "ck")
    text = str(err.value)
    assert "ppo.lr: 1e-05 in the checkpoint, 0.001 now" in text
    assert "reward.weights.length: 0.3 in the checkpoint, 5.0 now" in text
    assert "resume_overrides=[ppo.lr,reward.weights.length]" in text


def test_named_overrides_are_applied():
    new = _with(ppo__lr=1e-3, reward__weights__length=5.0)
    applied = check_resume(SAVED, new, ["ppo.lr", "reward.weights"], "ck")
    assert applied == [("ppo.lr", 1e-5, 1e-3), ("reward.weights.length", 0.3, 5.0)]
    with pytest.raises(CheckpointError, match="resume_overrides names settings that do not differ: ppo.gamma"):
        check_resume(SAVED, new, ["ppo.lr", "reward.weights", "ppo.gamma"], "ck")


def test_settings_that_define_the_models_cannot_change():
    with pytest.raises(CheckpointError, match="cannot change on resume.*policy.value"):
        check_resume(SAVED, _with(policy__value="separate"), ["policy.value"], "ck")

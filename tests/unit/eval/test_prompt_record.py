"""fgrlhf-eval refuses to show a policy prompts of another format than it was trained on,
reading the format from the record of the app that wrote it."""

from __future__ import annotations

import json

import pytest

from fgrlhf.errors import ConfigError
from fgrlhf.eval.checkpoint import check_prompt_format, recorded_prompt_format


def test_the_format_comes_from_the_sft_or_dpo_record(tmp_path):
    sft, dpo = tmp_path / "sft", tmp_path / "dpo"
    sft.mkdir(), dpo.mkdir()
    (sft / "fgrlhf_sft.json").write_text(json.dumps({"prompt_format": "causal", "max_prompt_tokens": 384}))
    (dpo / "fgrlhf_dpo.json").write_text(json.dumps({"prompt_format": "t5"}))
    assert recorded_prompt_format(str(sft)) == ("causal", sft / "fgrlhf_sft.json")
    assert recorded_prompt_format(str(dpo)) == ("t5", dpo / "fgrlhf_dpo.json")
    assert recorded_prompt_format(str(tmp_path)) is None  # nothing says: no check
    (sft / "fgrlhf_sft.json").write_text("{not json")
    assert recorded_prompt_format(str(sft)) is None


def test_a_ppo_policy_reads_its_runs_hydra_config(tmp_path):
    run = tmp_path / "run"
    (run / ".hydra").mkdir(parents=True)
    (run / "policy").mkdir()
    (run / ".hydra" / "config.yaml").write_text(
        "task:\n  prompt_format: causal\n  max_prompt_tokens: ${policy.max_prompt_tokens}\n")
    assert recorded_prompt_format(str(run / "policy")) == ("causal", run / ".hydra" / "config.yaml")
    (run / "other").mkdir()  # only fgrlhf-train's policy/ folder is described by the run's config
    assert recorded_prompt_format(str(run / "other")) is None
    (run / ".hydra" / "config.yaml").write_text("task:\n  prompt_format: ${oc.env:FORMAT}\n")
    assert recorded_prompt_format(str(run / "policy")) is None


def test_a_mismatch_is_refused_with_the_settings_to_pass(tmp_path):
    (tmp_path / "fgrlhf_sft.json").write_text(json.dumps({"prompt_format": "causal"}))
    check_prompt_format(str(tmp_path), "causal")
    with pytest.raises(ConfigError) as err:
        check_prompt_format(str(tmp_path), "t5")
    message = str(err.value)
    assert "fgrlhf_sft.json" in message and "task.prompt_format='t5'" in message
    assert f"task.prompt_format=causal task.tokenizer={tmp_path}" in message
    (tmp_path / "fgrlhf_sft.json").write_text(json.dumps({"prompt_format": "t5"}))
    with pytest.raises(ConfigError, match="Pass task.prompt_format=t5$"):
        check_prompt_format(str(tmp_path), "causal")

"""The QA-Feedback evaluation of a saved policy (``fgrlhf-eval``, and the pipeline's
before/after evaluations): greedy answers on held-out questions, judged by reward models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fgrlhf.data.prompt_format import CAUSAL_FORMATS


def reward_values(rewards) -> dict[str, tuple[float, float] | float]:
    """What each segment earns in training, per category, for the HTML report: (error-free,
    error) rewards of a segment classifier, or the scale of a sequence-level score."""
    out: dict[str, tuple[float, float] | float] = {}
    for k, r in rewards.items():
        if hasattr(r, "positive") and hasattr(r, "negative"):
            out[k] = (float(r.positive), float(r.negative))
        elif hasattr(r, "scale"):
            out[k] = float(r.scale)
    return out


def policy_source(policy_path: str) -> str:
    """``policy_path`` checked before any work: a local folder must be a whole model (a path
    is never taken for a hub id); the project's named base policies are built on first use."""
    from fgrlhf.policy.checkpoint import LOCAL_INITS
    from fgrlhf.toolkit.load import model_source

    return policy_path if policy_path in LOCAL_INITS else model_source(policy_path, "policy checkpoint")


def recorded_prompt_format(policy_path: str) -> tuple[str, Path] | None:
    """How the fgrlhf app that wrote ``policy_path`` showed it its questions, and the file that
    says so: ``fgrlhf_sft.json`` or ``fgrlhf_dpo.json`` in the folder, or for an fgrlhf-train
    ``policy/`` the run's ``.hydra/config.yaml`` beside it; None for any other policy."""
    import yaml

    folder = Path(policy_path)
    for record in (folder / "fgrlhf_sft.json", folder / "fgrlhf_dpo.json"):
        if record.is_file():
            try:
                value = json.loads(record.read_text()).get("prompt_format")
            except (OSError, ValueError, AttributeError):
                return None
            return (value, record) if isinstance(value, str) else None
    run = folder.parent / ".hydra" / "config.yaml"
    if folder.name != "policy" or not run.is_file():
        return None
    try:
        value = (yaml.safe_load(run.read_text()) or {}).get("task", {}).get("prompt_format")
    except (OSError, yaml.YAMLError, AttributeError):
        return None
    # an interpolation ("${...}") is not a value this file can tell
    return (value, run) if isinstance(value, str) and not value.startswith("${") else None


def check_prompt_format(policy_path: str, prompt_format: str) -> None:
    """A policy evaluated on prompts of another format than it was trained on answers prompts
    it never saw: refused, with the settings that show it its own."""
    from fgrlhf.errors import ConfigError

    recorded = recorded_prompt_format(policy_path)
    if recorded is None or recorded[0] == prompt_format:
        return
    fix = f"task.prompt_format={recorded[0]}"
    if recorded[0] in CAUSAL_FORMATS:
        fix += f" task.tokenizer={policy_path} task.max_prompt_tokens=N max_prompt_tokens=N (N: its training cap)"
    raise ConfigError(f"{policy_path} was trained on prompt_format={recorded[0]!r} prompts ({recorded[1]}) but "
                      f"task.prompt_format={prompt_format!r}: its answers would be to prompts it never saw. "
                      f"Pass {fix}")


def evaluate_checkpoint(policy_path: str, examples, aggregator, out_dir: Path, kind: str = "auto",
                        max_prompt_tokens: int = 256, max_new_tokens: int = 64, batch_size: int = 8,
                        device: str | None = None, num_beams: int = 1,
                        no_repeat_ngram_size: int = 0) -> dict[str, Any]:
    """Greedy answers of ``policy_path`` on ``examples`` (beam search with ``num_beams`` > 1;
    no n-gram of ``no_repeat_ngram_size`` twice when > 0), judged by ``aggregator``'s reward
    models; ``summary.json``, ``outputs.jsonl`` and ``rollouts.html`` (each answer with its
    segments coloured by each reward model's verdict) go to ``out_dir``."""
    import torch

    from fgrlhf.eval import evaluate_qa, items_from_eval_records, rollout_report, write_jsonl
    from fgrlhf.policy import Policy, SamplingConfig
    from fgrlhf.policy.checkpoint import base_checkpoint
    from fgrlhf.runlock import check_writable
    from fgrlhf.toolkit.load import loading

    source = base_checkpoint(policy_source(policy_path))
    check_writable(out_dir)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    with loading(source, "policy checkpoint"):
        policy = Policy.from_pretrained(source, kind, max_prompt_tokens, device)
    greedy = SamplingConfig(max_new_tokens=max_new_tokens, do_sample=False, num_samples=1, num_beams=num_beams,
                            no_repeat_ngram_size=no_repeat_ngram_size)
    summary, records = evaluate_qa(policy, examples, aggregator.rewards, greedy, batch_size=batch_size,
                                   segmenter=aggregator.segmenter)
    from fgrlhf.eval.monitors import answer_monitors
    from fgrlhf.eval.qa import lead_baseline

    # What training's held-out evaluation logs as eval/monitor/...: segments per answer, text
    # statistics and the monitor-only judges (reward.monitors), so that reward hacking shows
    # in every policy's summary, not only while it trains.
    summary.update(answer_monitors(aggregator, records, examples))

    # Beside every policy: what copying the first 100 words of the passages scores.
    summary = {"policy": str(policy_path), "questions": len(examples), "max_new_tokens": max_new_tokens,
               "num_beams": num_beams, "no_repeat_ngram_size": no_repeat_ngram_size, **summary,
               "lead_rougeLsum": lead_baseline(examples, aggregator.segmenter.sentences)}
    write_jsonl(records, out_dir / "outputs.jsonl")
    rollout_report(items_from_eval_records(records, reward_values(aggregator.rewards)), out_dir / "rollouts.html",
                   title=f"{policy_path}: {len(examples)} questions", alerts=training_alerts(policy_path))
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


def training_alerts(policy_path: str) -> list[str]:
    """The reward-hacking alerts of the fgrlhf-train run that wrote ``policy_path`` (its
    ``metrics.json`` beside the ``policy/`` folder), as report lines; none for other policies."""
    summary = Path(policy_path).parent / "metrics.json"
    if not summary.is_file():
        return []
    try:
        alerts = json.loads(summary.read_text()).get("alerts", {})
    except (OSError, ValueError, AttributeError):
        return []
    return [f"{name}: fired at iterations {', '.join(map(str, steps))}" for name, steps in alerts.items() if steps]

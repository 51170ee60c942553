"""The ``fgrlhf-sft`` recipe: supervised fine-tuning of a policy on (prompt, answer) pairs.

``task=qa_feedback``: pairs are the prompt file's ``text`` and its first reference answer.
Questions are split exactly as ``fgrlhf-rm`` splits them (same seed and sizes over the same
questions), so the SFT policy never trains on the questions held out for evaluation.

``task=rtp``: pairs are RealToxicityPrompts' (prompt, human continuation) of every record
outside the evaluation prompts' groups (``fgrlhf.data.rtp.split_rtp``, the split of
``fgrlhf-toxicity`` and of the detox PPO task), toxic ones included: the policy learns to
continue text as people write it, toxicity and all, which is what detoxification starts from.

The result is a Hugging Face checkpoint with an ``fgrlhf_sft.json`` record.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from fgrlhf.config import SplitConfig
from fgrlhf.errors import ConfigError
from fgrlhf.paths import PROJECT_ROOT, run_dir


def sft_pairs(task: str, prompts_file: str | Path, split: SplitConfig,
              dev_fraction: float = 0.05) -> dict[str, list[tuple[str, str]]]:
    """``{"train": [...], "dev": [...]}`` (prompt, answer) pairs of ``task``: the train and dev
    questions of QA-Feedback, or RTP records outside the evaluation prompts' groups with
    ``dev_fraction`` of them (at least one) held out for the dev loss."""
    if task == "qa_feedback":
        from fgrlhf.data import load_prompts
        from fgrlhf.data.split import split_by_question

        prompts = load_prompts(prompts_file)
        parts = split_by_question([p.question for p in prompts], split.dev_questions, split.test_questions,
                                  split.seed, source=str(prompts_file))
        return {part: [(prompts[i].text, prompts[i].references[0]) for i in getattr(parts, part)
                       if prompts[i].references] for part in ("train", "dev")}
    if task == "rtp":
        from fgrlhf.data.rtp import load_rtp, split_rtp

        records = load_rtp(prompts_file)
        parts = split_rtp(records, split.eval_prompts, split.scorer_test, split.seed, source=str(prompts_file))
        by_index = {r.index: r for r in records}
        pairs = [(by_index[i].prompt.text, by_index[i].continuation.text)
                 for i in sorted(set(parts.scorer_train) | set(parts.scorer_test))
                 if by_index[i].continuation.text.strip()]
        random.Random(split.seed).shuffle(pairs)
        n_dev = max(1, round(dev_fraction * len(pairs)))
        return {"train": pairs[n_dev:], "dev": pairs[:n_dev]}
    raise ConfigError(f"task={task!r}: one of qa_feedback, rtp")


def run(cfg) -> dict[str, Any]:
    """Fine-tune ``cfg.policy.init`` on the pairs of ``cfg.task`` and save it (default
    ``runs/sft/<init name>``); ``cfg``: the ``fgrlhf-sft`` schema
    (``fgrlhf.cli.sft.SFTAppConfig``). Returns the summary."""
    import torch
    import transformers

    from fgrlhf.device import default_device
    from fgrlhf.policy import Policy
    from fgrlhf.policy.checkpoint import LOCAL_INITS, base_checkpoint
    from fgrlhf.runlock import RunLock, check_writable
    from fgrlhf.toolkit.load import model_source

    out = Path(cfg.output or PROJECT_ROOT / "runs" / "sft" / Path(cfg.policy.init).name)
    # Before any work: the initial policy exists, the outputs can be written, no other run writes here.
    if cfg.policy.init not in LOCAL_INITS:
        model_source(cfg.policy.init, "initial policy (policy.init)")
    check_writable(out.parent, "output's folder")
    with RunLock(run_dir(), "fgrlhf-sft"):
        transformers.logging.set_verbosity_error()
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        device = cfg.device or default_device().type
        pairs = sft_pairs(cfg.task, cfg.prompts_file, cfg.split, cfg.dev_fraction)
        if not pairs["train"]:
            raise ConfigError(f"{cfg.prompts_file}: no (prompt, answer) pair to train on (task={cfg.task})")
        policy = Policy.from_pretrained(base_checkpoint(cfg.policy.init), cfg.policy.kind,
                                        cfg.policy.max_prompt_tokens, device)
        return _train(cfg, policy, pairs, out, device)


def _train(cfg, policy, pairs: dict[str, list[tuple[str, str]]], out: Path, device: str) -> dict[str, Any]:
    """Fine-tune ``policy`` on ``pairs``, log to the run folder and save it to ``out``."""
    from fgrlhf.logging import MetricsLogger
    from fgrlhf.toolkit.save import plain_config, save_model_dir, save_or_rescue
    from fgrlhf.train.sft import train_sft

    logger = MetricsLogger(run_dir(), config=OmegaConf.to_container(OmegaConf.structured(cfg)),
                           project=cfg.wandb.project, mode=cfg.wandb.mode, name="sft")
    print(f"[fgrlhf-sft] {policy.kind} policy from {cfg.policy.init}: {len(pairs['train'])} train / "
          f"{len(pairs['dev'])} dev pairs; device {device}")
    history = train_sft(policy, pairs["train"], pairs["dev"], cfg.sft, logger)
    logger.close()
    record = {"init": cfg.policy.init, "kind": policy.kind, "task": cfg.task, "split_seed": cfg.split.seed,
              "sft": plain_config(cfg.sft), "history": history}
    # An output folder that cannot be written keeps the fine-tuned policy in a rescue folder.
    save_or_rescue(out, lambda folder: save_model_dir(folder, policy.model, policy.tokenizer,
                                                      metadata={"fgrlhf_sft.json": record}), "fgrlhf-sft")
    print(f"[fgrlhf-sft] done in {history['seconds']} s; checkpoint {out}")
    return {"checkpoint": str(out), "kind": policy.kind, "steps": history["steps"],
            "seconds": history["seconds"], "dev_loss_before": history["dev_loss_before"],
            "dev_loss": history["dev_loss"][-1] if history["dev_loss"] else None}

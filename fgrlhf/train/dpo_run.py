"""The ``fgrlhf-dpo`` recipe: direct preference optimisation of a policy on QA-Feedback's
human preference judgements, the baseline that learns from the same comparisons as the
holistic preference reward model, without a reward model or sampling.

Each question's 6 pairwise judgements among its 4 answers give up to 6 (preferred,
dispreferred) pairs (ties skipped; ``fgrlhf.data.rm_examples.preference_examples``). The
policy input of a question is the prompts file's ``text`` of that question, and questions
are split over the prompts file exactly as ``fgrlhf-sft``, ``fgrlhf-train`` and
``fgrlhf-eval`` split them: DPO trains on the train questions' pairs and measures its dev
questions' pairs, and never sees the questions ``fgrlhf-eval`` holds out.

The reference is the initial policy (by default the SFT checkpoint), or for a LoRA policy
the same model with its adapters off. The result is a Hugging Face checkpoint (a LoRA policy
is saved with its adapters merged) with an ``fgrlhf_dpo.json`` record, which
``fgrlhf-eval checkpoint=...`` evaluates like any other policy.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from fgrlhf.config import SplitConfig
from fgrlhf.data.prompt_format import CAUSAL_FORMATS
from fgrlhf.paths import PROJECT_ROOT, run_dir

DEFAULT_INIT = "runs/sft/minilm_seq2seq"  # what fgrlhf-sft writes by default


def dpo_pairs(feedback_file: str | Path, prompts_file: str | Path, split: SplitConfig, prompt_format: str = "t5",
              count_tokens: Callable[[str], int] | None = None,
              max_prompt_tokens: int | None = None) -> dict[str, list]:
    """``{"train": [...], "dev": [...]}`` ``PreferencePair``s of the split's train and dev
    questions, and ``"unmatched"``: how many judged questions the prompts file lacks (they
    give no pairs, as their prompt text is unknown). Prompts are shown as ``prompt_format``
    says, as SFT and PPO show them (``fgrlhf.data.tasks.qa_prompt_texts``)."""
    from fgrlhf.data import load_feedback
    from fgrlhf.data.rm_examples import preference_examples
    from fgrlhf.data.split import split_by_question
    from fgrlhf.data.tasks import qa_prompt_texts
    from fgrlhf.train.dpo import PreferencePair

    texts, questions, _ = qa_prompt_texts(prompts_file, prompt_format, count_tokens, max_prompt_tokens)
    parts = split_by_question(questions, split.dev_questions, split.test_questions, split.seed)
    part_of = {questions[i]: (part, texts[i]) for part in ("train", "dev", "test") for i in getattr(parts, part)}
    out: dict[str, Any] = {"train": [], "dev": [], "unmatched": 0}
    for ex in preference_examples(load_feedback(feedback_file)):
        if ex.question not in part_of:
            out["unmatched"] += 1
            continue
        part, text = part_of[ex.question]
        if part in ("train", "dev"):
            out[part] += [PreferencePair(text, ex.answers[better], ex.answers[worse]) for better, worse in ex.pairs]
    return out


def policy_source(init: str) -> str:
    """The checkpoint ``init`` names: a local base model (built once), a folder (relative
    ones also under the project root, where ``fgrlhf-sft`` writes) or a hub id."""
    from fgrlhf.errors import CheckpointError
    from fgrlhf.policy.checkpoint import LOCAL_INITS, base_checkpoint
    from fgrlhf.toolkit.load import model_source

    if init in LOCAL_INITS:
        return base_checkpoint(init)
    path = Path(init)
    if not path.is_absolute() and not path.exists() and (PROJECT_ROOT / path).exists():
        return model_source(PROJECT_ROOT / path, "policy")
    if init == DEFAULT_INIT and not path.exists():
        raise CheckpointError(f"the SFT policy {init} does not exist: run fgrlhf-sft first, or name the "
                              f"policy to start from with policy.init=...")
    return model_source(init, "policy")


def run(cfg) -> dict[str, Any]:
    """DPO of ``cfg.policy.init`` on the preference pairs of the split's train questions,
    saved to ``cfg.output`` (default ``runs/dpo/<init name>``); ``cfg``: the ``fgrlhf-dpo``
    schema (``fgrlhf.cli.dpo.DPOAppConfig``). Returns the summary."""
    from fgrlhf.device import default_device
    from fgrlhf.errors import ConfigError
    from fgrlhf.logging import MetricsLogger
    from fgrlhf.policy import Policy
    from fgrlhf.policy.lora import has_adapters, merged_model
    from fgrlhf.runlock import check_writable
    from fgrlhf.toolkit.load import loading
    from fgrlhf.toolkit.save import plain_config, portable_path, save_model_dir
    from fgrlhf.train.config import set_up_runtime
    from fgrlhf.train.dpo import train_dpo

    set_up_runtime(cfg.threads)
    device = cfg.device or default_device().type
    out = Path(cfg.output or PROJECT_ROOT / "runs" / "dpo" / Path(cfg.policy.init).name)
    source = policy_source(cfg.policy.init)
    check_writable(out.parent)
    count_tokens = None
    if cfg.prompt_format in CAUSAL_FORMATS:  # the cap is measured in the policy's own tokens
        from transformers import AutoTokenizer

        from fgrlhf.train.tasks import token_counter

        with loading(source, "policy"):
            count_tokens = token_counter(AutoTokenizer.from_pretrained(source))
    pairs = dpo_pairs(cfg.feedback_file, cfg.prompts_file, cfg.split, cfg.prompt_format, count_tokens,
                      cfg.policy.max_prompt_tokens)
    if not pairs["train"]:
        raise ConfigError(f"no preference pair among the training questions: feedback_file={cfg.feedback_file} "
                          f"and prompts_file={cfg.prompts_file} share no training question "
                          f"({pairs['unmatched']} judged questions are not in the prompts file)")
    # With LoRA the policy gets fresh adapters (QLoRA: a 4-bit base on CUDA); the reference is
    # then the same model with them off (fgrlhf.train.dpo.reference_model).
    with loading(source, "policy"):
        policy = Policy.from_pretrained(source, cfg.policy.kind, cfg.policy.max_prompt_tokens, device,
                                        lora=cfg.policy.lora)
    logger = MetricsLogger(run_dir(), config=OmegaConf.to_container(OmegaConf.structured(cfg)),
                           project=cfg.wandb.project, mode=cfg.wandb.mode, name="dpo")
    lora = f" (LoRA r={cfg.policy.lora.r})" if cfg.policy.lora.r > 0 else ""
    print(f"[fgrlhf-dpo] {policy.kind} policy from {cfg.policy.init}{lora}: {len(pairs['train'])} train / "
          f"{len(pairs['dev'])} dev pairs; {cfg.dpo.loss_type} loss, beta {cfg.dpo.beta}; device {device}")
    history = train_dpo(policy, pairs["train"], pairs["dev"], cfg.dpo, logger)
    logger.close()
    record = {"init": cfg.policy.init, "kind": policy.kind, "lora": plain_config(cfg.policy.lora),
              "prompt_format": cfg.prompt_format,
              "feedback_file": portable_path(cfg.feedback_file), "prompts_file": portable_path(cfg.prompts_file),
              "split": plain_config(cfg.split), "dpo": plain_config(cfg.dpo), "history": history}
    model = merged_model(policy.model) if has_adapters(policy.model) else policy.model
    save_model_dir(out, model, policy.tokenizer, metadata={"fgrlhf_dpo.json": record})
    cut = history["same_when_cut"]
    print(f"[fgrlhf-dpo] done in {history['seconds']} s ({history['train_pairs']} train / {history['dev_pairs']} dev "
          f"pairs; {cut['train']} / {cut['dev']} left out, their answers the same within dpo.max_answer_tokens); "
          f"checkpoint {out}")
    return {"checkpoint": str(out), "kind": policy.kind, "steps": history["steps"], "seconds": history["seconds"],
            "train_pairs": history["train_pairs"], "dev_pairs": history["dev_pairs"], "train": history["train"],
            "dev": history["dev"]}

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
from collections.abc import Callable
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from fgrlhf.config import SplitConfig
from fgrlhf.errors import ConfigError
from fgrlhf.paths import PROJECT_ROOT, run_dir


def sft_pairs(task: str, prompts_file: str | Path, split: SplitConfig, dev_fraction: float = 0.05,
              prompt_format: str = "t5", count_tokens: Callable[[str], int] | None = None,
              max_prompt_tokens: int | None = None, corrected_from: str | Path | None = None,
              preferred_from: str | Path | None = None) -> dict[str, list[tuple[str, str]]]:
    """``{"train": [...], "dev": [...]}`` (prompt, answer) pairs of ``task``: the train and dev
    questions of QA-Feedback, or RTP records outside the evaluation prompts' groups with
    ``dev_fraction`` of them (at least one) held out for the dev loss. QA-Feedback prompts
    are shown as ``prompt_format`` says (``fgrlhf.data.tasks.qa_feedback_task``: ``causal``
    keeps the passages' sentences most relevant to the question within ``max_prompt_tokens``
    as ``count_tokens`` measures them), exactly as the PPO task shows them. With
    ``corrected_from`` (a QA-Feedback feedback file), each train question's human-corrected
    answer follows its reference as a further pair; with ``preferred_from``, so does its
    most-preferred prediction (``preferred_prediction``); dev keeps the references alone."""
    if task == "qa_feedback":
        from fgrlhf.data.split import split_by_question
        from fgrlhf.data.tasks import qa_prompt_texts

        texts, questions, references = qa_prompt_texts(prompts_file, prompt_format, count_tokens, max_prompt_tokens)
        answers = [refs[0] if refs else None for refs in references]
        parts = split_by_question(questions, split.dev_questions, split.test_questions, split.seed,
                                  source=str(prompts_file))
        pairs = {part: [(texts[i], answers[i]) for i in getattr(parts, part) if answers[i] is not None]
                 for part in ("train", "dev")}
        extra = [feedback_targets(path, questions, parts.train, pick, option)
                 for path, pick, option in ((corrected_from, corrected_answer, "corrected_answers"),
                                            (preferred_from, preferred_prediction, "preferred_predictions"))
                 if path is not None]
        if extra:
            train = []
            for i in parts.train:  # a question's targets side by side (the batches are shuffled)
                if answers[i] is not None:
                    train.append((texts[i], answers[i]))
                train.extend((texts[i], targets[i]) for targets in extra if i in targets)
            pairs["train"] = train
        return pairs
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


def corrected_answer(example) -> str:
    """A QA-Feedback record's human-corrected answer (8 of the 400 bundled records leave it
    empty)."""
    return example.feedback.corrected


def preferred_prediction(example) -> str:
    """The prediction that wins most of a QA-Feedback record's 6 pairwise human judgements
    (ties: the lower-numbered one; all ties: ``prediction 1``). The predictions are the
    paper's SFT policy's samples, so this is the answer annotators liked best among them."""
    from fgrlhf.data.qa_feedback import judged_pairs

    wins = [0] * len(example.predictions)
    for winner, _ in judged_pairs(example.preference):
        wins[winner] += 1
    return example.predictions[max(range(len(wins)), key=lambda j: (wins[j], -j))]


def feedback_targets(feedback_file: str | Path, questions: list[str], indices, pick: Callable[[Any], str],
                     option: str) -> dict[int, str]:
    """``pick(record)`` of each question at ``indices`` (``questions[i]``) from
    ``feedback_file``, where it is not blank; a question missing from the file is an error
    (naming ``option``): it is not the file the prompts belong to."""
    from fgrlhf.data import load_feedback

    by_question = {ex.question: ex for ex in load_feedback(feedback_file)}
    out = {}
    for i in indices:
        if questions[i] not in by_question:
            raise ConfigError(f"{feedback_file} has no record for train question {i} ({questions[i][:60]!r}): "
                              f"{option}=true needs the feedback file of the same questions")
        target = pick(by_question[questions[i]])
        if target.strip():
            out[i] = target
    return out


def run(cfg) -> dict[str, Any]:
    """Fine-tune ``cfg.policy.init`` on the pairs of ``cfg.task`` and save it (default
    ``runs/sft/<init name>``); ``cfg``: the ``fgrlhf-sft`` schema
    (``fgrlhf.cli.sft.SFTAppConfig``). Returns the summary."""
    from fgrlhf.device import default_device
    from fgrlhf.policy import Policy
    from fgrlhf.policy.checkpoint import LOCAL_INITS, base_checkpoint
    from fgrlhf.runlock import RunLock, check_writable
    from fgrlhf.toolkit.load import model_source
    from fgrlhf.train.config import set_up_runtime
    from fgrlhf.train.tasks import token_counter

    out = Path(cfg.output or PROJECT_ROOT / "runs" / "sft" / Path(cfg.policy.init).name)
    # Before any work: the initial policy exists, the outputs can be written, no other run writes here.
    if cfg.policy.init not in LOCAL_INITS:
        model_source(cfg.policy.init, "initial policy (policy.init)")
    for option in ("corrected_answers", "preferred_predictions"):
        if getattr(cfg, option) and (cfg.task != "qa_feedback" or not cfg.feedback_file):
            raise ConfigError(f"{option}=true: needs task=qa_feedback and a feedback_file")
    check_writable(out.parent, "output's folder")
    with RunLock(run_dir(), "fgrlhf-sft"):
        set_up_runtime(cfg.threads)
        device = cfg.device or default_device().type
        policy = Policy.from_pretrained(base_checkpoint(cfg.policy.init), cfg.policy.kind,
                                        cfg.policy.max_prompt_tokens, device, lora=cfg.policy.lora)
        # Causal prompts keep their most relevant sentences within what the policy reads:
        # cutting the end instead would cut the "Answer:" cue.
        pairs = sft_pairs(cfg.task, cfg.prompts_file, cfg.split, cfg.dev_fraction, cfg.prompt_format,
                          token_counter(policy.tokenizer), cfg.policy.max_prompt_tokens,
                          cfg.feedback_file if cfg.corrected_answers else None,
                          cfg.feedback_file if cfg.preferred_predictions else None)
        if not pairs["train"]:
            raise ConfigError(f"{cfg.prompts_file}: no (prompt, answer) pair to train on (task={cfg.task})")
        return _train(cfg, policy, pairs, out, device)


def _train(cfg, policy, pairs: dict[str, list[tuple[str, str]]], out: Path, device: str) -> dict[str, Any]:
    """Fine-tune ``policy`` on ``pairs``, log to the run folder and save it to ``out``."""
    from fgrlhf.logging import MetricsLogger
    from fgrlhf.toolkit.save import plain_config, save_or_rescue
    from fgrlhf.train.sft import train_sft

    logger = MetricsLogger(run_dir(), config=OmegaConf.to_container(OmegaConf.structured(cfg)),
                           project=cfg.wandb.project, mode=cfg.wandb.mode, name="sft")
    print(f"[fgrlhf-sft] {policy.kind} policy from {cfg.policy.init}: {len(pairs['train'])} train / "
          f"{len(pairs['dev'])} dev pairs; device {device}")
    history = train_sft(policy, pairs["train"], pairs["dev"], cfg.sft, logger)
    logger.close()
    record = {"init": cfg.policy.init, "kind": policy.kind, "task": cfg.task, "split_seed": cfg.split.seed,
              "prompt_format": cfg.prompt_format, "max_prompt_tokens": cfg.policy.max_prompt_tokens,
              "corrected_answers": cfg.corrected_answers, "preferred_predictions": cfg.preferred_predictions,
              "sft": plain_config(cfg.sft), "lora": plain_config(cfg.policy.lora),
              "history": history}
    # An output folder that cannot be written keeps the fine-tuned policy in a rescue folder.
    save_or_rescue(out, lambda folder: save_policy(folder, policy, {"fgrlhf_sft.json": record}), "fgrlhf-sft")
    print(f"[fgrlhf-sft] done in {history['seconds']} s; checkpoint {out}")
    return {"checkpoint": str(out), "kind": policy.kind, "steps": history["steps"],
            "seconds": history["seconds"], "dev_loss_before": history["dev_loss_before"],
            "dev_loss": history["dev_loss"][-1] if history["dev_loss"] else None}


def save_policy(out: Path, policy, metadata: dict[str, Any]) -> Path:
    """The fine-tuned policy as a plain checkpoint in ``out``: a LoRA policy's adapters merged
    into its weights (it loads anywhere without PEFT), the adapters alone in
    ``out/policy_adapters/``."""
    from fgrlhf.toolkit.save import save_model_dir

    if not policy.has_adapters:
        return save_model_dir(out, policy.model, policy.tokenizer, metadata=metadata)
    from fgrlhf.policy.lora import ADAPTERS_DIR, merged_model

    return save_model_dir(out, merged_model(policy.model), policy.tokenizer, metadata=metadata,
                          extra=lambda tmp: policy.model.save_pretrained(tmp / ADAPTERS_DIR))

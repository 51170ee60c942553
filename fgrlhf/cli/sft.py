"""``fgrlhf-sft``: supervised fine-tuning of a policy on (prompt, answer) pairs.

    fgrlhf-sft                                   # MiniLM encoder-decoder, bundled QA-Feedback
    fgrlhf-sft policy.init=tiny_gpt2 sft.epochs=1
    fgrlhf-sft policy.init=t5-large prompts_file=/data/qa_feedback/train.json device=cuda
    fgrlhf-sft --config-name sft_rtp             # the detox policy: tiny GPT-2 on RTP text

``task=qa_feedback``: pairs are the prompt file's ``text`` and its first reference answer.
Questions are split exactly as ``fgrlhf-rm`` splits them (same seed and sizes over the same
questions), so the SFT policy never trains on the questions held out for evaluation.

``task=rtp``: pairs are RealToxicityPrompts' (prompt, human continuation) of every record
outside the evaluation prompts' groups (``fgrlhf.data.rtp.split_rtp``, the split of
``fgrlhf-toxicity`` and of the detox PPO task), toxic ones included: the policy learns to
continue text as people write it, toxicity and all, which is what detoxification starts from.

The result is a Hugging Face checkpoint (``runs/sft/<name>`` by default) with an
``fgrlhf_sft.json`` record.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import hydra
from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, OmegaConf

from fgrlhf.paths import CONF_DIR, PROJECT_ROOT, register_resolvers, run_dir
from fgrlhf.train.sft import SFTConfig

from fgrlhf.policy.checkpoint import base_checkpoint


@dataclass
class PolicyInit:
    init: str = "minilm_seq2seq"  # minilm_seq2seq | tiny_gpt2 | tiny_gpt2_rtp | a local path or hub id
    kind: str = "auto"  # auto | causal | seq2seq
    max_prompt_tokens: int = 256


@dataclass
class SFTAppConfig:
    policy: PolicyInit = field(default_factory=PolicyInit)
    sft: SFTConfig = field(default_factory=SFTConfig)
    task: str = "qa_feedback"  # qa_feedback | rtp
    prompts_file: str = MISSING  # qa_feedback: prompts JSON; rtp: RTP JSON lines
    output: str | None = None  # default: runs/sft/<policy.init>
    split_seed: int = 0
    dev_questions: int = 40  # qa_feedback
    test_questions: int = 60  # qa_feedback
    eval_prompts: int = 500  # rtp: as fgrlhf-toxicity and the rtp task draw the split
    scorer_test: int = 500  # rtp
    dev_fraction: float = 0.05  # rtp: pairs held out for the dev loss
    device: str | None = None
    threads: int | None = None
    wandb_mode: str | None = None  # online | offline | disabled (default offline)
    wandb_project: str | None = None


ConfigStore.instance().store(name="sft_schema", node=SFTAppConfig)


def sft_pairs(cfg: SFTAppConfig) -> dict[str, list[tuple[str, str]]]:
    """``{"train": [...], "dev": [...]}`` (prompt, answer) pairs of the configured task."""
    import random

    if cfg.task == "qa_feedback":
        from fgrlhf.data import load_prompts
        from fgrlhf.data.split import split_by_question

        prompts = load_prompts(cfg.prompts_file)
        split = split_by_question([p.question for p in prompts], cfg.dev_questions, cfg.test_questions,
                                  cfg.split_seed)
        return {part: [(prompts[i].text, prompts[i].references[0]) for i in getattr(split, part)
                       if prompts[i].references] for part in ("train", "dev")}
    if cfg.task == "rtp":
        from fgrlhf.data.rtp import load_rtp, split_rtp

        records = load_rtp(cfg.prompts_file)
        split = split_rtp(records, cfg.eval_prompts, cfg.scorer_test, cfg.split_seed)
        by_index = {r.index: r for r in records}
        pairs = [(by_index[i].prompt.text, by_index[i].continuation.text)
                 for i in sorted(set(split.scorer_train) | set(split.scorer_test))
                 if by_index[i].continuation.text.strip()]
        random.Random(cfg.split_seed).shuffle(pairs)
        n_dev = max(1, round(cfg.dev_fraction * len(pairs)))
        return {"train": pairs[n_dev:], "dev": pairs[:n_dev]}
    raise ValueError(f"task must be qa_feedback or rtp, not {cfg.task!r}")


def run(cfg: SFTAppConfig) -> dict[str, Any]:
    import torch
    import transformers

    from fgrlhf.logging import MetricsLogger
    from fgrlhf.policy import Policy
    from fgrlhf.train.sft import train_sft

    transformers.logging.set_verbosity_error()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = cfg.device or ("cuda" if torch.cuda.is_available() else "cpu")
    pairs = sft_pairs(cfg)
    init = base_checkpoint(cfg.policy.init)
    policy = Policy.from_pretrained(init, cfg.policy.kind, cfg.policy.max_prompt_tokens, device)
    out = Path(cfg.output or PROJECT_ROOT / "runs" / "sft" / Path(cfg.policy.init).name)
    logger = MetricsLogger(run_dir(), config=OmegaConf.to_container(OmegaConf.structured(cfg)),
                           project=cfg.wandb_project, mode=cfg.wandb_mode, name="sft")
    print(f"[fgrlhf-sft] {policy.kind} policy from {cfg.policy.init}: {len(pairs['train'])} train / "
          f"{len(pairs['dev'])} dev pairs; device {device}")
    history = train_sft(policy, pairs["train"], pairs["dev"], cfg.sft, logger)
    logger.close()
    from fgrlhf.toolkit.save import atomic_save_dir

    def write(tmp: Path) -> None:
        policy.model.save_pretrained(tmp)
        policy.tokenizer.save_pretrained(tmp)
        record = {"init": cfg.policy.init, "kind": policy.kind, "task": cfg.task, "split_seed": cfg.split_seed,
                  "sft": asdict(cfg.sft) if not OmegaConf.is_config(cfg.sft) else OmegaConf.to_container(cfg.sft),
                  "history": history}
        (tmp / "fgrlhf_sft.json").write_text(json.dumps(record, indent=1))

    atomic_save_dir(out, write)
    summary = {"checkpoint": str(out), "kind": policy.kind, "steps": history["steps"],
               "seconds": history["seconds"], "dev_loss_before": history["dev_loss_before"],
               "dev_loss": history["dev_loss"][-1] if history["dev_loss"] else None}
    print(f"[fgrlhf-sft] done in {history['seconds']} s; checkpoint {out}")
    return summary


register_resolvers()


@hydra.main(config_path=str(CONF_DIR), config_name="sft", version_base="1.3")
def main(cfg) -> None:
    merged = OmegaConf.merge(OmegaConf.structured(SFTAppConfig), cfg)
    print(json.dumps(run(merged)))


if __name__ == "__main__":
    main()

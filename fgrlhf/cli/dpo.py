"""``fgrlhf-dpo``: direct preference optimisation of a policy on QA-Feedback's human
preference judgements (``fgrlhf.train.dpo_run``).

    fgrlhf-dpo                                    # the SFT policy runs/sft/minilm_seq2seq
    fgrlhf-dpo policy.init=runs/sft/tiny_gpt2 dpo.loss_type=ipo dpo.beta=0.5
    fgrlhf-dpo policy.init=runs/sft/tiny_gpt2 policy.lora.r=8 dpo.lr=1e-4
    fgrlhf-dpo --config-name dpo_gemma            # LoRA DPO of the Gemma 3 270M SFT policy
    fgrlhf-eval checkpoint=runs/dpo/minilm_seq2seq   # judged like every other policy

Pairs come from each question's 6 judgements (ties skipped) of ``feedback_file``, the prompt
text from ``prompts_file``; the split (``split.seed``, ``split.dev_questions``,
``split.test_questions``) is the one every app draws, so DPO trains on the train questions
only and reports reward accuracy and margins on the dev questions. The reference is the
initial policy, or with ``policy.lora.r > 0`` the same model with its adapters off. The
result is a Hugging Face checkpoint (``runs/dpo/<name>`` by default) with an
``fgrlhf_dpo.json`` record; ``metrics.jsonl`` goes to the run folder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from omegaconf import MISSING

from fgrlhf.app import hydra_app
from fgrlhf.config import RuntimeConfig, SplitConfig, WandbConfig
from fgrlhf.policy.lora import LoRAConfig
from fgrlhf.train.dpo import DPOConfig
from fgrlhf.train.dpo_run import DEFAULT_INIT, run


@dataclass
class DPOPolicy:
    RULES: ClassVar[dict[str, str]] = {"kind": "in auto causal seq2seq", "max_prompt_tokens": "> 0"}

    init: str = DEFAULT_INIT  # a checkpoint folder or hub id, or minilm_seq2seq | tiny_gpt2
    kind: str = "auto"  # auto | causal | seq2seq
    max_prompt_tokens: int = 256
    lora: LoRAConfig = field(default_factory=LoRAConfig)  # r > 0: train adapters only


@dataclass
class DPOAppConfig(RuntimeConfig):
    RULES: ClassVar[dict[str, str]] = {"prompt_format": "in t5 causal causal_qpq"}

    policy: DPOPolicy = field(default_factory=DPOPolicy)
    # t5 (the prompt file's text) | causal (question, passages capped by relevance to
    # policy.max_prompt_tokens, "Answer:"), as fgrlhf-sft and fgrlhf-train show them
    prompt_format: str = "t5"
    dpo: DPOConfig = field(default_factory=DPOConfig)
    feedback_file: str = MISSING  # QA-Feedback judgements (feedback.json format)
    prompts_file: str = MISSING  # the policy input of each question (prompts.json format)
    output: str | None = None  # default: runs/dpo/<policy.init name>
    split: SplitConfig = field(default_factory=SplitConfig)
    wandb: WandbConfig = field(default_factory=WandbConfig)


main = hydra_app("fgrlhf-dpo", "dpo", DPOAppConfig, run)

if __name__ == "__main__":
    main()

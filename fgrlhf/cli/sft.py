"""``fgrlhf-sft``: supervised fine-tuning of a policy on (prompt, answer) pairs
(``fgrlhf.train.sft_run``).

    fgrlhf-sft                                   # MiniLM encoder-decoder, bundled QA-Feedback
    fgrlhf-sft policy.init=tiny_gpt2 sft.epochs=1
    fgrlhf-sft policy.init=t5-large prompts_file=/data/qa_feedback/train.json device=cuda
    fgrlhf-sft --config-name sft_rtp             # the detox policy: tiny GPT-2 on RTP text
    fgrlhf-sft corrected_answers=true            # + the human-corrected answers as targets
    fgrlhf-sft preferred_predictions=true        # + each question's most-preferred prediction

``task=qa_feedback`` trains on the train questions of the split every app draws
(``split.seed``, ``split.dev_questions``, ``split.test_questions``) and measures the dev
loss on its dev questions; ``task=rtp`` on the RTP records outside the evaluation prompts'
groups (``split.eval_prompts``, ``split.scorer_test``). The result is a Hugging Face
checkpoint (``runs/sft/<name>`` by default) with an ``fgrlhf_sft.json`` record.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from omegaconf import MISSING

from fgrlhf.app import hydra_app
from fgrlhf.config import RuntimeConfig, SplitConfig, WandbConfig
from fgrlhf.policy.lora import LoRAConfig
from fgrlhf.train.sft import SFTConfig
from fgrlhf.train.sft_run import run


@dataclass
class PolicyInit:
    RULES: ClassVar[dict[str, str]] = {"kind": "in auto causal seq2seq", "max_prompt_tokens": "> 0"}

    init: str = "minilm_seq2seq"  # minilm_seq2seq | tiny_gpt2 | tiny_gpt2_rtp | a local path or hub id
    kind: str = "auto"  # auto | causal | seq2seq
    max_prompt_tokens: int = 256
    lora: LoRAConfig = field(default_factory=LoRAConfig)  # r > 0: train LoRA adapters only


@dataclass
class SFTAppConfig(RuntimeConfig):
    RULES: ClassVar[dict[str, str]] = {"task": "in qa_feedback rtp", "dev_fraction": "(0, 1)"}

    policy: PolicyInit = field(default_factory=PolicyInit)
    sft: SFTConfig = field(default_factory=SFTConfig)
    task: str = "qa_feedback"  # qa_feedback | rtp
    # qa_feedback: t5 (the prompt file's text) | causal (question, passages capped by relevance
    # to policy.max_prompt_tokens, "Answer:"; fgrlhf.data.prompt_format) | causal_qpq (the
    # question again before "Answer:")
    prompt_format: str = "t5"
    prompts_file: str = MISSING  # qa_feedback: prompts JSON; rtp: RTP JSON lines
    # qa_feedback: each train question's human-corrected answer (feedback_file's
    # corrected-prediction) as a further target beside its reference; dev keeps the references.
    corrected_answers: bool = False
    # qa_feedback: each train question's most-preferred prediction (most wins among its 6
    # pairwise human judgements; fgrlhf.train.sft_run.preferred_prediction) as a further target.
    preferred_predictions: bool = False
    # with corrected_answers / preferred_predictions: the QA-Feedback feedback JSON
    feedback_file: str | None = None
    output: str | None = None  # default: runs/sft/<policy.init>
    split: SplitConfig = field(default_factory=SplitConfig)
    dev_fraction: float = 0.05  # rtp: pairs held out for the dev loss
    wandb: WandbConfig = field(default_factory=WandbConfig)


main = hydra_app("fgrlhf-sft", "sft", SFTAppConfig, run)

if __name__ == "__main__":
    main()

"""``fgrlhf-rm``: train or evaluate a QA-Feedback reward model (``fgrlhf.train.rm_run``).

    fgrlhf-rm rm=relevance                       # train R1 on the bundled data, evaluate on test
    fgrlhf-rm rm=factuality backbone=allenai/longformer-base-4096 rm.max_length=4096
    fgrlhf-rm rm=completeness backbone=gemma3_270m rm.lora.r=16   # LoRA on a frozen backbone
    fgrlhf-rm mode=eval rm=relevance checkpoint=runs/rm/relevance feedback_file=dev_feedback.json eval_split=all
    fgrlhf-rm mode=calibrate rm=factuality checkpoint=runs/rm/factuality   # temperature fitted on its dev split

Training splits the feedback file's questions into train/dev/test with a fixed seed
(``split.seed``, ``split.dev_questions``, ``split.test_questions``; saved as ``split.json``
in the checkpoint), early-stops on dev, saves the best state in Hugging Face format with its
tokenizer and ``fgrlhf_rm.json``, then prints the held-out test metrics as one JSON line.
Evaluation prints the same line for any checkpoint and feedback file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from omegaconf import MISSING

from fgrlhf.app import hydra_app
from fgrlhf.config import RuntimeConfig, SplitConfig, WandbConfig
from fgrlhf.data.rm_pairs import PairsConfig
from fgrlhf.policy.lora import LoRAConfig
from fgrlhf.train.rm import OptimConfig
from fgrlhf.train.rm_run import run
from fgrlhf.validate import validate


@dataclass
class RMSpec:
    RULES: ClassVar[dict[str, str]] = {"category": "in relevance factuality completeness preference",
                                       "max_length": "> 0", "max_question_tokens": ">= 0", "min_error_words": ">= 0",
                                       "coverage_threshold": "[0, 1]", "gold_grounding": "[0, 1]",
                                       "evidence": "in passages bm25 minilm hybrid", "evidence_k": "> 0"}

    category: str = MISSING  # relevance | factuality | completeness | preference
    use_passages: bool = False
    max_length: int = 256
    max_question_tokens: int = 64
    min_error_words: int = 5  # R1/R2: relevance-family spans shorter than this are dropped
    coverage_threshold: float = 0.8  # R3: word containment needed to match a passage sentence
    pairs: PairsConfig = field(default_factory=PairsConfig)  # R3/preference: extra, weighted training pairs
    # R1/R2 training only: further answers labelled without annotation (corrected, gold);
    # see fgrlhf.data.rm_examples.no_error_examples.
    extra_answers: list[str] = field(default_factory=list)
    gold_grounding: float = 0.8  # R2: share of a gold sentence's words the passages must hold
    # Segment models with use_passages: the evidence each segment is read with: passages (the
    # whole answer with as many passage sentences as fit) or, per segment in its own window,
    # the evidence_k best passage sentences of a retriever (bm25 | minilm | hybrid).
    evidence: str = "passages"
    evidence_k: int = 3
    evidence_from_labels: bool = False  # training: also read the evidence the annotation names
    # R1/R2: after training, fit one temperature on dev so that P(error), which PPO's
    # mode=expected reads, is calibrated (labels, hence accuracy and F1, do not change).
    calibrate: bool = False
    optim: OptimConfig = field(default_factory=OptimConfig)
    # r > 0: LoRA adapters on the backbone, which stays frozen (the head trains whole); the
    # checkpoint holds the merged weights, so it loads and scores like any other.
    lora: LoRAConfig = field(default_factory=LoRAConfig)


@dataclass
class RMAppConfig(RuntimeConfig):
    RULES: ClassVar[dict[str, str]] = {"mode": "in train eval calibrate", "eval_split": "in test dev train all"}

    rm: RMSpec = field(default_factory=RMSpec)
    mode: str = "train"  # train | eval | calibrate (R1/R2: fit checkpoint's temperature on its dev split)
    backbone: str = "minilm"  # minilm | gemma3_270m (rm.lora), a local path or hub id of a Hugging Face model
    feedback_file: str = MISSING
    checkpoint: str | None = None  # train: where to save (default runs/rm/<category>); eval: what to load
    ensemble: list[str] = field(default_factory=list)  # eval: further checkpoints averaged with checkpoint's
    split_file: str | None = None  # reuse a saved split instead of drawing one
    split: SplitConfig = field(default_factory=SplitConfig)
    eval_split: str = "test"  # eval: test | dev | train | all
    sentence_splitter: str = "sentencizer"
    wandb: WandbConfig = field(default_factory=WandbConfig)


def config_problems(cfg: RMAppConfig) -> list[str]:
    """Settings that are each in range but do not fit together."""
    found = []
    if cfg.rm.max_question_tokens >= cfg.rm.max_length:
        found.append(f"rm.max_question_tokens={cfg.rm.max_question_tokens}: must be below "
                     f"rm.max_length={cfg.rm.max_length} (the answer needs room)")
    bad = [a for a in cfg.rm.extra_answers if a not in ("corrected", "gold")]
    if bad:
        found.append(f"rm.extra_answers: {bad[0]!r} is not one of corrected, gold")
    if cfg.rm.extra_answers and cfg.rm.category not in ("relevance", "factuality"):
        found.append(f"rm.extra_answers: only relevance and factuality models use them, not {cfg.rm.category}")
    if cfg.rm.evidence != "passages" and not cfg.rm.use_passages:
        found.append(f"rm.evidence={cfg.rm.evidence}: needs rm.use_passages=true")
    if cfg.rm.lora.r > 0 and cfg.rm.optim.freeze_layers:
        found.append(f"rm.optim.freeze_layers={cfg.rm.optim.freeze_layers} with rm.lora: the adapters already "
                     f"leave the whole backbone frozen; set one of them")
    if cfg.sentence_splitter not in ("sentencizer", "punkt") and not cfg.sentence_splitter.startswith("spacy:"):
        found.append(f"sentence_splitter={cfg.sentence_splitter!r}: one of sentencizer, punkt, spacy:NAME")
    return found


def _run(cfg: RMAppConfig):
    validate(cfg, RMAppConfig, config_problems(cfg))
    return run(cfg)


main = hydra_app("fgrlhf-rm", "rm", RMAppConfig, _run)

if __name__ == "__main__":
    main()

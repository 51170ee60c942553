"""``fgrlhf-toxicity``: train or evaluate the offline toxicity scorer on RealToxicityPrompts
(``fgrlhf.train.toxicity_run``; the loss and the loop: ``fgrlhf.train.toxicity``).

    fgrlhf-toxicity                                    # MiniLM on the bundled RTP subset → runs/toxicity
    fgrlhf-toxicity mode=eval checkpoint=runs/toxicity eval_split=test
    fgrlhf-toxicity backbone=roberta-base max_length=128 optim.epochs=2 device=cuda
    fgrlhf-toxicity --config-name toxicity_fasttext    # a bag-of-n-grams scorer → runs/toxicity_fasttext

The bundled RTP records are split with a fixed seed (``split.seed``, ``split.eval_prompts``,
``split.scorer_test``; saved as ``split.json`` in the checkpoint): the scorer trains on the
texts of records outside the evaluation prompts' groups and the scorer's test records.
Training prints its agreement with Perspective on the test records as one JSON line:
Pearson and Spearman correlation, MAE, accuracy/precision/recall/F1 of the toxic (≥ 0.5)
decision, and the same for a constant predictor of the training set's mean toxicity.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from omegaconf import MISSING

from fgrlhf.app import hydra_app
from fgrlhf.config import RuntimeConfig, SplitConfig, WandbConfig
from fgrlhf.train.toxicity import ScorerOptimConfig
from fgrlhf.train.toxicity_run import run


@dataclass
class ToxicityAppConfig(RuntimeConfig):
    RULES: ClassVar[dict[str, str]] = {"mode": "in train eval", "threshold": "[0, 1]", "max_length": "> 0",
                                       "max_train_texts": "> 0", "eval_split": "in test eval_prompts all",
                                       "eval_batch_size": "> 0"}

    mode: str = "train"  # train | eval
    backbone: str = "minilm"  # a Hugging Face encoder (short name, path, hub id), or fasttext
    data_file: str = MISSING  # RTP JSON lines
    checkpoint: str | None = None  # train: where to save (default runs/toxicity); eval: what to load
    split_file: str | None = None  # reuse a saved RTP split instead of drawing one
    split: SplitConfig = field(default_factory=SplitConfig)
    threshold: float = 0.5  # toxic ⇔ toxicity ≥ threshold
    max_length: int = 128  # tokens per text; RTP prompts and continuations are short sentences
    max_train_texts: int | None = None  # a seeded sample of the training texts (quick runs)
    eval_split: str = "test"  # eval: test | eval_prompts | all
    eval_batch_size: int = 128
    optim: ScorerOptimConfig = field(default_factory=ScorerOptimConfig)
    progress: bool = True
    wandb: WandbConfig = field(default_factory=WandbConfig)


main = hydra_app("fgrlhf-toxicity", "toxicity", ToxicityAppConfig, run)

if __name__ == "__main__":
    main()

"""``fgrlhf-pipeline`` (``make run``): the whole QA-Feedback pipeline on the embedded default.

    reward models (R1, R2, R3; cached) → SFT policy (cached) → evaluate SFT
    → fine-grained PPO → evaluate PPO → report (table, learning curves, before/after plot)

    fgrlhf-pipeline train_overrides=[experiment=qa_cpu,iterations=40] eval_questions=20

Each stage is the project's own command (``fgrlhf-rm``, ``fgrlhf-sft``, ``fgrlhf-train``);
reward models and the SFT policy are reused from ``rm_dir``/``sft_dir`` when there. The run
folder gets ``ppo/``, ``eval_sft/``, ``eval_ppo/``, ``report.md``, ``learning_curves.png``,
``before_after.png`` and ``pipeline.json``. The stages are ``fgrlhf.train.pipeline``.
"""

from __future__ import annotations

import json

from fgrlhf.app import hydra_app
from fgrlhf.train.pipeline import PipelineConfig, run_pipeline


def _show(result) -> str:
    keys = ("relevance_ratio", "factuality_ratio", "completeness", "rougeLsum", "length_words")
    return json.dumps({"output": result["output"],
                       **{f"{side}/{k}": result[side].get(k) for side in ("before", "after") for k in keys}})


main = hydra_app("fgrlhf-pipeline", "pipeline", PipelineConfig, run_pipeline, _show)

if __name__ == "__main__":
    main()

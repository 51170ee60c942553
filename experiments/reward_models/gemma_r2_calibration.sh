#!/usr/bin/env bash
# R2 on Gemma 3 270M + LoRA, three seeds (gemma_lora.sh: runs/rm_gemma/factuality,
# factuality_seed1, factuality_seed2 — seed 2 trained with rm.calibrate=true): each model's
# test figures without and with the temperature fitted on dev, then the 3-seed ensemble
# (mean calibrated P(error)). One JSON line per evaluation in gemma_r2_calibration.jsonl.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=experiments/reward_models/gemma_r2_calibration.jsonl
rm_() { .venv/bin/fgrlhf-rm rm=factuality threads=${THREADS:-1} wandb.mode=disabled "$@" | tail -n 1; }
tagged() { echo "{\"what\": \"$1\", ${2#\{}" >> "$out"; }
seeds=(runs/rm_gemma/factuality runs/rm_gemma/factuality_seed1 runs/rm_gemma/factuality_seed2)
set_temperature() {  # checkpoint, temperature: the metadata only, the weights are not touched
  .venv/bin/python -c "import sys; from fgrlhf.reward.learned import RMMetadata as M; m = M.load(sys.argv[1]); m.temperature = float(sys.argv[2]); m.save(sys.argv[1])" "$1" "$2"
}
for ck in "${seeds[@]}"; do
  set_temperature "$ck" 1.0
  tagged "uncalibrated" "$(rm_ mode=eval checkpoint=$ck hydra.run.dir=outputs/rm_gemma/eval_$(basename $ck)_t1)"
  tagged "calibrate" "$(rm_ mode=calibrate checkpoint=$ck hydra.run.dir=outputs/rm_gemma/cal_$(basename $ck))"
  tagged "calibrated" "$(rm_ mode=eval checkpoint=$ck hydra.run.dir=outputs/rm_gemma/eval_$(basename $ck))"
done
tagged "ensemble of 3 seeds, calibrated" "$(rm_ mode=eval checkpoint=${seeds[0]} "ensemble=[${seeds[1]},${seeds[2]}]" \
  hydra.run.dir=outputs/rm_gemma/eval_ensemble)"

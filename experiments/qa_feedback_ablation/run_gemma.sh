#!/usr/bin/env bash
# Fine-grained RLHF of Gemma 3 270M (LoRA) without R1, without R2, without R3 (the paper's
# Table 4), at the main comparison's budget (experiment=qa_gemma_cpu), judged by all three
# reward models, ROUGE-Lsum and length on the 60 held-out test questions. Needs the SFT and
# fine-grained rows of experiments/qa_feedback_main/run_gemma.sh (same OUT layout).
#
#   bash experiments/qa_feedback_ablation/run_gemma.sh        # SEED=0 by default
set -euo pipefail
cd "$(dirname "$0")/../.."
make install reward-models
here=experiments/qa_feedback_ablation
main=${MAIN_OUT:-outputs/experiments/qa_feedback_main_gemma}
out=${OUT:-outputs/experiments/qa_feedback_ablation_gemma}
bin=.venv/bin
seed=${SEED:-0}
read -r -a shaping <<< "${SHAPING:-}"
rows=(SFT=$main/eval_sft "fine-grained RLHF"=$main/eval_fine_grained_$seed)
for category in relevance factuality completeness; do
  run=$out/no_${category}_$seed
  # Hydra's ~ removes the reward model, its weight and any shaping of it.
  [ -f $run/metrics.json ] || $bin/fgrlhf-train experiment=qa_gemma_cpu seed=$seed "~reward.models.$category" \
    "~reward.weights.$category" "${shaping[@]}" hydra.run.dir=$run
  ev=$out/eval_no_${category}_$seed
  [ -f $ev/summary.json ] || $bin/fgrlhf-eval checkpoint=$run/policy part=test threads=1 task.prompt_format=causal \
    task.max_prompt_tokens=384 task.tokenizer=$run/policy max_prompt_tokens=384 max_new_tokens=128 \
    output=$ev hydra.run.dir=$ev
  rows+=("w/o $category=$ev")
done
mkdir -p $here/gemma
$bin/python -m fgrlhf.eval.compare "${rows[@]}" --baseline "fine-grained RLHF" --out $here/gemma
for run in "$out"/eval_*; do
  mkdir -p "$here/gemma/${run##*/eval_}"
  cp "$run/summary.json" "$run/outputs.jsonl" "$run/rollouts.html" "$here/gemma/${run##*/eval_}/"
done

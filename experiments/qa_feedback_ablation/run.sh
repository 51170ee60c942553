#!/usr/bin/env bash
# Fine-grained RLHF without R1, without R2, without R3 (the paper's Table 4), CPU scale.
# Every policy is judged by all three reward models on the 60 held-out test questions.
# Needs the main experiment's outputs (SFT and full fine-grained evaluations): run
# experiments/qa_feedback_main/run.sh first.
#
#   bash experiments/qa_feedback_ablation/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
make install
here=experiments/qa_feedback_ablation
main=${MAIN_OUT:-outputs/experiments/qa_feedback_main}
out=${OUT:-outputs/experiments/qa_feedback_ablation}
bin=.venv/bin
for category in relevance factuality completeness; do
  run=$out/no_$category
  # Hydra's ~ removes the reward model and its weight from the composed config.
  [ -f $run/metrics.json ] || $bin/fgrlhf-train experiment=qa_cpu "~reward.models.$category" \
    "~reward.weights.$category" hydra.run.dir=$run
  [ -f $out/eval_no_$category/summary.json ] || $bin/fgrlhf-eval checkpoint=$run/policy \
    output=$out/eval_no_$category hydra.run.dir=$out/eval_no_$category
done
$bin/python -m fgrlhf.eval.compare SFT=$main/pipeline/eval_sft "fine-grained RLHF"=$main/pipeline/eval_ppo \
  "w/o R1 relevance"=$out/eval_no_relevance "w/o R2 factuality"=$out/eval_no_factuality \
  "w/o R3 completeness"=$out/eval_no_completeness --baseline "fine-grained RLHF" --out $here

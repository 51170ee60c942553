#!/usr/bin/env bash
# SFT vs preference-based (holistic) RLHF vs fine-grained RLHF on QA-Feedback, CPU scale,
# all three evaluated with the same R1/R2/R3 judges on the 60 held-out test questions.
#
#   bash experiments/qa_feedback_main/run.sh
#
# Each stage is skipped when its output is already there (delete OUT to start over).
set -euo pipefail
cd "$(dirname "$0")/../.."
make install
here=experiments/qa_feedback_main
out=${OUT:-outputs/experiments/qa_feedback_main}
bin=.venv/bin
# R1-R3, the SFT policy, its evaluation, fine-grained PPO (experiment=qa_cpu) and its
# evaluation: the main job, in a folder of its own.
[ -f $out/pipeline/pipeline.json ] || $bin/fgrlhf-pipeline output=$out/pipeline
[ -f runs/rm/preference/fgrlhf_rm.json ] || $bin/fgrlhf-rm rm=preference
[ -f $out/holistic/metrics.json ] || $bin/fgrlhf-train experiment=qa_cpu_holistic hydra.run.dir=$out/holistic
[ -f $out/eval_holistic/summary.json ] || \
  $bin/fgrlhf-eval checkpoint=$out/holistic/policy output=$out/eval_holistic hydra.run.dir=$out/eval_holistic
# Fine-grained RLHF with R1/R2 as penalties only (0 for an error-free segment, the error
# magnitudes unchanged): no reward for adding segments.
[ -f $out/penalties_only/metrics.json ] || $bin/fgrlhf-train experiment=qa_cpu \
  reward.models.relevance.positive=0 reward.models.factuality.positive=0 hydra.run.dir=$out/penalties_only
[ -f $out/eval_penalties_only/summary.json ] || $bin/fgrlhf-eval checkpoint=$out/penalties_only/policy \
  output=$out/eval_penalties_only hydra.run.dir=$out/eval_penalties_only
$bin/python -m fgrlhf.eval.compare SFT=$out/pipeline/eval_sft "preference RLHF"=$out/eval_holistic \
  "fine-grained RLHF"=$out/pipeline/eval_ppo "fine-grained, penalties only"=$out/eval_penalties_only \
  --reference $here/paper.json --baseline SFT --out $here
cp $out/pipeline/learning_curves.png $here/learning_curves_fine_grained.png
cp $out/holistic/learning_curves.png $here/learning_curves_holistic.png
cp $out/penalties_only/learning_curves.png $here/learning_curves_penalties_only.png

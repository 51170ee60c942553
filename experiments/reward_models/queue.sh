#!/usr/bin/env bash
# Train reward-model variants one after another (one training at a time, 1 CPU thread each).
# QUEUE: a file of lines "NAME RM OVERRIDE...". A line whose NAME already has a result in
# OUT is skipped, and the file is re-read after every run, so lines can be appended while it
# works. Each run's one-line JSON summary goes to OUT with "name" and the overrides added.
#
#   QUEUE=experiments/reward_models/ranking_queue.txt OUT=experiments/reward_models/ranking_results.jsonl \
#     bash experiments/reward_models/queue.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
queue=${QUEUE:?a queue file}
out=${OUT:?a results file}
touch "$out"
while true; do
  line=$(while read -r name rm rest; do
           [ -z "${name:-}" ] || [ "${name:0:1}" = "#" ] && continue
           grep -q "\"name\": \"$name\"" "$out" || { echo "$name $rm $rest"; break; }
         done < "$queue")
  [ -z "$line" ] && break
  read -r name rm rest <<< "$line"
  mkdir -p runs/rm_exp/logs
  echo "== $(date -u +%H:%M:%S) $name: rm=$rm $rest"
  # shellcheck disable=SC2086
  if .venv/bin/fgrlhf-rm rm="$rm" threads=1 wandb.mode=disabled checkpoint="runs/rm_exp/$name" \
       hydra.run.dir="runs/rm_exp/logs/$name" $rest > "runs/rm_exp/logs/$name.log" 2>&1; then
    tail -n 1 "runs/rm_exp/logs/$name.log" | sed "s/^{/{\"name\": \"$name\", \"overrides\": \"$rest\", /" >> "$out"
  else
    echo "{\"name\": \"$name\", \"overrides\": \"$rest\", \"failed\": true}" >> "$out"
  fi
done

#!/bin/bash
# Submit the arrays of one attempt of run demo-1, each at most once, whatever happened before:
# a chunk with a job-id file, or seen in squeue under its comment, is not submitted again.
# Run detached (setsid) by clustertools so a dropped SSH connection cannot stop it half-way.
set -euo pipefail
cd "$(dirname "$0")"
attempt=$1
comment_prefix=ct:demo-1:
exec 9>submit.lock
flock 9
mkdir -p logs records/new "attempts/$attempt"
queued=$(squeue -h -r --name=ct-demo-1 -o '%F %k' 2>/dev/null || true)
while read -r chunk offset count; do
  marker="attempts/$attempt/chunk-$chunk.jobid"
  comment="${comment_prefix}a$attempt:c$chunk"
  if [[ -s "$marker" ]]; then
    echo "chunk $chunk $(cat "$marker") already"
    continue
  fi
  existing=$(awk -v c="$comment" '$2 == c {print $1; exit}' <<<"$queued")
  if [[ -n "$existing" ]]; then
    echo "$existing" >"$marker"
    echo "chunk $chunk $existing already"
    continue
  fi
  # sbatch retries forever when MaxJobCount is reached: never wait on it without a limit.
  jobid=$(timeout 120 sbatch --parsable --array="0-$((count - 1))%50" \
    --comment="$comment" array.sbatch "$attempt" "$offset")
  jobid=${jobid%%;*}
  echo "$jobid" >"$marker.tmp" && mv -f "$marker.tmp" "$marker"
  echo "chunk $chunk $jobid submitted"
done <"attempts/$attempt/chunks"

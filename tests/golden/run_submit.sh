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
# Whether Slurm accepted a chunk is read from, in order: its job-id marker (written here from sbatch's
# answer, or by its tasks from SLURM_ARRAY_JOB_ID when they start: it outlives MinJobAge), then squeue in
# every state, by the chunk's comment. A squeue that does not answer stops the script: never guess "none".
queue() { timeout 30 squeue -h -r -t all --name=ct-demo-1 -o '%F %k'; }
known_job() {  # MARKER COMMENT QUEUE_TEXT: the chunk's job id, or nothing
  if [[ -s $1 ]]; then cat "$1"; else awk -v c="$2" '$2 == c {print $1; exit}' <<<"$3"; fi
}
resolve() {  # MARKER COMMENT: sbatch gave no answer; Slurm may still have accepted the array (slurmctld slow)
  local try queued found
  for ((try = 1; try <= 5; try++)); do
    queued=$(queue 2>/dev/null) || queued=""
    found=$(known_job "$1" "$2" "$queued")
    [[ -z $found ]] || { echo "$found"; return 0; }
    ((try == 5)) || sleep 3
  done
  return 1
}
# A resubmitted attempt with resources of its own (resubmit --mem/--time...) has its own array script.
script=array.sbatch
[[ ! -f attempts/$attempt/array.sbatch ]] || script=attempts/$attempt/array.sbatch
if ! queued=$(queue); then
  echo "squeue did not answer: nothing was submitted now" >&2
  exit 3
fi
while read -r chunk offset count; do
  marker="attempts/$attempt/chunk-$chunk.jobid"
  comment="${comment_prefix}a$attempt:c$chunk"
  existing=$(known_job "$marker" "$comment" "$queued")
  if [[ -n "$existing" ]]; then
    [[ -s "$marker" ]] || echo "$existing" >"$marker"
    echo "chunk $chunk $existing already"
    continue
  fi
  # sbatch retries forever when MaxJobCount is reached: never wait on it without a limit. The chunk is
  # passed on to the tasks, which write its marker when they start.
  errors="attempts/$attempt/sbatch-$chunk.err"
  rc=0
  jobid=$(timeout 120 sbatch --parsable --array="0-$((count - 1))%50" \
    --comment="$comment" "$script" "$attempt" "$offset" "$chunk" 2>"$errors") || rc=$?
  cat "$errors" >&2
  jobid=${jobid%%;*}
  if ((rc != 0)) && [[ ! $jobid =~ ^[0-9]+$ ]]; then  # a job id printed is Slurm's yes, whatever came after
    # No answer in time, or a lost connection to slurmctld: the array may be queued all the same.
    if ((rc != 124)) && ! grep -qiE 'timed out|zero bytes|temporarily unable|connection reset' "$errors"; then
      echo "chunk $chunk refused"
      exit "$rc"
    fi
    if ! jobid=$(resolve "$marker" "$comment"); then
      echo "chunk $chunk unknown"
      exit 75
    fi
  fi
  echo "$jobid" >"$marker.tmp" && mv -f "$marker.tmp" "$marker"
  echo "chunk $chunk $jobid submitted"
done <"attempts/$attempt/chunks"

#!/bin/bash
# One status read of run demo-1. Usage: status.sh [FROM [MARK]]: the records of records/all.jsonl from byte
# FROM (the client has what comes before: services/runs/records_cache.py); MARK, the client's one-time word that
# ends the first part of them. New per-task records (one small file each, which is safe over NFS) are folded into
# records/all.jsonl under a lock.
# The reply: the records there are now; MARK; the live queue; then the records folded while squeue answered. A task
# that ends before squeue answers is then seen as finished, never as lost, and the client reads the first records
# while squeue still runs (issue 16).
set -uo pipefail
# The run's directory from $0 by bash itself: a `$(dirname ...)` would start a process on every read.
[[ $0 != */* ]] || cd "${0%/*}" || exit 44
# Every state (-t all): a task Slurm ended without its record (NODE_FAIL) says so; COMPLETED ones have theirs.
# Not -r: an array's pending tasks are one line (`4-999%16`), so 100,000 pending tasks cost a few lines.
exec 3< <(
  timeout 30 squeue -h -t all --name=ct-demo-1 -o '%F|%K|%T|%r|%k'
  echo "@@clustertools-squeue-exit $?"
)
shopt -s nullglob
fold_new_records() {
  local new=(records/new/*.json records/batch/*.json)
  ((${#new[@]})) || return 0  # no process is started when nothing is new: the common refresh
  mkdir -p records/batch
  {
    flock 9
    find records/new -maxdepth 1 -name '*.json' -exec mv -t records/batch/ {} +
    find records/batch -maxdepth 1 -name '*.json' -exec cat {} + >>records/all.jsonl &&
      find records/batch -maxdepth 1 -name '*.json' -delete
  } 9>records/.lock
}
fold_new_records
[[ -e records/all.jsonl ]] || : 2>/dev/null >>records/all.jsonl  # made now: what is folded later is read below
{ exec 5<records/all.jsonl; } 2>/dev/null || exec 5</dev/null
# From byte FROM > 0, the file's first 4 KiB come first too (read by bash itself, no process): the client checks
# that the file still begins, and still goes on at FROM, as what it has read before.
from=0 first="" mark=""
[[ ${1:-} =~ ^[0-9]{1,15}$ ]] && from=$1
[[ ${2:-} =~ ^[0-9a-f]{16,64}$ ]] && mark=$2
((from == 0)) || LC_ALL=C IFS= read -r -d '' -N 4096 first <records/all.jsonl 2>/dev/null
LC_ALL=C printf '@@clustertools-records-from %s %s\n%s' "$from" "${#first}" "$first"
tail -c "+$((from + 1))" <&5 2>/dev/null  # to the file's end now: fd 5 is left there
printf '\n@@clustertools-queue %s\n' "$mark"
grep -v '|COMPLETED|' <&3
fold_new_records
# What was appended since the first part (by this fold or another reader's): one byte read by bash, so that no
# process starts when there is none.
if LC_ALL=C IFS= read -r -d '' -N 1 -u 5 byte; then
  printf '%s' "$byte"
  cat <&5
fi

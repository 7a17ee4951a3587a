#!/bin/bash
# One status read of run demo-1: the live queue first, then the records (a task that ends in
# between is then seen as finished, never as lost). New per-task records (one small file each, which
# is safe over NFS) are folded into records/all.jsonl under a lock. Usage: status.sh [FROM]: the records
# from byte FROM of that file (the client has what comes before: services/runs/records_cache.py).
set -uo pipefail
cd "$(dirname "$0")" || exit 44
# Every state (-t all): a task Slurm ended without its record (NODE_FAIL) says so; COMPLETED ones have theirs.
# Not -r: an array's pending tasks are one line (`4-999%16`), so 100,000 pending tasks cost a few lines.
timeout 30 squeue -h -t all --name=ct-demo-1 -o '%F|%K|%T|%r|%k' | grep -v '|COMPLETED|'
echo "@@clustertools-squeue-exit ${PIPESTATUS[0]}"
shopt -s nullglob
new=(records/new/*.json records/batch/*.json)
if ((${#new[@]})); then  # no process is started when nothing is new: the common refresh
  mkdir -p records/batch
  {
    flock 9
    find records/new -maxdepth 1 -name '*.json' -exec mv -t records/batch/ {} +
    find records/batch -maxdepth 1 -name '*.json' -exec cat {} + >>records/all.jsonl &&
      find records/batch -maxdepth 1 -name '*.json' -delete
  } 9>records/.lock
fi
# From byte FROM > 0, the file's first 4 KiB come first too (read by bash itself, no process): the client checks
# that the file still begins, and still goes on at FROM, as what it has read before.
from=0 first=""
[[ ${1:-} =~ ^[0-9]{1,15}$ ]] && from=$1
((from == 0)) || LC_ALL=C IFS= read -r -d '' -N 4096 first <records/all.jsonl 2>/dev/null
LC_ALL=C printf '@@clustertools-records-from %s %s\n%s' "$from" "${#first}" "$first"
tail -c "+$((from + 1))" records/all.jsonl 2>/dev/null

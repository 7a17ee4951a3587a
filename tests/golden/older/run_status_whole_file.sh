#!/bin/bash
# One status read of run demo-1: the live queue first, then the records (a task that ends in
# between is then seen as finished, never as lost). New per-task records (one small file each, which
# is safe over NFS) are folded into records/all.jsonl under a lock.
set -uo pipefail
cd "$(dirname "$0")" || exit 44
# Every state (-t all): a task Slurm ended without its record (NODE_FAIL) says so; COMPLETED ones have theirs.
timeout 30 squeue -h -r -t all --name=ct-demo-1 -o '%F|%K|%T|%r|%k' | grep -v '|COMPLETED|'
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
cat records/all.jsonl 2>/dev/null

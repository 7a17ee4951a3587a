#!/bin/bash
# Per-task wrapper of clustertools run demo-1: one subject per Slurm array task.
# Usage (from array.sbatch): wrapper.sh ATTEMPT OFFSET, with SLURM_ARRAY_TASK_ID set by Slurm.
# `clustertools debug` runs it as: wrapper.sh --debug ATTEMPT INDEX (in `srun --pty`): the same
# subject, environment, staged input and container as task INDEX, then an interactive shell instead
# of the command; nothing is recorded or uploaded.
# The user's command sees the subject only through environment variables, never in shell text.
set -uo pipefail

RUN_ID=demo-1
# shellcheck disable=SC2016,SC2089,SC2090  # the command is data here: bash -c runs it below
CT_COMMAND='echo "$SUBJECT" > "$OUTPUT_DIR/x"'
CT_CONTAINER=''
CT_INPUT_URL=''
# A Secrets Manager ARN: the input bucket's own credentials, read through the node's role when staging.
CT_INPUT_SECRET=''
CT_OUTPUT_URL=s3://bucket-1/study/demo-1
# Where the node bootstrap may have left bootstrap.env (container runtime, the image it pulled once,
# the conda environment it solved once), in order.
CT_SHARED_DIRS=()
CT_RUN_DIR=${SLURM_SUBMIT_DIR:-$(cd "$(dirname "$0")" && pwd)}
CT_DEBUG=""
if [[ ${1:-} == --debug ]]; then
  CT_DEBUG=1
  ATTEMPT=${2:?usage: wrapper.sh --debug ATTEMPT INDEX}
  CT_INDEX=${3:?usage: wrapper.sh --debug ATTEMPT INDEX}
  CT_JOB_ID="${SLURM_JOB_ID:-0}"
else
  ATTEMPT=${1:?usage: wrapper.sh ATTEMPT OFFSET}
  CT_OFFSET=${2:?usage: wrapper.sh ATTEMPT OFFSET}
  CT_INDEX=$((CT_OFFSET + ${SLURM_ARRAY_TASK_ID:?not run as a Slurm array task}))
  CT_JOB_ID="${SLURM_ARRAY_JOB_ID:-0}_${SLURM_ARRAY_TASK_ID}"
  # ARGV 3, the chunk: its job-id marker, written by the task itself, tells submit.sh this array was
  # accepted even when sbatch's answer was lost and squeue has forgotten the job (MinJobAge).
  ct_marker="$CT_RUN_DIR/attempts/$ATTEMPT/chunk-${3:-}.jobid"
  if [[ ${3:-} =~ ^[0-9]+$ && $ATTEMPT =~ ^[0-9]+$ && -n ${SLURM_ARRAY_JOB_ID:-} && ! -s $ct_marker ]]; then
    echo "$SLURM_ARRAY_JOB_ID" >"$ct_marker.$$.tmp" && mv -f "$ct_marker.$$.tmp" "$ct_marker"
  fi
fi
CT_NODE=$(hostname -s 2>/dev/null || hostname)
CT_START=$(date -u +%Y-%m-%dT%H:%M:%SZ)
# shellcheck disable=SC2090
export RUN_ID ATTEMPT CT_COMMAND

log() { printf '%s clustertools[%s]: %s\n' "$(date -u +%H:%M:%S)" "${SUBJECT:-task $CT_INDEX}" "$*" >&2; }

# bootstrap.env: KEY=VALUE lines (printf %q) the bootstrap wrote as root. One that is not root's, or
# that others may write, is not trusted: it would run as this task.
load_bootstrap_env() {
  local dir file meta
  for dir in "${CT_SHARED_DIRS[@]}"; do
    file="$dir/clustertools/bootstrap.env"
    [[ -r $file ]] || continue
    meta=$(stat -c '%u %a' "$file" 2>/dev/null) || continue
    if [[ ${meta%% *} != 0 ]] || (( 8#${meta##* } & 8#022 )); then
      log "ignoring $file: not root's, or writable by others"
      continue
    fi
    # shellcheck source=/dev/null
    . "$file"
    if [[ -n ${CT_CONDA_ENV:-} && -d $CT_CONDA_ENV ]]; then
      export PATH="$CT_CONDA_ENV/bin:$PATH" CONDA_PREFIX="$CT_CONDA_ENV"
    fi
    return 0
  done
}
load_bootstrap_env

# The manifest: a header line of variable names, then one line per task, fields split by \x1f.
manifest="$CT_RUN_DIR/attempts/$ATTEMPT/manifest"
IFS=$'\x1f' read -r -a ct_names < <(sed -n '1{p;q}' "$manifest")
IFS=$'\x1f' read -r -a ct_values < <(sed -n "$((CT_INDEX + 2)){p;q}" "$manifest")
if [[ ${#ct_values[@]} -eq 0 || "${ct_names[0]:-}" != SUBJECT ]]; then
  log "no line $((CT_INDEX + 2)) in $manifest"
  exit 98
fi
for i in "${!ct_names[@]}"; do
  export "${ct_names[$i]}=${ct_values[$i]:-}"
done

CT_SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/clustertools.XXXXXX")
# Everything for S3 is staged as the run's own layout and sent in ONE `aws s3 cp` at the end:
# outputs in <run>/<subject>/, the record and the logs in <run>/.clustertools/.
CT_STAGE="$CT_SCRATCH/stage"
INPUT_DIR="$CT_SCRATCH/input"
OUTPUT_DIR="$CT_STAGE/$SUBJECT"
mkdir -p "$INPUT_DIR" "$OUTPUT_DIR" "$CT_STAGE/.clustertools/records" "$CT_STAGE/.clustertools/logs" \
  "$CT_RUN_DIR/records/new" "$CT_RUN_DIR/logs"
export SUBJECT INPUT_DIR OUTPUT_DIR
CT_LOG="$CT_RUN_DIR/logs/$SUBJECT.$ATTEMPT"
[[ -z $CT_DEBUG ]] || CT_LOG="$CT_SCRATCH/debug"  # the task's own logs stay as they were

# A durable record per subject and attempt, on the head node (read by `status`) and in S3.
# Written to a temp name and renamed, so a reader never sees half a record (also over NFS).
record_json() {  # STATE EXIT_CODE ERROR
  local end=""
  [[ $1 == RUNNING ]] || end=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  printf '{"subject":"%s","attempt":%d,"state":"%s","exit_code":%s,"error":"%s","start":"%s","end":"%s","node":"%s","job_id":"%s"}\n' \
    "$SUBJECT" "$ATTEMPT" "$1" "${2:-null}" "${3:-}" "$CT_START" "$end" "$CT_NODE" "$CT_JOB_ID"
}

record() {  # STATE EXIT_CODE ERROR
  local tmp="$CT_RUN_DIR/records/new/.$SUBJECT.$ATTEMPT.$1.$$.tmp"
  record_json "$@" >"$tmp" && mv -f "$tmp" "$CT_RUN_DIR/records/new/$SUBJECT.$ATTEMPT.$1.json"
}

finish() {  # STATE EXIT_CODE ERROR
  trap - TERM INT
  local state=$1 code=${2:-} error=${3:-}
  record_json "$state" "$code" "$error" >"$CT_STAGE/.clustertools/records/$SUBJECT.$ATTEMPT.json"
  for stream in out err; do
    [[ -f "$CT_LOG.$stream" ]] && cp "$CT_LOG.$stream" "$CT_STAGE/.clustertools/logs/$SUBJECT.$ATTEMPT.$stream"
  done
  if command -v aws >/dev/null 2>&1; then
    # While this marker exists an upload is in flight: the head node's autostop (bootstrap/autostop.sh) waits.
    # It names the job and its Slurm config: clusters sharing a home (sandboxes) count only their own.
    local uploading="$CT_RUN_DIR/uploading/$SUBJECT.$ATTEMPT"
    mkdir -p "$CT_RUN_DIR/uploading" && printf 'job=%s slurm_conf=%s\n' "$CT_JOB_ID" "${SLURM_CONF:-}" >"$uploading"
    if ! aws s3 cp --quiet --recursive "$CT_STAGE/" "$CT_OUTPUT_URL/" >>"$CT_LOG.err" 2>&1; then
      [[ $state == SUCCEEDED ]] && CT_EXIT=96
      state=FAILED error="uploading to S3 failed (the command exited ${code:-?})" code=96
    fi
    rm -f -- "$uploading"
  fi
  record "$state" "$code" "$error"
  rm -rf "$CT_SCRATCH"
  log "$state${code:+ (exit code $code)}${error:+: $error}"
}

# The input's credentials: from Secrets Manager into this shell's unexported variables, through a pipe:
# never on disk, never in a command line (where other users could read them), never in a log.
read_input_credentials() {
  local json
  json=$(aws secretsmanager get-secret-value --secret-id "$CT_INPUT_SECRET" --query SecretString --output text \
    2>>"$CT_LOG.err") || return 1
  { IFS= read -r CT_IN_KEY; IFS= read -r CT_IN_SECRET; IFS= read -r CT_IN_TOKEN; } < <(printf '%s' "$json" | python3 -c '
import json, sys
data = json.loads(sys.stdin.read())
def pick(*names):
    return next((str(data[n]) for n in names if data.get(n)), "")
print(pick("AccessKeyId", "aws_access_key_id", "AWS_ACCESS_KEY_ID"))
print(pick("SecretAccessKey", "aws_secret_access_key", "AWS_SECRET_ACCESS_KEY"))
print(pick("SessionToken", "aws_session_token", "AWS_SESSION_TOKEN"))' 2>/dev/null)
  [[ -n ${CT_IN_KEY:-} && -n ${CT_IN_SECRET:-} ]]
}

stage_input() {  # prints why on failure
  [[ -n "$CT_INPUT_URL" ]] || return 0
  local CT_IN_KEY="" CT_IN_SECRET="" CT_IN_TOKEN=""
  if [[ -n "$CT_INPUT_SECRET" ]] && ! read_input_credentials; then
    echo "reading the input's credentials (secret $CT_INPUT_SECRET) failed"
    return 97
  fi
  # A subshell: the credentials reach this one aws call alone, not the outputs' upload nor the command.
  if ! (
    if [[ -n $CT_IN_KEY ]]; then
      export AWS_ACCESS_KEY_ID=$CT_IN_KEY AWS_SECRET_ACCESS_KEY=$CT_IN_SECRET
      unset AWS_PROFILE AWS_SESSION_TOKEN
      [[ -z $CT_IN_TOKEN ]] || export AWS_SESSION_TOKEN=$CT_IN_TOKEN
    fi
    aws s3 cp --quiet --recursive "$CT_INPUT_URL/$SUBJECT/" "$INPUT_DIR/"
  ) >>"$CT_LOG.err" 2>&1; then
    echo "staging the input from S3 failed"
    return 97
  fi
  if [[ -z "$(ls -A "$INPUT_DIR")" ]]; then
    echo "no input under $CT_INPUT_URL/$SUBJECT/"
    return 97
  fi
}

in_runtime() {  # ARGV...: run plainly, or in the run's container, with the task's environment and scratch
  # The image the bootstrap pulled once into shared storage, when it is this run's: no pull per task.
  local image=$CT_CONTAINER
  if [[ -n ${CT_IMAGE_FILE:-} && ${CT_IMAGE:-} == "$CT_CONTAINER" && -r $CT_IMAGE_FILE && ${CT_RUNTIME:-} == apptainer ]]; then
    image=$CT_IMAGE_FILE
  fi
  if [[ -z "$CT_CONTAINER" ]]; then
    "$@"
  elif [[ ${CT_RUNTIME:-} != docker ]] && { command -v apptainer >/dev/null 2>&1 || command -v singularity >/dev/null 2>&1; }; then
    "$(command -v apptainer || command -v singularity)" exec --bind "$CT_SCRATCH" "$image" "$@"
  elif command -v docker >/dev/null 2>&1; then
    local envs=() name
    for name in "${ct_names[@]}" RUN_ID ATTEMPT INPUT_DIR OUTPUT_DIR CT_COMMAND; do envs+=(-e "$name"); done
    docker run --rm ${CT_DEBUG:+-it} "${envs[@]}" -v "$CT_SCRATCH:$CT_SCRATCH" "${CT_CONTAINER#docker://}" "$@"
  else
    log "no container runtime (apptainer, singularity or docker) on this node"
    return 126
  fi
}

run_command() {
  in_runtime bash -c "$CT_COMMAND"
}

if [[ -n $CT_DEBUG ]]; then
  # The command comes first, and is the shell's last history line: arrow-up runs it again.
  printf 'clustertools debug: the command the task ran: %s\n' "$CT_COMMAND"
  printf 'clustertools debug: %s of run %s, attempt %s, on %s (job %s)\n' "$SUBJECT" "$RUN_ID" "$ATTEMPT" "$CT_NODE" "$CT_JOB_ID"
  trap 'rm -rf "$CT_SCRATCH"' EXIT
  trap 'exit 129' HUP
  trap 'exit 143' TERM
  if [[ -n "$CT_INPUT_URL" ]]; then
    if ! command -v aws >/dev/null 2>&1; then
      echo "clustertools debug: the aws CLI is not on this node: no input staged" >&2
    elif ! why=$(stage_input); then
      echo "clustertools debug: $why: the shell opens anyway" >&2
      cat "$CT_LOG.err" >&2 2>/dev/null
    fi
  fi
  printf '%s\n' "$CT_COMMAND" >"$CT_SCRATCH/.bash_history"
  {
    echo '[[ -f ~/.bashrc ]] && . ~/.bashrc'
    printf 'HISTFILE=%q\n' "$CT_SCRATCH/.bash_history"
    echo "PS1='(debug \${SUBJECT}) '\"\$PS1\""
  } >"$CT_SCRATCH/.bashrc"
  echo "clustertools debug: SUBJECT=$SUBJECT INPUT_DIR=$INPUT_DIR OUTPUT_DIR=$OUTPUT_DIR; exit releases the node"
  in_runtime bash --rcfile "$CT_SCRATCH/.bashrc" -i
  exit $?
fi

# scancel and the time limit send SIGTERM: the subject is recorded as CANCELLED, not lost.
trap 'finish CANCELLED 143 "terminated by Slurm (scancel or time limit)"; exit 143' TERM INT

record RUNNING
log "attempt $ATTEMPT on $CT_NODE, job $CT_JOB_ID"

if ! command -v aws >/dev/null 2>&1; then
  finish FAILED 127 "the aws CLI is not on this node"
  exit 127
fi

if ! why=$(stage_input); then
  finish FAILED 97 "$why"
  exit 97
fi

CT_EXIT=0
run_command >"$CT_LOG.out" 2>"$CT_LOG.err" </dev/null &
wait $!
code=$?
if [[ $code -eq 0 ]]; then
  finish SUCCEEDED 0
else
  CT_EXIT=$code
  finish FAILED "$code"
fi
exit "$CT_EXIT"

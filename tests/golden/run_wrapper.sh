#!/bin/bash
# Per-task wrapper of clustertools run demo-1: one subject per Slurm array task.
# Usage (from array.sbatch): wrapper.sh ATTEMPT OFFSET CHUNK, with SLURM_ARRAY_TASK_ID set by Slurm.
# `clustertools debug` runs it as: wrapper.sh --debug ATTEMPT INDEX (in `srun --pty`): the same
# subject, environment, staged input and container as task INDEX, then an interactive shell instead
# of the command; nothing is recorded or uploaded.
# The user's command sees the subject only through environment variables, never in shell text.
set -uo pipefail

RUN_ID=demo-1
# shellcheck disable=SC2016,SC2089,SC2090  # the command is data here: bash -c runs it below
CT_COMMAND='echo "$SUBJECT" > "$OUTPUT_DIR/x"'
CT_CONTAINER=''
# job.workdir: the project's code, unpacked beside this script at submit; each task works in a copy of its own.
CT_WORKDIR=""
# job.container_args: the image's own entrypoint runs with these (each ${NAME} replaced per task), not the command.
CT_ENTRYPOINT=""
# shellcheck disable=SC2016  # data: expand_arg replaces each ${NAME}, nothing else
CT_CONTAINER_ARGS=()
CT_INPUT_URL=''
# storage.input_include/exclude as aws s3 cp's filters (later ones win).
CT_INPUT_FILTERS=()
# A Secrets Manager ARN: the input bucket's own credentials, read through the node's role when staging.
CT_INPUT_SECRET=''
# storage.input_credentials_to_task: the command gets them too (as AWS_* variables in its environment alone).
CT_INPUT_SECRET_TO_TASK=""
CT_OUTPUT_URL=s3://bucket-1/study/demo-1
CT_MEM=1G  # the task's --mem, named when the kernel kills the command for memory
CT_GPUS=0  # GPUs per task (--gres=gpu:N): the container is given them
CT_TIME=01:00:00 CT_TIME_S=3600  # the time limit: a TERM at it is TIMEOUT, not CANCELLED
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
CT_START_S=$(date +%s)
# A resubmitted attempt's own resources (resubmit --mem/--gpus/--time), as its array script asked Slurm for them.
if [[ $ATTEMPT =~ ^[0-9]+$ && -r $CT_RUN_DIR/attempts/$ATTEMPT/resources ]]; then
  while IFS='=' read -r ct_key ct_value; do
    case $ct_key in
      mem) [[ $ct_value =~ ^[0-9]+[KMGT]?$ ]] && CT_MEM=$ct_value ;;
      gpus) [[ $ct_value =~ ^[0-9]+$ ]] && CT_GPUS=$ct_value ;;
      time) [[ $ct_value =~ ^[0-9:-]+$ ]] && CT_TIME=$ct_value ;;
      time_s) [[ $ct_value =~ ^[0-9]+$ ]] && CT_TIME_S=$ct_value ;;
    esac
  done <"$CT_RUN_DIR/attempts/$ATTEMPT/resources"
fi

# The steps clustertools runs around the user's command (secret read, staging, upload) see only an
# allow-listed part of this script's environment (the node's: AWS_* config, HOME, locale, proxies) and a
# PATH fixed here, before bootstrap.env or the task's columns exist. The columns are never exported in
# this script: they reach the user's command alone (in_runtime), whatever they are named.
CT_AWS=$(command -v aws 2>/dev/null || true)
CT_PATH="${CT_AWS:+${CT_AWS%/*}:}/usr/local/bin:/usr/bin:/bin"
# CLUSTERTOOLS_SANDBOX: how `sandbox down` finds a sandbox's leftover processes.
CT_ENV_ALLOWED='^(HOME|USER|LOGNAME|LANG|LC_[A-Z]+|TZ|TMPDIR|AWS_[A-Z0-9_]+|https?_proxy|HTTPS?_PROXY|no_proxy|NO_PROXY|CLUSTERTOOLS_SANDBOX)$'
clean_env() {  # ARGV...: run with that environment. Values stay in the environment, never on a command line.
  local entry drop=()
  while IFS= read -r -d '' entry; do  # every entry a child would get, names bash cannot unset included
    [[ ${entry%%=*} =~ $CT_ENV_ALLOWED ]] || drop+=(-u "${entry%%=*}")
  done < <(/usr/bin/env -0)
  /usr/bin/env ${drop[@]+"${drop[@]}"} PATH="$CT_PATH" "$@"  # an empty array is "unbound" to bash 4.2's set -u
}
# Upload retries: a short S3 outage must not cost the computation. Delays in seconds between tries.
read -r -a CT_UPLOAD_DELAYS <<<"${CLUSTERTOOLS_UPLOAD_RETRY_DELAYS:-5 15 45}"

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
    # Read in a subshell, and only the keys the bootstrap writes are taken: the file cannot change this
    # script's own steps (clean_env, its PATH, the upload) nor export anything into them.
    # shellcheck source=/dev/null
    eval "$(. "$file" >/dev/null 2>&1
      for key in CT_RUNTIME CT_IMAGE CT_IMAGE_FILE CT_IMAGE_DIGEST CT_CONDA_ENV; do [[ -v $key ]] && printf '%s=%q\n' "$key" "${!key}"; done)"
    if [[ -n ${CT_CONDA_ENV:-} && -d $CT_CONDA_ENV ]]; then
      export PATH="$CT_CONDA_ENV/bin:$PATH" CONDA_PREFIX="$CT_CONDA_ENV"
      CT_ENV_USED=$CT_CONDA_ENV  # for the records: which environment (file) this task ran with
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
# NAME=VALUE words for the user's command only (see in_runtime); names checked here too, whatever wrote them.
CT_TASK_ENV=()
for i in "${!ct_names[@]}"; do
  if [[ ! ${ct_names[$i]} =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]]; then
    log "bad variable name in $manifest: $(printf '%q' "${ct_names[$i]}")"  # not @Q: bash 4.2 on alinux2
    exit 98
  fi
  CT_TASK_ENV+=("${ct_names[$i]}=${ct_values[$i]:-}")
done
SUBJECT=${ct_values[0]}
CT_SUBJECT_INPUT=""  # a column input_url: where this subject's input is (checked at submit)
for i in "${!ct_names[@]}"; do [[ ${ct_names[$i]} != input_url ]] || CT_SUBJECT_INPUT=${ct_values[$i]:-}; done

CT_SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/clustertools.XXXXXX")
# Everything for S3 is staged as the run's own layout and sent in ONE `aws s3 cp` at the end:
# outputs in <run>/<subject>/, the record and the logs in <run>/.clustertools/.
CT_STAGE="$CT_SCRATCH/stage"
INPUT_DIR="$CT_SCRATCH/input"
OUTPUT_DIR="$CT_STAGE/$SUBJECT"
mkdir -p "$INPUT_DIR" "$OUTPUT_DIR" "$CT_STAGE/.clustertools/records" "$CT_STAGE/.clustertools/logs" \
  "$CT_RUN_DIR/records/new" "$CT_RUN_DIR/logs"
# clustertools' own variables come last: they win over any column of the same name.
CT_TASK_ENV+=("SUBJECT=$SUBJECT" "RUN_ID=$RUN_ID" "ATTEMPT=$ATTEMPT" "INPUT_DIR=$INPUT_DIR" "OUTPUT_DIR=$OUTPUT_DIR"
  "CT_COMMAND=$CT_COMMAND")
CT_LOG="$CT_RUN_DIR/logs/$SUBJECT.$ATTEMPT"
[[ -z $CT_DEBUG ]] || CT_LOG="$CT_SCRATCH/debug"  # the task's own logs stay as they were

# A durable record per subject and attempt, on the head node (read by `status`) and in S3.
# Written to a temp name and renamed, so a reader never sees half a record (also over NFS).
record_json() {  # STATE EXIT_CODE ERROR [KEPT]: KEPT is where outputs wait after a failed upload
  local end=""
  [[ $1 == RUNNING ]] || end=$(date -u +%Y-%m-%dT%H:%M:%SZ)  # when written: the head node's after the upload
  local ct_env=${CT_ENV_USED:-}  # a path of the bootstrap's making; anything else would not be JSON-safe
  [[ $ct_env =~ ^[A-Za-z0-9._/+-]*$ ]] || ct_env="?"
  printf '{"subject":"%s","attempt":%d,"state":"%s","exit_code":%s,"error":"%s","start":"%s","end":"%s","node":"%s","job_id":"%s","kept":"%s","restarts":%d,"image":"%s","peak_mem_mb":%s,"cpu_s":%s,"env":"%s"}\n' \
    "$SUBJECT" "$ATTEMPT" "$1" "${2:-null}" "${3:-}" "$CT_START" "$end" "$CT_NODE" "$CT_JOB_ID" "${4:-}" \
    "${SLURM_RESTART_COUNT:-0}" "${CT_IMAGE_RAN:-}" "${CT_PEAK_MB:-null}" "${CT_CPU_S:-null}" "$ct_env"
}

last_stderr_line() {  # the command's last non-blank line on stderr, as a failed subject's note
  local line
  line=$(tail -n 20 -- "$CT_LOG.err" 2>/dev/null | LC_ALL=C grep -v '^[[:space:]]*$' | tail -n 1) || true
  # It is the command's text, not ours: printable ASCII only, at most 200 characters, escaped for JSON.
  line=$(LC_ALL=C tr -c '[:print:]' ' ' <<<"$line" | cut -c 1-200)
  line=${line%"${line##*[![:space:]]}"}
  line=${line//\\/\\\\} && line=${line//\"/\\\"}
  [[ -z $line ]] || printf 'last line on stderr: %s' "$line"
}

record() {  # STATE EXIT_CODE ERROR [KEPT]
  local tmp="$CT_RUN_DIR/records/new/.$SUBJECT.$ATTEMPT.$1.$$.tmp"
  record_json "$@" >"$tmp" && mv -f "$tmp" "$CT_RUN_DIR/records/new/$SUBJECT.$ATTEMPT.$1.json"
}

upload() {  # the staged layout to S3 in one `aws s3 cp`, tried again after each delay; counts CT_TRIES
  local delay
  for delay in ${CT_UPLOAD_DELAYS[@]+"${CT_UPLOAD_DELAYS[@]}"} last; do
    CT_TRIES=$((${CT_TRIES:-0} + 1))
    clean_env aws s3 cp --only-show-errors --recursive "$CT_STAGE/" "$CT_OUTPUT_URL/" >>"$CT_LOG.err" 2>&1 && return 0
    # Told to stop (scancel, time limit): no more waiting, Slurm kills the task KillWait seconds later.
    [[ $delay != last && -z ${CT_STOP:-} ]] || return 1
    log "uploading to S3 failed; trying again in $delay s"
    sleep "$delay" &
    wait $! || { kill $! 2>/dev/null; return 1; }  # a signal ends the wait at once
  done
}

# After the last try: the staged outputs go to the run's dir on the head node (home is shared), where
# `clustertools results push` uploads them later without computing again. Prints where they are.
keep_unsent() {
  local kept="$CT_RUN_DIR/unsent/$SUBJECT.$ATTEMPT"
  mkdir -p "$CT_RUN_DIR/unsent" && rm -rf -- "$kept" && mv -- "$CT_STAGE" "$kept" && printf '%s' "$kept"
}

finish() {  # STATE EXIT_CODE ERROR
  trap 'CT_STOP=1' TERM INT  # a signal now stops the retries, and the outputs are kept
  local state=$1 code=${2:-} error=${3:-} kept=""
  CT_END=$(date -u +%Y-%m-%dT%H:%M:%SZ) CT_PEAK_MB=$(peak_memory_mb) CT_CPU_S=$(cpu_seconds)
  [[ ! -d $OUTPUT_DIR ]] || provenance_json "$state" "$code" >"$OUTPUT_DIR/provenance.json" 2>>"$CT_LOG.err" ||
    rm -f -- "$OUTPUT_DIR/provenance.json"
  cp -- "$CT_RUN_DIR/dataset_description.json" "$CT_STAGE/" 2>/dev/null  # the run's, at its outputs' root
  record_json "$state" "$code" "$error" >"$CT_STAGE/.clustertools/records/$SUBJECT.$ATTEMPT.json"
  for stream in out err; do
    [[ -f "$CT_LOG.$stream" ]] && cp "$CT_LOG.$stream" "$CT_STAGE/.clustertools/logs/$SUBJECT.$ATTEMPT.$stream"
  done
  if [[ -n $CT_AWS ]]; then
    # While this marker exists an upload is in flight: the head node's autostop (bootstrap/autostop.sh) waits.
    # It names the job and its Slurm config: clusters sharing a home (sandboxes) count only their own.
    local uploading="$CT_RUN_DIR/uploading/$SUBJECT.$ATTEMPT"
    mkdir -p "$CT_RUN_DIR/uploading" && printf 'job=%s slurm_conf=%s\n' "$CT_JOB_ID" "${SLURM_CONF:-}" >"$uploading"
    if ! upload; then
      [[ $state == SUCCEEDED ]] && CT_EXIT=96
      error="uploading to S3 failed after $CT_TRIES tr$([[ $CT_TRIES == 1 ]] && echo y || echo ies) (the command exited ${code:-?})"
      if kept=$(keep_unsent); then
        error="$error; outputs kept at $kept: clustertools results push $RUN_ID"
      else
        kept="" error="$error; keeping the outputs on the head node failed too: they are in $CT_STAGE on $CT_NODE"
        CT_SCRATCH=""  # never delete the only copy
      fi
      state=FAILED code=96
    fi
    rm -f -- "$uploading"
  fi
  record "$state" "$code" "$error" "$kept"
  [[ -z $CT_SCRATCH ]] || rm -rf "$CT_SCRATCH"
  log "$state${code:+ (exit code $code)}${error:+: $error}"
}

# --- The task's inputs (included in wrapper.sh): its own, staged into INPUT_DIR, and storage.shared_inputs. ---

# The input's credentials: from Secrets Manager into this shell's unexported variables, through a pipe:
# never on disk, never in a command line (where other users could read them), never in a log.
CT_IN_KEY="" CT_IN_SECRET="" CT_IN_TOKEN=""
read_input_credentials() {
  local json
  json=$(clean_env aws secretsmanager get-secret-value --secret-id "$CT_INPUT_SECRET" --query SecretString --output text \
    2>>"$CT_LOG.err") || return 1
  { IFS= read -r CT_IN_KEY; IFS= read -r CT_IN_SECRET; IFS= read -r CT_IN_TOKEN; } < <(printf '%s' "$json" | clean_env python3 -c '
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
  # The subject's own input_url (a column: a prefix ending in /, or one object), else <storage.input>/<subject>/.
  local source="$CT_INPUT_URL/$SUBJECT/" how=(--recursive ${CT_INPUT_FILTERS[@]+"${CT_INPUT_FILTERS[@]}"})
  if [[ -n $CT_SUBJECT_INPUT ]]; then
    source=$CT_SUBJECT_INPUT
    [[ $source == */ ]] || how=()
  elif [[ -z "$CT_INPUT_URL" ]]; then
    return 0
  fi
  # Read here (in this subshell alone) unless the command gets them too: then the task read them once already.
  if [[ -n "$CT_INPUT_SECRET" && -z $CT_IN_KEY ]] && ! read_input_credentials; then
    echo "reading the input's credentials (secret $CT_INPUT_SECRET) failed"
    return 97
  fi
  # A subshell: the credentials reach this one aws call alone, not the outputs' upload (nor the command, but
  # by export_input_credentials).
  # shellcheck disable=SC2030
  if ! (
    if [[ -n $CT_IN_KEY ]]; then
      export AWS_ACCESS_KEY_ID=$CT_IN_KEY AWS_SECRET_ACCESS_KEY=$CT_IN_SECRET
      unset AWS_PROFILE AWS_SESSION_TOKEN
      [[ -z $CT_IN_TOKEN ]] || export AWS_SESSION_TOKEN=$CT_IN_TOKEN
    fi
    clean_env aws s3 cp --quiet ${how[@]+"${how[@]}"} "$source" "$INPUT_DIR/"
  ) >>"$CT_LOG.err" 2>&1; then
    echo "staging the input from S3 failed"
    return 97
  fi
  if [[ -z "$(ls -A "$INPUT_DIR")" ]]; then
    echo "no input under $source${CT_INPUT_FILTERS[*]:+ matching storage.input_include/exclude}"
    return 97
  fi
}

# storage.input_credentials_to_task: the credentials the task read (read_input_credentials, in this shell) go
# into the environment of the subshell that runs the command, by `export`, a builtin: no command line shows
# them and no file holds them. CT_CREDENTIAL_NAMES: what a container runtime passes on by name (--env NAME,
# its value from the runtime's own environment). clustertools' own steps never run in that subshell.
CT_CREDENTIAL_NAMES=()
# shellcheck disable=SC2031  # stage_input's subshell sets the same names for its own aws call alone
export_input_credentials() {
  [[ -n $CT_INPUT_SECRET_TO_TASK && -n $CT_IN_KEY ]] || return 0
  unset AWS_PROFILE AWS_SESSION_TOKEN
  export AWS_ACCESS_KEY_ID=$CT_IN_KEY AWS_SECRET_ACCESS_KEY=$CT_IN_SECRET
  CT_CREDENTIAL_NAMES=(AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY)
  if [[ -n $CT_IN_TOKEN ]]; then
    export AWS_SESSION_TOKEN=$CT_IN_TOKEN
    CT_CREDENTIAL_NAMES+=(AWS_SESSION_TOKEN)
  fi
}

# storage.shared_inputs: what every task reads, fetched once per node for the run.
# The first task on a node fetches them (under a lock, into a node-local dir of the login user's); every task
# there then reads them as $SHARED_DIR/<name>. A run's copy goes when a later fetch finds it over two days old.
CT_SHARED_INPUTS=()
CT_SHARED_BASE="${TMPDIR:-/tmp}/clustertools-shared-$(id -u)"
CT_SHARED_DIR=""
((${#CT_SHARED_INPUTS[@]} == 0)) || CT_SHARED_DIR="$CT_SHARED_BASE/$RUN_ID"

fetch_shared_inputs() {  # prints why on failure
  [[ -n $CT_SHARED_DIR ]] || return 0
  [[ -d $CT_SHARED_BASE ]] || mkdir -m 0700 "$CT_SHARED_BASE"
  if [[ ! -O $CT_SHARED_BASE || -L $CT_SHARED_BASE ]]; then
    echo "$CT_SHARED_BASE is not this user's own directory"
    return 97
  fi
  if ! (
    flock -w 3600 9 || exit 1
    [[ -f $CT_SHARED_DIR/.complete ]] && exit 0
    find "$CT_SHARED_BASE" -mindepth 1 -maxdepth 1 -type d -mtime +2 -exec rm -rf {} + 2>/dev/null
    rm -rf -- "$CT_SHARED_DIR.partial" && mkdir -p "$CT_SHARED_DIR.partial" || exit 1
    for url in "${CT_SHARED_INPUTS[@]}"; do
      name=${url%/} && name=${name##*/}
      if [[ $url == */ ]]; then
        clean_env aws s3 cp --quiet --recursive "$url" "$CT_SHARED_DIR.partial/$name/" || exit 1
      else
        clean_env aws s3 cp --quiet "$url" "$CT_SHARED_DIR.partial/$name" || exit 1
      fi
    done
    touch "$CT_SHARED_DIR.partial/.complete" && rm -rf -- "$CT_SHARED_DIR" && mv -- "$CT_SHARED_DIR.partial" "$CT_SHARED_DIR"
  ) 9>"$CT_SHARED_BASE/$RUN_ID.lock" >>"$CT_LOG.err" 2>&1; then
    echo "fetching storage.shared_inputs into $CT_SHARED_DIR failed"
    return 97
  fi
}

# --- The run's container (included in wrapper.sh): which runtime, which image, and the task run in it. ---
# The image is pulled once per cluster, never per task: the node bootstrap pulls job.container into shared storage
# (CT_IMAGE_FILE); an image it did not pull (job.container changed since `up`) is pulled by the first task that
# needs it, under a lock, into the login user's shared ~/.clustertools/images (podman). CT_IMAGE_RAN, the image
# and its digest, goes into every record of the task.
CT_IMAGE_RAN=""

# The runtime that runs the container: the bootstrap's (CT_RUNTIME), else the first this node has (podman before
# docker: a docker client is often there without a daemon it may use).
container_runtime() {
  local name
  case ${CT_RUNTIME:-} in
    enroot | podman | docker) command -v "$CT_RUNTIME" >/dev/null 2>&1 && { echo "$CT_RUNTIME"; return 0; } ;;
  esac
  for name in apptainer singularity podman docker; do
    [[ $name == docker || ${CT_RUNTIME:-} != docker ]] || continue
    command -v "$name" >/dev/null 2>&1 && { echo "$name"; return 0; }
  done
  return 1
}

# podman runs rootless, as this task's user, with a store of its own on this node (never the shared home: podman's
# store on NFS is not supported), shared by the user's tasks here. A Slurm task has no systemd user session, so
# podman (cgroupfs) makes no cgroup of its own: the container stays in the task's cgroups, and Slurm's memory and
# CPU limits hold for it. (Not --cgroups=disabled: runc, the sandbox's runtime, refuses it.)
CT_PODMAN_BASE="${TMPDIR:-/tmp}/clustertools-podman-$(id -u)"
ct_podman() {
  podman --root "$CT_PODMAN_BASE/storage" --runroot "$CT_PODMAN_BASE/run" --tmpdir "$CT_PODMAN_BASE/tmp" \
    --cgroup-manager cgroupfs --events-backend file "$@"
}

# Rootless podman may exit 1 before any container exists when this user's tasks run `podman run --rm` on one node
# at once (a CI run, 1 of 20):
#   invalid internal status, try resetting the pause process with "podman system migrate": cannot read
#   "/tmp/clustertools-podman-1001/run/vfs-containers/.../userdata/conmon.pid": ...
# With no pause process (Slurm kills the one an earlier task started: it lived in that task's cgroup), podman joins
# the user namespace of a running container through its conmon.pid, and that container was removed meanwhile
# (podman's SetupRootless, pkg/domain/infra/abi/system_linux.go). The advice is NOT taken: `system migrate` stops
# every running container of the store (libpod/runtime_migrate.go), the other tasks' on this node. A moment later
# the same command finds another container to join, or starts a pause process: it runs once more, and its result is
# the result. Only that message triggers it, and podman prints it before a container exists: a container that
# started is never run again. Any other failure is passed on as it was. podman's stderr still goes where it went
# (the task's log); tee keeps a copy in the task's scratch dir to look at, and ignores TERM and INT: it ends with
# podman, and podman never writes its last words to a closed pipe.
ct_podman_retried() {  # ARGS...: ct_podman ARGS; once more if podman could not join its rootless namespaces
  local err code
  err=$(mktemp "$CT_SCRATCH/.podman-err.XXXXXX") || { ct_podman "$@"; return; }
  { ct_podman "$@" 2>&1 >&3 3>&- | (trap '' TERM INT && exec tee -- "$err") >&2 3>&-; code=${PIPESTATUS[0]}; } 3>&1
  if ((code != 0)) && LC_ALL=C grep -q 'invalid internal status' -- "$err"; then
    rm -f -- "$err"
    log "podman could not join its rootless namespaces (exit code $code; a container it joined went away):" \
      "running it once more in a moment"
    sleep "$((1 + RANDOM % 3))"  # apart from the other tasks that met the same removal
    ct_podman "$@"
    return
  fi
  rm -f -- "$err"
  return "$code"
}

# The cluster's archive of REF when the bootstrap did not pull it: the first task pulls and saves it under a lock
# (flock works on ParallelCluster's NFSv4 home); every later task on every node finds it. Prints its path.
podman_pulled_once() {  # REF
  local ref=$1 dir="${HOME:-$(cd ~ && pwd)}/.clustertools/images" name archive
  name="${ref//[^A-Za-z0-9._-]/_}-$(printf '%s' "$ref" | sha256sum | cut -c1-8)"
  archive="$dir/$name.oci.tar"
  mkdir -p "$dir" || return 1
  local host=${ref%%/*} region=""
  [[ $ref != */* || ! $host =~ $CT_ECR_HOST ]] || region=${BASH_REMATCH[2]}
  (
    flock -w 3600 9 || exit 1
    [[ -s $archive && -s $archive.digest ]] && exit 0
    log "pulling $ref once for the cluster (into $archive)"
    rm -f -- "$archive.partial"
    if [[ -n $region ]]; then  # its auth file is a pipe: the token never lands in a file
      ct_podman pull -q --authfile <(ecr_auth_json "$host" "$region") "$ref" >/dev/null
    else
      ct_podman pull -q "$ref" >/dev/null
    fi && ct_podman save -q --format oci-archive -o "$archive.partial" "$ref" &&
      ct_podman image inspect --format '{{.Digest}}' "$ref" >"$archive.digest" &&
      mv -f -- "$archive.partial" "$archive"
  ) 9>"$dir/$name.lock" || return 1
  printf '%s' "$archive"
}

# Amazon ECR: the node's instance role logs in, as the bootstrap does (bootstrap/on-node-configured.sh, ecr_*).
CT_ECR_HOST='^[0-9]{12}\.dkr\.ecr(-fips)?\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$'
ecr_auth_json() {  # HOST REGION
  local token
  token=$(clean_env aws ecr get-login-password --region "$2") || return 1
  printf '{"auths":{"%s":{"auth":"%s"}}}' "$1" "$(printf 'AWS:%s' "$token" | base64 -w0)"
}

# The image loaded into this node's store once: again only when the archive changed (a new tag or digest).
podman_prepare() {
  local ref=${CT_CONTAINER#docker://} archive digest marker
  if [[ -n ${CT_IMAGE_FILE:-} && ${CT_IMAGE:-} == "$CT_CONTAINER" && -r $CT_IMAGE_FILE ]]; then
    archive=$CT_IMAGE_FILE digest=${CT_IMAGE_DIGEST:-}
  else
    archive=$(podman_pulled_once "$ref") || { CT_WHY="pulling $ref failed"; return 1; }
    digest=$(<"$archive.digest")
  fi
  [[ -d $CT_PODMAN_BASE ]] || mkdir -m 0700 "$CT_PODMAN_BASE"
  if [[ ! -O $CT_PODMAN_BASE || -L $CT_PODMAN_BASE ]]; then
    CT_WHY="$CT_PODMAN_BASE is not this user's own directory"
    return 1
  fi
  marker="$CT_PODMAN_BASE/loaded-$(printf '%s' "$ref" | sha256sum | cut -c1-16)"
  if ! (
    flock -w 1800 9 || exit 1
    [[ -f $marker && $(<"$marker") == "$archive $digest" ]] && ct_podman image exists "$ref" && exit 0
    ct_podman load -q -i "$archive" >/dev/null && printf '%s %s' "$archive" "$digest" >"$marker"
  ) 9>"$CT_PODMAN_BASE/load.lock"; then
    CT_WHY="loading $archive into this node's podman store failed"
    return 1
  fi
  CT_IMAGE_RAN="$ref${digest:+@$digest}"
}

# Ready the container before the task starts: a failure is the task's (exit 125, as a runtime's own), with why.
prepare_container() {
  CT_WHY=""
  [[ -n $CT_CONTAINER ]] || return 0
  CT_RUNTIME_USED=$(container_runtime) || {
    CT_WHY="no container runtime (enroot, apptainer, singularity, podman or docker) on this node"
    return 1
  }
  if [[ -n $CT_ENTRYPOINT && $CT_RUNTIME_USED == enroot ]]; then
    CT_WHY="enroot runs job.command in the image, not the image's entrypoint (job.container_args)"
    return 1
  fi
  if [[ $CT_RUNTIME_USED == podman ]]; then
    podman_prepare || return 1
  else
    CT_IMAGE_RAN=$CT_CONTAINER
    [[ ${CT_IMAGE:-} != "$CT_CONTAINER" || -z ${CT_IMAGE_DIGEST:-} ]] || CT_IMAGE_RAN="${CT_CONTAINER#docker://}@$CT_IMAGE_DIGEST"
  fi
  CT_IMAGE_RAN=${CT_IMAGE_RAN//[^A-Za-z0-9._\/:@+=-]/}  # it goes into the JSON record as it is
}

# job.container_args: each ${NAME} is the task's variable NAME (clustertools' own win over a column of that name),
# replaced once, left to right. Nothing else is expanded ($NAME, $(...), globs stay as they are), and an unknown
# name is kept as written (submit refuses one).
task_var() {  # NAME: its value in CT_TASK_ENV
  local i
  for ((i = ${#CT_TASK_ENV[@]} - 1; i >= 0; i--)); do
    [[ ${CT_TASK_ENV[i]%%=*} == "$1" ]] && { printf '%s' "${CT_TASK_ENV[i]#*=}"; return 0; }
  done
  return 1
}

# shellcheck disable=SC2016  # '${' is the text looked for
expand_arg() {  # ARG
  local rest=$1 out="" name value
  while [[ $rest == *'${'* ]]; do
    out+=${rest%%'${'*}
    rest=${rest#*'${'}
    name=${rest%%\}*}
    if [[ $rest == *\}* && $name =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] && value=$(task_var "$name"); then
      out+=$value
      rest=${rest#*\}}
    else
      out+='${'
    fi
  done
  printf '%s' "$out$rest"
}

CT_ARGS=()
entrypoint_args() {  # CT_ARGS: job.container_args for this task
  local arg
  CT_ARGS=()
  for arg in ${CT_CONTAINER_ARGS[@]+"${CT_CONTAINER_ARGS[@]}"}; do CT_ARGS+=("$(expand_arg "$arg")"); done
}

# podman and docker read the task's variables from a file: none reaches the runtime's own environment.
task_env_file() {
  (umask 077 && printf '%s\n' "${CT_TASK_ENV[@]}" >"$CT_SCRATCH/.task.env")
  printf '%s' "$CT_SCRATCH/.task.env"
}

# The input's credentials the command gets (export_input_credentials), passed on by name alone: podman and docker
# (--env NAME, -e NAME) and enroot (--env NAME) take each value from their own environment. podman and docker keep
# it in the container's config while it runs (the OCI runtime reads it there), and remove it with the container.
CT_PASS=()
pass_by_name() {  # FLAG: CT_PASS=(FLAG NAME...)
  local name
  CT_PASS=()
  for name in ${CT_CREDENTIAL_NAMES[@]+"${CT_CREDENTIAL_NAMES[@]}"}; do CT_PASS+=("$1" "$name"); done
}

# debug: the shell's input is passed on (-i), and a terminal only when there is one (debug < commands.txt).
CT_DEBUG_TTY=(-i)
[[ ! -t 0 ]] || CT_DEBUG_TTY+=(-t)

# In the container, the command runs in bash when the image has it, else in its sh (alpine and busybox images).
# shellcheck disable=SC2016  # expanded by the container's sh
CT_SHELL_LAUNCH='if command -v bash >/dev/null 2>&1; then exec bash "$@"; fi; [ "${1:-}" != --rcfile ] || shift 2; exec sh "$@"'

in_podman() {  # SHELL_ARGS...: the shell in the image, or its entrypoint with CT_ARGS (ENTRY=1)
  local envfile cdi=() gpu run=(--entrypoint /bin/sh "${CT_CONTAINER#docker://}" -c "$CT_SHELL_LAUNCH" sh "$@")
  [[ -z $CT_WORKDIR ]] || run=(-w "$PWD" "${run[@]}")  # job.workdir's copy (in the scratch dir, mounted)
  [[ -z $CT_SHARED_DIR ]] || run=(-v "$CT_SHARED_DIR:$CT_SHARED_DIR:ro" "${run[@]}")
  envfile=$(task_env_file)
  pass_by_name --env
  [[ -z ${ENTRY:-} ]] || run=("${CT_CONTAINER#docker://}" ${CT_ARGS[@]+"${CT_ARGS[@]}"})
  if ((CT_GPUS > 0)); then  # CDI names (nvidia-ctk cdi generate): exactly the job's GPUs
    local jobs_gpus=${SLURM_JOB_GPUS:-}
    for gpu in ${jobs_gpus//,/ }; do cdi+=(--device "nvidia.com/gpu=$gpu"); done
    ((${#cdi[@]})) || cdi=(--device nvidia.com/gpu=all)
  fi
  ct_podman_retried run --rm --pull=never --network=host --env-file "$envfile" ${CT_DEBUG:+"${CT_DEBUG_TTY[@]}"} \
    ${CT_PASS[@]+"${CT_PASS[@]}"} ${cdi[@]+"${cdi[@]}"} -v "$CT_SCRATCH:$CT_SCRATCH" -v "$INPUT_DIR:$INPUT_DIR:ro" "${run[@]}"
}

# enroot: the .sqsh the node bootstrap imported once is unpacked for this task alone (`enroot create`, under a name
# of its own), started with the scratch dir mounted, then removed. Its dirs are in the scratch dir: the node's
# enroot.conf may name dirs this user cannot write (ParallelCluster installs only an example one), and `enroot start
# IMAGE` would need squashfuse, which the alinux2023 AMI lacks (cookbook: resources/enroot/enroot_alinux2023.rb).
# The rc script runs ARGV itself, as apptainer exec does, not the image's entrypoint; the root filesystem stays
# read-only like a SIF (no --rw: outputs go to the mounted scratch dir, /tmp is enroot's tmpfs). The nvidia hook reads
# NVIDIA_VISIBLE_DEVICES: the job's GPUs, or void (a CUDA image would otherwise ask for every GPU of the node).
in_enroot() {  # IMAGE ARGV...
  local image=$1 name="clustertools-${CT_JOB_ID}-$$" dir="$CT_SCRATCH/.enroot" code
  shift
  if [[ $image != /* || ! -r $image ]]; then
    log "enroot runs the image the node bootstrap imported (${CT_IMAGE:-none}), not $CT_CONTAINER: bootstrap the nodes again"
    return 126
  fi
  local -x ENROOT_DATA_PATH="$dir/data" ENROOT_RUNTIME_PATH="$dir/run" ENROOT_CACHE_PATH="$dir/cache" \
    NVIDIA_VISIBLE_DEVICES=void
  ((CT_GPUS > 0)) && NVIDIA_VISIBLE_DEVICES=${SLURM_JOB_GPUS:-${CUDA_VISIBLE_DEVICES:-all}}
  # shellcheck disable=SC2016  # the rc script's own "$@"
  mkdir -p "$dir" && printf 'cd %q 2>/dev/null\nexec "$@"\n' "$PWD" >"$dir/rc" && enroot create --name "$name" "$image" >&2 ||
    return 126
  local mounts=(--mount "$CT_SCRATCH:$CT_SCRATCH:none:x-create=dir,bind")
  [[ -z $CT_SHARED_DIR ]] || mounts+=(--mount "$CT_SHARED_DIR:$CT_SHARED_DIR:none:x-create=dir,bind,ro")
  pass_by_name --env
  enroot start --rc "$dir/rc" "${mounts[@]}" ${CT_PASS[@]+"${CT_PASS[@]}"} "$name" "$@"
  code=$?
  enroot remove --force "$name" >/dev/null 2>&1
  return "$code"
}

in_runtime() {  # SHELL_ARGS...: bash with these arguments, plainly or in the run's container
  # The runtime runs in this script's environment; the task's variables are set inside it (podman: --env-file;
  # the others: `env` as the last step before the shell): no column can steer the runtime or its image pull.
  local user=(env -- "${CT_TASK_ENV[@]}" bash "$@") ENTRY="" pair
  if [[ -n $CT_ENTRYPOINT && -z $CT_DEBUG && -n $CT_CONTAINER ]]; then
    ENTRY=1
    entrypoint_args
  fi
  # The image the bootstrap pulled once into shared storage, when it is this run's: no pull per task.
  local image=$CT_CONTAINER
  if [[ -n ${CT_IMAGE_FILE:-} && ${CT_IMAGE:-} == "$CT_CONTAINER" && -r $CT_IMAGE_FILE && ${CT_RUNTIME:-} =~ ^(apptainer|enroot)$ ]]; then
    image=$CT_IMAGE_FILE
  fi
  # GPUs: apptainer binds the driver (--nv; Slurm's CUDA_VISIBLE_DEVICES passes through); docker, outside the
  # job's device cgroup, is given exactly the job's GPUs (SLURM_JOB_GPUS: their indices on the node).
  local nv=() gpus=() devices=${SLURM_JOB_GPUS:-${CUDA_VISIBLE_DEVICES:-}}
  if ((CT_GPUS > 0)); then
    nv=(--nv)
    if [[ -n $devices ]]; then gpus=(--gpus "\"device=$devices\""); else gpus=(--gpus all); fi
  fi
  case ${CT_CONTAINER:+${CT_RUNTIME_USED:-}} in
    "") "${user[@]}" ;;
    podman) in_podman "$@" ;;
    enroot) in_enroot "$image" "${user[@]}" ;;
    apptainer | singularity)  # the container has this environment (no --cleanenv): the input's credentials too
      local binds=("${nv[@]}" --bind "$CT_SCRATCH" --bind "$INPUT_DIR:$INPUT_DIR:ro") prefixed=()
      [[ -z $CT_WORKDIR || -n $ENTRY ]] || binds+=(--pwd "$PWD")
      [[ -z $CT_SHARED_DIR ]] || binds+=(--bind "$CT_SHARED_DIR:$CT_SHARED_DIR:ro")
      if [[ -n $ENTRY ]]; then  # its runscript; the variables as APPTAINERENV_NAME, which set NAME inside only
        for pair in "${CT_TASK_ENV[@]}"; do prefixed+=("${CT_RUNTIME_USED^^}ENV_$pair"); done
        env "${prefixed[@]}" "$CT_RUNTIME_USED" run "${binds[@]}" "$image" ${CT_ARGS[@]+"${CT_ARGS[@]}"}
      else
        "$CT_RUNTIME_USED" exec "${binds[@]}" "$image" "${user[@]}"
      fi ;;
    docker)
      # The command, not the image's ENTRYPOINT in front of it: env is the entrypoint, as podman's is /bin/sh.
      local dock=(--entrypoint env "${CT_CONTAINER#docker://}" "${user[@]:1}")
      [[ -z $CT_WORKDIR ]] || dock=(-w "$PWD" "${dock[@]}")
      [[ -z $CT_SHARED_DIR ]] || dock=(-v "$CT_SHARED_DIR:$CT_SHARED_DIR:ro" "${dock[@]}")
      [[ -z $ENTRY ]] || dock=(--env-file "$(task_env_file)" "${CT_CONTAINER#docker://}" ${CT_ARGS[@]+"${CT_ARGS[@]}"})
      pass_by_name -e
      docker run --rm ${CT_DEBUG:+"${CT_DEBUG_TTY[@]}"} ${CT_PASS[@]+"${CT_PASS[@]}"} "${gpus[@]}" \
        -v "$CT_SCRATCH:$CT_SCRATCH" -v "$INPUT_DIR:$INPUT_DIR:ro" "${dock[@]}" ;;
  esac
}

# --- How each subject's output was made (included in wrapper.sh): provenance.json beside its outputs. ---
# shellcheck disable=SC2034  # these are read by provenance_json, by name
CT_VERSION=0.1.0 CT_SPEC_SHA256=abc123 CT_SUBJECTS_SHA256=b25baa78f751f2e3dfd1f9a569866c9172eb7a5759ef0381d1b5965a3c04d055 \
  CT_WORKDIR_SHA256='' CT_CPUS=1 CT_PARTITION='' \
  CT_CONTAINER_ARGS_JSON=null

# The task's peak memory in MiB, from its own cgroup (v1 memory.max_usage_in_bytes, v2 memory.peak); nothing
# when the task has no memory cgroup of its own (Slurm not constraining memory).
peak_memory_mb() {
  local path file bytes
  path=$(awk -F: '$2 ~ /(^|,)memory(,|$)/ {print $3; exit}' /proc/self/cgroup 2>/dev/null)
  if [[ -n $path ]]; then
    file=/sys/fs/cgroup/memory$path/memory.max_usage_in_bytes
  else
    path=$(awk -F: '$1 == 0 {print $3; exit}' /proc/self/cgroup 2>/dev/null)
    file=/sys/fs/cgroup$path/memory.peak
  fi
  [[ $path == */job_* || $path == */job_*/* ]] || return 0
  bytes=$(cat "$file" 2>/dev/null) || return 0
  [[ $bytes =~ ^[0-9]+$ ]] && echo $((bytes / 1048576))
}

# CPU seconds (user + system) of the processes this script waited for: the command and its children (a
# container run under a daemon, docker's or podman's conmon, is not counted). `times` runs in this shell.
cpu_seconds() {
  times >"$CT_SCRATCH/.times" 2>/dev/null || return 0
  awk 'NR == 2 { split($1, u, /[ms]/); split($2, s, /[ms]/); printf "%.1f", u[1] * 60 + u[2] + s[1] * 60 + s[2] }' \
    "$CT_SCRATCH/.times"
}

# The node's instance type: ParallelCluster (and the sandbox) list it among the node's Slurm features.
instance_type() {
  command -v scontrol >/dev/null 2>&1 || return 0
  timeout 10 scontrol show node -o "$CT_NODE" 2>/dev/null | tr ' ,=' '\n' |
    grep -m 1 -E '^[a-z][a-z0-9-]*[0-9][a-z0-9-]*\.[0-9]*[a-z0-9]+$' || true
}

# STATE EXIT_CODE: provenance.json in the subject's output dir, written by python3 from the environment
# (every value escaped as JSON; the command is the user's text).
provenance_json() {
  local -a values=() name
  for name in RUN_ID SUBJECT ATTEMPT CT_COMMAND CT_CONTAINER_ARGS_JSON CT_MEM CT_TIME CT_GPUS CT_CPUS CT_PARTITION \
    CT_NODE CT_JOB_ID CT_SPEC_SHA256 CT_SUBJECTS_SHA256 CT_WORKDIR_SHA256 CT_START CT_VERSION; do
    values+=("$name=${!name}")
  done
  clean_env "${values[@]}" CTP_STATE="$1" CTP_EXIT="${2:-}" CTP_PEAK="$CT_PEAK_MB" CTP_CPU="$CT_CPU_S" \
    CTP_ITYPE="$(instance_type)" CTP_END="$CT_END" CTP_WALL="$(($(date +%s) - CT_START_S))" \
    CTP_IMAGE="${CT_IMAGE_RAN:-$CT_CONTAINER}" CTP_RUNTIME="${CT_RUNTIME_USED:-}" python3 -c '
import json, os
e = os.environ
num = lambda v: float(v) if v not in ("", None) else None
print(json.dumps({
    "generated_by": {"name": "clustertools", "version": e["CT_VERSION"]},
    "run": e["RUN_ID"], "subject": e["SUBJECT"], "attempt": int(e["ATTEMPT"]),
    "state": e["CTP_STATE"], "exit_code": int(e["CTP_EXIT"]) if e["CTP_EXIT"].lstrip("-").isdigit() else None,
    "command": e["CT_COMMAND"] or None, "container_args": json.loads(e["CT_CONTAINER_ARGS_JSON"]),
    "container": {"image": e["CTP_IMAGE"], "runtime": e["CTP_RUNTIME"]} if e["CTP_IMAGE"] else None,
    "asked": {"cpus": int(e["CT_CPUS"]), "mem": e["CT_MEM"], "time": e["CT_TIME"], "gpus": int(e["CT_GPUS"]),
              "partition": e["CT_PARTITION"] or None},
    "used": {"peak_memory_mb": num(e["CTP_PEAK"]), "cpu_seconds": num(e["CTP_CPU"]), "wall_seconds": int(e["CTP_WALL"])},
    "node": {"name": e["CT_NODE"], "instance_type": e["CTP_ITYPE"] or None, "job_id": e["CT_JOB_ID"]},
    "spec_sha256": e["CT_SPEC_SHA256"], "subjects_sha256": e["CT_SUBJECTS_SHA256"],
    "workdir_sha256": e["CT_WORKDIR_SHA256"] or None, "start": e["CT_START"], "end": e["CTP_END"],
}, indent=2))'
}

# The command's working directory: a copy of job.workdir in the scratch dir (its files may be written), else
# where Slurm started the task.
enter_workdir() {
  [[ -n $CT_WORKDIR ]] || return 0
  mkdir -p "$CT_SCRATCH/work" && cp -R "$CT_RUN_DIR/workdir/." "$CT_SCRATCH/work/" && cd "$CT_SCRATCH/work" || return 1
}

run_command() {
  enter_workdir || { echo "clustertools: copying job.workdir into $CT_SCRATCH/work failed" >&2; return 97; }
  export_input_credentials  # run in the background subshell: they go with it
  in_runtime -c "$CT_COMMAND"
}

# How many processes the kernel has killed for memory in this task's job (its cgroups, v1 or v2, up to
# the job_* level Slurm's task/cgroup makes); 0 when the task has no such cgroup (no memory limit).
oom_kills() {
  local path dir file most=0 n
  path=$(awk -F: '$2 ~ /(^|,)memory(,|$)/ {print $3; exit}' /proc/self/cgroup 2>/dev/null)
  if [[ -n $path ]]; then
    dir=/sys/fs/cgroup/memory$path file=memory.oom_control
  else
    path=$(awk -F: '$1 == 0 {print $3; exit}' /proc/self/cgroup 2>/dev/null)
    dir=/sys/fs/cgroup$path file=memory.events
  fi
  [[ $path == */job_* || $path == */job_*/* ]] || { echo 0; return; }
  while [[ -n $path && $path != / ]]; do
    n=$(awk '$1 == "oom_kill" {print $2; exit}' "$dir/$file" 2>/dev/null)
    ((${n:-0} > most)) && most=$n
    [[ ${path##*/} == job_* ]] && break
    path=${path%/*} dir=${dir%/*}
  done
  echo "$most"
}

if [[ -n $CT_DEBUG ]]; then
  # The command comes first, and is the shell's last history line: arrow-up runs it again.
  if [[ -n $CT_ENTRYPOINT ]]; then
    entrypoint_args
    printf 'clustertools debug: the task ran the image'"'"'s entrypoint with:%s\n' "$(printf ' %q' ${CT_ARGS[@]+"${CT_ARGS[@]}"})"
  else
    printf 'clustertools debug: the command the task ran: %s\n' "$CT_COMMAND"
  fi
  printf 'clustertools debug: %s of run %s, attempt %s, on %s (job %s)\n' "$SUBJECT" "$RUN_ID" "$ATTEMPT" "$CT_NODE" "$CT_JOB_ID"
  trap 'rm -rf "$CT_SCRATCH"' EXIT
  trap 'exit 129' HUP
  trap 'exit 143' TERM
  if [[ -n $CT_INPUT_SECRET_TO_TASK ]] && ! read_input_credentials; then
    echo "clustertools debug: reading the input's credentials (secret $CT_INPUT_SECRET) failed: the shell opens anyway" >&2
  fi
  if [[ -n "$CT_INPUT_URL" || -n $CT_SUBJECT_INPUT ]]; then
    if [[ -z $CT_AWS ]]; then
      echo "clustertools debug: the aws CLI is not on this node: no input staged" >&2
    elif ! why=$(stage_input); then
      echo "clustertools debug: $why: the shell opens anyway" >&2
      cat "$CT_LOG.err" >&2 2>/dev/null
    fi
  fi
  if why=$(fetch_shared_inputs); then
    [[ -z $CT_SHARED_DIR ]] || CT_TASK_ENV+=("SHARED_DIR=$CT_SHARED_DIR")
  else
    echo "clustertools debug: $why: the shell opens anyway" >&2
  fi
  printf '%s\n' "$CT_COMMAND" >"$CT_SCRATCH/.bash_history"
  {
    echo '[[ -f ~/.bashrc ]] && . ~/.bashrc'
    printf 'HISTFILE=%q\n' "$CT_SCRATCH/.bash_history"
    echo "PS1='(debug \${SUBJECT}) '\"\$PS1\""
  } >"$CT_SCRATCH/.bashrc"
  if ! prepare_container; then
    echo "clustertools debug: $CT_WHY" >&2
    exit 125
  fi
  echo "clustertools debug: SUBJECT=$SUBJECT INPUT_DIR=$INPUT_DIR OUTPUT_DIR=$OUTPUT_DIR${CT_IMAGE_RAN:+ in $CT_IMAGE_RAN}; exit releases the node"
  enter_workdir || echo "clustertools debug: copying job.workdir failed: the shell opens where it is" >&2
  (export_input_credentials && in_runtime --rcfile "$CT_SCRATCH/.bashrc" -i)
  exit $?
fi

# scancel and the time limit send SIGTERM: the subject is recorded CANCELLED, or TIMEOUT when its time is up
# (Slurm checks the limit every 30 s or so, so a TERM then comes at or after it), not lost.
# shellcheck disable=SC2317  # run by the trap
on_term() {
  trap 'CT_STOP=1' TERM INT  # a second TERM (scancel sends more) must not cut the final record short
  CT_STOP=1
  local ran=$(($(date +%s) - CT_START_S))
  if ((CT_TIME_S > 0 && ran + 10 >= CT_TIME_S)); then
    finish TIMEOUT 143 "killed at its time limit (--time $CT_TIME) after ${ran} s: resubmit it with more time (--time)"
  else
    finish CANCELLED 143 "terminated by Slurm (scancel)"
  fi
  exit 143
}
trap on_term TERM INT

record RUNNING
log "attempt $ATTEMPT on $CT_NODE, job $CT_JOB_ID"

if [[ -z $CT_AWS ]]; then
  finish FAILED 127 "the aws CLI is not on this node"
  exit 127
fi

if [[ -n $CT_INPUT_SECRET_TO_TASK ]] && ! read_input_credentials; then  # once, for staging and the command
  finish FAILED 97 "reading the input's credentials (secret $CT_INPUT_SECRET) failed"
  exit 97
fi
if ! why=$(stage_input) || ! why=$(fetch_shared_inputs); then
  finish FAILED 97 "$why"
  exit 97
fi
[[ -z $CT_SHARED_DIR ]] || CT_TASK_ENV+=("SHARED_DIR=$CT_SHARED_DIR")

if ! prepare_container 2>>"$CT_LOG.err"; then
  finish FAILED 125 "$CT_WHY"
  exit 125
fi

CT_EXIT=0
oom_before=$(oom_kills)
run_command >"$CT_LOG.out" 2>"$CT_LOG.err" </dev/null &
wait $!
code=$?
if [[ $code -eq 0 ]]; then
  finish SUCCEEDED 0
else
  CT_EXIT=$code
  if (($(oom_kills) > oom_before)); then
    finish OOM "$code" "out of memory: the command used more than the task's memory (--mem $CT_MEM) and was killed"
  else
    finish FAILED "$code" "$(last_stderr_line)"
  fi
fi
exit "$CT_EXIT"

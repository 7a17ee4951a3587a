#!/usr/bin/env bash
# clustertools node bootstrap: the ParallelCluster OnNodeConfigured action. It runs as root on the
# head node and on every compute node. `clustertools up` uploads it as
# s3://<bucket>/clustertools/<cluster>/bootstrap/on-node-configured.sh and passes its Args.
#
# Head node: container runtime (per node), Miniforge into shared storage, the project's conda
# environment solved once into shared storage, the container image pulled once into shared storage,
# and <shared>/clustertools/bootstrap.env that tells the run wrapper where everything is.
# Compute nodes: container runtime (a node-local package, so per node when the AMI lacks it); for the
# rest they only CHECK that the head node's work is there (no conda solve, no pull per node).
# The runtime is chosen per OS (runtimes_of_os, the same table as cluster_tools/model/nodes/container_runtimes.py): enroot where
# ParallelCluster's AMIs ship it, apptainer only from its release package checked against a pinned sha256,
# podman (rootless, as the login user) from the OS's own package.
#
# Every step logs with a UTC timestamp to the log file and to syslog (tag clustertools-bootstrap);
# a failure names the step ("step NAME failed (exit N)") and exits non-zero. Each step leaves a marker
# keyed by its inputs under the state dir: a second run with the same inputs says "already done".
#
# No credentials are written anywhere: downloads use the node's role (aws) or plain https; URL query
# strings (e.g. pre-signed URLs) are redacted from the log, and markers hold only hashes.
#
# Test hooks (environment): CT_OS_RELEASE (default /etc/os-release), CT_CFNCONFIG (default
# /etc/parallelcluster/cfnconfig), CT_STATE_DIR (default /var/lib/clustertools/bootstrap).
# Every system command (dnf, apt-get, curl, aws, apptainer, docker, ...) is called through PATH.
set -euo pipefail
umask 022

readonly SYSLOG_TAG=clustertools-bootstrap

PROJECT="" CLUSTER="" BOOTSTRAP_PREFIX="" RUNTIME=auto SHARED_DIR="" MINIFORGE_URL="" MINIFORGE_SHA256=""
APPTAINER_VERSION="" APPTAINER_SHA256=""
ENV_FILE="" IMAGE="" LOG_FILE=/var/log/clustertools-bootstrap.log DRY_RUN=0
AUTOSTOP_MINUTES="" AUTOSTOP_ACTION=stop AUTOSTOP_ROLE="" AUTOSTOP_DIR=${CT_AUTOSTOP_DIR:-/var/lib/clustertools/autostop}
STATE_DIR=${CT_STATE_DIR:-/var/lib/clustertools/bootstrap}
OS_RELEASE=${CT_OS_RELEASE:-/etc/os-release}
CFNCONFIG=${CT_CFNCONFIG:-/etc/parallelcluster/cfnconfig}
OS_ID="" OS_VERSION="" OS_FAMILY="" NODE_ROLE="" LOG_READY=0 WORK_TMP="" CT_ROOT="" STEPS_RUN=0

usage() {
    cat <<'EOF'
usage: on-node-configured.sh --project P --cluster C --bootstrap-prefix s3://BUCKET/clustertools/C/bootstrap/
         [--runtime auto|enroot|docker|apptainer|none] [--apptainer-version X.Y.Z --apptainer-sha256 HEX]
         [--shared-dir DIR] [--miniforge-url https://...|s3://...]
         [--miniforge-sha256 HEX] [--env-file NAME] [--image REF] [--log FILE] [--dry-run]
         [--autostop-minutes N [--autostop-action stop|down] [--autostop-down-role-arn ARN]]
EOF
}

usage_error() {
    printf 'on-node-configured.sh: %s\n' "$1" >&2
    usage >&2
    exit 2
}

# Pre-signed URLs carry signatures in their query string: never write those to the log.
redact() {
    printf '%s' "$*" | sed -E 's#((https?|s3)://[^ ?]*)\?[^ ]*#\1?<redacted>#g'
}

log() {
    local line
    line="$(date -u +%Y-%m-%dT%H:%M:%SZ) ${SYSLOG_TAG}[${CLUSTER:-?}/${NODE_ROLE:-?}]: $(redact "$*")"
    printf '%s\n' "$line"
    if ((LOG_READY)); then
        printf '%s\n' "$line" >>"$LOG_FILE"
        if command -v logger >/dev/null 2>&1; then
            logger -t "$SYSLOG_TAG" -- "$(redact "$*")" 2>/dev/null || true
        fi
    fi
}

die() {
    log "error: $*"
    exit 1
}

on_exit() {
    local rc=$?
    if ((LOG_READY)); then
        if ((rc != 0)); then
            log "bootstrap FAILED (exit $rc)"
        elif ((STEPS_RUN == 0)); then
            log "bootstrap finished OK: nothing to do (every step already done)"
        else
            log "bootstrap finished OK ($STEPS_RUN step(s) run)"
        fi
    fi
    return "$rc"
}

marker_path() { printf '%s/steps/%s.done' "$STATE_DIR" "$1"; }

# run_named NAME CMD ARGS...: CMD's output to the log too; its failure is named and ends the script.
run_named() {
    local name=$1 rc
    shift
    set +e
    (set -e; "$@") 2>&1 | tee -a "$LOG_FILE"
    rc=${PIPESTATUS[0]}
    set -e
    if ((rc != 0)); then
        log "step $name failed (exit $rc)"
        exit "$rc"
    fi
}

# step NAME [--key TEXT] [--creates PATH] CMD ARGS...
# Runs CMD once per distinct key (default: the command line itself). With the same key and, when
# given, PATH still present, it only says "already done". A failure names the step and exits.
step() {
    local name=$1 key="" creates=""
    shift
    while (($#)); do
        case $1 in
            --key) key=$2; shift 2 ;;
            --creates) creates=$2; shift 2 ;;
            *) break ;;
        esac
    done
    [[ -n $key ]] || key=$(printf '%q ' "$@")
    local digest marker
    digest=$(printf '%s' "$key" | sha256sum | cut -d' ' -f1)
    marker=$(marker_path "$name")
    if [[ -f $marker && "$(<"$marker")" == "$digest" ]] && [[ -z $creates || -e $creates ]]; then
        log "step $name: already done (inputs unchanged)"
        return 0
    fi
    if ((DRY_RUN)); then
        log "step $name: would run: $(printf '%q ' "$@")"
        return 0
    fi
    log "step $name: start"
    STEPS_RUN=$((STEPS_RUN + 1))
    run_named "$name" "$@"
    mkdir -p "$STATE_DIR/steps"
    printf '%s\n' "$digest" >"$marker.tmp"
    mv -f "$marker.tmp" "$marker"
    log "step $name: done"
}

# check NAME CMD ARGS...: a read-only check, run every time (no marker); failure is named like a step.
check() {
    local name=$1
    shift
    if ((DRY_RUN)); then
        log "check $name: would run: $(printf '%q ' "$@")"
        return 0
    fi
    run_named "$name" "$@"
    log "check $name: ok"
}

parse_args() {
    while (($#)); do
        local opt=$1 val=""
        if [[ $opt == --*=* ]]; then
            val=${opt#*=}
            opt=${opt%%=*}
            set -- "$opt" "$val" "${@:2}"
        fi
        case $opt in
            --dry-run) DRY_RUN=1; shift; continue ;;
            -h | --help) usage; exit 0 ;;
            --project | --cluster | --bootstrap-prefix | --runtime | --shared-dir | --miniforge-url | \
                --miniforge-sha256 | --env-file | --image | --log | --autostop-minutes | --autostop-action | \
                --autostop-down-role-arn | --apptainer-version | --apptainer-sha256)
                (($# >= 2)) || usage_error "$opt needs a value"
                val=$2
                shift 2
                ;;
            *) usage_error "unknown argument: $(redact "$opt")" ;;
        esac
        case $opt in
            --project) PROJECT=$val ;;
            --cluster) CLUSTER=$val ;;
            --bootstrap-prefix) BOOTSTRAP_PREFIX=$val ;;
            --runtime) RUNTIME=$val ;;
            --shared-dir) SHARED_DIR=$val ;;
            --miniforge-url) MINIFORGE_URL=$val ;;
            --miniforge-sha256) MINIFORGE_SHA256=$val ;;
            --env-file) ENV_FILE=$val ;;
            --image) IMAGE=$val ;;
            --log) LOG_FILE=$val ;;
            --autostop-minutes) AUTOSTOP_MINUTES=$val ;;
            --autostop-action) AUTOSTOP_ACTION=$val ;;
            --autostop-down-role-arn) AUTOSTOP_ROLE=$val ;;
            --apptainer-version) APPTAINER_VERSION=$val ;;
            --apptainer-sha256) APPTAINER_SHA256=${val,,} ;;
        esac
    done
    [[ -n $PROJECT ]] || usage_error "--project is required"
    [[ -n $CLUSTER ]] || usage_error "--cluster is required"
    [[ -n $BOOTSTRAP_PREFIX ]] || usage_error "--bootstrap-prefix is required"
    case $RUNTIME in auto | apptainer | docker | enroot | podman | none) ;; *) usage_error "--runtime must be auto, enroot, docker, apptainer, podman or none, not '$RUNTIME'" ;; esac
    if [[ -n $APPTAINER_VERSION$APPTAINER_SHA256 ]]; then
        # Both become part of a download URL and of the check that the download is the package pinned.
        [[ $APPTAINER_VERSION =~ ^[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$ ]] || usage_error "--apptainer-version must be a release like 1.4.5"
        [[ $APPTAINER_SHA256 =~ ^[0-9a-f]{64}$ ]] || usage_error "--apptainer-sha256 must be 64 hex digits"
    fi
    if [[ -n $MINIFORGE_SHA256 ]]; then
        MINIFORGE_SHA256=${MINIFORGE_SHA256,,}
        [[ $MINIFORGE_SHA256 =~ ^[0-9a-f]{64}$ ]] || usage_error "--miniforge-sha256 must be 64 hex digits"
    fi
    if [[ -n $MINIFORGE_URL ]]; then
        case $MINIFORGE_URL in https://* | s3://* | file://*) ;; *) usage_error "--miniforge-url must be https:// or s3://" ;; esac
        # An installer that runs as root on every cluster is never taken on trust.
        [[ -n $MINIFORGE_SHA256 ]] || usage_error "--miniforge-url needs --miniforge-sha256"
    fi
    if [[ -n $ENV_FILE ]]; then
        [[ $ENV_FILE != /* && $ENV_FILE != *..* ]] || usage_error "--env-file is a name under the bootstrap prefix, not '$ENV_FILE'"
    fi
    if [[ -n $AUTOSTOP_MINUTES ]]; then
        if [[ ! $AUTOSTOP_MINUTES =~ ^[1-9][0-9]{0,4}$ ]] || ((AUTOSTOP_MINUTES > 10080)); then
            usage_error "--autostop-minutes must be 1..10080, not '$AUTOSTOP_MINUTES'"
        fi
        [[ $AUTOSTOP_ACTION == stop || $AUTOSTOP_ACTION == down ]] || usage_error "--autostop-action must be stop or down"
        [[ -z $AUTOSTOP_ROLE || $AUTOSTOP_ROLE =~ ^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]+$ ]] ||
            usage_error "--autostop-down-role-arn must be an IAM role ARN"
        [[ $AUTOSTOP_ACTION != down || -n $AUTOSTOP_ROLE ]] || usage_error "--autostop-action down needs --autostop-down-role-arn"
    fi
    if [[ -n $ENV_FILE && -z $MINIFORGE_URL ]]; then
        usage_error "--env-file needs --miniforge-url and --miniforge-sha256 (an installer verified by its checksum)"
    fi
    if [[ -z $SHARED_DIR ]]; then
        if [[ -d /shared ]]; then SHARED_DIR=/shared; else SHARED_DIR=/home; fi
    fi
    BOOTSTRAP_PREFIX=${BOOTSTRAP_PREFIX%/}/
}

os_release_value() {
    # Read KEY=value without sourcing the file (it is data, not code).
    sed -nE "s/^$1=[\"']?([^\"']*)[\"']?\$/\\1/p" "$OS_RELEASE" | head -n 1
}

detect_os() {
    [[ -r $OS_RELEASE ]] || die "cannot read $OS_RELEASE: unknown operating system"
    OS_ID=$(os_release_value ID)
    OS_VERSION=$(os_release_value VERSION_ID)
    case "$OS_ID:$OS_VERSION" in
        amzn:2023*) OS_FAMILY=dnf ;;
        ubuntu:22.04 | ubuntu:24.04) OS_FAMILY=apt ;;
        rhel:8 | rhel:8.* | rocky:8 | rocky:8.* | rhel:9 | rhel:9.* | rocky:9 | rocky:9.*) OS_FAMILY=dnf ;;
        # Not a ParallelCluster OS: Debian 12 is the sandbox node this script is tested on.
        debian:12 | debian:12.*) OS_FAMILY=apt ;;
        *) die "unsupported operating system: ID=${OS_ID:-?} VERSION_ID=${OS_VERSION:-?} (from $OS_RELEASE); supported: Amazon Linux 2023, Ubuntu 22.04/24.04, RHEL/Rocky 8/9 (and Debian 12 for tests)" ;;
    esac
}

# The runtimes this OS can have, its default first (cluster_tools/model/nodes/container_runtimes.py says why, with its sources):
# enroot where ParallelCluster's AMIs ship it (aws-parallelcluster-cookbook,
# cookbooks/aws-parallelcluster-platform/resources/enroot/: no official Rocky AMI has it); apptainer where its
# release package's dependencies come from signed repositories (Ubuntu's; Rocky's with EPEL).
runtimes_of_os() {
    case $OS_ID in
        amzn) echo "enroot docker" ;;
        rhel) echo "enroot docker podman" ;;
        ubuntu) echo "enroot docker apptainer podman" ;;
        rocky) echo "docker apptainer podman" ;;
        debian) echo "docker apptainer enroot podman" ;;
    esac
}

choose_runtime() {
    local allowed
    allowed=$(runtimes_of_os)
    [[ $RUNTIME != auto ]] || RUNTIME=${allowed%% *}
    [[ $RUNTIME == none || " $allowed " == *" $RUNTIME "* ]] ||
        die "runtime $RUNTIME cannot run on $OS_ID $OS_VERSION: use ${allowed// / or } (see cluster_tools/model/nodes/container_runtimes.py)"
}

detect_role() {
    [[ -r $CFNCONFIG ]] || die "cannot tell the node role: $CFNCONFIG is missing (not a ParallelCluster node?)"
    local type
    type=$(sed -nE 's/^cfn_node_type=["]?([A-Za-z]+)["]?$/\1/p' "$CFNCONFIG" | head -n 1)
    case $type in
        HeadNode) NODE_ROLE="head" ;;
        ComputeFleet) NODE_ROLE=compute ;;
        *) die "cannot tell the node role: cfn_node_type='${type}' in $CFNCONFIG (expected HeadNode or ComputeFleet)" ;;
    esac
}

# fetch URL DEST: https:// (curl), s3:// (aws, with the node's role), file:// or a path (tests).
fetch() {
    local url=$1 dest=$2
    case $url in
        https://*) curl -fsSL --retry 3 --retry-delay 2 -o "$dest" "$url" ;;
        s3://*) aws s3 cp --only-show-errors "$url" "$dest" ;;
        file://*) cp -- "${url#file://}" "$dest" ;;
        /*) cp -- "$url" "$dest" ;;
        *) echo "unsupported URL: $(redact "$url") (use https:// or s3://)" >&2; return 1 ;;
    esac
}

# Called inside a step (a subshell): the subshell's own EXIT trap removes the directory.
new_tmp() {
    mkdir -p "$STATE_DIR"
    WORK_TMP=$(mktemp -d "$STATE_DIR/tmp.XXXXXX")
    trap 'rm -rf -- "$WORK_TMP"' EXIT
}

pkg_install() {
    case $OS_FAMILY in
        dnf) dnf install -y "$@" ;;
        apt) DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" ;;
    esac
}

# Apptainer's release package (x86_64 only), pinned: the OS's package manager installs it with its dependencies.
install_apptainer() {
    if command -v apptainer >/dev/null 2>&1; then
        echo "apptainer already installed: $(command -v apptainer)"
        return 0
    fi
    [[ -n $APPTAINER_VERSION ]] || { echo "apptainer is missing and no --apptainer-version/--apptainer-sha256 pin its release package: nothing is downloaded unverified" >&2; return 1; }
    local arch file
    arch=$(uname -m)
    [[ $arch == x86_64 ]] || { echo "apptainer has release packages for x86_64 only, not $arch: use enroot or docker" >&2; return 1; }
    case $OS_FAMILY in
        apt) file="apptainer_${APPTAINER_VERSION}_amd64.deb" ;;
        dnf) file="apptainer-${APPTAINER_VERSION}-1.x86_64.rpm" ;;
    esac
    local url="https://github.com/apptainer/apptainer/releases/download/v${APPTAINER_VERSION}/$file"
    new_tmp
    fetch "$url" "$WORK_TMP/$file"
    verify_sha256 "$WORK_TMP/$file" "$APPTAINER_SHA256" "$url"
    # Its dependencies (fakeroot, uidmap) from the OS's signed repositories; Rocky's extras carry epel-release.
    case $OS_ID in
        rocky) dnf install -y epel-release ;;
        ubuntu | debian) apt-get update -q ;;
    esac
    pkg_install "$WORK_TMP/$file"
    command -v apptainer >/dev/null 2>&1 || { echo "apptainer is still not on PATH after the install" >&2; return 1; }
}

install_docker() {
    if ! command -v docker >/dev/null 2>&1; then
        case $OS_ID in
            amzn) dnf install -y docker ;;
            rhel | rocky)
                dnf config-manager --add-repo https://download.docker.com/linux/centos/docker-ce.repo
                dnf install -y docker-ce docker-ce-cli containerd.io
                ;;
            ubuntu | debian) apt-get update -q && pkg_install docker.io ;;
        esac
    else
        echo "docker already installed: $(command -v docker)"
    fi
    if command -v systemctl >/dev/null 2>&1; then systemctl enable --now docker; fi
    command -v docker >/dev/null 2>&1 || { echo "docker is still not on PATH after the install" >&2; return 1; }
    # Tasks run as the login user, who talks to dockerd through its socket: the docker group's.
    local user
    user=$(login_user)
    if id -u "$user" >/dev/null 2>&1; then usermod -aG docker "$user"; else echo "no user $user here: not added to the docker group"; fi
}

# podman: the OS's package, run rootless by the login user (no daemon; a task's container stays in the task's
# cgroups). Rootless podman maps the container's users onto the login user's subordinate ids, which useradd
# gives where login.defs asks for them: the user is given a range here when it has none.
install_podman() {
    if ! command -v podman >/dev/null 2>&1; then
        case $OS_FAMILY in
            apt) apt-get update -q && pkg_install podman uidmap ;;
            dnf) pkg_install podman ;;
        esac
    else
        echo "podman already installed: $(command -v podman)"
    fi
    command -v podman >/dev/null 2>&1 || { echo "podman is still not on PATH after the install" >&2; return 1; }
    local user
    user=$(login_user)
    if id -u "$user" >/dev/null 2>&1; then ensure_subids "$user"; else echo "no user $user here: no subordinate ids given"; fi
}

ensure_subids() {  # USER: 65536 subordinate uids and gids after every range already given, unless it has some
    local user=$1 file start
    for file in /etc/subuid /etc/subgid; do
        touch "$file"
        if grep -q "^$user:" "$file"; then
            echo "$user has subordinate ids in $file"
            continue
        fi
        start=$(awk -F: 'BEGIN { top = 100000 } $3 ~ /^[0-9]+$/ && $2 + $3 > top { top = $2 + $3 } END { print top }' "$file")
        printf '%s:%s:65536\n' "$user" "$start" >>"$file"
        echo "gave $user subordinate ids $start-$((start + 65535)) in $file"
    done
}

# The cluster's login user: cfnconfig's cfn_cluster_user, else the OS's default (ec2-user, ubuntu, rocky).
login_user() {
    local user
    user=$(sed -nE 's/^cfn_cluster_user=["]?([a-z_][a-z0-9_-]{0,31})["]?$/\1/p' "$CFNCONFIG" | head -n 1)
    case $user:$OS_ID in
        :ubuntu | :rocky) echo "$OS_ID" ;;
        :*) echo ec2-user ;;
        *) echo "$user" ;;
    esac
}

need_command() {
    command -v "$1" >/dev/null 2>&1 || { echo "$1 is not on PATH: $2" >&2; return 1; }
    echo "$1: $(command -v "$1")"
}

# verify_sha256 FILE HEX URL: nothing downloaded is installed unless it is the file pinned.
verify_sha256() {
    local actual
    actual=$(sha256sum "$1" | cut -d' ' -f1)
    if [[ $actual != "$2" ]]; then
        echo "sha256 mismatch for $(redact "$3"): expected $2, got $actual; nothing installed" >&2
        return 1
    fi
    echo "sha256 verified: $actual"
}

install_miniforge() {
    local url=$1 sha=$2 prefix=$3
    new_tmp
    fetch "$url" "$WORK_TMP/installer.sh"
    verify_sha256 "$WORK_TMP/installer.sh" "$sha" "$url"
    mkdir -p "$(dirname "$prefix")"
    local update=()
    [[ -d $prefix ]] && update=(-u)
    bash "$WORK_TMP/installer.sh" -b "${update[@]}" -p "$prefix"
    [[ -x $prefix/bin/conda ]] || { echo "the installer finished but $prefix/bin/conda is missing" >&2; return 1; }
}

solve_env() {
    local conda=$1 file=$2 envdir=$3
    mkdir -p "$(dirname "$envdir")"
    # The directory is this file's alone (named by its sha256): one without conda-meta is what an interrupted
    # solve left, so it is solved again from nothing. conda environments cannot be moved once made.
    [[ -d $envdir/conda-meta ]] || rm -rf -- "$envdir"
    if [[ -d $envdir ]]; then
        "$conda" env update -p "$envdir" -f "$file" --prune
    else
        "$conda" env create -p "$envdir" -f "$file"
    fi
    [[ -d $envdir/conda-meta ]] || { echo "conda finished but $envdir/conda-meta is missing" >&2; return 1; }
}

# Amazon ECR: the node's instance role logs in (`aws ecr get-login-password`, as AWS documents), and the 12-hour
# token reaches the runtime through a pipe or the runtime's own environment: never a file, never a command line.
ECR_HOST_RE='^[0-9]{12}\.dkr\.ecr(-fips)?\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$'
ecr_registry() {  # REF: prints "HOST REGION" when REF's registry is Amazon ECR
    local ref=${1#docker://}
    [[ $ref == */* && ${ref%%/*} =~ $ECR_HOST_RE ]] || return 1
    printf '%s %s' "${ref%%/*}" "${BASH_REMATCH[2]}"
}

ecr_auth_json() {  # HOST REGION: an auth file (containers-auth.json, docker's config.json) for that registry alone
    local token
    token=$(aws ecr get-login-password --region "$2") || return 1
    printf '{"auths":{"%s":{"auth":"%s"}}}' "$1" "$(printf 'AWS:%s' "$token" | base64 -w0)"
}

pull_apptainer() {
    local ref=$1 sif=$2 src=$1 ecr host region
    [[ $src == *://* ]] || src="docker://$src"
    mkdir -p "$(dirname "$sif")"
    local part
    part="$(dirname "$sif")/.partial-$(basename "$sif")"
    rm -f -- "$part"
    if ecr=$(ecr_registry "$ref"); then
        read -r host region <<<"$ecr"
        APPTAINER_DOCKER_USERNAME=AWS APPTAINER_DOCKER_PASSWORD=$(aws ecr get-login-password --region "$region") \
            apptainer pull --force "$part" "$src"
    else
        apptainer pull --force "$part" "$src"
    fi
    mv -f -- "$part" "$sif"
    echo "pulled $ref into $sif"
}

pull_docker() {
    local ref=$1 tar=$2 ecr host region
    mkdir -p "$(dirname "$tar")"
    if ecr=$(ecr_registry "$ref"); then  # a config dir whose config.json is a pipe: docker reads it once
        read -r host region <<<"$ecr"
        new_tmp
        ln -s /dev/fd/3 "$WORK_TMP/config.json"
        docker --config "$WORK_TMP" pull "${ref#docker://}" 3< <(ecr_auth_json "$host" "$region")
    else
        docker pull "$ref"
    fi
    docker save -o "$tar.partial" "$ref"
    mv -f -- "$tar.partial" "$tar"
}

# podman: the head node pulls once (as root) and keeps an OCI archive in shared storage, its digest beside it;
# each node's first task loads it into the login user's node-local store (the run wrapper): no pull per task.
pull_podman() {
    local ref=${1#docker://} archive=$2 ecr host region
    mkdir -p "$(dirname "$archive")"
    if ecr=$(ecr_registry "$ref"); then
        read -r host region <<<"$ecr"
        podman pull --authfile <(ecr_auth_json "$host" "$region") "$ref"
    else
        podman pull "$ref"
    fi
    rm -f -- "$archive.partial"
    podman save --format oci-archive -o "$archive.partial" "$ref"
    podman image inspect --format '{{.Digest}}' "$ref" >"$archive.digest"
    mv -f -- "$archive.partial" "$archive"
    echo "pulled $ref ($(<"$archive.digest")) into $archive"
}

# The digest of what a node runs for IMAGE: the registry's manifest digest where the runtime keeps it (podman,
# docker), else the sha256 of the image file itself (apptainer's SIF, enroot's squashfs).
image_digest() {  # RUNTIME REF FILE
    case $1 in
        podman) cat -- "$3.digest" 2>/dev/null ;;
        docker) docker image inspect --format '{{index .RepoDigests 0}}' "${2#docker://}" 2>/dev/null | sed 's/^.*@//' ;;
        *) [[ ! -f $3 ]] || printf 'file-sha256:%s' "$(sha256sum "$3" | cut -d' ' -f1)" ;;
    esac
}

# enroot 3.4 (ParallelCluster's) takes docker://[REGISTRY#]IMAGE[:TAG], not docker://REGISTRY/IMAGE[@DIGEST]:
# the registry (a first part with '.' or ':', or localhost) goes before '#', a digest where a tag goes.
enroot_uri() {
    local ref=${1#docker://} first
    if [[ $ref == *@sha256:* ]]; then  # NAME[:TAG]@sha256:HEX -> NAME:sha256:HEX (enroot asks for it as a tag)
        first=${ref%%@*}
        [[ ${first##*/} != *:* ]] || first=${first%:*}
        ref="$first:${ref#*@}"
    fi
    first=${ref%%/*}
    if [[ $ref == */* && ($first == *.* || $first == *:* || $first == localhost) ]]; then ref="$first#${ref#*/}"; fi
    printf 'docker://%s' "$ref"
}

pull_enroot() {
    local ref=$1 sqsh=$2 src=$1 ecr host region
    [[ $src == *://* && $src != docker://* ]] || src=$(enroot_uri "$src")
    mkdir -p "$(dirname "$sqsh")"
    rm -f -- "$sqsh.partial"
    if ecr=$(ecr_registry "$ref"); then
        # enroot's own way (its docs, import.md): .credentials names the command that prints the password,
        # which enroot runs at the import; the file holds no secret.
        read -r host region <<<"$ecr"
        new_tmp
        # shellcheck disable=SC2016  # enroot expands it, not this script
        printf 'machine %s login AWS password $(aws ecr get-login-password --region %s)\n' "$host" "$region" \
            >"$WORK_TMP/.credentials"
        ENROOT_CONFIG_PATH=$WORK_TMP enroot import -o "$sqsh.partial" "$src"
    else
        enroot import -o "$sqsh.partial" "$src"
    fi
    mv -f -- "$sqsh.partial" "$sqsh"
}

# The autostop scripts from the bootstrap prefix, then armed: the cluster and region come from cfnconfig.
install_autostop() {
    local name
    mkdir -p "$AUTOSTOP_DIR"
    for name in autostop.sh autostop-configure.sh; do
        fetch "${BOOTSTRAP_PREFIX}$name" "$AUTOSTOP_DIR/$name.partial"
        chmod 0755 "$AUTOSTOP_DIR/$name.partial"
        mv -f -- "$AUTOSTOP_DIR/$name.partial" "$AUTOSTOP_DIR/$name"
    done
    local -a role=()
    [[ -z $AUTOSTOP_ROLE ]] || role=(--down-role-arn "$AUTOSTOP_ROLE")
    bash "$AUTOSTOP_DIR/autostop.sh" --configure --state-dir "$AUTOSTOP_DIR" --minutes "$AUTOSTOP_MINUTES" \
        --action "$AUTOSTOP_ACTION" --cluster "$CLUSTER" --log "$(dirname "$LOG_FILE")/clustertools-autostop.log" \
        "${role[@]}"
}

need_file() {
    [[ -e $1 ]] || { echo "missing $1: $2" >&2; return 1; }
    echo "found $1"
}

# node_env_value KEY FILE: KEY's value in a bootstrap.env the head node wrote (empty when absent).
node_env_value() {
    [[ -r $2 ]] || return 0
    (
        # shellcheck source=/dev/null
        . "$2" >/dev/null 2>&1
        printf '%s' "${!1:-}"
    )
}

write_node_env() {
    local dest=$1
    shift
    mkdir -p "$(dirname "$dest")"
    : >"$dest.partial"
    local pair
    for pair in "$@"; do
        printf '%s=%q\n' "${pair%%=*}" "${pair#*=}" >>"$dest.partial"
    done
    mv -f -- "$dest.partial" "$dest"
    cat -- "$dest"
}

# A readable, unique file name per image reference: <sanitised ref>-<8 hex of its sha256>.<ext>
image_file() {
    local ref=${1#*://} ext=$2 hash
    hash=$(printf '%s' "$1" | sha256sum | cut -c1-8)
    printf '%s/images/%s-%s.%s' "$CT_ROOT" "${ref//[^A-Za-z0-9._-]/_}" "$hash" "$ext"
}

main() {
    parse_args "$@"
    trap on_exit EXIT
    if ((!DRY_RUN)); then
        mkdir -p "$(dirname "$LOG_FILE")" "$STATE_DIR"
        touch "$LOG_FILE"
        chmod 0644 "$LOG_FILE"
        LOG_READY=1
    fi
    detect_os
    choose_runtime
    detect_role
    CT_ROOT="$SHARED_DIR/clustertools"
    log "bootstrap start: project=$PROJECT cluster=$CLUSTER role=$NODE_ROLE os=$OS_ID $OS_VERSION runtime=$RUNTIME shared=$SHARED_DIR$( ((DRY_RUN)) && echo ' (dry run: nothing is changed)')"

    if ((!DRY_RUN)) && command -v flock >/dev/null 2>&1; then
        exec 9>"$STATE_DIR/.lock"
        flock -w 600 9 || die "another bootstrap holds $STATE_DIR/.lock"
    fi

    # 1. Container runtime: a node-local package, so on every node (skipped when already installed).
    case $RUNTIME in
        apptainer) step runtime-apptainer --key "apptainer $APPTAINER_VERSION $APPTAINER_SHA256 $OS_ID $OS_VERSION" install_apptainer ;;
        docker) step runtime-docker --key "docker $OS_ID $OS_VERSION $(login_user)" install_docker ;;
        podman) step runtime-podman --key "podman $OS_ID $OS_VERSION $(login_user)" install_podman ;;
        enroot) check runtime-enroot need_command enroot "use a ParallelCluster AMI that ships enroot/pyxis" ;;
        none) log "runtime none: no container runtime installed" ;;
    esac

    # 2. Conda: Miniforge and the project's environment, on the head node into shared storage, once.
    # Each environment file is solved into its own directory, named by its content (envs/PROJECT-SHA12):
    # a changed file (`clustertools bootstrap refresh`) is solved beside the old one, and bootstrap.env
    # then points new tasks at it, while a task already running keeps the environment it started with.
    local mf="$CT_ROOT/miniforge3" envdir=""
    if [[ -n $MINIFORGE_URL ]]; then
        if [[ $NODE_ROLE == head ]]; then
            step miniforge --key "$MINIFORGE_URL $MINIFORGE_SHA256 $mf" --creates "$mf/bin/conda" \
                install_miniforge "$MINIFORGE_URL" "$MINIFORGE_SHA256" "$mf"
        else
            check miniforge need_file "$mf/bin/conda" "the head node installs Miniforge into shared storage"
        fi
    else
        log "conda: not requested (no --miniforge-url, no --env-file)"
    fi
    if [[ -n $ENV_FILE ]]; then
        if [[ $NODE_ROLE == head ]]; then
            local env_local
            env_local="$STATE_DIR/env/$(basename "$ENV_FILE")"
            if ((DRY_RUN)); then
                log "step conda-env: would fetch ${BOOTSTRAP_PREFIX}${ENV_FILE} and solve it into $CT_ROOT/envs/$PROJECT-<its sha256, 12 hex>"
            else
                mkdir -p "$(dirname "$env_local")"
                check env-file fetch "${BOOTSTRAP_PREFIX}${ENV_FILE}" "$env_local"
                local env_sha
                env_sha=$(sha256sum "$env_local" | cut -d' ' -f1)
                envdir="$CT_ROOT/envs/$PROJECT-${env_sha:0:12}"
                step conda-env --key "$env_sha $mf $envdir" --creates "$envdir/conda-meta" solve_env "$mf/bin/conda" "$env_local" "$envdir"
            fi
        else
            envdir=$(node_env_value CT_CONDA_ENV "$CT_ROOT/bootstrap.env")
            check conda-env need_file "${envdir:-$CT_ROOT/envs/$PROJECT-?}" "the head node solves the environment into shared storage"
        fi
    fi

    # 3. Image: pulled once per cluster by the head node; compute nodes check (docker: load the saved image).
    local image_path=""
    if [[ -n $IMAGE ]]; then
        # Per runtime: the file kept in shared storage, and what the head node does to make it.
        local ext verb
        case $RUNTIME in
            apptainer) ext=sif verb=pulls ;;
            enroot) ext=sqsh verb=imports ;;
            docker) ext=tar verb=saves ;;
            podman) ext=oci.tar verb=saves ;;
            none) die "--image $IMAGE needs a container runtime, not --runtime none" ;;
        esac
        image_path=$(image_file "$IMAGE" "$ext")
        if [[ $NODE_ROLE == head ]]; then
            step image --key "$RUNTIME $IMAGE" --creates "$image_path" "pull_$RUNTIME" "$IMAGE" "$image_path"
        else
            check image need_file "$image_path" "the head node $verb the image into shared storage"
            if [[ $RUNTIME == docker ]]; then
                step image-load --key "docker $IMAGE" docker load -i "$image_path"
            fi
        fi
    fi

    # 4. What the run wrapper reads: where the runtime, image and environment are (no secrets in it).
    if [[ $NODE_ROLE == head ]]; then
        local digest=""
        [[ -z $IMAGE ]] || ((DRY_RUN)) || digest=$(image_digest "$RUNTIME" "$IMAGE" "$image_path")
        local -a node_env=("CT_PROJECT=$PROJECT" "CT_CLUSTER=$CLUSTER" "CT_RUNTIME=$RUNTIME" "CT_IMAGE=$IMAGE"
            "CT_IMAGE_FILE=$image_path" "CT_IMAGE_DIGEST=$digest" "CT_CONDA=$([[ -n $MINIFORGE_URL ]] && echo "$mf")"
            "CT_CONDA_ENV=$envdir")
        step node-env --key "$(printf '%s\n' "${node_env[@]}")" --creates "$CT_ROOT/bootstrap.env" \
            write_node_env "$CT_ROOT/bootstrap.env" "${node_env[@]}"
    else
        check node-env need_file "$CT_ROOT/bootstrap.env" "the head node writes it"
    fi

    # 5. The idle autostop (bootstrap/autostop.sh, a systemd timer): the head node's alone.
    if [[ -n $AUTOSTOP_MINUTES && $NODE_ROLE == head ]]; then
        step autostop --key "$AUTOSTOP_MINUTES $AUTOSTOP_ACTION $AUTOSTOP_ROLE $CLUSTER $AUTOSTOP_DIR" \
            --creates "$AUTOSTOP_DIR/autostop.sh" install_autostop
    fi
}

main "$@"

#!/usr/bin/env bash
# clustertools idle autostop on the head node (bootstrap/README.md, "Autostop"). `--once` is one check, run
# every INTERVAL s by a systemd timer (`--configure` installs it) or by `--loop` where systemd does not run.
# Busy: a Slurm job not finished, an interactive SSH session, a pending output upload. Idle for MINUTES: the
# action (stop | down | sandbox) runs once. Every decision is logged (LOG and syslog, tag
# clustertools-autostop); the last one is kept in STATE_DIR/status.json for `clustertools describe`.
# Test hooks (environment): CT_AUTOSTOP_DIR (state dir), CT_AUTOSTOP_NOW / CT_AUTOSTOP_BOOT_EPOCH (epochs),
# CT_AUTOSTOP_POLL (fleet poll seconds), CT_CFNCONFIG, CT_SYSTEMD_DIR, CT_SYSTEMD_UNIT_DIR. Every system
# command (squeue, ps, aws, shutdown, scontrol, sinfo, systemctl, logger, flock) is called through PATH.
set -euo pipefail
umask 022

readonly TAG=clustertools-autostop
STATE_DIR=${CT_AUTOSTOP_DIR:-/var/lib/clustertools/autostop}
CFNCONFIG=${CT_CFNCONFIG:-/etc/parallelcluster/cfnconfig}
MODE="" NO_TIMER=0 NOW=0 STARTED=0
declare -A SET=() C=() S=()  # options given now; autostop.conf; state (idle clock, firing)

usage() {
    cat <<'EOF'
usage: autostop.sh --once | --loop | --status [--state-dir DIR]
       autostop.sh --configure --minutes N|off [--action stop|down|sandbox] [--interval SECONDS]
         [--cluster C] [--region R] [--down-role-arn ARN] [--log FILE] [--sshd-pid PID]
         [--runs-dirs 'GLOB ...'] [--stale-hours H] [--fleet-wait SECONDS] [--slurm-conf PATH]
         [--node-started EPOCH] [--no-timer] [--state-dir DIR]
EOF
}
usage_error() { printf 'autostop.sh: %s\n' "$1" >&2; usage >&2; exit 2; }

iso() { date -u -d "@$1" +%Y-%m-%dT%H:%M:%SZ; }
# KEY=value files, read as data (never sourced); rewritten whole and renamed, so a reader never sees half.
load() {  # ARRAY FILE
    local -n into=$1
    local key value
    into=()
    [[ -f $2 ]] || return 0
    # shellcheck disable=SC2034  # a nameref: this fills the caller's array
    while IFS='=' read -r key value; do [[ -z $key ]] || into["$key"]=$value; done <"$2"
}
save() {  # ARRAY FILE
    local -n from=$1
    local key
    for key in "${!from[@]}"; do printf '%s=%s\n' "$key" "${from[$key]}"; done | sort >"$2.tmp"
    mv -f -- "$2.tmp" "$2"
}

log() {
    local line
    line="$(date -u +%Y-%m-%dT%H:%M:%SZ) ${TAG}[${C[CLUSTER]:-}]: $*"
    [[ -z ${C[LOG]:-} ]] || printf '%s\n' "$line" >>"${C[LOG]}"
    [[ $MODE == once ]] || printf '%s\n' "$line"
    logger -t "$TAG" -- "$*" 2>/dev/null || true
}

run_cmd() {  # CMD...: a command of an action, with its output, into the log; returns its exit code
    local out rc=0 line
    log "action: run $*"
    out=$("$@" 2>&1) || rc=$?
    while IFS= read -r line; do [[ -z $line ]] || log "action:   $line"; done <<<"$out"
    ((rc == 0)) || log "action: exit $rc: $*"
    return "$rc"
}

plural() { (($1 == 1)) && printf '%s %s' "$1" "$2" || printf '%s %ss' "$1" "$2"; }

# --- what keeps the cluster busy -------------------------------------------------------------------------
JOBS_JSON="" SSH_SESSIONS=0 UPLOADS=0 STALE=0 REASONS=()
JOBS_LISTED=0  # squeue answered: NOT_DONE holds every job not finished
declare -A NOT_DONE=()  # job id as squeue prints it (an array task as 123_4) -> 1
# Finished jobs stay listed for MinJobAge: any other state is a job not done.
readonly DONE_STATES='^(COMPLETED|CANCELLED|FAILED|TIMEOUT|PREEMPTED|BOOT_FAIL|NODE_FAIL|OUT_OF_MEMORY|DEADLINE|REVOKED|SPECIAL_EXIT)$'

check_jobs() {  # the one squeue call of a check: its states count as busy, its ids judge the upload markers
    local out state count id
    if ! out=$(squeue -h -a -r -t all -o '%T %i' 2>&1); then
        out=${out//[^[:print:]]/ } && out=${out//[\\\"]/\'}
        REASONS+=("squeue failed ($out): cannot tell, so busy")
        JOBS_JSON='"unknown":1'
        return
    fi
    while read -r state count; do
        [[ -n $state ]] || continue
        REASONS+=("$(plural "$count" job) $state")
        JOBS_JSON+="${JOBS_JSON:+,}\"$state\":$count"
    done < <(awk -v done="$DONE_STATES" 'NF && $1 !~ done {n[tolower($1)]++} END {for (s in n) print s, n[s]}' \
        <<<"$out" | sort)
    while read -r id; do NOT_DONE[$id]=1; done < <(awk -v done="$DONE_STATES" 'NF >= 2 && $1 !~ done {print $2}' <<<"$out")
    JOBS_LISTED=1
}

# A process with a terminal whose parent is sshd (or sshd-session) is an interactive session; counted once
# per terminal. With SSHD_PID (the sandbox) only that server's sessions count, not another sshd's.
check_ssh() {
    SSH_SESSIONS=$(ps -e -o pid=,ppid=,tty=,comm= | awk -v root="${C[SSHD_PID]:-}" '
        { parent[$1] = $2; tty[$1] = $3; comm[$1] = $4 }
        END {
            for (p in tty) {
                if (tty[p] == "?" || comm[parent[p]] !~ /^sshd/) continue
                ok = (root == "")
                for (a = parent[p]; !ok && (a in parent) && a > 1; a = parent[a]) if (a == root) ok = 1
                if (ok) seen[tty[p]] = 1
            }
            n = 0; for (t in seen) n++; print n
        }')
    ((SSH_SESSIONS == 0)) || REASONS+=("$(plural "$SSH_SESSIONS" "SSH session") open")
}

# Whether the job a marker names ("job=ID ...") is one squeue lists as not finished; the id, written by a
# task, is data: only the shape the wrapper writes (ARRAY_TASK, or a plain job id) is looked up, as is.
job_not_done() {  # MARKER_LINE
    local job=""
    [[ $1 =~ ^job=([0-9]+(_[0-9]+)?)( |$) ]] && job=${BASH_REMATCH[1]}
    [[ -n $job && -n ${NOT_DONE[$job]:-} ]]
}

# A marker reads "job=ID slurm_conf=PATH". With SLURM_CONF set (the sandbox: sandboxes of one user share a
# home) only markers of that Slurm's jobs count. One older than the node's start (its job ended with the
# node) or than STALE_HOURS, or whose job squeue does not list as unfinished (its task died mid-upload), is
# not pending: ignored, and logged. When squeue failed, a marker cannot be judged by its job: it counts.
check_uploads() {
    local root marker line mtime old=0 gone=0 first_old="" first_gone=""
    shopt -s nullglob
    # shellcheck disable=SC2086  # RUNS_DIRS holds globs such as /home/*/.clustertools/runs
    for root in ${C[RUNS_DIRS]}; do
        for marker in "$root"/*/uploading/*; do
            line=""
            read -r line <"$marker" 2>/dev/null || true
            [[ -z ${C[SLURM_CONF]:-} || $line == *" slurm_conf=${C[SLURM_CONF]}" ]] || continue
            mtime=$(stat -c %Y -- "$marker" 2>/dev/null) || continue  # gone meanwhile: that upload is over
            if ((mtime < STARTED || NOW - mtime > C[STALE_HOURS] * 3600)); then
                old=$((old + 1)) && first_old=${first_old:-$marker}
            elif ((JOBS_LISTED)) && ! job_not_done "$line"; then
                gone=$((gone + 1)) && first_gone=${first_gone:-$marker}
            else
                UPLOADS=$((UPLOADS + 1))
            fi
        done
    done
    shopt -u nullglob
    STALE=$((old + gone))
    ((old == 0)) || log_ignored "$old" "older than the node's start, $(iso "$STARTED"), or ${C[STALE_HOURS]} h" "$first_old"
    ((gone == 0)) || log_ignored "$gone" "job finished or not in squeue" "$first_gone"
    ((UPLOADS == 0)) || REASONS+=("$(plural "$UPLOADS" upload) pending")
}
log_ignored() {  # COUNT WHY FIRST_MARKER
    log "$(plural "$1" "upload marker") ignored ($2): $3$( (($1 == 1)) || echo " and $(($1 - 1)) more")"
}

# --- actions: action_X runs before the status says fired; final_X (stop the node, delete it) after --------
fleet() {  # get | request CURRENT: the status ParallelCluster keeps in parallelcluster-<cluster> (DynamoDB)
    local -a base=(--region "${C[REGION]}" --table-name "parallelcluster-${C[CLUSTER]}" --key '{"Id":{"S":"COMPUTE_FLEET"}}')
    if [[ $1 == get ]]; then
        aws dynamodb get-item "${base[@]}" --consistent-read --query 'Item.Data.M.status.S' --output text
        return
    fi
    run_cmd aws dynamodb update-item "${base[@]}" --update-expression 'SET #dt.#st = :s, #dt.#lut = :t' \
        --condition-expression '#dt.#st = :current' \
        --expression-attribute-names '{"#dt":"Data","#st":"status","#lut":"lastStatusUpdatedTime"}' \
        --expression-attribute-values "{\":s\":{\"S\":\"STOP_REQUESTED\"},\":current\":{\"S\":\"$2\"},\":t\":{\"S\":\"$(date -u '+%Y-%m-%d %H:%M:%S.%6N+00:00')\"}}"
}

stop_fleet() {
    local current waited=0 poll=${CT_AUTOSTOP_POLL:-15}
    current=$(fleet get) || { log "action: cannot read the compute fleet status"; return 1; }
    log "action: compute fleet status $current"
    case $current in
        STOPPED) return 0 ;;
        STOP_REQUESTED | STOPPING) ;;
        *) fleet request "$current" || return 1 ;;
    esac
    while ((waited <= C[FLEET_WAIT])); do
        current=$(fleet get) || current=UNKNOWN
        [[ $current != STOPPED ]] || { log "action: compute fleet STOPPED"; return 0; }
        sleep "$poll"
        waited=$((waited + poll + 1))
    done
    log "action: the compute fleet is still $current after ${C[FLEET_WAIT]} s: the head node is left running"
    return 1
}

action_stop() { stop_fleet; }
final_stop() { log "action: stopping the head node (an EBS-backed instance stops)"; sync; run_cmd shutdown -h now; }
action_down() { stop_fleet; }
final_down() {
    run_cmd aws cloudformation delete-stack --region "${C[REGION]}" --stack-name "${C[CLUSTER]}" --role-arn "${C[DOWN_ROLE_ARN]}"
}
action_sandbox() {
    local partition
    for partition in $(sinfo -h -o '%R' | sort -u); do
        run_cmd scontrol update "PartitionName=$partition" State=INACTIVE || return 1
        S[PARTITIONS]+="${S[PARTITIONS]:+ }$partition"
        save S "$STATE_DIR/state"
    done
}
final_sandbox() { log "action: the sandbox's head node is this machine: not stopped (clustertools sandbox down stops it)"; }

# --- status.json, for `clustertools describe` --------------------------------------------------------------
stamp() { if [[ -n $2 ]]; then printf '"%s":"%s","%s_epoch":%s' "$1" "$(iso "$2")" "$1" "$2"; else printf '"%s":null,"%s_epoch":null' "$1" "$1"; fi; }
write_status() {  # DECISION
    local idle=${S[IDLE_SINCE]:-} fires="" reasons="" r minutes=${C[MINUTES]}
    [[ -z $idle || $minutes == off ]] || fires=$((idle + minutes * 60))
    for r in "${REASONS[@]}"; do reasons+="${reasons:+,}\"${r//\"/\'}\""; done
    printf '{"version":1,"decision":"%s","minutes":%s,"action":"%s","interval_seconds":%s,"timer":"%s",%s,%s,%s,%s,"busy":{"jobs":{%s},"ssh_sessions":%d,"uploads":%d,"stale_uploads":%d},"reasons":[%s],"action_exit":%s,"log":"%s"}\n' \
        "$1" "${minutes/off/null}" "${C[ACTION]}" "${C[INTERVAL]}" "${C[TIMER]:-none}" "$(stamp checked "$NOW")" \
        "$(stamp idle_since "$idle")" "$(stamp fires_at "$fires")" "$(stamp fired_at "${S[FIRED_AT]:-}")" \
        "$JOBS_JSON" "$SSH_SESSIONS" "$UPLOADS" "$STALE" "$reasons" "${S[ACTION_EXIT]:-null}" "${C[LOG]}" \
        >"$STATE_DIR/status.json.tmp"
    chmod 0644 "$STATE_DIR/status.json.tmp"
    mv -f -- "$STATE_DIR/status.json.tmp" "$STATE_DIR/status.json"
}

# --- one check ---------------------------------------------------------------------------------------------
once() {
    [[ -n ${C[MINUTES]:-} ]] || { echo "autostop.sh: not configured (run --configure)" >&2; exit 1; }
    exec 9>"$STATE_DIR/.lock"
    flock -n 9 || { log "another check or action is running: skipped"; return 0; }
    local last=${S[LAST_CHECK]:-} idle
    # A check a minute logs ~140 KB a day: keep the last 5 MB and the 5 MB before.
    if [[ -n ${C[LOG]:-} ]] && (($(stat -c %s -- "${C[LOG]}" 2>/dev/null || echo 0) > 5000000)); then
        mv -f -- "${C[LOG]}" "${C[LOG]}.1"
    fi
    S[LAST_CHECK]=$NOW
    save S "$STATE_DIR/state"
    if [[ ${C[MINUTES]} == off ]]; then write_status off; return; fi
    # When the node started: its boot, or (the sandbox) when the sandbox started.
    STARTED=${C[NODE_STARTED]:-${CT_AUTOSTOP_BOOT_EPOCH:-$(awk '/^btime/ {print $2}' /proc/stat)}}
    if [[ -n ${S[FIRED_AT]:-} ]] && ((STARTED > S[FIRED_AT])); then
        log "the node started again after autostop fired at $(iso "${S[FIRED_AT]}"): re-armed"
        S[FIRED_AT]="" S[ACTION_EXIT]="" S[IDLE_SINCE]="" S[FIRED_NOTED]=""
    fi
    if [[ -n ${S[FIRED_AT]:-} ]]; then
        if [[ -z ${S[FIRED_NOTED]:-} ]]; then  # said once, not at every check
            log "already fired at $(iso "${S[FIRED_AT]}") (action ${C[ACTION]}, exit ${S[ACTION_EXIT]:-?}): nothing more to do; re-arm with clustertools autostop"
            S[FIRED_NOTED]=1
            save S "$STATE_DIR/state"
        fi
        write_status "$( [[ ${S[ACTION_EXIT]:-} == 0 ]] && echo fired || echo failed)"
        return
    fi
    check_jobs
    check_ssh
    check_uploads
    if ((${#REASONS[@]})); then
        S[IDLE_SINCE]=""
        save S "$STATE_DIR/state"
        local joined
        joined=$(printf ' / %s' "${REASONS[@]}")
        log "busy: ${joined:3} (limit ${C[MINUTES]} min)"
        write_status busy
        return
    fi
    idle=${S[IDLE_SINCE]:-}
    # Checks that stopped for a while (timer stopped, node suspended) saw nothing: the idle clock restarts.
    if [[ -n $idle && -n $last ]] && ((NOW - last > 3 * C[INTERVAL] + 120)); then
        log "no check for $((NOW - last)) s: the idle clock restarts"
        idle=""
    fi
    S[IDLE_SINCE]=${idle:-$NOW}
    save S "$STATE_DIR/state"
    if ((NOW - S[IDLE_SINCE] < C[MINUTES] * 60)); then
        log "idle since $(iso "${S[IDLE_SINCE]}") ($((NOW - S[IDLE_SINCE])) s): fires at $(iso $((S[IDLE_SINCE] + C[MINUTES] * 60))) (limit ${C[MINUTES]} min, action ${C[ACTION]})"
        write_status idle
        return
    fi
    fire
}

fire() {
    local action=${C[ACTION]} rc=0
    S[FIRED_AT]=$NOW S[ACTION_EXIT]=""
    save S "$STATE_DIR/state"  # written first: whatever happens next, a second check never fires again
    write_status firing
    log "FIRING: idle since $(iso "${S[IDLE_SINCE]}") ($((NOW - S[IDLE_SINCE])) s >= ${C[MINUTES]} min): action $action"
    "action_$action" || rc=$?
    S[ACTION_EXIT]=$rc
    save S "$STATE_DIR/state"
    if ((rc != 0)); then
        log "action $action FAILED (exit $rc): not repeated; see the lines above, then re-arm with clustertools autostop"
        write_status failed
        return
    fi
    log "action $action done"
    write_status fired
    "final_$action" || log "action $action: its last step failed (exit $?)"
}

loop() {
    local sleeper=""
    trap 'log "timer stopped"; [[ -z $sleeper ]] || kill "$sleeper" 2>/dev/null; exit 0' TERM INT
    log "timer started: a check every ${C[INTERVAL]} s"
    while true; do
        bash "$0" --once --state-dir "$STATE_DIR" || log "check failed (exit $?)"
        load C "$STATE_DIR/autostop.conf"
        sleep "${C[INTERVAL]}" &
        sleeper=$!
        wait "$sleeper" || true
    done
}

main() {
    while (($#)); do
        case $1 in
            --once | --loop | --status | --configure) MODE=${1#--}; shift ;;
            --no-timer) NO_TIMER=1; shift ;;
            --state-dir | --minutes | --action | --interval | --cluster | --region | --down-role-arn | --log | \
                --sshd-pid | --runs-dirs | --stale-hours | --fleet-wait | --slurm-conf | --node-started)
                (($# >= 2)) || usage_error "$1 needs a value"
                SET[$1]=$2
                shift 2
                ;;
            -h | --help) usage; exit 0 ;;
            *) usage_error "unknown argument: $1" ;;
        esac
    done
    [[ -n $MODE ]] || usage_error "say --once, --loop, --status or --configure"
    STATE_DIR=${SET[--state-dir]:-$STATE_DIR}
    NOW=${CT_AUTOSTOP_NOW:-$(date +%s)}
    load C "$STATE_DIR/autostop.conf"
    load S "$STATE_DIR/state"
    case $MODE in
        once) once ;;
        loop) loop ;;
        status) cat -- "$STATE_DIR/status.json" ;;
        configure)
            # shellcheck source-path=SCRIPTDIR source=autostop-configure.sh
            source "$(dirname "$(readlink -f "$0")")/autostop-configure.sh"
            configure
            ;;
    esac
}

main "$@"

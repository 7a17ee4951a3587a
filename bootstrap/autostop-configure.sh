#!/usr/bin/env bash
# Sourced by autostop.sh for `--configure`: (re)arm autostop with its options (or switch it off), and install
# the systemd timer where systemd runs. Kept beside autostop.sh wherever that is installed.
# shellcheck disable=SC2154  # C, S, SET, NO_TIMER, STATE_DIR, CFNCONFIG and the helpers come from autostop.sh
need() { [[ $2 =~ $3 ]] || usage_error "$1 '$2': $4"; }
pick() {  # KEY OPTION DEFAULT REGEX WHAT: the option given now, else the configured value, else the default
    C[$1]=${SET[$2]:-${C[$1]:-$3}}
    need "$2" "${C[$1]}" "$4" "$5"
}

configure() {
    local cfn_cluster="" cfn_region="" partition
    [[ -n ${SET[--minutes]:-} ]] || usage_error "--configure needs --minutes N|off"
    if [[ -r $CFNCONFIG ]]; then  # a ParallelCluster node names its cluster (stack) and region here
        cfn_cluster=$(sed -n 's/^stack_name=//p' "$CFNCONFIG") cfn_region=$(sed -n 's/^cfn_region=//p' "$CFNCONFIG")
    fi
    C[MINUTES]=${SET[--minutes]}
    need --minutes "${C[MINUTES]}" '^(off|[1-9][0-9]{0,4})$' "1..10080 or off"
    [[ ${C[MINUTES]} == off ]] || ((C[MINUTES] <= 10080)) || usage_error "--minutes must be 1..10080 (a week) or off"
    pick ACTION --action stop '^(stop|down|sandbox)$' "stop, down or sandbox"
    pick INTERVAL --interval 60 '^[0-9]{1,4}$' "2..3600 seconds"
    ((C[INTERVAL] >= 2 && C[INTERVAL] <= 3600)) || usage_error "--interval must be 2..3600 seconds"
    pick CLUSTER --cluster "$cfn_cluster" '^([A-Za-z][A-Za-z0-9-]{0,59})?$' "a cluster name"
    pick REGION --region "$cfn_region" '^([a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9])?$' "an AWS region"
    pick DOWN_ROLE_ARN --down-role-arn "" '^(arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]+)?$' "an IAM role ARN"
    pick LOG --log /var/log/clustertools-autostop.log '^/[A-Za-z0-9._/+-]+$' "an absolute path"
    pick SSHD_PID --sshd-pid "" '^[0-9]*$' "a process id"
    pick RUNS_DIRS --runs-dirs '/home/*/.clustertools/runs /root/.clustertools/runs' '^[A-Za-z0-9._/*+ -]+$' "paths or globs"
    pick STALE_HOURS --stale-hours 6 '^[1-9][0-9]{0,2}$' "1..999 hours"
    pick FLEET_WAIT --fleet-wait 900 '^[0-9]{1,5}$' "seconds"
    pick SLURM_CONF --slurm-conf "" '^(/[A-Za-z0-9._/+-]+)?$' "an absolute path"
    pick NODE_STARTED --node-started "" '^[0-9]*$' "epoch seconds"
    if [[ ${C[ACTION]} != sandbox && ( -z ${C[CLUSTER]} || -z ${C[REGION]} ) ]]; then
        usage_error "--action ${C[ACTION]} needs --cluster and --region (not found in $CFNCONFIG)"
    fi
    [[ ${C[ACTION]} != down || -n ${C[DOWN_ROLE_ARN]} ]] ||
        usage_error "--action down needs --down-role-arn (the CloudFormation role that deletes the stack)"
    mkdir -p "$STATE_DIR" "$(dirname "${C[LOG]}")"
    touch "${C[LOG]}" && chmod 0644 "${C[LOG]}"
    for partition in ${S[PARTITIONS]:-}; do  # re-arming undoes what the sandbox action did
        run_cmd scontrol update "PartitionName=$partition" State=UP || true
    done
    S=()
    save S "$STATE_DIR/state"
    C[TIMER]=none
    if ((NO_TIMER)); then
        C[TIMER]=loop
    elif [[ -d ${CT_SYSTEMD_DIR:-/run/systemd/system} ]] && command -v systemctl >/dev/null 2>&1; then
        install_systemd
        C[TIMER]=systemd
    else
        log "no systemd here: no timer installed (run autostop.sh --loop under a supervisor)"
    fi
    save C "$STATE_DIR/autostop.conf"
    if [[ ${C[MINUTES]} == off ]]; then
        log "configured: off"
        write_status off
    else
        log "configured: limit ${C[MINUTES]} min, action ${C[ACTION]}, a check every ${C[INTERVAL]} s (${C[TIMER]})"
        write_status armed
    fi
}

install_systemd() {
    local units=${CT_SYSTEMD_UNIT_DIR:-/etc/systemd/system} unit=clustertools-autostop
    if [[ ${C[MINUTES]} == off ]]; then
        systemctl disable --now "$unit.timer" 2>/dev/null || true
        return
    fi
    printf '%s\n' "[Unit]" "Description=clustertools idle autostop: one check ($STATE_DIR/status.json)" "[Service]" \
        "Type=oneshot" "Environment=PATH=/opt/slurm/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
        "ExecStart=/bin/bash $(readlink -f "$0") --once --state-dir $STATE_DIR" "TimeoutStartSec=3600" >"$units/$unit.service"
    printf '%s\n' "[Unit]" "Description=clustertools idle autostop: a check every ${C[INTERVAL]} s" "[Timer]" \
        "OnActiveSec=${C[INTERVAL]}" "OnUnitActiveSec=${C[INTERVAL]}" "AccuracySec=1s" "[Install]" \
        "WantedBy=timers.target" >"$units/$unit.timer"
    systemctl daemon-reload
    systemctl enable "$unit.timer"
    systemctl restart "$unit.timer"
}

#!/bin/bash
# One compute node of the sandbox: run CMD (its slurmd) as a machine of its own, inside the head node's
# mount namespace (which it was started in) but with its own hostname and its own cgroups.
#   node-namespace.sh NODE CGROUPS SPOOLS SSHD -- CMD [ARG...]
# CGROUPS is a file of lines "<controller> <dir>": for each cgroup v1 controller Slurm's plugins use, the
# directory under which every node of this sandbox gets its cgroup (written by `clustertools sandbox up`).
# This process first joins <dir>/NODE of each (made here if missing); then, in new UTS, mount, cgroup and
# time namespaces (booted now), the hostname is NODE and /sys/fs/cgroup/<controller> is mounted again, so
# that Slurm's proctrack/cgroup and task/cgroup see that cgroup as the machine's root: a task's memory and
# CPU limits hold as on a real node, and `sandbox down` removes every cgroup the node made.
# SPOOLS/NODE is the node's own /var/spool: slurmd's spool is /var/spool/slurmd on every node, as on
# ParallelCluster, and a step's socket path (/var/spool/slurmd/NODE_JOB.STEP) stays within sun_path.
# SSHD is a file "SSHD_PROGRAM CONFIG PORT LOG_DIR" (or -): the node's sshd then starts first, on the address
# its name has in /etc/hosts and on PORT, with a host key made now: a node that boots again is a new
# instance with a new key, as on ParallelCluster.
set -euo pipefail
usage="usage: node-namespace.sh NODE CGROUPS SPOOLS SSHD -- CMD [ARG...]"
node=${1:?$usage}
cgroups=${2:?$usage}
spools=${3:?$usage}
sshd_spec=${4:?$usage}
shift 4
[[ ${1:-} == -- ]] && shift
(($#)) || { echo "node-namespace.sh: no command to run" >&2; exit 2; }

make_cgroup() {  # DIR: made with its missing parents; a cpuset takes no process before it has CPUs and memory nodes
  local dir=$1 knob
  [[ -d $dir ]] && return 0
  make_cgroup "${dir%/*}"
  mkdir "$dir" 2>/dev/null || [[ -d $dir ]]
  if [[ -e $dir/cpuset.cpus ]]; then
    for knob in cpuset.cpus cpuset.mems; do
      [[ -n $(<"$dir/$knob") ]] || cat "${dir%/*}/$knob" >"$dir/$knob"
    done
  fi
}

while read -r controller parent; do
  [[ -n $controller ]] || continue
  make_cgroup "$parent/$node"
  echo "$$" >"$parent/$node/cgroup.procs"
done <"$cgroups"
mkdir -p "$spools/$node/slurmd"

# A time namespace whose boot time is now (uptime below 1 s): slurmctld takes a powering-up node as booted only when the
# uptime it reports started after the resume request, as a real instance's does.
uptime=$(cut -d. -f1 /proc/uptime)
# shellcheck disable=SC2016  # expanded by the inner bash
exec unshare --uts --mount --cgroup --time --boottime "-$uptime" --propagation private bash -c '
  set -euo pipefail
  node=$1 spool=$2 sshd_spec=$3; shift 3
  hostname "$node"
  mount --bind "$spool" /var/spool
  for controller in memory cpuset freezer devices pids; do
    umount "/sys/fs/cgroup/$controller"
    mount -t cgroup -o "$controller" "cgroup-$controller" "/sys/fs/cgroup/$controller"
  done
  shift
  # A machine boots with no signal blocked or ignored. Started by slurmctld'"'"'s ResumeProgram, this
  # process inherits slurmscriptd'"'"'s blocked and ignored signals, and a slurmd that inherits them
  # never registers: reset both (env for the ignored ones, Python for the mask) before each daemon starts.
  unblocked="import os, signal, sys
signal.pthread_sigmask(signal.SIG_SETMASK, [])
os.execvp(sys.argv[1], sys.argv[1:])"
  if [[ $sshd_spec != - ]]; then
    read -r sshd config port log_dir <"$sshd_spec"
    address=$(getent hosts "$node" | awk "{print \$1; exit}")
    mkdir -p /var/spool/ssh && rm -f /var/spool/ssh/ssh_host_*
    ssh-keygen -q -t ed25519 -N "" -C "$node" -f /var/spool/ssh/ssh_host_ed25519_key
    env --default-signal python3 -c "$unblocked" "$sshd" -f "$config" -E "$log_dir/sshd-$node.log" -o "ListenAddress=$address:$port" \
      -o HostKey=/var/spool/ssh/ssh_host_ed25519_key -o PidFile=/var/spool/ssh/sshd.pid
  fi
  exec env --default-signal python3 -c "$unblocked" "$@"' node-namespace "$node" "$spools/$node" "$sshd_spec" -- "$@"

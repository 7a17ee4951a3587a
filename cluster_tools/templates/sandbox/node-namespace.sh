#!/bin/bash
# One compute node of the sandbox: run CMD (its slurmd) as a machine of its own, inside the head node's
# mount namespace (which it was started in) but with its own hostname and its own cgroups.
#   node-namespace.sh NODE CGROUPS SPOOLS -- CMD [ARG...]
# CGROUPS is a file of lines "<controller> <dir>": for each cgroup v1 controller Slurm's plugins use, the
# directory under which every node of this sandbox gets its cgroup (written by `clustertools sandbox up`).
# This process first joins <dir>/NODE of each (made here if missing); then, in new UTS, mount, cgroup and
# time namespaces (booted now), the hostname is NODE and /sys/fs/cgroup/<controller> is mounted again, so
# that Slurm's proctrack/cgroup and task/cgroup see that cgroup as the machine's root: a task's memory and
# CPU limits hold as on a real node, and `sandbox down` removes every cgroup the node made.
# SPOOLS/NODE is the node's own /var/spool: slurmd's spool is /var/spool/slurmd on every node, as on
# ParallelCluster, and a step's socket path (/var/spool/slurmd/NODE_JOB.STEP) stays within sun_path.
set -euo pipefail
usage="usage: node-namespace.sh NODE CGROUPS SPOOLS -- CMD [ARG...]"
node=${1:?$usage}
cgroups=${2:?$usage}
spools=${3:?$usage}
shift 3
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
  node=$1 spool=$2; shift 2
  hostname "$node"
  mount --bind "$spool" /var/spool
  for controller in memory cpuset freezer devices pids; do
    umount "/sys/fs/cgroup/$controller"
    mount -t cgroup -o "$controller" "cgroup-$controller" "/sys/fs/cgroup/$controller"
  done
  shift
  # A machine boots with no signal blocked or ignored. Started by slurmctld'"'"'s ResumeProgram, this
  # process inherits slurmscriptd'"'"'s blocked and ignored signals, and a slurmd that inherits them
  # never registers: reset both (env for the ignored ones, Python for the mask) before it starts.
  exec env --default-signal python3 -c "import os, signal, sys
signal.pthread_sigmask(signal.SIG_SETMASK, [])
os.execvp(sys.argv[1], sys.argv[1:])" "$@"' node-namespace "$node" "$spools/$node" -- "$@"

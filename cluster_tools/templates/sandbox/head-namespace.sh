#!/bin/bash
# The sandbox's head node: lay out a ParallelCluster node's filesystem in this process's own mount
# namespace, then run CMD in it. Started by `clustertools sandbox up` as
#   unshare --mount --propagation private head-namespace.sh NSDIR -- CMD [ARG...]
# and every daemon of the sandbox joins this namespace (nsenter --mount), so each sees:
#   /etc      the machine's, overlaid with NSDIR/etc: passwd and group with the login user, profile.d/slurm.sh,
#             /etc/slurm -> /opt/slurm/etc, parallelcluster/cfnconfig, and the OS's bashrc
#   /opt      overlaid with NSDIR/opt: slurm/{bin,etc} and parallelcluster/shared, as ParallelCluster has them
#   /usr/bin  overlaid with NSDIR/usr-bin, whose whiteouts hide Slurm's commands: as on a real node, they
#             are only in /opt/slurm/bin, on the PATH of a shell that reads /etc/profile.d
#   /usr/local  overlaid with NSDIR/usr-local: bin/aws, the machine's aws CLI pointed at the sandbox's S3
#   /home     NSDIR/home, shared by the head node and every compute node
# Nothing outside the namespace changes; the mounts end with the namespace's last process.
set -euo pipefail
ns=${1:?usage: head-namespace.sh NSDIR -- CMD [ARG...]}
shift
[[ ${1:-} == -- ]] && shift
(($#)) || { echo "head-namespace.sh: no command to run" >&2; exit 2; }

overlay() {  # TARGET NAME: TARGET shows NSDIR/NAME over the machine's own
  mkdir -p "$ns/work/$2"
  mount -t overlay "clustertools-$2" -o "lowerdir=$1,upperdir=$ns/$2,workdir=$ns/work/$2" "$1"
}

overlay /etc etc
overlay /opt opt
overlay /usr/bin usr-bin
overlay /usr/local usr-local
mount --bind "$ns/home" /home
exec "$@"

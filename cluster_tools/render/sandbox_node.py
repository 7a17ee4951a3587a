"""The files that make the sandbox's nodes look like ParallelCluster nodes of one OS: pure text.

What a real node has, read in aws/aws-parallelcluster-cookbook (commit f75d84c):
- Slurm under /opt/slurm (bin, sbin, etc); the only PATH hook is /etc/profile.d/slurm.sh, a link to
  /opt/slurm/etc/slurm.sh (recipes/config.rb; templates/default/slurm/head_node/slurm.sh.erb), which
  appends /opt/slurm/bin to PATH. Only a shell that reads profile.d finds sbatch.
- /etc/parallelcluster/cfnconfig (aws-parallelcluster-environment/templates/init/cfnconfig.erb):
  ``cfn_node_type=HeadNode|ComputeFleet``, ``stack_name=``, ``cfn_region=``, ``cfn_cluster_user=``...
- The login user is the OS's default (pcluster.constants.OS_MAPPING: ec2-user, ubuntu, rocky), not root.
- How a non-interactive ``ssh head CMD`` gets its PATH differs by OS family: bash reads ~/.bashrc when
  started by sshd; Amazon Linux/RHEL/Rocky's ~/.bashrc sources /etc/bashrc, which sources profile.d
  for non-login shells, so sbatch is found; Ubuntu's ~/.bashrc returns at once when not interactive,
  so ``sbatch: command not found`` unless a login shell (``bash --login -c``) reads /etc/profile.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Literal

# slurm-client's commands (dpkg -L slurm-client): hidden from /usr/bin, found in /opt/slurm/bin.
SLURM_COMMANDS = (
    "sacct",
    "sacctmgr",
    "salloc",
    "sattach",
    "sbatch",
    "sbcast",
    "scancel",
    "scontrol",
    "sdiag",
    "sinfo",
    "sprio",
    "squeue",
    "sreport",
    "srun",
    "sshare",
    "sstat",
    "strigger",
)
SLURM_PREFIX = "/opt/slurm"
DEFAULT_OS = "alinux2023"

Family = Literal["rhel", "ubuntu"]


@dataclass(frozen=True)
class NodeOS:
    """One ParallelCluster OS as the sandbox plays it: its login user and its shell start-up files."""

    name: str
    user: str
    family: Family

    @property
    def home(self) -> str:
        return f"/home/{self.user}"


def node_os(name: str, oses: dict[str, str]) -> NodeOS:
    """The OS ``name`` of ``oses`` (cluster_tools.model.aws.pcluster_support.supported_oses); ValueError names the
    choices."""
    if name not in oses:
        raise ValueError(f"{name!r} is not a ParallelCluster OS; choose one of {', '.join(sorted(oses))}")
    return NodeOS(name=name, user=oses[name], family="ubuntu" if name.startswith("ubuntu") else "rhel")


def passwd_line(os: NodeOS, uid: int) -> str:
    return f"{os.user}:x:{uid}:{uid}:{os.user}:{os.home}:/bin/bash\n"


def group_line(os: NodeOS, uid: int) -> str:
    return f"{os.user}:x:{uid}:\n"


def slurm_profile() -> str:
    """/opt/slurm/etc/slurm.sh, as the cookbook's slurm.sh.erb renders it."""
    return (
        "#\n# slurm.sh:\n#   Setup slurm environment variables\n#\n\n"
        f"PATH=$PATH:{SLURM_PREFIX}/bin\nMANPATH=$MANPATH:{SLURM_PREFIX}/share/man\n\nexport PATH MANPATH\n"
    )


def cfnconfig(
    *, node_type: Literal["HeadNode", "ComputeFleet"], stack_name: str, region: str, user: str, queue: str | None = None
) -> str:
    """/etc/parallelcluster/cfnconfig: the keys of cfnconfig.erb that a bootstrap reads."""
    lines = [
        f"stack_name={stack_name}",
        f"cfn_region={region}",
        "cfn_scheduler=slurm",
        f"cfn_node_type={node_type}",
        f"cfn_cluster_user={user}",
    ]
    if node_type == "ComputeFleet":
        lines += ["cfn_head_node=localhost", "cfn_head_node_private_ip=127.0.0.1", f"cfn_scheduler_queue_name={queue}"]
    return "\n".join(lines) + "\n"


def user_dotfiles(os: NodeOS) -> dict[str, str]:
    """The login user's start-up files (name under home -> text), as that OS's /etc/skel has them."""
    if os.family == "ubuntu":
        return {
            ".bashrc": (
                "# ~/.bashrc: executed by bash(1) for non-login shells (Ubuntu's /etc/skel/.bashrc begins so).\n"
                "# If not running interactively, don't do anything\n"
                "case $- in\n    *i*) ;;\n      *) return;;\nesac\n\n"
                "HISTCONTROL=ignoreboth\nshopt -s histappend\n"
            ),
            ".profile": (
                "# ~/.profile: executed by the command interpreter for login shells.\n"
                'if [ -n "$BASH_VERSION" ]; then\n    if [ -f "$HOME/.bashrc" ]; then\n'
                '\t. "$HOME/.bashrc"\n    fi\nfi\n\n'
                'if [ -d "$HOME/bin" ] ; then\n    PATH="$HOME/bin:$PATH"\nfi\n'
            ),
        }
    return {
        ".bashrc": ("# .bashrc\n\n# Source global definitions\nif [ -f /etc/bashrc ]; then\n\t. /etc/bashrc\nfi\n"),
        ".bash_profile": (
            "# .bash_profile\n\n# Get the aliases and functions\nif [ -f ~/.bashrc ]; then\n\t. ~/.bashrc\nfi\n"
        ),
    }


def etc_bashrc() -> str:
    """/etc/bashrc of the RHEL family (Debian has none): non-login shells read profile.d from here."""
    return (
        "# /etc/bashrc: system wide functions and aliases (the part of Amazon Linux's that sets PATH)\n"
        'if [ -z "$BASHRCSOURCED" ]; then\n'
        "  BASHRCSOURCED=Y\n"
        "  if ! shopt -q login_shell ; then\n"
        "    for i in /etc/profile.d/*.sh; do\n"
        '      if [ -r "$i" ]; then\n'
        '        if [ "$PS1" ]; then\n          . "$i"\n        else\n          . "$i" >/dev/null\n        fi\n'
        "      fi\n"
        "    done\n"
        "    unset i\n"
        "  fi\n"
        "fi\n"
    )


def aws_shim(aws: str) -> str:
    """/usr/local/bin/aws of the sandbox's nodes. A real node's CLI talks to AWS; the sandbox's must talk
    to its S3 endpoint, and Debian's aws CLI (2.9) predates AWS_ENDPOINT_URL: pass it on as --endpoint-url."""
    return (
        "#!/bin/bash\n"
        "# The clustertools sandbox's aws: the machine's own, pointed at the sandbox's S3 endpoint.\n"
        f'exec {shlex.quote(aws)} ${{AWS_ENDPOINT_URL:+--endpoint-url "$AWS_ENDPOINT_URL"}} "$@"\n'
    )

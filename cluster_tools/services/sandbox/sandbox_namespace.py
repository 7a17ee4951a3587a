"""The sandbox's ParallelCluster-like filesystem and cgroups, made from files the sandbox owns.

``prepare_layout`` writes the directories that templates/sandbox/head-namespace.sh lays over /etc, /opt,
/usr/bin and /home inside the sandbox's own mount namespace (so nothing outside it changes), and
node-namespace.sh makes each compute node's cgroups under the parents ``node_cgroup_dirs`` names
(services/sandbox_nodes.remove_cgroups removes them). The pure text of those files is render/sandbox_node.py's.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cluster_tools.errors import SandboxError
from cluster_tools.render.sandbox_cluster import node_address
from cluster_tools.render.sandbox_node import (
    SLURM_COMMANDS,
    NodeOS,
    aws_shim,
    etc_bashrc,
    group_line,
    passwd_line,
    slurm_profile,
    user_dotfiles,
)

CGROUP_ROOT = Path("/sys/fs/cgroup")
# The cgroup v1 controllers Slurm's proctrack/cgroup and task/cgroup use (node-namespace.sh mounts the same).
NODE_CONTROLLERS = ("memory", "cpuset", "freezer", "devices", "pids")
FIRST_UID = 1000


@dataclass(frozen=True)
class NamespaceLayout:
    """NSDIR of head-namespace.sh: the upper layers of /etc, /opt and /usr/bin, and /home."""

    root: Path

    @property
    def etc(self) -> Path:
        return self.root / "etc"

    @property
    def opt(self) -> Path:
        return self.root / "opt"

    @property
    def usr_bin(self) -> Path:
        return self.root / "usr-bin"

    @property
    def usr_local(self) -> Path:
        return self.root / "usr-local"

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def slurm_etc(self) -> Path:  # /opt/slurm/etc inside the namespace
        return self.opt / "slurm" / "etc"

    @property
    def shared(self) -> Path:  # /opt/parallelcluster/shared inside the namespace
        return self.opt / "parallelcluster" / "shared"

    def user_home(self, os_: NodeOS) -> Path:
        return self.home / os_.user


def free_uid(passwd: str, name: str) -> int:
    """The uid for login user ``name``: its own if the machine has it, else the first unused from 1000."""
    used = set()
    for line in passwd.splitlines():
        fields = line.split(":")
        if len(fields) >= 3 and fields[2].isdigit():
            if fields[0] == name:
                return int(fields[2])
            used.add(int(fields[2]))
    uid = FIRST_UID
    while uid in used:
        uid += 1
    return uid


def with_entry(table: str, name: str, line: str) -> str:
    """/etc/passwd or /etc/group text with ``name``'s entry replaced by ``line`` (appended if absent)."""
    kept = [entry for entry in table.splitlines(keepends=True) if entry.split(":", 1)[0] != name]
    if kept and not kept[-1].endswith("\n"):
        kept[-1] += "\n"
    return "".join(kept) + line


def with_subids(table: str, name: str, count: int = 65536) -> str:
    """/etc/subuid or /etc/subgid text in which ``name`` has ``count`` ids after every range there (as useradd
    gives them), unless it has some already."""
    ranges = [line.split(":") for line in table.splitlines() if line.count(":") == 2]
    if any(fields[0] == name for fields in ranges):
        return table
    top = max([100000, *(int(start) + int(n) for _, start, n in ranges if start.isdigit() and n.isdigit())])
    return table + ("\n" if table and not table.endswith("\n") else "") + f"{name}:{top}:{count}\n"


def prepare_layout(
    layout: NamespaceLayout,
    os_: NodeOS,
    uid: int,
    *,
    authorized_key: str,
    slurm_files: dict[str, str],
    cfnconfig: str,
    host_etc: Path = Path("/etc"),
    slurm_bin: Path = Path("/usr/bin"),
    aws: str = "/usr/bin/aws",
    node_names: tuple[str, ...] = (),
    etc_files: Mapping[str, str] | None = None,
) -> None:
    """Write the namespace's layers anew (the home and the shared storage are kept across restarts);
    ``etc_files``: more files of the node's /etc (relative paths), e.g. its container configuration."""
    for layer in (layout.etc, layout.usr_bin, layout.usr_local, layout.root / "work", layout.opt / "slurm"):
        shutil.rmtree(layer, ignore_errors=True)
    _write_etc(layout, os_, uid, cfnconfig, host_etc)
    for relative, text in (etc_files or {}).items():
        target = layout.etc / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        target.chmod(0o644)
    # The nodes' names resolve on the head node, as in a VPC's DNS: each to an address of its own on this
    # machine's loopback (its sshd listens there; its slurmd on a port of its own).
    hosts = (host_etc / "hosts").read_text() if (host_etc / "hosts").exists() else ""
    (layout.etc / "hosts").write_text(
        hosts + "".join(f"{node_address(i)}\t{name}\n" for i, name in enumerate(node_names))
    )
    (layout.etc / "hosts").chmod(0o644)
    _write_slurm(layout, slurm_files, slurm_bin)
    (layout.usr_local / "bin").mkdir(parents=True)
    (layout.usr_local / "bin" / "aws").write_text(aws_shim(aws))
    (layout.usr_local / "bin" / "aws").chmod(0o755)
    layout.shared.mkdir(parents=True, exist_ok=True)
    layout.shared.chmod(0o755)
    _write_home(layout, os_, uid, authorized_key)


def _write_etc(layout: NamespaceLayout, os_: NodeOS, uid: int, cfnconfig: str, host_etc: Path) -> None:
    etc = layout.etc
    (etc / "profile.d").mkdir(parents=True)
    (etc / "parallelcluster").mkdir()
    (etc / "passwd").write_text(with_entry((host_etc / "passwd").read_text(), os_.user, passwd_line(os_, uid)))
    (etc / "group").write_text(with_entry((host_etc / "group").read_text(), os_.user, group_line(os_, uid)))
    # Rootless podman maps a container's users onto the login user's subordinate ids, which useradd gives it.
    for name in ("subuid", "subgid"):
        host = host_etc / name
        (etc / name).write_text(with_subids(host.read_text() if host.exists() else "", os_.user))
    for name in ("passwd", "group", "subuid", "subgid"):
        (etc / name).chmod(0o644)
    (etc / "profile.d" / "slurm.sh").symlink_to("/opt/slurm/etc/slurm.sh")  # as recipes/config.rb links it
    (etc / "slurm").symlink_to("/opt/slurm/etc")  # where Debian's Slurm looks: no SLURM_CONF needed
    (etc / "parallelcluster" / "cfnconfig").write_text(cfnconfig)
    if os_.family == "rhel":
        (etc / "bashrc").write_text(etc_bashrc())


def _write_slurm(layout: NamespaceLayout, slurm_files: dict[str, str], slurm_bin: Path) -> None:
    bin_dir = layout.opt / "slurm" / "bin"
    bin_dir.mkdir(parents=True)
    layout.slurm_etc.mkdir(parents=True)
    layout.usr_bin.mkdir(parents=True)
    for command in SLURM_COMMANDS:
        source = slurm_bin / command
        if not source.exists():
            continue
        shutil.copy2(source, bin_dir / command)
        # A whiteout (a 0/0 character device) in an overlay's upper layer hides the lower file.
        os.mknod(layout.usr_bin / command, stat.S_IFCHR | 0o000, os.makedev(0, 0))
    for name, text in {"slurm.sh": slurm_profile(), **slurm_files}.items():
        (layout.slurm_etc / name).write_text(text)
        (layout.slurm_etc / name).chmod(0o644)


def _write_home(layout: NamespaceLayout, os_: NodeOS, uid: int, authorized_key: str) -> None:
    home = layout.user_home(os_)
    ssh_dir = home / ".ssh"
    ssh_dir.mkdir(parents=True, exist_ok=True)
    for name, text in user_dotfiles(os_).items():
        if not (home / name).exists():  # the user's own edits survive a restart
            (home / name).write_text(text)
    (ssh_dir / "authorized_keys").write_text(authorized_key)
    layout.home.chmod(0o755)
    for path in (home, ssh_dir, *home.iterdir(), *ssh_dir.iterdir()):
        os.chown(path, uid, uid, follow_symlinks=False)
    home.chmod(0o700)
    ssh_dir.chmod(0o700)


def own_cgroup(controller: str, proc_cgroup: str) -> str:
    """This process's cgroup path for a v1 ``controller``, from /proc/self/cgroup's text."""
    for line in proc_cgroup.splitlines():
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            return path.rstrip("/")
    raise SandboxError(
        f"no cgroup v1 '{controller}' controller on this machine",
        "the sandbox's nodes need cgroup v1 (memory, cpuset, freezer, devices, pids)",
    )


def node_cgroup_dirs(name: str, proc_cgroup: str, root: Path = CGROUP_ROOT) -> dict[str, Path]:
    return {c: root / c / own_cgroup(c, proc_cgroup).lstrip("/") / name for c in NODE_CONTROLLERS}

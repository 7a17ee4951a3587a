"""The sandbox's files (one root per sandbox) and its sshd_config, rendered from a spec."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cluster_tools.render.templates import render_template


@dataclass(frozen=True)
class SandboxPaths:
    """Every file of one sandbox, under one root (the state dir's ``sandbox/``), but its sockets.

    Sockets live in ``runtime``, a short 0755 dir under /tmp: a unix socket path must fit in 108 bytes
    (slurmd's spool holds one per job step), and munged insists that every directory above its socket
    be enterable by all, which a 0700 home or pytest's tmp dirs are not.
    """

    root: Path
    runtime: Path

    @property
    def etc(self) -> Path:
        return self.root / "etc"

    @property
    def keys(self) -> Path:
        return self.root / "keys"

    @property
    def run(self) -> Path:
        return self.root / "run"

    @property
    def log(self) -> Path:
        return self.root / "log"

    @property
    def munge_socket(self) -> Path:
        return self.runtime / "munge.socket"

    @property
    def munge_key(self) -> Path:
        return self.keys / "munge.key"

    @property
    def slurm_state(self) -> Path:
        return self.root / "slurm" / "state"

    @property
    def slurmd_spool(self) -> Path:
        return self.runtime / "spool"

    @property
    def node_fs(self) -> Path:
        """The head node's filesystem layers (services/sandbox_namespace.NamespaceLayout's root)."""
        return self.root / "node"

    @property
    def slurm_etc(self) -> Path:
        """/opt/slurm/etc as the sandbox's nodes see it, at a path that is the same inside and outside."""
        return self.node_fs / "opt" / "slurm" / "etc"

    @property
    def slurm_conf(self) -> Path:
        return self.slurm_etc / "slurm.conf"

    @property
    def bin(self) -> Path:
        """The programs slurmctld runs (ResumeProgram, SuspendProgram) and the nodes' cgroup parents."""
        return self.root / "bin"

    @property
    def sshd_config(self) -> Path:
        return self.etc / "sshd_config"

    @property
    def ssh_host_key(self) -> Path:
        return self.keys / "ssh_host_ed25519_key"

    @property
    def user_key(self) -> Path:
        return self.keys / "id_ed25519"

    @property
    def authorized_keys(self) -> Path:
        return self.keys / "authorized_keys"

    @property
    def state_file(self) -> Path:
        return self.root / "sandbox.json"


@dataclass(frozen=True)
class SandboxSpec:
    """What the head node's sshd is configured with."""

    paths: SandboxPaths
    user: str
    ssh_port: int
    node_env: dict[str, str] = field(default_factory=dict)
    node: bool = False  # a compute node's: address, port, host key and pid file are given as it boots


def render_sshd_config(spec: SandboxSpec) -> str:
    return render_template(
        "sandbox/sshd_config.j2", **{name: getattr(spec, name) for name in spec.__dataclass_fields__}
    )

"""The sandbox's slurm.conf and sshd_config, rendered from a spec."""

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
    def slurm_conf(self) -> Path:
        return self.etc / "slurm.conf"

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
    """What the sandbox's daemons are configured with."""

    paths: SandboxPaths
    user: str
    cpus: int
    real_memory_mb: int
    slurmctld_port: int
    slurmd_port: int
    ssh_port: int
    max_array_size: int = 1001
    max_job_count: int = 100_000
    min_job_age: int = 10
    partition: str = "compute"
    node_name: str = "localhost"
    oversubscribe: int = 32
    node_env: dict[str, str] = field(default_factory=dict)
    memory_scheduling: bool = False
    requeue_delay: int = 70


def render_slurm_conf(spec: SandboxSpec) -> str:
    return render_template("sandbox/slurm.conf.j2", **_values(spec))


def render_sshd_config(spec: SandboxSpec) -> str:
    return render_template("sandbox/sshd_config.j2", **_values(spec))


def _values(spec: SandboxSpec) -> dict[str, object]:
    return {name: getattr(spec, name) for name in spec.__dataclass_fields__}

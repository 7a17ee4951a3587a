"""`clustertools ssh-config`: the OpenSSH block of a cluster, printed or written into ~/.ssh/config."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from cluster_tools.errors import ConfigError, HostKeyMismatch, TransportError
from cluster_tools.model.clusters.cluster_record import ClusterRecord
from cluster_tools.render.ssh_host_block import SSHConfigSpec, merge_into_config, render_ssh_config
from cluster_tools.transport.remote_shell import ShellFactory


def cluster_ssh_config(
    record: ClusterRecord,
    *,
    alias: str | None = None,
    list_nodes: bool = True,
    connect: ShellFactory,
    note: Callable[[str], None] = lambda _: None,
) -> str:
    """The Host blocks of ``record``; with ``list_nodes``, one per compute node Slurm knows (one SSH
    round trip; when the cluster cannot be reached, the head node's block alone, with a note)."""
    from cluster_tools.services.remote.cluster_shell import node_target

    nodes: tuple[str, ...] = ()
    if list_nodes:
        try:
            with connect(record) as conn:
                result = conn.run(["sinfo", "-h", "-N", "-o", "%N"], timeout=60)
            if result.exit_code == 0:
                nodes = tuple(dict.fromkeys(line.strip() for line in result.text.splitlines() if line.strip()))
            else:
                note(f"sinfo failed on {record.name}: compute nodes left out")
        except HostKeyMismatch:
            raise
        except TransportError as exc:
            note(f"{exc.message}: compute nodes left out (the head node's block is complete)")
    identity = record.identity_file.expanduser().absolute() if record.identity_file else None
    return render_ssh_config(
        SSHConfigSpec(
            alias=alias or record.name,
            host=record.host,
            port=record.port,
            user=record.user,
            known_hosts=record.known_hosts.expanduser().absolute(),
            identity_file=identity,
            nodes=nodes,
            node_port=node_target(record, "node").port,
        )
    )


def write_ssh_config(path: Path, alias: str, block: str) -> bool:
    """Put ``block`` between the cluster's markers in ``path`` (made 0600 if new, through a symlink);
    returns False when the file already says exactly that."""
    target = path.expanduser()
    target = target.resolve() if target.is_symlink() else target
    try:
        existing = target.read_text(encoding="utf-8") if target.exists() else ""
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {target}: {exc}") from None
    merged = merge_into_config(existing, alias, block)
    if merged == existing:
        return False
    try:
        if not target.parent.exists():
            target.parent.mkdir(parents=True, mode=0o700)
        mode = target.stat().st_mode & 0o777 if target.exists() else 0o600
        fd, tmp = tempfile.mkstemp(prefix=".config.", dir=target.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(merged)
            os.chmod(tmp, mode)
            os.replace(tmp, target)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError as exc:
        raise ConfigError(f"cannot write {target}: {exc.strerror or exc}") from None
    return True

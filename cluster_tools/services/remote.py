"""Run commands on a cluster's head node."""

from __future__ import annotations

from typing import IO, Callable, Sequence

from cluster_tools.clusters import ClusterRecord
from cluster_tools.transport.ssh import SSHConnection, SSHTarget


def ssh_target(record: ClusterRecord) -> SSHTarget:
    return SSHTarget(
        host=record.host,
        port=record.port,
        user=record.user,
        known_hosts=record.known_hosts,
        identity_file=record.identity_file,
    )


def connect(record: ClusterRecord, *, on_new_host_key: Callable[[str, str], None] | None = None) -> SSHConnection:
    """Open one SSH connection to the head node; the host key is pinned or checked."""
    return SSHConnection(ssh_target(record), on_new_host_key=on_new_host_key)


def run_on_head_node(
    record: ClusterRecord,
    argv: Sequence[str],
    *,
    stdout: IO[bytes],
    stderr: IO[bytes],
    stdin: IO[bytes] | None,
    on_new_host_key: Callable[[str, str], None] | None = None,
) -> int:
    """Run ``argv`` (each word quoted) on the head node, streaming its output; returns its exit code."""
    with connect(record, on_new_host_key=on_new_host_key) as conn:
        return conn.stream(argv, stdout=stdout, stderr=stderr, stdin=stdin)

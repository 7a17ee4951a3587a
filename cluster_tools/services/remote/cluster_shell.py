"""Run commands and interactive shells on a cluster's head node, or on a compute node through it."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import IO, TYPE_CHECKING

from cluster_tools.model.clusters.cluster_record import ClusterRecord
from cluster_tools.model.names import NODE_NAME
from cluster_tools.store.cluster_store import remember_pinned_key
from cluster_tools.store.state_dir import StateDir

if TYPE_CHECKING:
    from cluster_tools.transport.ssh import SSHConnection, SSHTarget
    from cluster_tools.transport.ssh_session import LocalTerminal


def ssh_target(record: ClusterRecord) -> SSHTarget:
    from cluster_tools.transport.ssh import SSHTarget  # paramiko: loaded when a cluster is reached, not before

    return SSHTarget(
        host=record.host,
        port=record.port,
        user=record.user,
        known_hosts=record.known_hosts,
        identity_file=record.identity_file,
        pinned_key=record.host_key or "",
        repin=record.repin_hint,
    )


def connect(
    record: ClusterRecord,
    *,
    on_new_host_key: Callable[[str, str], None] | None = None,
    connect_timeout: float = 15.0,
    expected_fingerprints: frozenset[str] = frozenset(),
) -> SSHConnection:
    """Open one SSH connection to the head node; the host key is pinned or checked. The one way services
    reach a cluster (a ``ShellFactory``: callers may pass another, e.g. a test's stand-in).

    The first connection that pins (or checks a key pinned before the record kept one) writes the key
    into the cluster's record: from then on, a known_hosts file that lost it is refused, not re-learned.
    ``expected_fingerprints``: a first contact accepts only a key of these (e.g. from the EC2 console).
    """
    target = ssh_target(record)
    if expected_fingerprints:
        target = replace(target, expected_fingerprints=expected_fingerprints)
    from cluster_tools.transport.ssh import SSHConnection

    conn = SSHConnection(target, on_new_host_key=on_new_host_key, connect_timeout=connect_timeout)
    if record.host_key is None:
        state = StateDir(record.known_hosts.parent.parent)
        if state.known_hosts(record.name) == record.known_hosts:  # the record's own state dir
            # On OSError the key stays pinned in known_hosts; only the record's memory of it is missing.
            with contextlib.suppress(OSError):
                remember_pinned_key(state, record, conn.server_key)
    return conn


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


def node_target(record: ClusterRecord, node: str) -> SSHTarget:
    """How the head node reaches a compute node's sshd: the same user, key and pinned-keys file.

    Port 22, but in the sandbox, whose nodes are on this machine and are reached at the head node's sshd
    (the sandbox's own port). The node's key is pinned under its own name (``[node]:port``).
    """
    from cluster_tools.transport.ssh import SSHTarget

    NODE_NAME.check(node)
    return SSHTarget(
        host=node,
        port=record.port if record.sandbox else 22,
        user=record.user,
        known_hosts=record.known_hosts,
        identity_file=record.identity_file,
    )


def interactive_shell(
    record: ClusterRecord,
    command: Sequence[str] | str | None,
    terminal: LocalTerminal,
    *,
    node: str | None = None,
    force_pty: bool | None = None,
    on_new_host_key: Callable[[str, str], None] | None = None,
    on_no_pty: Callable[[], None] | None = None,
) -> int:
    """A shell (or ``command``) on the head node, or on ``node`` through it; returns its exit status.

    A pty when stdin is a terminal (or ``force_pty``); ``on_no_pty`` is called when a shell gets none.
    """
    from cluster_tools.transport.ssh import command_line
    from cluster_tools.transport.ssh_session import wants_pty

    pty = wants_pty(terminal, force_pty)
    line = None if command is None else command_line(command)
    hop_target = node_target(record, node) if node is not None else None  # checked before connecting
    with connect(record, on_new_host_key=on_new_host_key) as head:
        if hop_target is None:
            return head.session(line, terminal, pty=pty, on_start=None if pty else on_no_pty)
        with head.jump(hop_target, on_new_host_key=on_new_host_key) as hop:
            return hop.session(line, terminal, pty=pty, on_start=None if pty else on_no_pty)

"""The one seam between services and a cluster: what a service may do over a connection to its head node.

``SSHConnection`` satisfies ``RemoteShell`` as it is (structurally); a test hands in the real sandbox
connection, or a stand-in with the same methods. Services never build a connection themselves: they are
given a ``ShellFactory`` (``services.remote.cluster_shell.connect`` unless a caller passes another).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import IO, TYPE_CHECKING, Protocol, Self

if TYPE_CHECKING:
    from cluster_tools.model.clusters.cluster_record import ClusterRecord
    from cluster_tools.transport.sftp_files import RemoteFiles
    from cluster_tools.transport.ssh import RemoteResult
    from cluster_tools.transport.ssh_session import LocalTerminal


class RemoteShell(Protocol):
    """An open connection to a head node: run commands, write files, close. Use as a context manager."""

    def run(
        self, argv: Sequence[str] | str, *, stdin: bytes | None = None, timeout: float | None = 60.0
    ) -> RemoteResult:
        """Run a command (a list is quoted word by word) in a login shell; capture its output."""
        ...

    def stream(
        self,
        argv: Sequence[str] | str,
        *,
        stdout: IO[bytes],
        stderr: IO[bytes],
        stdin: IO[bytes] | None = None,
        timeout: float | None = None,
    ) -> int:
        """Run a command, copying its output as it comes; returns its exit code."""
        ...

    def put_files(self, files: dict[str, tuple[bytes, int]]) -> None:
        """Write ``{absolute path: (content, mode)}``; each file lands whole."""
        ...

    def session(
        self,
        command: str | None,
        terminal: LocalTerminal,
        *,
        pty: bool,
        on_start: Callable[[], None] | None = None,
    ) -> int:
        """``command`` (None: the login shell) wired to the local ``terminal``; returns the remote exit status."""
        ...

    def files(self) -> RemoteFiles:
        """A file session (stat, walk, upload, download) over this connection; the caller closes it."""
        ...

    @property
    def server_key(self) -> str:
        """The host key this connection was made with: ``type SHA256:...``."""
        ...

    def close(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc: object) -> None: ...


HostKeyListener = Callable[[str, str], None]  # (host, "type SHA256:...") when a host key is pinned at first contact


class ShellFactory(Protocol):
    """How a service reaches a cluster's head node: one call, one open connection."""

    def __call__(self, record: ClusterRecord, *, on_new_host_key: HostKeyListener | None = None) -> RemoteShell: ...


class LentShell:
    """A connection that is already open, lent out: every call goes to it, and leaving a ``with`` keeps it open
    (its owner closes it)."""

    def __init__(self, conn: RemoteShell) -> None:
        self._conn = conn

    def run(
        self, argv: Sequence[str] | str, *, stdin: bytes | None = None, timeout: float | None = 60.0
    ) -> RemoteResult:
        return self._conn.run(argv, stdin=stdin, timeout=timeout)

    def stream(
        self,
        argv: Sequence[str] | str,
        *,
        stdout: IO[bytes],
        stderr: IO[bytes],
        stdin: IO[bytes] | None = None,
        timeout: float | None = None,
    ) -> int:
        return self._conn.stream(argv, stdout=stdout, stderr=stderr, stdin=stdin, timeout=timeout)

    def put_files(self, files: dict[str, tuple[bytes, int]]) -> None:
        self._conn.put_files(files)

    def session(
        self,
        command: str | None,
        terminal: LocalTerminal,
        *,
        pty: bool,
        on_start: Callable[[], None] | None = None,
    ) -> int:
        return self._conn.session(command, terminal, pty=pty, on_start=on_start)

    def files(self) -> RemoteFiles:
        return self._conn.files()

    @property
    def server_key(self) -> str:
        return self._conn.server_key

    def close(self) -> None:
        """Nothing: the owner closes the connection."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def lent(conn: RemoteShell) -> ShellFactory:
    """A ShellFactory that hands out the open ``conn`` for every cluster record, never closing it."""

    def factory(record: ClusterRecord, *, on_new_host_key: HostKeyListener | None = None) -> RemoteShell:
        return LentShell(conn)

    return factory

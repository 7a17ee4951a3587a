"""SSH to a cluster's head node over paramiko, with pinned host keys.

One ``SSHConnection`` is one TCP connection; run as many commands over it as needed. Host keys live
in a per-cluster known_hosts file: recorded at first contact (the caller is told the fingerprint),
checked on every later contact, and a mismatch is refused. Opening the socket, the pin policy and the
refusals a handshake can meet are in ssh_connect.py.
"""

from __future__ import annotations

import logging
import re
import select
import shlex
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Protocol

import paramiko

from cluster_tools.errors import HostKeyMismatch, TransportError
from cluster_tools.transport.ssh_connect import PinOnFirstContact, fingerprint, open_socket, refusal

if TYPE_CHECKING:
    from cluster_tools.transport.sftp_files import RemoteFiles
    from cluster_tools.transport.ssh_session import LocalTerminal


@dataclass(frozen=True)
class SSHTarget:
    host: str
    port: int
    user: str
    known_hosts: Path
    identity_file: Path | None = None
    # When the host's key is not pinned yet: accept it at first contact only if its SHA256 fingerprint is
    # one of these (e.g. printed on the EC2 console); empty = trust on first use.
    expected_fingerprints: frozenset[str] = frozenset()
    # The key pinned for this host before (``type SHA256:...``): when known_hosts no longer holds it (the file
    # was emptied or deleted), the connection is refused instead of trusting a new key; ``repin`` says how.
    pinned_key: str = ""
    repin: str = ""

    @property
    def label(self) -> str:
        return f"{self.user}@{self.host}:{self.port}"


@dataclass(frozen=True)
class RemoteResult:
    command: str
    exit_code: int
    stdout: bytes
    stderr: bytes

    @property
    def text(self) -> str:
        return self.stdout.decode("utf-8", "replace")

    def check(self) -> RemoteResult:
        if self.exit_code != 0:
            err = self.stderr.decode("utf-8", "replace").strip()
            missing = missing_command(err) if self.exit_code == 127 else None
            raise TransportError(
                f"remote command failed with exit code {self.exit_code}: {self.command}"
                + (f": {err.splitlines()[-1]}" if err else ""),
                f"`{missing}` is not on the PATH of a login shell there: is it installed?" if missing else None,
                command=self.command,
                exit_code=self.exit_code,
                stderr=err,
            )
        return self


_NOT_FOUND = re.compile(r"(?:bash: (?:line \d+: )?)?(?P<name>[^\s:]+): command not found")


def missing_command(stderr: str) -> str | None:
    """The program a shell could not find (exit 127's ``NAME: command not found``), if it says so."""
    found = _NOT_FOUND.search(stderr)
    return found["name"] if found else None


def ssh_config_lookup(text: str, host: str) -> dict[str, object]:
    """What an ~/.ssh/config text says for ``host``, by OpenSSH's rules as paramiko reads them: lower-case keys
    (``hostname``, ``user``, ``port``, ``identityfile``: a list), only those the text sets."""
    return dict(paramiko.SSHConfig.from_text(text).lookup(host))


def command_line(argv: Sequence[str] | str) -> str:
    """A remote shell line: a string is sent as it is; a list is quoted word by word."""
    return argv if isinstance(argv, str) else shlex.join(argv)


def login_shell(command: str) -> str:
    """``command`` run by a login shell, as every command clustertools sends is.

    On a ParallelCluster node Slurm is only on the PATH of a shell that reads /etc/profile.d/slurm.sh, and
    Ubuntu's ~/.bashrc returns at once when not interactive: a plain ``ssh head sbatch`` fails there with
    "command not found". ParallelCluster's own integration tests send every command the same way
    (aws-parallelcluster tests/integration-tests/remote_command_executor.py: ``/bin/bash --login -c``);
    on other Slurm clusters a login shell is also where `module load slurm` and site PATHs live.
    """
    return f"/bin/bash --login -c {shlex.quote(command)}"


class SSHConnection:
    """An open SSH connection to a target. Use as a context manager."""

    def __init__(
        self,
        target: SSHTarget,
        *,
        connect_timeout: float = 15.0,
        on_new_host_key: Callable[[str, str], None] | None = None,
        sock: paramiko.Channel | None = None,
    ) -> None:
        """``sock``: an open channel to run this connection over (a hop through another connection)."""
        self.target = target
        # paramiko's transport thread logs socket errors (e.g. while a refused connection is torn down);
        # with no handler Python would print them beside our one-line error. --debug can add one.
        paramiko_log = logging.getLogger("paramiko")
        if not paramiko_log.handlers:
            paramiko_log.addHandler(logging.NullHandler())
        self._client = paramiko.SSHClient()
        if target.known_hosts.exists():
            self._client.load_host_keys(str(target.known_hosts))
        self._client.set_missing_host_key_policy(
            PinOnFirstContact(
                target.known_hosts, on_new_host_key, target.expected_fingerprints, bool(target.pinned_key)
            )
        )
        self._connect(connect_timeout, sock)

    def _connect(self, timeout: float, tunnel: paramiko.Channel | None) -> None:
        t = self.target
        sock = tunnel if tunnel is not None else open_socket(t, timeout)
        try:
            self._client.connect(
                t.host,
                port=t.port,
                username=t.user,
                key_filename=str(t.identity_file) if t.identity_file else None,
                allow_agent=t.identity_file is None,
                look_for_keys=t.identity_file is None,
                sock=sock,
                timeout=timeout,
                banner_timeout=timeout,
                auth_timeout=timeout,
            )
        except (paramiko.SSHException, OSError, EOFError) as exc:
            self._client.close()  # stops paramiko's transport thread before the socket goes
            refused = refusal(exc, t)
            if refused is not None:
                raise refused from None
            sock.close()
            raise TransportError(f"SSH to {t.label} failed: {exc}", "is sshd running on the head node?") from None

    def __enter__(self) -> SSHConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    @property
    def server_key(self) -> str:
        """The host key this connection was made with: ``type SHA256:...``."""
        transport = self._client.get_transport()
        key = transport.get_remote_server_key() if transport is not None else None
        return f"{key.get_name()} {fingerprint(key)}" if key is not None else ""

    def put_files(self, files: dict[str, tuple[bytes, int]]) -> None:
        """Write ``{absolute path: (content, mode)}`` over SFTP; each lands whole (temp name + rename).

        Parent directories must exist (make them with one ``mkdir -p`` first: one round trip, not N).
        """
        try:
            sftp = self._client.open_sftp()
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise TransportError(f"cannot open SFTP to {self.target.label}: {exc}") from None
        try:
            for path, (content, mode) in files.items():
                tmp = f"{path}.part"
                with sftp.open(tmp, "wb") as handle:
                    handle.set_pipelined(True)
                    handle.write(content)
                sftp.chmod(tmp, mode)
                sftp.posix_rename(tmp, path)
        except (OSError, paramiko.SSHException, EOFError) as exc:
            raise TransportError(f"uploading to {self.target.label} failed: {exc}", "is the disk full?") from None
        finally:
            sftp.close()

    def jump(
        self,
        target: SSHTarget,
        *,
        on_new_host_key: Callable[[str, str], None] | None = None,
        connect_timeout: float = 15.0,
    ) -> SSHConnection:
        """A connection to ``target`` (e.g. a compute node) tunnelled through this one, like ProxyJump.

        Its host key is checked against ``target.known_hosts`` (pinned there at first contact) under
        its own name as this host resolves it, never taken from this connection's key.
        """
        transport = self._client.get_transport()
        if transport is None or not transport.is_active():
            raise TransportError(f"the SSH connection to {self.target.label} was closed")
        try:
            channel = transport.open_channel(
                "direct-tcpip", (target.host, target.port), ("127.0.0.1", 0), timeout=connect_timeout
            )
        except (paramiko.SSHException, OSError, EOFError) as exc:
            reason = exc.text if isinstance(exc, paramiko.ChannelException) else exc
            raise TransportError(
                f"{self.target.label} cannot open a connection to {target.host}:{target.port}: {reason}",
                "is the node up and its name right? `clustertools ssh -- sinfo -N` lists the nodes",
            ) from None
        try:
            return SSHConnection(target, connect_timeout=connect_timeout, on_new_host_key=on_new_host_key, sock=channel)
        except HostKeyMismatch as exc:
            name = target.host if target.port == 22 else f"[{target.host}]:{target.port}"
            raise HostKeyMismatch(
                exc.message,
                f"a compute node gets a new key when it is replaced (ParallelCluster scales nodes down and up); "
                f"if {target.host} was, forget its old key: ssh-keygen -R '{name}' -f {target.known_hosts}",
            ) from None

    def open_shell(self, command: str | None, *, pty: tuple[str, int, int] | None) -> paramiko.Channel:
        """A session channel running ``command`` (None: the login shell), with a pty of
        ``(term, columns, rows)`` when ``pty`` is given. The caller pumps and closes it."""
        transport = self._client.get_transport()
        if transport is None or not transport.is_active():
            raise TransportError(f"the SSH connection to {self.target.label} was closed", command=command)
        try:
            channel = transport.open_session()
            if pty is not None:
                term, columns, rows = pty
                channel.get_pty(term=term, width=columns, height=rows)
            if command is None:
                channel.invoke_shell()
            else:
                channel.exec_command(login_shell(command))
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise TransportError(f"cannot start a session on {self.target.label}: {exc}", command=command) from None
        return channel

    def sftp(self) -> paramiko.SFTPClient:
        """An SFTP session over this connection; the caller closes it."""
        try:
            return self._client.open_sftp()
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise TransportError(
                f"cannot open SFTP to {self.target.label}: {exc}", "does the server run an sftp subsystem?"
            ) from None

    def session(
        self,
        command: str | None,
        terminal: LocalTerminal,
        *,
        pty: bool,
        on_start: Callable[[], None] | None = None,
    ) -> int:
        """``command`` (None: the login shell) wired to the local ``terminal``, as OpenSSH's client runs it;
        returns the remote exit status."""
        from cluster_tools.transport.ssh_session import run_session

        return run_session(self, command, terminal, pty=pty, on_start=on_start)

    def files(self) -> RemoteFiles:
        """A file session (stat, walk, upload, download) over this connection; the caller closes it."""
        from cluster_tools.transport.sftp_files import RemoteFiles

        return RemoteFiles(self)

    def _alive(self) -> bool:
        transport = self._client.get_transport()
        return transport is not None and transport.is_active()

    def _open(self, command: str) -> paramiko.Channel:
        transport = self._client.get_transport()
        if transport is None or not transport.is_active():
            raise TransportError(f"the SSH connection to {self.target.label} was closed", command=command)
        try:
            channel = transport.open_session()
            channel.exec_command(login_shell(command))
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise TransportError(f"cannot run a command on {self.target.label}: {exc}", command=command) from None
        return channel

    def run(
        self, argv: Sequence[str] | str, *, stdin: bytes | None = None, timeout: float | None = 60.0
    ) -> RemoteResult:
        """Run a command, capture its output. Exceeding ``timeout`` seconds is a TransportError."""
        command = command_line(argv)
        out, err = _Collector(), _Collector()
        code = self._pump(command, out, err, stdin_bytes=stdin, stdin_stream=None, timeout=timeout)
        return RemoteResult(command, code, out.data(), err.data())

    def stream(
        self,
        argv: Sequence[str] | str,
        *,
        stdout: IO[bytes],
        stderr: IO[bytes],
        stdin: IO[bytes] | None = None,
        timeout: float | None = None,
    ) -> int:
        """Run a command, copying its output as it comes; returns its exit code (255 if killed)."""
        return self._pump(command_line(argv), stdout, stderr, stdin_bytes=None, stdin_stream=stdin, timeout=timeout)

    def _pump(
        self,
        command: str,
        stdout: _Sink,
        stderr: _Sink,
        *,
        stdin_bytes: bytes | None,
        stdin_stream: IO[bytes] | None,
        timeout: float | None,
    ) -> int:
        channel = self._open(command)
        try:
            if stdin_bytes is not None:
                channel.sendall(stdin_bytes)
                channel.shutdown_write()
            elif stdin_stream is not None:
                threading.Thread(target=_feed, args=(stdin_stream, channel), daemon=True).start()
            else:
                channel.shutdown_write()
            deadline = None if timeout is None else time.monotonic() + timeout
            # Read to EOF, not to the exit status: OpenSSH may send the status before the last data.
            while True:
                drained = False
                while channel.recv_ready():
                    stdout.write(channel.recv(65536))
                    drained = True
                while channel.recv_stderr_ready():
                    stderr.write(channel.recv_stderr(65536))
                    drained = True
                if drained:
                    stdout.flush()
                    stderr.flush()
                if (
                    (channel.eof_received or channel.closed)
                    and not channel.recv_ready()
                    and not channel.recv_stderr_ready()
                ):
                    break
                if deadline is not None and time.monotonic() > deadline:
                    raise TransportError(
                        f"remote command did not finish within {timeout:g} s: {command}", command=command
                    )
                select.select([channel], [], [], 0.5)
            if not channel.status_event.wait(30) or (channel.exit_status < 0 and not self._alive()):
                raise TransportError(f"the connection to {self.target.label} dropped", command=command)
            code = channel.recv_exit_status()
            return 255 if code < 0 else code
        finally:
            channel.close()


class _Sink(Protocol):
    """Where _pump writes a stream: a binary file, or a _Collector."""

    def write(self, data: bytes, /) -> object: ...

    def flush(self) -> object: ...


class _Collector:
    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def write(self, data: bytes) -> None:
        self._parts.append(data)

    def flush(self) -> None:
        pass

    def data(self) -> bytes:
        return b"".join(self._parts)


def _feed(stream: IO[bytes], channel: paramiko.Channel) -> None:
    try:
        while chunk := stream.read1(65536) if hasattr(stream, "read1") else stream.read(65536):
            channel.sendall(chunk)
        channel.shutdown_write()
    except (OSError, EOFError, paramiko.SSHException):
        pass

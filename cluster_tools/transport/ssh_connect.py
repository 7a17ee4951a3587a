"""Making an SSH connection (for ``ssh.SSHConnection``): the TCP socket, the host-key pin policy, and the
refusals a failed handshake becomes (a changed, unexpected or lost host key; failed authentication).
"""

from __future__ import annotations

import base64
import hashlib
import socket
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import paramiko

from cluster_tools.errors import HostKeyMismatch, TransportError

if TYPE_CHECKING:
    from cluster_tools.transport.ssh import SSHTarget


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH's SHA256 fingerprint, as `ssh-keygen -l` prints it."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


class UnexpectedHostKey(paramiko.SSHException):
    def __init__(self, offered: str) -> None:
        super().__init__(offered)
        self.offered = offered


class PinLost(paramiko.SSHException):
    def __init__(self, offered: str) -> None:
        super().__init__(offered)
        self.offered = offered


class PinOnFirstContact(paramiko.MissingHostKeyPolicy):
    def __init__(
        self,
        path: Path,
        on_new_key: Callable[[str, str], None] | None,
        expected: frozenset[str] = frozenset(),
        pinned_before: bool = False,
    ) -> None:
        self.path = path
        self.on_new_key = on_new_key
        self.expected = expected
        self.pinned_before = pinned_before

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        if self.pinned_before:  # not a first contact: the pin was lost, and a lost pin is not re-learned
            raise PinLost(f"{key.get_name()} {fingerprint(key)}")
        if self.expected and fingerprint(key) not in self.expected:
            raise UnexpectedHostKey(f"{key.get_name()} {fingerprint(key)}")  # before anything is saved
        client.get_host_keys().add(hostname, key.get_name(), key)
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        client.save_host_keys(str(self.path))
        if self.on_new_key:
            self.on_new_key(hostname, f"{key.get_name()} {fingerprint(key)}")


def open_socket(t: SSHTarget, timeout: float) -> socket.socket:
    """A TCP connection to the target, Nagle off; unreachable is a TransportError with a hint."""
    try:
        sock = socket.create_connection((t.host, t.port), timeout=timeout)
    except OSError as exc:
        raise TransportError(
            f"cannot reach {t.label}: {exc.strerror or exc}",
            "is the cluster up, or stopped by its autostop (`clustertools start`)? `clustertools list` shows "
            "the known ones",
        ) from None
    # paramiko leaves Nagle on: each exec over the connection then waits ~40 ms for nothing.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def refusal(exc: BaseException, t: SSHTarget) -> TransportError | None:
    """The error a refused handshake is for the user (a host key not trusted, authentication failed), or
    None when ``exc`` is no refusal (the connection itself failed)."""
    if isinstance(exc, paramiko.BadHostKeyException):
        return HostKeyMismatch(
            f"host key of {t.label} has changed: pinned {fingerprint(exc.expected_key)}, "
            f"offered {fingerprint(exc.key)}; connection refused",
            f"if the server was really rebuilt, check the new key with its admin, then remove its line "
            f"from {t.known_hosts}",
        )
    if isinstance(exc, UnexpectedHostKey):
        return HostKeyMismatch(
            f"host key of {t.label} is not one its console output lists: offered {exc.offered}; connection refused",
            "something else answers at that address, or the instance was replaced: check it in the EC2 console",
        )
    if isinstance(exc, PinLost):
        return HostKeyMismatch(
            f"the host key pinned for {t.label} ({t.pinned_key}) is gone from {t.known_hosts} (emptied or "
            f"deleted); it offers {exc.offered}: connection refused, no new key trusted",
            t.repin or "if the key really changed, check it with the server's admin, then pin it again",
        )
    if isinstance(exc, paramiko.AuthenticationException):
        return TransportError(
            f"authentication to {t.label} failed",
            f"check the key {t.identity_file}" if t.identity_file else "load your key into ssh-agent",
        )
    return None

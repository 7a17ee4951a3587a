"""Files on the head node over SFTP: stat, walk, upload and download whole files (temp name + rename).

Paths are as SFTP sees them: relative ones start at the login's home directory. Every failure is a
TransportError naming the path.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat as stat_mode
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import paramiko

from cluster_tools.errors import TransportError
from cluster_tools.transport.ssh import SSHConnection

PART_SUFFIX = ".clustertools-part"
TransferProgress = Callable[[int, int], None]  # (bytes so far of this file, its size)


@dataclass(frozen=True)
class RemoteEntry:
    path: str
    size: int
    mode: int

    @property
    def is_dir(self) -> bool:
        return stat_mode.S_ISDIR(self.mode)

    @property
    def is_file(self) -> bool:
        return stat_mode.S_ISREG(self.mode)


class RemoteFiles:
    """One SFTP session over an open connection. Use as a context manager."""

    def __init__(self, conn: SSHConnection) -> None:
        self.label = conn.target.label
        self._sftp = conn.sftp()

    def __enter__(self) -> RemoteFiles:
        return self

    def __exit__(self, *exc: object) -> None:
        self._sftp.close()

    def _error(self, action: str, path: str, exc: BaseException) -> TransportError:
        if isinstance(exc, OSError) and exc.errno == errno.EACCES:
            return TransportError(f"{action} {path} on {self.label}: permission denied")
        reason = getattr(exc, "strerror", None) or exc
        return TransportError(f"{action} {path} on {self.label} failed: {reason}")

    def stat(self, path: str) -> RemoteEntry | None:
        """The entry (links followed), or None when nothing is there."""
        try:
            attr = self._sftp.stat(path)
        except FileNotFoundError:
            return None
        except (OSError, paramiko.SSHException, EOFError) as exc:
            raise self._error("reading", path, exc) from None
        return RemoteEntry(path, attr.st_size or 0, attr.st_mode or 0)

    def walk(self, root: str) -> list[RemoteEntry]:
        """Every file and directory under ``root`` (paths relative to it), parents before children.
        Symbolic links are followed to files; links to directories are not entered."""
        found: list[RemoteEntry] = []
        pending = [""]
        while pending:
            relative = pending.pop()
            directory = f"{root}/{relative}" if relative else root
            try:
                entries = self._sftp.listdir_attr(directory)
            except (OSError, paramiko.SSHException, EOFError) as exc:
                raise self._error("listing", directory, exc) from None
            for attr in sorted(entries, key=lambda a: a.filename):
                path = f"{relative}/{attr.filename}" if relative else attr.filename
                mode = attr.st_mode or 0
                if stat_mode.S_ISLNK(mode):
                    target = self.stat(f"{root}/{path}")
                    if target is None or not target.is_file:
                        continue  # a dangling link, or one to a directory: not followed
                    found.append(RemoteEntry(path, target.size, target.mode))
                elif stat_mode.S_ISDIR(mode):
                    found.append(RemoteEntry(path, 0, mode))
                    pending.append(path)
                elif stat_mode.S_ISREG(mode):
                    found.append(RemoteEntry(path, attr.st_size or 0, mode))
        return found

    def mkdir(self, path: str) -> None:
        try:
            self._sftp.mkdir(path)
        except OSError:
            if (entry := self.stat(path)) is not None and entry.is_dir:
                return
            raise self._error("creating the directory", path, OSError("cannot create it")) from None
        except (paramiko.SSHException, EOFError) as exc:
            raise self._error("creating the directory", path, exc) from None

    def upload(self, local: Path, remote: str, *, mode: int, progress: TransferProgress) -> None:
        """Copy a local file to ``remote``: written beside it under a temp name, then renamed over it."""
        part = remote + PART_SUFFIX
        try:
            self._sftp.put(str(local), part, callback=progress, confirm=True)
            self._sftp.chmod(part, mode & 0o7777)
            self._sftp.posix_rename(part, remote)
        except FileNotFoundError as exc:
            raise self._error("writing", remote, exc) from None
        except (OSError, paramiko.SSHException, EOFError) as exc:
            self._remove_quietly(part)
            raise self._error("writing", remote, exc) from None

    def download(self, remote: str, local: Path, *, mode: int, progress: TransferProgress) -> None:
        """Copy ``remote`` to a local file: written beside it under a temp name, then renamed over it."""
        part = local.with_name(local.name + PART_SUFFIX)
        try:
            self._sftp.get(remote, str(part), callback=progress)
            os.chmod(part, mode & 0o7777)
            os.replace(part, local)
        except (OSError, paramiko.SSHException, EOFError) as exc:
            part.unlink(missing_ok=True)
            raise self._error("reading", remote, exc) from None

    def _remove_quietly(self, path: str) -> None:
        with contextlib.suppress(OSError, paramiko.SSHException, EOFError):
            self._sftp.remove(path)

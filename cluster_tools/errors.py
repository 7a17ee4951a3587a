"""The one error family of clustertools.

Every failure a user can act on is a ``ClusterToolsError`` with a message and a hint; the CLI turns it
into one ``Error: ...`` line and a non-zero exit. Anything else is a bug and shows a traceback only
with ``--debug``.
"""

from __future__ import annotations


class ClusterToolsError(Exception):
    """Root of all errors a user can act on."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def one_line(self) -> str:
        """The message and hint as one line, newlines folded so the line stays one line."""
        text = self.message if not self.hint else f"{self.message} (hint: {self.hint})"
        return " ".join(text.split("\n"))


class ConfigError(ClusterToolsError):
    """The project file or a cluster record is missing or invalid."""


class ClusterNotFound(ClusterToolsError):
    """No cluster of that name is known, or none was given and none can be chosen."""


class ClusterStopped(ClusterToolsError):
    """The cluster takes no new job: its partitions are INACTIVE (autostop, or a stopped compute fleet)."""


class MissingDependency(ClusterToolsError):
    """A program or package the command needs is not installed."""


class SandboxError(ClusterToolsError):
    """The local sandbox could not be started, inspected or stopped."""


class TransportError(ClusterToolsError):
    """A remote operation failed; carries what was run, its exit code and stderr."""

    def __init__(
        self,
        message: str,
        hint: str | None = None,
        *,
        command: str | None = None,
        exit_code: int | None = None,
        stderr: str = "",
    ) -> None:
        super().__init__(message, hint)
        self.command = command
        self.remote_exit_code = exit_code
        self.stderr = stderr


class HostKeyMismatch(TransportError):
    """The server's SSH host key differs from the pinned one: refused, never accepted silently."""

"""Run a program on this machine and wait for it: the sandbox's Slurm commands, nsenter, ssh-keygen.

The only place services' local commands go through ``subprocess``. A program that cannot be started, or does
not finish in time, is a TransportError carrying the command; a non-zero exit is the caller's to judge.
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cluster_tools.errors import TransportError


@dataclass(frozen=True)
class LocalResult:
    command: str
    exit_code: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def last_line(self) -> str:
        """The last line of stderr (else stdout): what a failure says, for a one-line error."""
        lines = (self.stderr or self.stdout).strip().splitlines()
        return lines[-1] if lines else f"exit {self.exit_code}"


def run_local(
    argv: Sequence[str], *, env: Mapping[str, str] | None = None, timeout: float, cwd: Path | None = None
) -> LocalResult:
    """Run ``argv`` (no shell) with ``env`` (None: ours), stdin empty; capture its output as text."""
    command = shlex.join(argv)
    try:
        done = subprocess.run(
            list(argv),
            env=None if env is None else dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        raise TransportError(f"{command} did not finish within {timeout:g} s", command=command) from None
    except OSError as exc:
        raise TransportError(f"cannot run {command}: {exc.strerror or exc}", command=command) from None
    return LocalResult(
        command, done.returncode, done.stdout.decode("utf-8", "replace"), done.stderr.decode("utf-8", "replace")
    )


def stream_local(argv: Sequence[str], *, env: Mapping[str, str], write: Callable[[bytes], None], timeout: float) -> int:
    """Run ``argv``, stdout and stderr merged and handed to ``write`` as they come; returns its exit code."""
    command = shlex.join(argv)
    try:
        with subprocess.Popen(
            list(argv), env=dict(env), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        ) as proc:
            assert proc.stdout is not None
            for chunk in iter(lambda: proc.stdout.read1(65536), b""):  # type: ignore[union-attr,attr-defined]
                write(chunk)
            return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise TransportError(f"{command} did not finish within {timeout:g} s", command=command) from None
    except OSError as exc:
        raise TransportError(f"cannot run {command}: {exc.strerror or exc}", command=command) from None

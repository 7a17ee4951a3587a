"""Drive the real CLI through a real terminal: a pty pair, the CLI on its slave as its controlling
terminal, the test typing on the master and reading what the user would see."""

from __future__ import annotations

import fcntl
import os
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path


def set_window_size(fd: int, columns: int, rows: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))


class Terminal:
    """``python -m cluster_tools ARGS`` in a pty of COLUMNSxROWS; a context manager that kills it at the end."""

    def __init__(
        self,
        *args: str,
        state: Path,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
        columns: int = 100,
        rows: int = 30,
    ) -> None:
        self.master, slave = os.openpty()
        set_window_size(slave, columns, rows)
        full_env = {**os.environ, "CLUSTERTOOLS_STATE_DIR": str(state), "TERM": "xterm", **(env or {})}
        full_env.pop("CLUSTERTOOLS_DEBUG", None)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cluster_tools", *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            cwd=cwd,
            env=full_env,
            start_new_session=True,
            preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0),
        )
        os.close(slave)
        self.seen = b""  # not yet matched by expect()
        self.transcript = b""  # everything the terminal showed

    def send(self, text: str) -> None:
        os.write(self.master, text.encode())

    def resize(self, columns: int, rows: int) -> None:
        set_window_size(self.master, columns, rows)  # the kernel sends SIGWINCH to the foreground group

    def expect(self, pattern: str, timeout: float = 30) -> re.Match[str]:
        """Read until ``pattern`` (a regex) appears in what has been seen since the last match."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.seen.decode("utf-8", "replace")
            match = re.search(pattern, text)
            if match:
                self.seen = self.seen[len(text[: match.end()].encode()) :]
                return match
            if time.monotonic() > deadline or not self._read(deadline - time.monotonic()):
                raise AssertionError(f"{pattern!r} not seen; the terminal shows:\n{text}")

    def _read(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.master], [], [], max(timeout, 0))
        if not ready:
            return True
        try:
            data = os.read(self.master, 65536)
        except OSError:  # EIO: the process closed the terminal
            return False
        self.seen += data
        self.transcript += data
        return bool(data)

    def wait(self, timeout: float = 60) -> int:
        """The exit code, once the process ends (its output is still read meanwhile)."""
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"still running; the terminal shows:\n{self.seen.decode(errors='replace')}")
            self._read(0.2)
        while self._read(0):
            pass
        return self.proc.returncode

    def __enter__(self) -> Terminal:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        os.close(self.master)

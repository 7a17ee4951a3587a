"""An interactive session over SSH, as OpenSSH's client gives one.

With a pty: the local terminal goes into raw mode (every key, Ctrl-C included, goes to the remote
side), window-size changes are forwarded, and the terminal is restored however the session ends.
Without one (stdin is not a terminal, like ``ssh -T``): stdin is forwarded until its end, stdout and
stderr stay apart. Either way the remote exit status is returned.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import termios
import threading
import tty
from collections.abc import Callable
from dataclasses import dataclass

import paramiko

from cluster_tools.transport.ssh import SSHConnection

NO_EXIT_STATUS = 255  # what OpenSSH's client returns when the session ended without one (e.g. a signal)


@dataclass(frozen=True)
class LocalTerminal:
    """The local ends of a session: file descriptors, and the TERM to announce for a remote pty."""

    stdin_fd: int = 0
    stdout_fd: int = 1
    stderr_fd: int = 2
    term: str = "xterm-256color"


def wants_pty(terminal: LocalTerminal, force: bool | None) -> bool:
    """``force`` True/False overrides; by default a pty exactly when stdin is a terminal."""
    return _isatty(terminal.stdin_fd) if force is None else force


def window_size(terminal: LocalTerminal) -> tuple[int, int]:
    """(columns, rows) of the local terminal, 80x24 when there is none."""
    for fd in (terminal.stdin_fd, terminal.stdout_fd):
        try:
            size = os.get_terminal_size(fd)
            if size.columns and size.lines:
                return size.columns, size.lines
        except OSError:
            continue
    return 80, 24


def run_session(
    conn: SSHConnection,
    command: str | None,
    terminal: LocalTerminal,
    *,
    pty: bool,
    on_start: Callable[[], None] | None = None,
) -> int:
    """Run ``command`` (None: the login shell) wired to ``terminal``; returns the remote exit status.

    ``on_start`` runs once the session is open, before the terminal goes raw (e.g. to print a note).
    """
    size = window_size(terminal)
    channel = conn.open_shell(command, pty=(terminal.term, *size) if pty else None)
    if on_start:
        on_start()
    raw = pty and _isatty(terminal.stdin_fd)
    saved = termios.tcgetattr(terminal.stdin_fd) if raw else None
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    previous_handler = None
    try:
        if raw:
            tty.setraw(terminal.stdin_fd, termios.TCSADRAIN)  # as OpenSSH: keys typed ahead are kept
            # Resizing from the handler could deadlock on paramiko's send lock: it only wakes the loop.
            if threading.current_thread() is threading.main_thread():
                previous_handler = signal.signal(signal.SIGWINCH, lambda *_: _wake(wake_write))
        return _pump(channel, terminal, wake_read, resize=raw, size=size)
    finally:
        if previous_handler is not None:
            signal.signal(signal.SIGWINCH, previous_handler)
        if saved is not None:
            termios.tcsetattr(terminal.stdin_fd, termios.TCSADRAIN, saved)
        os.close(wake_read)
        os.close(wake_write)
        channel.close()


def _pump(
    channel: paramiko.Channel, terminal: LocalTerminal, wake_fd: int, *, resize: bool, size: tuple[int, int]
) -> int:
    reading_stdin = True
    while True:
        watched: list[paramiko.Channel | int] = [channel, wake_fd, *([terminal.stdin_fd] if reading_stdin else [])]
        try:
            ready, _, _ = select.select(watched, [], [], 1.0)
        except InterruptedError:  # pragma: no cover - Python retries select itself (PEP 475)
            continue
        if wake_fd in ready:
            _drain(wake_fd)
            if resize:
                current = window_size(terminal)
                if current != size:
                    size = current
                    channel.resize_pty(width=size[0], height=size[1])
        while channel.recv_ready():
            _write_all(terminal.stdout_fd, channel.recv(65536))
        while channel.recv_stderr_ready():
            _write_all(terminal.stderr_fd, channel.recv_stderr(65536))
        if (channel.eof_received or channel.closed) and not channel.recv_ready() and not channel.recv_stderr_ready():
            break
        if reading_stdin and terminal.stdin_fd in ready:
            try:
                data = os.read(terminal.stdin_fd, 16384)
            except OSError:  # the terminal went away (EIO)
                data = b""
            if data:
                channel.sendall(data)
            else:
                reading_stdin = False
                channel.shutdown_write()
    if not channel.status_event.wait(10):
        return NO_EXIT_STATUS
    code = channel.recv_exit_status()
    return NO_EXIT_STATUS if code < 0 else code


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            written = os.write(fd, view)
        except BlockingIOError:
            select.select([], [fd], [])
            continue
        except BrokenPipeError:
            return  # the reader is gone (e.g. `| head`); the session still ends normally
        view = view[written:]


def _wake(fd: int) -> None:
    with contextlib.suppress(OSError):  # the pipe is full: the loop is woken already
        os.write(fd, b"w")


def _drain(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.read(fd, 4096)


def _isatty(fd: int) -> bool:
    try:
        return os.isatty(fd)
    except OSError:
        return False

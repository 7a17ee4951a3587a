"""Start local daemons detached from us, and stop exactly those, by PID.

A PID alone can be reused after a daemon dies, so each record also keeps the process's start time
(``/proc/PID/stat`` field 22); a process is "ours" only while both match. Linux only (/proc).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ProcessRecord:
    name: str
    pid: int
    start_ticks: int
    argv: tuple[str, ...]

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["argv"] = list(self.argv)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ProcessRecord:
        """From what to_json wrote, read back as JSON (whose values are untyped)."""
        return cls(
            name=str(data["name"]),
            pid=int(data["pid"]),
            start_ticks=int(data["start_ticks"]),
            argv=tuple(data["argv"]),
        )


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # comm (field 2) may hold spaces and parentheses: split after its last ')'.
    rest = raw[raw.rindex(")") + 2 :].split()
    return rest  # rest[0] is field 3 (state); field N is rest[N - 3]


def start_ticks(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else None


def _reap(pid: int) -> None:
    """Collect a dead child of ours so it does not linger as a zombie (no-op for others)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def is_running(record: ProcessRecord) -> bool:
    _reap(record.pid)
    fields = _stat_fields(record.pid)
    if not fields or fields[0] in ("Z", "X"):
        return False
    return int(fields[19]) == record.start_ticks


def spawn(name: str, argv: list[str], *, env: Mapping[str, str], log_path: Path, cwd: Path) -> ProcessRecord:
    """Start ``argv`` in a new session (it outlives us), stdout/stderr appended to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            argv,
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    # The daemon must outlive this Popen object: mark it collected so Python does not warn about it.
    proc.returncode = 0
    ticks = start_ticks(proc.pid)
    return ProcessRecord(name=name, pid=proc.pid, start_ticks=ticks or 0, argv=tuple(argv))


def stop(records: Iterable[ProcessRecord], *, timeout: float = 10.0) -> list[ProcessRecord]:
    """SIGTERM each live record, wait up to ``timeout``, then SIGKILL. Returns those still alive."""
    alive = [r for r in records if is_running(r)]
    left = set(kill_pids([r.pid for r in alive], timeout=timeout))
    return [r for r in alive if r.pid in left]


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def _ancestors(pid: int) -> set[int]:
    chain = set()
    while pid > 1 and pid not in chain:
        chain.add(pid)
        fields = _stat_fields(pid)
        if not fields:
            break
        pid = int(fields[1])
    return chain


def marked_values(name: str) -> set[str]:
    """Every value of the environment variable ``name`` among the running processes (not this one's ancestors):
    which sandboxes run on this machine now, by their marker."""
    prefix = f"{name}=".encode()
    spared = _ancestors(os.getpid())
    values: set[str] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in spared:
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        values.update(
            item[len(prefix) :].decode(errors="replace") for item in environ.split(b"\0") if item.startswith(prefix)
        )
    return values


def find_marked(marker: tuple[str, str]) -> list[int]:
    """PIDs whose environment holds NAME=VALUE, plus every process in the same sessions.

    Catches what daemons left behind (slurmstepd daemonises into its own session; a job started with
    --export=NONE lacks the marker but shares slurmstepd's session). Never this process or its parents.
    """
    needle = f"{marker[0]}={marker[1]}".encode()
    spared = _ancestors(os.getpid())
    marked, sessions = set(), set()
    own_session = os.getsid(0)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in spared:
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0"):
            pid = int(entry.name)
            fields = _stat_fields(pid)
            if fields and fields[0] not in ("Z", "X"):
                marked.add(pid)
                if int(fields[3]) not in (0, own_session):
                    sessions.add(int(fields[3]))
    return sorted(marked | set(_session_members(sessions, spared)))


def _session_members(sessions: set[int], spared: set[int]) -> list[int]:
    """Live processes (not in ``spared``) whose session is one of ``sessions``."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) not in spared:
            fields = _stat_fields(int(entry.name))
            if fields and fields[0] not in ("Z", "X") and int(fields[3]) in sessions:
                members.append(int(entry.name))
    return members


def kill_pids(pids: Iterable[int], *, timeout: float = 5.0) -> list[int]:
    """SIGTERM, wait, SIGKILL; returns PIDs still alive at the end."""
    pids = list(pids)
    for pid in pids:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    alive = pids
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = [p for p in alive if _alive_pid(p)]
    for pid in alive:
        _signal(pid, signal.SIGKILL)
    time.sleep(0.1 if alive else 0)
    return [p for p in alive if _alive_pid(p)]


def _alive_pid(pid: int) -> bool:
    _reap(pid)
    fields = _stat_fields(pid)
    return bool(fields and fields[0] not in ("Z", "X"))

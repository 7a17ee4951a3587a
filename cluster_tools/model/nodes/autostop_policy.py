"""Pure: the head node's idle autostop (bootstrap/autostop.sh) as clustertools sees it: where its files live,
the one command that installs and arms it over SSH, and its status.json -> a typed record and the line
``describe`` prints."""

from __future__ import annotations

import io
import json
import shlex
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

REMOTE_DIR = "/var/lib/clustertools/autostop"  # on a ParallelCluster head node: scripts, config, state, status
STATUS_FILE = "status.json"
SCRIPTS = ("autostop.sh", "autostop-configure.sh")
ACTIONS = {
    "stop": "stops the compute fleet, then the head node (its EBS volumes are kept)",
    "down": "stops the compute fleet, then deletes the cluster (storage with DeletionPolicy Retain is kept)",
    "sandbox": "sets the sandbox's partitions INACTIVE (the head node is this machine: it keeps running)",
}


@dataclass(frozen=True)
class AutostopStatus:
    """The last decision of the head node's autostop (status.json, written at every check)."""

    decision: str  # armed | idle | busy | firing | fired | failed | off
    minutes: int | None
    action: str
    interval_seconds: int
    timer: str  # systemd | loop (the sandbox's process) | none
    checked_epoch: int | None = None
    idle_since_epoch: int | None = None
    fires_at_epoch: int | None = None
    fired_at_epoch: int | None = None
    reasons: tuple[str, ...] = ()
    jobs: dict[str, int] = field(default_factory=dict)
    ssh_sessions: int = 0
    uploads: int = 0
    stale_uploads: int = 0
    action_exit: int | None = None
    log: str = ""

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["reasons"] = list(self.reasons)
        return data


def parse_autostop_status(text: str) -> AutostopStatus:
    """status.json -> AutostopStatus; ValueError when it is not one."""
    try:
        data = json.loads(text)
        busy = data.get("busy") or {}
        return AutostopStatus(
            decision=str(data["decision"]),
            minutes=data.get("minutes"),
            action=str(data.get("action", "")),
            interval_seconds=int(data.get("interval_seconds") or 60),
            timer=str(data.get("timer", "none")),
            checked_epoch=data.get("checked_epoch"),
            idle_since_epoch=data.get("idle_since_epoch"),
            fires_at_epoch=data.get("fires_at_epoch"),
            fired_at_epoch=data.get("fired_at_epoch"),
            reasons=tuple(str(r) for r in data.get("reasons") or ()),
            jobs={str(k): int(v) for k, v in (busy.get("jobs") or {}).items()},
            ssh_sessions=int(busy.get("ssh_sessions") or 0),
            uploads=int(busy.get("uploads") or 0),
            stale_uploads=int(busy.get("stale_uploads") or 0),
            action_exit=data.get("action_exit"),
            log=str(data.get("log", "")),
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"not an autostop status: {exc}") from None


def _clock(epoch: int, now: float) -> str:
    """HH:MM in local time; with the date when it is not today."""
    moment, today = datetime.fromtimestamp(epoch), datetime.fromtimestamp(now)
    return moment.strftime("%H:%M") if moment.date() == today.date() else moment.strftime("%Y-%m-%d %H:%M")


def summary_line(status: AutostopStatus, now: float) -> str:
    """What ``describe`` prints after ``autostop:``."""
    limit = f"{status.minutes} min limit"
    if status.decision == "off":
        line = "off"
    elif status.decision == "armed":
        line = f"armed, no check yet ({limit}, a check every {status.interval_seconds} s), action {status.action}"
    elif status.decision == "idle" and status.idle_since_epoch and status.fires_at_epoch:
        line = (
            f"idle since {_clock(status.idle_since_epoch, now)}, fires at {_clock(status.fires_at_epoch, now)} "
            f"({limit}), action {status.action}"
        )
    elif status.decision == "busy":
        line = f"busy: {' / '.join(status.reasons)} ({limit}, action {status.action})"
    elif status.decision == "firing":
        line = f"firing since {_clock(status.fired_at_epoch or 0, now)}: action {status.action} running"
    elif status.decision == "fired":
        line = f"fired at {_clock(status.fired_at_epoch or 0, now)}: action {status.action} done"
    elif status.decision == "failed":
        line = (
            f"fired at {_clock(status.fired_at_epoch or 0, now)}: action {status.action} FAILED "
            f"(exit {status.action_exit}), see {status.log}"
        )
    else:
        line = status.decision
    if status.decision not in ("off", "armed", "fired", "failed") and status.checked_epoch:
        late = now - status.checked_epoch
        if late > max(3 * status.interval_seconds, 180):
            line += f"; last check {int(late // 60)} min ago: is its timer running?"
    return line


def configure_args(minutes: int | None, *, action: str, interval: int, down_role_arn: str | None = None) -> list[str]:
    """autostop.sh --configure's options (``minutes`` None: off)."""
    if minutes is None:
        return ["--minutes", "off"]
    args = ["--minutes", str(minutes), "--action", action, "--interval", str(interval)]
    return args + (["--down-role-arn", down_role_arn] if down_role_arn else [])


def install_archive(scripts: Mapping[str, bytes]) -> bytes:
    """A tar of the scripts (mode 0755), sent on stdin to ``remote_install_command``."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in sorted(scripts.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def remote_install_command(directory: str, args: Sequence[str], *, sudo: bool = True) -> list[str]:
    """One command for the head node: unpack the scripts from stdin into ``directory`` (each file renamed into
    place, so a check running meanwhile reads a whole script), then ``autostop.sh --configure ARGS``."""
    script = (
        'set -e; d=$1; shift; install -d -m 0755 "$d"; t=$(mktemp -d "$d/.new.XXXXXX"); '
        'tar -x -C "$t" --no-same-owner; chmod 0755 "$t"/*; mv -f "$t"/* "$d"/; rmdir "$t"; '
        'exec bash "$d/autostop.sh" --configure --state-dir "$d" "$@"'
    )
    return [*(["sudo", "-n"] if sudo else []), "bash", "-c", script, "clustertools-autostop", directory, *args]


def describe_command(path: str) -> str:
    """Reads the status in one exec; prints nothing (exit 0) where autostop was never installed."""
    return f"cat {shlex.quote(path)} 2>/dev/null || true"

"""Pure: what the node bootstrap's log says about its last run. Text in, a typed Bootstrap out: did it
finish, fail (at which step, with which exit code, when, and the last lines that step printed), still
run, or never run. The lines come from bootstrap/on-node-configured.sh, tagged ``clustertools-bootstrap``,
in its own log file, in cloud-init-output, or in syslog. Every line that leaves here is redacted: URL
query strings (pre-signed URLs) and AWS key shapes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

TAG = "clustertools-bootstrap"
MAX_LINE = 400  # characters of one shown line

# --- redaction ---------------------------------------------------------------------------------------

_REDACTIONS = (
    (re.compile(r"((?:https?|s3)://[^\s?]*)\?\S*"), r"\1?<redacted>"),  # as the bootstrap script does
    (re.compile(r"\b(AKIA|ASIA)[A-Z0-9]{16}\b"), "<redacted-key-id>"),
    (
        re.compile(r"(?i)\b(aws_secret_access_key|aws_session_token|secret|password|token)(\s*[=:]\s*)\S+"),
        r"\1\2<redacted>",
    ),
)


def redact(line: str) -> str:
    """A line with pre-signed URL queries and credential shapes removed."""
    for pattern, replacement in _REDACTIONS:
        line = pattern.sub(replacement, line)
    return line


def shown(line: str) -> str:
    line = redact(line.rstrip("\r\n"))
    return line if len(line) <= MAX_LINE else line[: MAX_LINE - 1] + "…"


# --- the node bootstrap's log ------------------------------------------------------------------------

# Our own lines: "2024-05-01T12:00:03Z clustertools-bootstrap[study/head]: step miniforge: start";
# through syslog: "May  1 12:00:03 ip-10-0-1-25 clustertools-bootstrap[812]: step miniforge: start".
BOOT_LINE_RE = re.compile(r"^(?P<prefix>.*?)\b" + TAG + r"(?:\[[^\]]*\])?: (?P<msg>.*)$")
_ISO_Z_RE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)")
_SYSLOG_TIME_RE = re.compile(r"^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d")
USAGE_RE = re.compile(r"^on-node-configured\.sh: (?P<msg>.+)$")
_STEP_START = re.compile(r"^step (?P<name>\S+): start$")
_STEP_DONE = re.compile(r"^step (?P<name>\S+): done$")
_STEP_ALREADY = re.compile(r"^step (?P<name>\S+): already done")
_STEP_FAILED = re.compile(r"^step (?P<name>\S+) failed \(exit (?P<code>\d+)\)$")
_RUN_FAILED = re.compile(r"^bootstrap FAILED \(exit (?P<code>\d+)\)$")


@dataclass(frozen=True)
class Bootstrap:
    """The outcome of the LAST run of the node bootstrap found in the given logs."""

    state: str  # "ok", "failed", "running" (no end line yet), "never-ran"
    source: str | None = None  # the log that told
    started_at: str | None = None
    ended_at: str | None = None
    failed_step: str | None = None  # "arguments" for a refused command line, None for a failure outside steps
    exit_code: int | None = None
    error: str | None = None  # the script's own "error: ..." line, or its usage message
    output: tuple[str, ...] = ()  # the last lines the failed step printed
    steps_run: tuple[str, ...] = ()
    steps_already_done: tuple[str, ...] = ()
    current_step: str | None = None  # still running: the step that started last

    @property
    def nothing_to_do(self) -> bool:
        return self.state == "ok" and not self.steps_run and bool(self.steps_already_done)


def time_of(prefix: str) -> str | None:
    found = _ISO_Z_RE.search(prefix)
    if found:
        return found.group(0)
    found = _SYSLOG_TIME_RE.match(prefix)
    return found.group(0) if found else None


def parse_bootstrap(text: str, source: str | None = None, *, keep: int = 15) -> Bootstrap:
    """The last run of the bootstrap in ``text`` (its log file, cloud-init-output or syslog)."""
    lines = text.splitlines()
    start = _last_start(lines)
    if start is None:
        return Bootstrap(state="never-ran", source=None)
    usage = USAGE_RE.match(lines[start])
    if usage:  # refused before it could log anything: exit 2, no step ran
        return Bootstrap(
            state="failed", source=source, failed_step="arguments", exit_code=2, error=shown(usage.group("msg"))
        )
    reading = _Reading(started_at=time_of(BOOT_LINE_RE.match(lines[start]).group("prefix")), keep=keep)  # type: ignore[union-attr]
    pending: list[str] = []  # untagged lines since the last tagged one: the running command's output
    for line in lines[start + 1 :]:
        match = BOOT_LINE_RE.match(line)
        if not match:
            if line.strip():
                pending.append(line)
            continue
        reading.tagged(match.group("msg"), time_of(match.group("prefix")), pending)
        pending = []
    return reading.bootstrap(source)


@dataclass
class _Reading:
    """What the tagged lines of one run have said so far."""

    started_at: str | None
    keep: int  # lines of a failed step's output to keep
    state: str = "running"
    ended_at: str | None = None
    failed_step: str | None = None
    exit_code: int | None = None
    error: str | None = None
    current: str | None = None
    output: list[str] = field(default_factory=list)
    run: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)

    def tagged(self, msg: str, at: str | None, pending: list[str]) -> None:
        """One tagged line's message, logged ``at``, after the untagged lines ``pending``."""
        if m := _STEP_FAILED.match(msg):
            self.failed_step, self.exit_code, self.ended_at = m.group("name"), int(m.group("code")), at
            self.output = pending[-self.keep :]
            self.state = "failed"
        elif m := _RUN_FAILED.match(msg):
            self.state, self.ended_at = "failed", self.ended_at or at
            self.exit_code = self.exit_code if self.exit_code is not None else int(m.group("code"))
        elif msg.startswith("bootstrap finished OK"):
            self.state, self.ended_at = "ok", at
        elif msg.startswith("error: "):
            self.error = msg[len("error: ") :]
        elif m := _STEP_START.match(msg):
            self.current = m.group("name")
            self.run.append(self.current)
        elif m := _STEP_DONE.match(msg):
            self.current = None
        elif m := _STEP_ALREADY.match(msg):
            self.already.append(m.group("name"))

    def bootstrap(self, source: str | None) -> Bootstrap:
        return Bootstrap(
            state=self.state,
            source=source,
            started_at=self.started_at,
            ended_at=self.ended_at,
            failed_step=self.failed_step,
            exit_code=self.exit_code,
            error=shown(self.error) if self.error else None,
            output=tuple(shown(o) for o in self.output),
            steps_run=tuple(self.run),
            steps_already_done=tuple(self.already),
            current_step=self.current if self.state == "running" else None,
        )


def _last_start(lines: list[str]) -> int | None:
    """The index of the last run's first line: its start line, or the usage error that refused it."""
    start = None
    for index, line in enumerate(lines):
        match = BOOT_LINE_RE.match(line)
        if (match and match.group("msg").startswith("bootstrap start:")) or USAGE_RE.match(line):
            start = index
    return start


def last_run_lines(text: str) -> list[str]:
    """The tagged lines of the last bootstrap run (its start line included)."""
    lines = [line for line in text.splitlines() if BOOT_LINE_RE.match(line)]
    starts = [i for i, line in enumerate(lines) if BOOT_LINE_RE.match(line).group("msg").startswith("bootstrap start:")]  # type: ignore[union-attr]
    return lines[starts[-1] :] if starts else lines

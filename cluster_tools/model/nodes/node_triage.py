"""Pure: why a node did not come up. Log texts in, one typed report out.

The texts are what ``services/remote/triage_logs.py`` gathers: the node bootstrap's own log
(bootstrap/on-node-configured.sh), cloud-init-output, ParallelCluster's computemgtd / clustermgtd /
slurm_resume, slurmd / slurmctld, and ``sinfo -R``. This module decides what they say: did the
bootstrap finish, fail (at which step, with which exit code, when, and the last lines that step
printed), still run, or never run; which lines of each source matter; which node to look at when none
is named; and whether ParallelCluster put the fleet in protected mode. Putting it all into one report, and
the lines a person reads, is triage_report.py.

Every line that leaves this module is redacted: URL query strings (pre-signed URLs) and AWS key shapes.
"""

from __future__ import annotations

import re
import secrets
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cluster_tools.model.nodes.bootstrap_log import (
    BOOT_LINE_RE,
    USAGE_RE,
    last_run_lines,
    shown,
    time_of,
)

# --- the other sources: which lines matter ----------------------------------------------------------

# ParallelCluster's daemons: "2024-05-01 12:04:10,532 - [slurm_plugin.clustermgtd:_maintain_nodes] - WARNING - ..."
_PCLUSTER_RE = re.compile(
    r"^(?P<time>\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:,\d+)?) - \[(?P<where>[^\]]*)\] - "
    r"(?P<level>[A-Z]+) - (?P<msg>.*)$"
)
# Slurm's daemons: "[2024-05-01T12:04:10.532] error: ..."
_SLURM_RE = re.compile(r"^\[(?P<time>\d{4}-\d\d-\d\dT[\d:.]+)\] (?P<msg>.*)$")
_WORDS_ERROR = re.compile(
    r"(?i)\b(error|fatal|failed|failure|traceback|exception|critical|denied|refused|mismatch|"
    r"no space left|cannot|unable|missing|not found)\b"
)
_INTERESTING = {
    "clustermgtd": re.compile(
        r"(?i)protected mode|bootstrap failure|INACTIVE|unhealthy (static|dynamic) nodes|"
        r"insufficient capacity|Terminating instances backing"
    ),
    "slurm_resume": re.compile(
        r"Nodes are now configured with instances|Failed to launch|InsufficientInstanceCapacity"
    ),
    "computemgtd": re.compile(r"(?i)terminat|heartbeat"),
    "slurmctld": re.compile(
        r"not responding|setting DOWN|ResumeTimeout|reason set to|state set to|power_save|"
        r"POWER_DOWN|DRAIN"
    ),
    "slurmd": re.compile(r"(?i)unable to register|configless"),
}
# Slurm node names ParallelCluster makes: <queue>-<st|dy>-<compute resource>-<n>
_PC_NODE_RE = re.compile(r"\b[a-z0-9][a-z0-9-]*-(?:st|dy)-[a-z0-9-]+-\d+\b")
_NODE_WIDE = ("clustermgtd", "slurm_resume", "slurmctld")  # head-node logs about many nodes


@dataclass(frozen=True)
class LogLine:
    time: str | None
    level: str  # "error", "warning", "info"
    text: str
    repeats: int = 1  # the same message this many times (the last one shown)


def _level(raw: str | None, text: str) -> str:
    if raw in ("ERROR", "CRITICAL", "FATAL") or re.match(r"(?i)(error|fatal)\b", text):
        return "error"
    if raw == "WARNING" or re.match(r"(?i)warn", text):
        return "warning"
    return "error" if raw is None and _WORDS_ERROR.search(text) else "info"


def relevant_lines(source: str, text: str, *, node_names: Sequence[str] = ()) -> list[LogLine]:
    """The lines of one source that matter, oldest first, repeated messages folded into the last one.

    ``node_names`` (a node's Slurm name, instance id, address) narrows the head node's logs about many
    nodes to lines about that node or about no node in particular.
    """
    picked: list[LogLine] = []
    if source in ("bootstrap", "system-messages", "syslog"):
        for line in last_run_lines(text):
            match = BOOT_LINE_RE.match(line)
            msg = match.group("msg") if match else line
            level = "error" if ("failed" in msg or "FAILED" in msg or msg.startswith("error:")) else "info"
            picked.append(LogLine(time_of(match.group("prefix")) if match else None, level, msg))
    elif source == "bootstrap_error_msg":
        picked = [LogLine(None, "error", line) for line in text.splitlines() if line.strip()]
    elif source == "sinfo":
        picked = [LogLine(None, "warning", line) for line in text.splitlines() if line.strip()]
    else:
        for line in text.splitlines():
            if not line.strip():
                continue
            if m := _PCLUSTER_RE.match(line):
                time, raw, msg = m.group("time"), m.group("level"), m.group("msg")
                keep = raw in ("WARNING", "ERROR", "CRITICAL") or bool(_INTERESTING.get(source, _NEVER).search(msg))
            elif m := _SLURM_RE.match(line):
                time, raw, msg = m.group("time"), None, m.group("msg")
                keep = bool(re.match(r"(?i)(error|fatal|warning)\b", msg)) or bool(
                    _INTERESTING.get(source, _NEVER).search(msg)
                )
            else:  # cloud-init-output, tracebacks, anything unformatted
                time, raw, msg = None, None, line
                tagged = BOOT_LINE_RE.match(line)
                if tagged:
                    time, msg = time_of(tagged.group("prefix")), tagged.group("msg")
                    keep = "failed" in msg or "FAILED" in msg or msg.startswith("error:")
                else:
                    keep = bool(_WORDS_ERROR.search(line)) or bool(USAGE_RE.match(line))
            if keep and node_names and source in _NODE_WIDE and _about_other_nodes(msg, node_names):
                keep = False
            if keep:
                picked.append(LogLine(time, _level(raw, msg), msg))
    return _fold([LogLine(p.time, p.level, shown(p.text)) for p in picked])


_NEVER = re.compile(r"(?!)")


def _about_other_nodes(msg: str, node_names: Sequence[str]) -> bool:
    named = set(_PC_NODE_RE.findall(msg))
    return bool(named) and not any(name and name in msg for name in node_names)


def _fold(lines: list[LogLine]) -> list[LogLine]:
    """Identical messages (time aside) become one: the last, with a count."""
    counts: dict[tuple[str, str], int] = {}
    for line in lines:
        counts[(line.level, line.text)] = counts.get((line.level, line.text), 0) + 1
    seen: set[tuple[str, str]] = set()
    folded: list[LogLine] = []
    for line in reversed(lines):
        key = (line.level, line.text)
        if key not in seen:
            seen.add(key)
            folded.append(LogLine(line.time, line.level, line.text, counts[key]))
    return folded[::-1]


# --- ParallelCluster: which node, and what went wrong ------------------------------------------------

_LAUNCH_RE = re.compile(
    r"\('(?P<node>[^']+)', EC2Instance\(id='(?P<id>i-[0-9a-f]+)', private_ip='(?P<ip>[^']*)', "
    r"hostname='(?P<host>[^']*)'"
)
_BOOTSTRAP_ERROR_RE = re.compile(r"Node bootstrap error: .*?[Nn]ode (?P<node>[a-z0-9][a-z0-9-]*)\((?P<addr>[^)]*)\)")
_EC2_CODE_RE = re.compile(
    r"An error occurred \((?P<code>[A-Za-z]+)\)|\b(?P<bare>InsufficientInstanceCapacity|"
    r"InsufficientHostCapacity|MaxSpotInstanceCountExceeded|SpotMaxPriceTooLow|VcpuLimitExceeded|"
    r"InstanceLimitExceeded|UnfulfillableCapacity|LimitedInstanceCapacity)\b|"
    r"limited EC2 capacity"
)
# clustermgtd's own words when it enters (or stays in) protected mode; "will be set into protected mode
# if ..." only counts failures.
_PROTECTED_RE = re.compile(
    r"Setting cluster into protected mode|Cluster is in protected mode|"
    r"Updating compute fleet status from \S+ to PROTECTED"
)
_FLEET_STATUS_RE = re.compile(r"Current compute fleet status: (\S+)|Updating compute fleet status from \S+ to (\S+)")


@dataclass(frozen=True)
class Launch:
    """A Slurm node given an EC2 instance, as slurm_resume (or clustermgtd) logged it."""

    node: str
    instance_id: str
    private_ip: str
    hostname: str
    time: str | None = None

    @property
    def short_hostname(self) -> str:
        """The instance's short private DNS name, which starts its CloudWatch log stream names."""
        return self.hostname or "ip-" + self.private_ip.replace(".", "-")


def parse_launches(text: str) -> list[Launch]:
    """Every node -> instance assignment in slurm_resume's (or clustermgtd's) log, oldest first."""
    launches = []
    for line in text.splitlines():
        match = _PCLUSTER_RE.match(line)
        time = match.group("time") if match else None
        launches += [
            Launch(m.group("node"), m.group("id"), m.group("ip"), m.group("host"), time)
            for m in _LAUNCH_RE.finditer(line)
        ]
    return launches


def parse_bootstrap_failures(text: str) -> list[tuple[str, str, str | None]]:
    """(node, address, time) of each "Node bootstrap error" clustermgtd logged, oldest first."""
    failures = []
    for line in text.splitlines():
        found = _BOOTSTRAP_ERROR_RE.search(line)
        if found:
            match = _PCLUSTER_RE.match(line)
            failures.append((found.group("node"), found.group("addr"), match.group("time") if match else None))
    return failures


@dataclass(frozen=True)
class NodeChoice:
    name: str | None  # the Slurm node name
    why: str
    launch: Launch | None = None


def choose_node(
    requested: str | None, *, launches: Sequence[Launch], failures: Sequence[tuple[str, str, str | None]]
) -> NodeChoice:
    """The node to triage: the one asked for (Slurm name or instance id), else the last one whose
    bootstrap clustermgtd saw fail, else the last one launched."""

    def latest(pred: Callable[[Launch], bool]) -> Launch | None:
        return next((launch for launch in reversed(launches) if pred(launch)), None)

    if requested:
        if requested.startswith("i-"):
            found = latest(lambda launch: launch.instance_id == requested)
            return NodeChoice(found.node if found else None, "asked for", found or Launch("", requested, "", ""))
        return NodeChoice(requested, "asked for", latest(lambda launch: launch.node == requested))
    if failures:
        node, addr, _ = failures[-1]
        found = latest(lambda launch: launch.private_ip == addr) or latest(lambda launch: launch.node == node)
        return NodeChoice(node, "the last node whose bootstrap failed (clustermgtd)", found)
    if launches:
        return NodeChoice(launches[-1].node, "the last node launched (slurm_resume)", launches[-1])
    return NodeChoice(None, "no node was launched in the lines read")


def findings_of(texts: dict[str, str]) -> list[str]:
    """Headlines from the head node's ParallelCluster logs: EC2 refusals, bootstrap failures, protected mode."""
    found: list[str] = []
    codes: dict[str, tuple[int, str | None]] = {}
    for line in texts.get("slurm_resume", "").splitlines():
        match = _PCLUSTER_RE.match(line)
        if match and match.group("level") not in ("WARNING", "ERROR", "CRITICAL"):
            continue
        for m in _EC2_CODE_RE.finditer(line):
            code = m.group("code") or m.group("bare") or "LimitedInstanceCapacity"
            count, _ = codes.get(code, (0, None))
            codes[code] = (count + 1, match.group("time") if match else None)
    for code, (count, time) in codes.items():
        found.append(
            f"EC2 did not launch instances: {code} ({count}x in slurm_resume{', last ' + time if time else ''})"
        )
    failures = parse_bootstrap_failures(texts.get("clustermgtd", ""))
    if failures:
        nodes = list(dict.fromkeys(node for node, _, _ in failures))
        found.append(
            f"clustermgtd saw {len(failures)} node bootstrap error(s): {', '.join(nodes[-5:])}"
            + (f" and {len(nodes) - 5} more" if len(nodes) > 5 else "")
        )
    when = protected_in_logs(texts.get("clustermgtd", ""))
    if when:
        found.append(
            "clustermgtd put the cluster in protected mode (queues with repeated bootstrap failures are "
            f"INACTIVE){', last said ' + when if when != '?' else ''}"
        )
    return found


def protected_in_logs(clustermgtd_text: str) -> str | None:
    """When clustermgtd last said the cluster is in protected mode ("?" without a time), or None."""
    for line in reversed(clustermgtd_text.splitlines()):
        if _PROTECTED_RE.search(line):
            match = _PCLUSTER_RE.match(line)
            return match.group("time") if match else "?"
        current = _FLEET_STATUS_RE.search(line)
        if current:  # clustermgtd says the fleet's status at every loop: the latest one decides
            if (current.group(1) or current.group(2)) != "PROTECTED":
                return None
            match = _PCLUSTER_RE.match(line)
            return match.group("time") if match else "?"
    return None


# --- sinfo -R ----------------------------------------------------------------------------------------

SINFO_REASONS = ["sinfo", "-R", "-h", "-N", "-o", "%N|%T|%H|%E"]


@dataclass(frozen=True)
class NodeDown:
    node: str
    state: str
    since: str
    reason: str


def parse_sinfo_reasons(text: str) -> list[NodeDown]:
    """``sinfo -R -h -N -o '%N|%T|%H|%E'``: nodes down, drained or failing, with Slurm's reason."""
    down = []
    for line in text.splitlines():
        parts = line.split("|", 3)
        if len(parts) == 4 and parts[0]:
            down.append(NodeDown(parts[0], parts[1], parts[2], shown(parts[3])))
    return down


# --- gathering texts over one SSH connection ---------------------------------------------------------


@dataclass(frozen=True)
class LogFile:
    """A source read on the head node: the first of ``paths`` that exists."""

    name: str
    paths: tuple[str, ...]
    lines: int = 2000


def gather_command(files: Sequence[LogFile], *, sinfo: bool, marker: str | None = None) -> tuple[str, str]:
    """One shell line that prints each file's last lines (with ``sudo -n`` where only root may read),
    then ``sinfo -R``, each after a marker line; and the marker. Missing files are reported, not fatal."""
    marker = marker or f"==clustertools-triage-{secrets.token_hex(8)}=="
    body = [
        f"M={shlex.quote(marker)}",
        'ct_tail() { label=$1; n=$2; shift 2; for p in "$@"; do if [ -e "$p" ]; then '
        'if [ -r "$p" ]; then printf \'%s %s ok %s\\n\' "$M" "$label" "$p"; tail -n "$n" -- "$p" | cut -c1-2000; '
        'elif sudo -n true 2>/dev/null; then printf \'%s %s ok %s\\n\' "$M" "$label" "$p"; '
        'sudo -n tail -n "$n" -- "$p" | cut -c1-2000; '
        'else printf \'%s %s unreadable %s\\n\' "$M" "$label" "$p"; fi; return 0; fi; done; '
        'printf \'%s %s missing %s\\n\' "$M" "$label" "$*"; }',
    ]
    for log in files:
        body.append("ct_tail " + " ".join(shlex.quote(word) for word in (log.name, str(log.lines), *log.paths)))
    if sinfo:
        body.append(
            f"if out=$({shlex.join(SINFO_REASONS)} 2>&1); then printf '%s sinfo ok sinfo -R\\n' \"$M\"; "
            "else printf '%s sinfo error sinfo -R\\n' \"$M\"; fi; printf '%s\\n' \"$out\" | head -n 500"
        )
    return "; ".join(body), marker


@dataclass(frozen=True)
class SourceText:
    """One source as gathered: its text, or why there is none."""

    name: str
    where: str  # a path, a CloudWatch stream, a command
    status: str = "ok"  # "ok", "missing", "unreadable", "error"
    text: str = ""
    node: str = "head node"  # where it was read


def split_gathered(output: str, marker: str) -> list[SourceText]:
    """The sections ``gather_command``'s line printed."""
    sources: list[SourceText] = []
    name = where = status = None
    body: list[str] = []
    for line in output.splitlines():
        if line.startswith(marker + " "):
            if name is not None:
                sources.append(SourceText(name, where or "", status or "ok", "\n".join(body)))
            name, status, where = [*line[len(marker) + 1 :].split(" ", 2), "", ""][:3]
            body = []
        elif name is not None:
            body.append(line)
    if name is not None:
        sources.append(SourceText(name, where or "", status or "ok", "\n".join(body)))
    return sources

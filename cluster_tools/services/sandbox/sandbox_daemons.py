"""The sandbox's daemons one by one: how each is started, when it counts as ready, which port it keeps.

`sandbox up` starts only the daemons that are not running and keeps the ports saved in sandbox.json,
so a restart of one daemon leaves the queue, the S3 objects, the cluster record and every run's S3
endpoint URL as they were.
"""

from __future__ import annotations

import re
import socket
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from cluster_tools.errors import SandboxError, TransportError
from cluster_tools.model.progress import Progress
from cluster_tools.render.sandbox_layout import SandboxPaths
from cluster_tools.services.sandbox import sandbox_files as files
from cluster_tools.services.sandbox.sandbox_s3 import recording_env
from cluster_tools.slurm.node_info import parse_sinfo_node_states
from cluster_tools.transport import local_processes as procs
from cluster_tools.transport.local_commands import run_local

# "head" holds the head node's mount namespace (templates/sandbox/head-namespace.sh): slurmctld and sshd
# run in it, and so does every node's slurmd (started by the ResumeProgram). munged, S3 and the image
# registry (services/sandbox/sandbox_images.py) run outside.
START_ORDER = ("munged", "head", "slurmctld", "sshd", "s3", "registry")
IN_NAMESPACE = ("slurmctld", "sshd")
PORT_NAMES = ("slurmctld", "ssh", "s3", "registry")  # the keys of sandbox.json's "ports" (each node has its own too)
PORT_OF = {"slurmctld": "slurmctld", "sshd": "ssh", "s3": "s3", "registry": "registry"}


@dataclass
class Namespace:
    """The head node's mount namespace: a process in it (set once "head" started, or found alive)."""

    pid: int | None = None

    def enter(self) -> list[str]:
        if self.pid is None:
            raise SandboxError("the sandbox's head node namespace is gone", "clustertools sandbox down, then up")
        return ["nsenter", f"--target={self.pid}", "--mount", "--"]


def running_namespace(saved: Mapping) -> Namespace:
    """The head node's namespace as sandbox.json records it: a live process in it, or none (enter() then
    raises). Anything that writes the node's /etc or /opt once the sandbox runs must go through it: those
    are overlays, and a file changed in an overlay's upper layer behind its back may never be seen in it."""
    for entry in saved.get("processes", ()):
        record = procs.ProcessRecord.from_json(entry)
        if record.name in ("head", *IN_NAMESPACE) and procs.is_running(record):
            return Namespace(record.pid)
    return Namespace(None)


@dataclass(frozen=True)
class DaemonContext:
    """What starting any one daemon needs."""

    paths: SandboxPaths
    programs: Mapping[str, str]
    env: Mapping[str, str]
    ports: Mapping[str, int]
    namespace: Namespace

    @property
    def s3_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    @property
    def registry_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['registry']}"

    @property
    def registry_config(self) -> Path:
        return self.paths.etc / "registry.yml"

    @property
    def s3_recording(self) -> Path:
        """Every request the S3 endpoint answered: what brings its objects back after it died."""
        return self.paths.root / "s3" / "requests.jsonl"


def argv(name: str, ctx: DaemonContext) -> list[str]:
    paths, programs = ctx.paths, ctx.programs
    if name == "munged":
        return [
            programs["munged"],
            "-F",
            f"--socket={paths.munge_socket}",
            f"--key-file={paths.munge_key}",
            f"--pid-file={paths.run}/munged.pid",
            f"--log-file={paths.log}/munged.log",
            f"--seed-file={paths.keys}/munge.seed",
        ]
    if name == "head":
        return _head_argv(ctx)
    if name == "slurmctld":  # no -c: slurmctld recovers its queue from StateSaveLocation, so a restart keeps every job
        return [*ctx.namespace.enter(), programs["slurmctld"], "-D"]
    if name == "sshd":
        return [
            *ctx.namespace.enter(),
            programs["sshd"],
            "-D",
            "-f",
            str(paths.sshd_config),
            "-E",
            str(paths.log / "sshd.log"),
        ]
    if name == "registry":
        return [programs["docker-registry"], "serve", str(ctx.registry_config)]
    return [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(ctx.ports["s3"])]


def _head_argv(ctx: DaemonContext) -> list[str]:
    """A process that holds the head node's namespace: a new one laid out by head-namespace.sh, or (when
    slurmctld or sshd still runs in the old one) a new holder in theirs."""
    if ctx.namespace.pid is not None:
        return [*ctx.namespace.enter(), "sleep", "infinity"]
    from cluster_tools.store.shipped_files import template_path

    return [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "bash",
        str(template_path("sandbox/head-namespace.sh")),
        str(ctx.paths.node_fs),
        "--",
        "sleep",
        "infinity",
    ]


def start(name: str, ctx: DaemonContext, on_spawned: Callable[[procs.ProcessRecord], None]) -> list[str]:
    """Spawn one daemon, hand its record to ``on_spawned`` at once (so `down` finds it), wait until ready.

    Returns the ids of jobs a restarted slurmctld found no saved state for (it saves a few seconds
    after a change, so a slurmctld killed right after a submit forgets those jobs).
    """
    if name == "munged":
        ctx.paths.munge_socket.unlink(missing_ok=True)  # a killed munged leaves its socket: not a sign of life
    if name == "registry":  # its images stay in the sandbox's directory across restarts, at the same port
        from cluster_tools.services.sandbox.sandbox_images import registry_config

        ctx.registry_config.write_text(registry_config(port=ctx.ports["registry"], storage=ctx.paths.root / "registry"))
    log, timeout, ready = _readiness(name, ctx)
    seen = log.stat().st_size if log.exists() else 0
    env = {**ctx.env, **recording_env(ctx.s3_recording)} if name == "s3" else ctx.env
    record = procs.spawn(name, argv(name, ctx), env=env, log_path=ctx.paths.log / f"{name}.out", cwd=ctx.paths.root)
    on_spawned(record)
    if name == "head":
        ctx.namespace.pid = record.pid
    _wait(name, record, log, timeout, ready)
    return lost_jobs(log, seen) if name == "slurmctld" else []


def lost_jobs(log: Path, offset: int) -> list[str]:
    """Job ids slurmctld's log (from ``offset``) says it purged as defunct: submitted, never saved."""
    try:
        with open(log, "rb") as handle:
            handle.seek(offset)
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return []
    return re.findall(r"Purged files for defunct batch JobId=(\d+)", text)


def _readiness(name: str, ctx: DaemonContext) -> tuple[Path, float, Callable[[], bool]]:
    paths, sinfo = ctx.paths, ctx.programs["sinfo"]
    return {
        "munged": (paths.log / "munged.out", 10, paths.munge_socket.exists),
        "head": (paths.log / "head.out", 10, lambda: _namespace_ready(ctx)),
        "slurmctld": (paths.log / "slurmctld.log", 30, lambda: node_states(sinfo, ctx.env) is not None),
        "sshd": (paths.log / "sshd.log", 10, lambda: port_open(ctx.ports["ssh"])),
        "s3": (paths.log / "s3.out", 30, lambda: http_ok(ctx.s3_url)),
        "registry": (paths.log / "registry.out", 30, lambda: http_ok(ctx.registry_url + "/v2/")),
    }[name]


def ports_taken(ports: Mapping[str, int], names: tuple[str, ...]) -> list[str]:
    """The daemons among ``names`` whose saved port another program holds now."""
    return [name for name in names if name in PORT_OF and not port_free(ports[PORT_OF[name]])]


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the daemons bind: TIME_WAIT is free
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def node_states(sinfo: str, env: Mapping[str, str]) -> dict[str, str] | None:
    """Each node's state as sinfo says it (``idle~``, ``idle``, ``down*``...); None when slurmctld does not answer."""
    try:
        out = run_local([sinfo, "-h", "-N", "-o", "%N|%T"], env=env, timeout=5)
    except TransportError:
        return None
    return parse_sinfo_node_states(out.stdout) if out.ok else None


def _namespace_ready(ctx: DaemonContext) -> bool:
    """The holder sees the node's filesystem: /proc/PID/root resolves paths in that process's mounts."""
    return Path(f"/proc/{ctx.namespace.pid}/root/opt/slurm/etc/slurm.conf").exists()


def _wait(name: str, record: procs.ProcessRecord, log: Path, timeout: float, ready: Callable[[], bool]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not procs.is_running(record):
            raise SandboxError(f"{name} exited while starting: {files.tail(log)}", f"see {log}")
        if ready():
            return
        time.sleep(0.1)
    raise SandboxError(f"{name} did not become ready within {timeout:g} s: {files.tail(log)}", f"see {log}")


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def http_ok(url: str) -> bool:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never a proxy
    try:
        with opener.open(url, timeout=1):
            return True
    except urllib.error.HTTPError:
        return True  # any HTTP answer means the server is up
    except OSError:
        return False


def ports_for_start(saved: dict, node_count: int, progress: Progress) -> dict:
    """The ports of the last start when they are all free (runs keep the S3 endpoint URL), else new ones;
    ``nodes``: one per node (each slurmd listens on its own)."""
    old = saved.get("ports") or {}
    if all(isinstance(old.get(name), int) for name in PORT_NAMES):
        if all(port_free(old[name]) for name in PORT_NAMES):
            return {**{name: old[name] for name in PORT_NAMES}, "nodes": files.free_ports(node_count)}
        progress(
            "some of the sandbox's previous ports are taken by other programs: using new ports "
            "(runs submitted before reach their S3 outputs at the old endpoint)"
        )
    fresh = files.free_ports(len(PORT_NAMES) + node_count)
    return {**dict(zip(PORT_NAMES, fresh, strict=False)), "nodes": fresh[len(PORT_NAMES) :]}


def ports_for_restart(saved: dict, dead: tuple[str, ...]) -> dict[str, int]:
    """The ports the running sandbox has; a free one for a daemon it never had (a sandbox started by an older
    clustertools has no registry)."""
    missing = [name for name in PORT_NAMES if not isinstance(saved["ports"].get(name), int)]
    saved["ports"].update(zip(missing, files.free_ports(len(missing)), strict=True))
    ports = {name: int(saved["ports"][name]) for name in PORT_NAMES}
    taken = ports_taken(ports, dead)
    if taken:
        which = ", ".join(f"{name} (127.0.0.1:{ports[PORT_OF[name]]})" for name in taken)
        raise SandboxError(
            f"cannot restart {which}: another program holds the port now",
            "stop that program, or `clustertools sandbox down` then `up` (new ports)",
        )
    return ports

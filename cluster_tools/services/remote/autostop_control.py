"""``clustertools autostop``: arm, change or switch off the head node's idle autostop (bootstrap/autostop.sh),
and read its status for ``describe``.

A ParallelCluster head node: over one SSH connection, the scripts go in a tar on stdin of one ``sudo``
command that unpacks them into /var/lib/clustertools/autostop and runs ``autostop.sh --configure``, which
(re)installs the systemd timer. The sandbox: its node is this machine, where systemd does not run, so the
timer is a process of the sandbox (``autostop.sh --loop``), started here with the daemons' environment and
recorded by PID and start time in sandbox.json beside them: ``sandbox down`` stops it with the rest.
A cluster reached over SSH that clustertools did not create is never stopped by it.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cluster_tools.errors import ClusterToolsError, ConfigError, SandboxError
from cluster_tools.model.clusters.cluster_record import ClusterRecord
from cluster_tools.model.nodes.autostop_policy import (
    ACTIONS,
    REMOTE_DIR,
    SCRIPTS,
    STATUS_FILE,
    AutostopStatus,
    configure_args,
    describe_command,
    install_archive,
    parse_autostop_status,
    remote_install_command,
    summary_line,
)
from cluster_tools.model.project.project_config import Project
from cluster_tools.store.state_dir import StateDir, write_private_json
from cluster_tools.transport.local_commands import run_local
from cluster_tools.transport.remote_shell import RemoteShell

SANDBOX_INTERVAL = 5
CLUSTER_INTERVAL = 60


@dataclass(frozen=True)
class AutostopResult:
    cluster: str
    minutes: int | None  # None: off
    action: str
    interval_seconds: int
    timer: str  # systemd | loop | none
    where: str  # the head node's state dir
    log: str
    pid: int | None = None  # the sandbox's timer process

    @property
    def action_text(self) -> str:
        return ACTIONS.get(self.action, self.action)


# The sandbox's autostop files, as its head node sees them (a layer of its own; /var is this machine's).
SANDBOX_AUTOSTOP_DIR = "/opt/clustertools/autostop"


def set_autostop(
    state: StateDir,
    record: ClusterRecord,
    project: Project | None,
    minutes: int | None,
    *,
    down: bool = False,
    interval: int | None = None,
    environ: Mapping[str, str] | None = None,
    bootstrap_dir: Path | None = None,
) -> AutostopResult:
    """Arm autostop for ``minutes`` idle (None: off) on ``record``'s head node."""
    scripts = _scripts(bootstrap_dir)
    if record.sandbox:
        if down:
            raise ConfigError(
                "--down deletes a ParallelCluster stack; the sandbox has none",
                "on the sandbox autostop sets its partitions INACTIVE; `sandbox down` stops it",
            )
        return _sandbox(state, minutes, interval or SANDBOX_INTERVAL, scripts, environ or os.environ)
    if record.provider != "parallelcluster":
        raise ConfigError(
            f"{record.name} is a cluster reached over SSH that clustertools did not create: autostop never stops it",
            "autostop is for clusters made by `clustertools up`, and the sandbox",
        )
    return _parallelcluster(state, record, project, minutes, down, interval or CLUSTER_INTERVAL, scripts)


def _armed_file(state: StateDir, name: str) -> Path:
    return state.autostop_file(name)


def autostop_armed(state: StateDir, name: str) -> bool:
    """Whether `clustertools autostop` armed it on this cluster (then `describe` reads its status over SSH)."""
    try:
        return json.loads(_armed_file(state, name).read_text()).get("minutes") is not None
    except (OSError, ValueError, AttributeError):
        return False


def _scripts(bootstrap_dir: Path | None) -> dict[str, bytes]:
    if bootstrap_dir is None:
        from cluster_tools.store.shipped_files import bootstrap_dir as shipped

        bootstrap_dir = shipped()
    return {name: (bootstrap_dir / name).read_bytes() for name in SCRIPTS}


def _parallelcluster(
    state: StateDir,
    record: ClusterRecord,
    project: Project | None,
    minutes: int | None,
    down: bool,
    interval: int,
    scripts: dict[str, bytes],
) -> AutostopResult:
    from cluster_tools.services.remote.cluster_shell import connect

    role = None
    if down:
        spec = project.parallelcluster if project else None
        if spec is None or not (spec.autostop_down_role_arn and spec.autostop_down_policy_arn):
            raise ConfigError(
                "--down deletes the cluster from its head node, whose own role cannot delete the stack",
                "set parallelcluster.autostop_down_policy_arn and autostop_down_role_arn, then create the "
                "cluster with them (the policy joins the head node's role only at `up`)",
            )
        role = spec.autostop_down_role_arn
    action = "down" if down else "stop"
    argv = remote_install_command(
        REMOTE_DIR, configure_args(minutes, action=action, interval=interval, down_role_arn=role)
    )
    with connect(record) as conn:
        result = conn.run(argv, stdin=install_archive(scripts), timeout=120)
    if result.exit_code != 0:
        why = (result.stderr or result.stdout).decode("utf-8", "replace").strip().splitlines()
        raise ClusterToolsError(
            f"autostop on {record.name} failed (exit {result.exit_code})" + (f": {why[-1]}" if why else ""),
            "the login user needs passwordless sudo, as on ParallelCluster's AMIs",
        )
    write_private_json(_armed_file(state, record.name), {"minutes": minutes, "action": action})
    return AutostopResult(
        record.name, minutes, action, interval, "systemd", REMOTE_DIR, "/var/log/clustertools-autostop.log"
    )


def _sandbox(
    state: StateDir, minutes: int | None, interval: int, scripts: dict[str, bytes], environ: Mapping[str, str]
) -> AutostopResult:
    """Autostop on the sandbox's head node: installed, configured and timed as root inside its namespace (its
    /opt is an overlay: a status.json replaced from outside may never be seen by the login user's `describe`)."""
    from cluster_tools.services.sandbox import sandbox_daemons as daemons
    from cluster_tools.services.sandbox import sandbox_files as files
    from cluster_tools.services.sandbox.sandbox_lifecycle import sandbox_status
    from cluster_tools.transport import local_processes as procs

    if not sandbox_status(state).running:
        raise SandboxError("the sandbox is not running", "start it: clustertools sandbox up")
    paths = files.sandbox_paths(state.sandbox)
    saved = json.loads(paths.state_file.read_text())
    on_head = daemons.running_namespace(saved).enter()
    staged = _stage_scripts(paths.bin / "autostop", scripts)
    records = [procs.ProcessRecord.from_json(p) for p in saved["processes"]]
    procs.stop([r for r in records if r.name == "autostop"])
    records = [r for r in records if r.name != "autostop"]
    sshd = next(r for r in records if r.name == "sshd")
    env = _sandbox_root_env(paths, environ)
    log = paths.log / "clustertools-autostop.log"
    script = f"{SANDBOX_AUTOSTOP_DIR}/autostop.sh"
    install = ["install", "-D", "-m", "0755", "-t", SANDBOX_AUTOSTOP_DIR, *(str(staged / name) for name in scripts)]
    _run_on_head([*on_head, *install], env, log)
    configure = _sandbox_configure_args(saved, minutes, interval, log, sshd.pid)
    _run_on_head([*on_head, "bash", script, "--configure", *configure], env, log)
    pid = None
    if minutes is not None:
        timer = procs.spawn(
            "autostop",
            [*on_head, "bash", script, "--loop", "--state-dir", SANDBOX_AUTOSTOP_DIR],
            env=env,
            log_path=paths.log / "autostop.out",
            cwd=paths.root,
        )
        records.append(timer)
        pid = timer.pid
    saved["processes"] = [r.to_json() for r in records]
    write_private_json(paths.state_file, saved)
    return AutostopResult(
        "sandbox", minutes, "sandbox", interval, "loop" if pid else "none", SANDBOX_AUTOSTOP_DIR, str(log), pid
    )


def _stage_scripts(staged: Path, scripts: dict[str, bytes]) -> Path:
    """The autostop scripts written where the head node's namespace can install them from."""
    staged.mkdir(parents=True, exist_ok=True)
    for name, data in scripts.items():
        (staged / name).write_bytes(data)
    return staged


def _sandbox_configure_args(saved: dict, minutes: int | None, interval: int, log: Path, sshd_pid: int) -> list[str]:
    """autostop.sh --configure's arguments on the sandbox: only this sandbox's sessions (its sshd) count, and
    its jobs' upload markers (slurm.conf as its jobs see it); a marker older than this sandbox was left by a
    task killed with the previous one."""
    from cluster_tools.services.sandbox.sandbox_nodes import NODE_SLURM_CONF

    started = int(datetime.fromisoformat(saved["started_at"]).timestamp())
    return [
        "--state-dir",
        SANDBOX_AUTOSTOP_DIR,
        *configure_args(minutes, action="sandbox", interval=interval),
        "--no-timer",
        "--cluster",
        "sandbox",
        "--log",
        str(log),
        "--sshd-pid",
        str(sshd_pid),
        "--runs-dirs",
        f"/home/{saved['user']}/.clustertools/runs",
        "--slurm-conf",
        NODE_SLURM_CONF,
        "--node-started",
        str(started),
    ]


def _sandbox_root_env(paths, environ: Mapping[str, str]) -> dict[str, str]:
    """What ParallelCluster's head node gives a root systemd unit (bootstrap/autostop-configure.sh's PATH),
    and the sandbox's marker, by which `sandbox down` finds every process of this sandbox."""
    from cluster_tools.services.sandbox.sandbox_lifecycle import MARKER_ENV

    return {
        "PATH": "/opt/slurm/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": "/root",
        "LANG": environ.get("LANG", "C.UTF-8"),
        MARKER_ENV: str(paths.root),
    }


def _run_on_head(argv: list[str], env: Mapping[str, str], log) -> None:
    done = run_local(argv, env=env, timeout=60)
    if not done.ok:
        raise SandboxError(f"autostop on the sandbox's head node failed: {done.last_line()}", f"see {log}")


def status_path(state: StateDir, record: ClusterRecord) -> str:
    """Where the head node keeps status.json."""
    return f"{SANDBOX_AUTOSTOP_DIR if record.sandbox else REMOTE_DIR}/{STATUS_FILE}"


def sandbox_timer_running(state: StateDir) -> bool:
    """Whether the sandbox's autostop timer process (recorded in sandbox.json) still runs."""
    from cluster_tools.services.sandbox.sandbox_files import sandbox_paths
    from cluster_tools.transport import local_processes as procs

    try:
        saved = json.loads(sandbox_paths(state.sandbox).state_file.read_text())
    except (OSError, ValueError):
        return False
    records = [procs.ProcessRecord.from_json(p) for p in saved.get("processes", ())]
    return any(r.name == "autostop" and procs.is_running(r) for r in records)


def read_autostop(
    conn: RemoteShell, path: str, *, now: float | None = None, timer_running: bool | None = None
) -> tuple[dict | None, str | None]:
    """The head node's autostop status over an open connection (one exec, bounded): (status with its
    ``summary`` line, None), (None, None) where autostop was never installed, or (None, why it is unknown).
    ``timer_running`` False (the sandbox's timer process is gone) makes a live-looking status say so."""
    try:
        text = conn.run(describe_command(path), timeout=15).text
    except ClusterToolsError as exc:
        return None, f"cannot read it: {exc.message}"
    if not text.strip():
        return None, None
    try:
        status: AutostopStatus = parse_autostop_status(text)
    except ValueError as exc:
        return None, f"unreadable status in {path}: {exc}"
    summary = summary_line(status, time.time() if now is None else now)
    if timer_running is False and status.decision in ("armed", "idle", "busy", "firing"):
        summary = (
            "not running: its timer process is gone (the sandbox was restarted since it was armed); "
            "arm it again: clustertools autostop -c sandbox MINUTES"
        )
    return {**status.to_json(), "summary": summary, "timer_running": timer_running}, None

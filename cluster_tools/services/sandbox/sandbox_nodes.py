"""The sandbox's compute nodes: planned like ParallelCluster's queues, booted and stopped like its instances.

Every node is a slurmd of this machine in its own UTS, mount, cgroup and time namespaces
(templates/sandbox/node-namespace.sh), under a cgroup of its own below the sandbox's parent cgroups. Slurm's
power saving starts them: ResumeProgram (bin/resume.sh) "boots" a node after the boot delay and
SuspendProgram (bin/suspend.sh) kills everything in its cgroups, as ParallelCluster's slurm_resume and
slurm_suspend launch and terminate instances. Static nodes (``-st-``) are powered up by `sandbox up`, as
clustermgtd launches them, and never suspended.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cluster_tools.errors import SandboxError, TransportError
from cluster_tools.render.sandbox_cluster import (
    DEFAULT_NODE_CPUS,
    DEFAULT_NODE_MEMORY_MB,
    DEFAULT_QUEUE,
    ClusterFiles,
    PowerSaving,
    QueueShape,
    SandboxNode,
    plan_nodes,
    project_queue_shapes,
    render_resume_program,
    render_slurm_conf,
    render_suspend_program,
)
from cluster_tools.render.sandbox_layout import SandboxPaths
from cluster_tools.services.sandbox.sandbox_namespace import NODE_CONTROLLERS, node_cgroup_dirs
from cluster_tools.transport.local_commands import run_local

# slurm.conf as the nodes see it: slurmd hands it to every job (SLURM_CONF), and the login user can read it
# there (the sandbox's own path may be under a 0700 home).
NODE_SLURM_CONF = "/opt/slurm/etc/slurm.conf"
NODE_SLURMD_SPOOL = "/var/spool/slurmd"  # every node's own (templates/sandbox/node-namespace.sh), as on ParallelCluster
# Nodes are processes of a small machine: a short boot, so that tests and demos do not wait for long.
DEFAULT_BOOT_DELAY = 2.0


@dataclass(frozen=True)
class NodeOptions:
    """The shape of the sandbox's cluster: its queues (the project's, or one queue ``compute``) and power saving."""

    queues: tuple[QueueShape, ...] = ()
    project_queues: tuple = ()  # the project's parallelcluster.queues (QueueSpec), when ``queues`` is empty
    nodes: int = 4  # of the default queue
    static_nodes: int = 0  # of the default queue: always up (MinCount)
    cpus_per_node: int = DEFAULT_NODE_CPUS
    memory_per_node_mb: int = DEFAULT_NODE_MEMORY_MB
    boot_delay: float = DEFAULT_BOOT_DELAY
    idle_time: int = 600  # seconds an idle dynamic node stays up (ScaledownIdletime; Slurm's SuspendTime)

    def shapes(self) -> tuple[list[QueueShape], list[str]]:
        if self.queues:
            return list(self.queues), []
        if self.project_queues:
            from cluster_tools.model.cost.pricing import shipped_instance_shape

            return project_queue_shapes(self.project_queues, shipped_instance_shape)
        return [
            QueueShape(
                DEFAULT_QUEUE,
                "sandbox.2xlarge",
                self.cpus_per_node,
                self.memory_per_node_mb,
                min(self.static_nodes, self.nodes),
                self.nodes,
            )
        ], []


def node_options(
    spec,
    *,
    nodes: int | None,
    static_nodes: int | None,
    cpus_per_node: int | None,
    boot_delay: float,
    idle_time: int | None,
) -> NodeOptions:
    """The project's queues (``spec``: its ``parallelcluster:`` section, or None) and ScaledownIdletime, unless
    the queue's shape is given (``nodes``, ``static_nodes``, ``cpus_per_node``): then one queue ``compute``."""
    if spec is not None and nodes is None and static_nodes is None and cpus_per_node is None:
        return NodeOptions(
            project_queues=tuple(spec.queues),
            boot_delay=boot_delay,
            idle_time=spec.scaledown_idletime * 60 if idle_time is None else idle_time,
        )
    nodes = 4 if nodes is None else nodes
    return NodeOptions(
        nodes=nodes,
        static_nodes=min(static_nodes or 0, nodes),
        cpus_per_node=cpus_per_node or DEFAULT_NODE_CPUS,
        boot_delay=boot_delay,
        idle_time=600 if idle_time is None else idle_time,
    )


def plan(options: NodeOptions) -> tuple[list[SandboxNode], list[str]]:
    memory_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1024 * 1024)
    shapes, notes = options.shapes()
    planned, more = plan_nodes(shapes, memory_mb)
    return planned, [*notes, *more]


def nodes_json(nodes: list[SandboxNode]) -> list[dict[str, object]]:
    return [dict(node.__dict__) for node in nodes]


def nodes_from_json(saved: list[dict]) -> list[SandboxNode]:
    return [SandboxNode(**entry) for entry in saved]


def node_uptimes(power_log: str, since: datetime, now: datetime) -> dict[str, list[tuple[datetime, datetime | None]]]:
    """Each node's up intervals since ``since`` from bin/resume.sh's and bin/suspend.sh's lines in power.log
    (``<ISO time> resume|suspend NODE ...``): from a resume to the node's next suspend, or None while it is
    still up. As an instance bills from its launch to its termination."""
    spans: dict[str, list[tuple[datetime, datetime | None]]] = {}
    for line in power_log.splitlines():
        parts = line.split()
        if len(parts) < 3 or parts[1] not in ("resume", "suspend"):
            continue
        try:
            when = datetime.fromisoformat(parts[0].replace("Z", "+00:00"))
        except ValueError:
            continue
        if when < since or when > now:
            continue
        node, open_span = parts[2], spans.get(parts[2], [])
        if parts[1] == "resume" and not (open_span and open_span[-1][1] is None):
            spans.setdefault(node, []).append((when, None))
        elif parts[1] == "suspend" and open_span and open_span[-1][1] is None:
            open_span[-1] = (open_span[-1][0], when)
    return spans


def saved_nodes(state) -> list[SandboxNode]:
    """The nodes the sandbox was laid out with (sandbox.json), none when it was never started."""
    import json

    from cluster_tools.services.sandbox.sandbox_files import sandbox_paths

    try:
        return nodes_from_json(json.loads(sandbox_paths(state.sandbox).state_file.read_text()).get("nodes", []))
    except (OSError, ValueError):
        return []


def cgroup_parents(paths: SandboxPaths) -> dict[str, str]:
    """Per cgroup v1 controller, the directory under which each node gets its cgroup: below this process's
    own (the sandbox stays inside whatever limits this machine sets for it). Saved: `down` may run elsewhere."""
    proc = Path("/proc/self/cgroup").read_text()
    name = f"clustertools-{paths.runtime.name.rsplit('-', 1)[-1]}"
    return {controller: str(path) for controller, path in node_cgroup_dirs(name, proc).items()}


def write_cluster_files(
    paths: SandboxPaths,
    programs: Mapping[str, str],
    marker: tuple[str, str],
    nodes: list[SandboxNode],
    cgroups: Mapping[str, str],
    files: ClusterFiles,
    boot_delay: float,
) -> dict[str, str]:
    """bin/resume.sh, bin/suspend.sh and bin/cgroups; returns slurm.conf's text (it lives in the node layout)."""
    from cluster_tools.store.shipped_files import template_path

    paths.bin.mkdir(parents=True, exist_ok=True)
    cgroups_file = paths.bin / "cgroups"
    cgroups_file.write_text("".join(f"{controller} {cgroups[controller]}\n" for controller in NODE_CONTROLLERS))
    scontrol = "/opt/slurm/bin/scontrol"  # where the head node's namespace has it (not /usr/bin)
    resume = render_resume_program(
        marker_env=marker[0],
        marker=marker[1],
        boot_delay=boot_delay,
        log_dir=str(paths.log),
        scontrol=scontrol,
        node_script=str(template_path("sandbox/node-namespace.sh")),
        cgroups=str(cgroups_file),
        spools=str(paths.slurmd_spool),
        sshd_spec=str(paths.bin / "node-sshd"),
        slurmd=programs["slurmd"],
        slurm_conf=NODE_SLURM_CONF,
    )
    suspend = render_suspend_program(
        log_dir=str(paths.log),
        scontrol=scontrol,
        pids_dir=cgroups["pids"],
        cgroup_dirs=[cgroups[c] for c in NODE_CONTROLLERS],
    )
    for name, text in (("resume.sh", resume), ("suspend.sh", suspend)):
        (paths.bin / name).write_text(text)
        (paths.bin / name).chmod(0o755)
    return {"slurm.conf": render_slurm_conf(files)}


def cluster_files(
    paths: SandboxPaths,
    nodes: list[SandboxNode],
    ports: Mapping[str, int],
    *,
    idle_time: int,
    memory_scheduling: bool,
    max_array_size: int,
    max_job_count: int,
    min_job_age: int,
    requeue_delay: int,
) -> ClusterFiles:
    return ClusterFiles(
        nodes=tuple(nodes),
        slurmctld_port=ports["slurmctld"],
        munge_socket=str(paths.munge_socket),
        state_dir=str(paths.slurm_state),
        spool_dir=NODE_SLURMD_SPOOL,
        run_dir=str(paths.run),
        log_dir=str(paths.log),
        resume_program=str(paths.bin / "resume.sh"),
        suspend_program=str(paths.bin / "suspend.sh"),
        power=PowerSaving(suspend_time_s=idle_time),
        memory_scheduling=memory_scheduling,
        max_array_size=max_array_size,
        max_job_count=max_job_count,
        min_job_age=min_job_age,
        requeue_delay=requeue_delay,
    )


def responds(state: str | None) -> bool:
    """slurmd has registered: idle, mixed, allocated, or drained by someone (a drain outlives restarts)."""
    if not state:
        return False
    return not state.endswith(("*", "~", "#", "%")) and state.startswith(("idle", "mix", "alloc", "drain", "compl"))


def slurmd_alive(paths: SandboxPaths, name: str) -> bool:
    """Whether node ``name``'s slurmd runs (its pid file, SlurmdPidFile's %n, names a live slurmd): what
    clustermgtd learns from EC2's instance status before Slurm notices (SlurmdTimeout)."""
    try:
        pid = int((paths.run / f"slurmd-{name}.pid").read_text().strip())
        return b"slurmd" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return False


def power_up(env: Mapping[str, str], names: list[str], timeout: float = 60.0) -> None:
    """Boot ``names`` (as clustermgtd launches static nodes) and wait until each slurmd registers."""
    if not names:
        return
    run_admin(["scontrol", "update", f"nodename={','.join(names)}", "state=POWER_UP"], env)
    wait_responding(env, names, timeout)


def wait_responding(env: Mapping[str, str], names: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    states: dict[str, str] = {}
    while time.monotonic() < deadline:
        states = node_states(env)
        if all(responds(states.get(name)) for name in names):
            return
        time.sleep(0.2)
    waiting = ", ".join(f"{name} ({states.get(name, '?')})" for name in names if not responds(states.get(name)))
    raise SandboxError(f"nodes did not boot within {timeout:g} s: {waiting}", "see the sandbox's log/node-*.out")


def boot_again(paths: SandboxPaths, namespace_pid: int, names: list[str], timeout: float = 60.0) -> None:
    """Start ``names``' slurmds again in the head node's namespace (a replacement instance of the same name),
    and wait until they run: for nodes Slurm takes as powered up, whose slurmd is gone."""
    env = {**admin_env(paths), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    done = run_local(
        [
            "nsenter",
            f"--target={namespace_pid}",
            "--mount",
            "--",
            "bash",
            str(paths.bin / "resume.sh"),
            ",".join(names),
        ],
        env=env,
        timeout=30,
    )
    if not done.ok:
        raise SandboxError(f"could not boot {', '.join(names)} again: {done.stderr.strip()}")
    deadline = time.monotonic() + timeout
    while not all(slurmd_alive(paths, name) for name in names):
        if time.monotonic() > deadline:
            raise SandboxError(
                f"{', '.join(names)} did not boot again within {timeout:g} s", "see the sandbox's log/node-*.out"
            )
        time.sleep(0.2)


def stop_all(paths: SandboxPaths, names: list[str]) -> None:
    """Kill every process of ``names`` and remove their cgroups, as the SuspendProgram does."""
    if names and (paths.bin / "suspend.sh").exists():
        env = {"SLURM_CONF": str(paths.slurm_conf), "PATH": "/usr/bin:/bin:/usr/sbin:/sbin"}
        run_local(["bash", str(paths.bin / "suspend.sh"), ",".join(names)], env=env, timeout=60)


def remove_cgroups(parents: Mapping[str, str]) -> list[str]:
    """Remove the sandbox's parent cgroups and all below them, deepest first; what stays is busy."""
    left: list[str] = []
    for parent in map(Path, parents.values()):
        if not parent.is_dir():
            continue
        for path in sorted((p for p in parent.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
            _rmdir(path, left)
        _rmdir(parent, left)
    return left


def _rmdir(path: Path, left: list[str]) -> None:
    try:
        path.rmdir()
    except OSError:
        left.append(str(path))


def node_states(env: Mapping[str, str]) -> dict[str, str]:
    from cluster_tools.slurm.node_info import parse_sinfo_node_states

    done = run_local(["sinfo", "-h", "-N", "-o", "%N|%T"], env=env, timeout=10)
    return parse_sinfo_node_states(done.stdout) if done.ok else {}


def run_admin(argv: list[str], env: Mapping[str, str]) -> str:
    """A Slurm admin command (scontrol update...) run on this machine as root, as an operator would."""
    try:
        done = run_local(argv, env=env, timeout=30)
    except TransportError as exc:
        raise SandboxError(f"{' '.join(argv)} failed: {exc.message}") from None
    if not done.ok:
        raise SandboxError(f"{' '.join(argv)} failed: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout


def admin_env(paths: SandboxPaths) -> dict[str, str]:
    return {"SLURM_CONF": str(paths.slurm_conf), "PATH": "/usr/bin:/bin:/usr/sbin:/sbin"}


# What tasks keep in a node's /tmp (the wrapper's rootless podman store, the shared inputs fetched once per node):
# a real node loses it with its instance. The sandbox's nodes share this machine's /tmp, so it goes with the last
# sandbox of that login user (uid) to stop: another one still running may be using it.
NODE_SCRATCH = ("clustertools-podman-{uid}", "clustertools-shared-{uid}")


def remove_node_scratch(
    uid: int | None,
    marker_env: str,
    marker: str,
    *,
    tmp: Path = Path("/tmp"),
    running: Callable[[str], set[str]] | None = None,
) -> list[Path]:
    """Remove the nodes' scratch of login user ``uid`` unless a sandbox other than ``marker`` (the value of
    ``marker_env`` its processes carry) runs; returns what was removed."""
    if running is None:
        from cluster_tools.transport.local_processes import marked_values

        running = marked_values
    if uid is None or running(marker_env) - {marker}:
        return []
    removed = []
    for name in NODE_SCRATCH:
        path = tmp / name.format(uid=int(uid))
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed

"""The sandbox's Slurm cluster as ParallelCluster would lay it out: queues, nodes, power saving. Pure.

Read in aws/aws-parallelcluster-cookbook (commit f75d84c), files/default/head_node_slurm/slurm/templates/
slurm_parallelcluster.conf and the expected outputs of test/unit/slurm/test_slurm_config_generator:
- one partition per queue; its nodes ``<queue>-st-<compute resource>-N`` for the first MinCount (static,
  never suspended: SuspendExcNodes) and ``<queue>-dy-<compute resource>-N`` up to MaxCount (dynamic),
  every one ``State=CLOUD`` with ``Feature=static|dynamic,<instance type>,<compute resource>``;
- power saving: ``SuspendTime`` = ScaledownIdletime x 60, ``ResumeTimeout`` = the compute node bootstrap
  timeout, ``SuspendTimeout=120``, ``ResumeRate=0``, ``SuspendRate=0``, ``idle_on_node_suspend``;
- ``SelectTypeParameters=CR_CPU`` unless EnableMemoryBasedScheduling (``CR_CPU_Memory`` and cgroup.conf's
  ``ConstrainRAMSpace=yes``); cgroup.conf always has ``ConstrainCores=yes``; ``ProctrackType=proctrack/cgroup``,
  ``TaskPlugin=task/affinity,task/cgroup``; ``MinJobAge=300``; ``KillWait=30``; ``ReturnToService=1``.
The sandbox's nodes are processes of this machine: each slurmd listens on a port of its own.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from cluster_tools.model.aws.cluster_spec import QueueSpec

# What one sandbox queue may hold: every node is a slurmd of this machine (a few MB each, but a busy
# node runs real tasks), so more than this only slows the machine down.
MAX_NODES_PER_QUEUE = 8
MAX_NODES = 16
DEFAULT_QUEUE = "compute"
DEFAULT_NODE_CPUS = 8
DEFAULT_NODE_MEMORY_MB = 4096


@dataclass(frozen=True)
class SandboxNode:
    name: str
    queue: str
    compute_resource: str
    instance_type: str
    cpus: int
    real_memory_mb: int
    dynamic: bool
    port: int = 0


@dataclass(frozen=True)
class QueueShape:
    """One queue as the project (or the sandbox's default) asks for it."""

    name: str
    instance_type: str
    cpus: int
    memory_mb: int  # the instance's; Slurm gets 0.95 of it (RealMemory), as on ParallelCluster
    min_count: int = 0
    max_count: int = 4


@dataclass(frozen=True)
class PowerSaving:
    suspend_time_s: int = 600  # ScaledownIdletime 10 minutes
    resume_timeout_s: int = 120
    suspend_timeout_s: int = 120


def project_queue_shapes(
    queues: Iterable[QueueSpec], shape_of: Callable[[str], tuple[int, float] | None]
) -> tuple[list[QueueShape], list[str]]:
    """The project's ``parallelcluster:`` queues (QueueSpec) as the sandbox plays them, and a note for each
    queue whose instance types' sizes ``shape_of`` (vCPUs, memory GiB) does not know. A compute resource of
    several instance types gets the smallest vCPUs and memory among them, as ParallelCluster sizes its nodes."""
    shapes, notes = [], []
    for queue in queues:
        known = [shape for shape in map(shape_of, queue.instance_types) if shape is not None]
        if known:
            cpus, memory_mb = min(c for c, _ in known), min(math.floor(m * 1024) for _, m in known)
        else:
            cpus, memory_mb = DEFAULT_NODE_CPUS, DEFAULT_NODE_MEMORY_MB
            notes.append(
                f"queue {queue.name}: the size of {', '.join(queue.instance_types)} is not known here: "
                f"{cpus} CPUs and {memory_mb} MB per node"
            )
        shapes.append(
            QueueShape(queue.name, queue.instance_types[0], cpus, memory_mb, queue.min_count, queue.max_count)
        )
    return shapes, notes


def plan_nodes(queues: list[QueueShape], machine_memory_mb: int) -> tuple[list[SandboxNode], list[str]]:
    """Every node of every queue, capped to what this machine holds; and a note for each cap applied.

    Counts are capped per queue and in all; memory is scaled down (by one factor for every node) when
    the nodes together would claim more than this machine has, so a task the sandbox accepts can run.
    """
    notes: list[str] = []
    room = MAX_NODES
    counts = []
    for queue in queues:
        count = min(queue.max_count, MAX_NODES_PER_QUEUE, room)
        if count < queue.max_count:
            notes.append(f"queue {queue.name}: {count} of MaxCount {queue.max_count} nodes (this machine's limit)")
        counts.append(count)
        room -= count
    claimed = sum(_real_memory(q.memory_mb) * n for q, n in zip(queues, counts, strict=True))
    scale = min(1.0, machine_memory_mb * 0.8 / claimed) if claimed else 1.0
    if scale < 1.0:
        notes.append(
            f"node memory scaled to {scale:.0%} so that every node fits in this machine's {machine_memory_mb} MB"
        )
    nodes = []
    for queue, count in zip(queues, counts, strict=True):
        memory = max(256, math.floor(_real_memory(queue.memory_mb) * scale))
        static = min(queue.min_count, count)
        for index in range(count):
            kind, number = ("st", index + 1) if index < static else ("dy", index - static + 1)
            nodes.append(
                SandboxNode(
                    name=f"{queue.name}-{kind}-{queue.name}-{number}",
                    queue=queue.name,
                    compute_resource=queue.name,
                    instance_type=queue.instance_type,
                    cpus=queue.cpus,
                    real_memory_mb=memory,
                    dynamic=kind == "dy",
                )
            )
    return nodes, notes


def _real_memory(instance_memory_mb: int) -> int:
    """ParallelCluster's RealMemory: 0.95 of the instance's memory (SlurmNodeRegMemPercent)."""
    return math.floor(instance_memory_mb * 0.95)


def node_address(index: int) -> str:
    """The loopback address of the sandbox's node number ``index`` (0-based): its own, as an instance has its
    own private IP; the head node keeps 127.0.0.1. Linux routes all of 127.0.0.0/8 to the loopback device."""
    if not 0 <= index < 250:
        raise ValueError(f"no loopback address for node {index}")
    return f"127.0.1.{index + 1}"


def with_ports(nodes: list[SandboxNode], ports: list[int]) -> list[SandboxNode]:
    if len(ports) != len(nodes):
        raise ValueError(f"{len(nodes)} nodes need as many ports, got {len(ports)}")
    return [SandboxNode(**{**node.__dict__, "port": port}) for node, port in zip(nodes, ports, strict=True)]


def node_lines(nodes: list[SandboxNode]) -> list[str]:
    """``NodeName=`` lines: one per node (each has its own port), all State=CLOUD as ParallelCluster's."""
    return [
        f"NodeName={n.name} NodeAddr=127.0.0.1 NodeHostname={n.name} Port={n.port} CPUs={n.cpus} "
        f"RealMemory={n.real_memory_mb} State=CLOUD "
        f"Feature={'dynamic' if n.dynamic else 'static'},{n.instance_type},{n.compute_resource}"
        for n in nodes
    ]


def partition_lines(nodes: list[SandboxNode], default_queue: str) -> list[str]:
    lines = []
    for queue in dict.fromkeys(n.queue for n in nodes):
        members = ",".join(n.name for n in nodes if n.queue == queue)
        lines.append(f"NodeSet={queue}_nodes Nodes={members}")
        default = " Default=YES" if queue == default_queue else ""
        lines.append(f"PartitionName={queue} Nodes={queue}_nodes MaxTime=INFINITE State=UP{default}")
    return lines


def static_nodes(nodes: list[SandboxNode]) -> list[str]:
    """SuspendExcNodes: static nodes never power down."""
    return [n.name for n in nodes if not n.dynamic]


def cgroup_conf(memory_scheduling: bool) -> str:
    lines = [
        "# cgroup.conf of the clustertools sandbox, as ParallelCluster writes it",
        "CgroupPlugin=cgroup/v1",
        "ConstrainCores=yes",
    ]
    if memory_scheduling:
        lines.append("ConstrainRAMSpace=yes")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class ClusterFiles:
    """What the sandbox's Slurm files are rendered from (paths as the head node's namespace sees them)."""

    nodes: tuple[SandboxNode, ...]
    slurmctld_port: int
    munge_socket: str
    state_dir: str
    spool_dir: str  # slurmd's, as each node sees it (node-namespace.sh mounts the node's own there)
    run_dir: str
    log_dir: str
    resume_program: str
    suspend_program: str
    power: PowerSaving = PowerSaving()
    memory_scheduling: bool = False
    max_array_size: int = 1001
    max_job_count: int = 10_000
    min_job_age: int = 300
    requeue_delay: int = 70


def render_slurm_conf(files: ClusterFiles) -> str:
    from cluster_tools.render.templates import render_template

    nodes = list(files.nodes)
    default_queue = nodes[0].queue if nodes else DEFAULT_QUEUE
    values = {name: getattr(files, name) for name in files.__dataclass_fields__ if name != "nodes"}
    return render_template(
        "sandbox/cluster-slurm.conf.j2",
        **values,
        node_lines=node_lines(nodes),
        partition_lines=partition_lines(nodes, default_queue),
        static_nodes=static_nodes(nodes),
    )


# A node boots at least this long after its resume request. slurmctld ignores a powering-up node's registration
# if the boot time it derives (its clock minus the node's uptime, whole seconds rounded up) is before the
# request (Slurm's waiting_for_node_boot); with the node's uptime starting below 1 s (node-namespace.sh), that
# derived time can be up to 2 s early, so a boot 2 s after the request always counts.
MIN_BOOT_DELAY_S = 2.0


def render_resume_program(
    *,
    marker_env: str,
    marker: str,
    boot_delay: float,
    log_dir: str,
    scontrol: str,
    node_script: str,
    cgroups: str,
    spools: str,
    slurmd: str,
    slurm_conf: str,
    sshd_spec: str = "-",
) -> str:
    from cluster_tools.render.templates import render_template

    return render_template(
        "sandbox/resume.sh.j2",
        marker_env=marker_env,
        marker=marker,
        boot_delay=f"{max(boot_delay, MIN_BOOT_DELAY_S):g}",
        log_dir=log_dir,
        scontrol=scontrol,
        node_script=node_script,
        cgroups=cgroups,
        spools=spools,
        sshd_spec=sshd_spec,
        slurmd=slurmd,
        slurm_conf=slurm_conf,
    )


def render_suspend_program(*, log_dir: str, scontrol: str, pids_dir: str, cgroup_dirs: list[str]) -> str:
    from cluster_tools.render.templates import render_template

    return render_template(
        "sandbox/suspend.sh.j2", log_dir=log_dir, scontrol=scontrol, pids_dir=pids_dir, cgroup_dirs=cgroup_dirs
    )

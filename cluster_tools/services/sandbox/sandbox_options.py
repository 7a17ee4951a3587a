"""What `sandbox up` builds: the project's cluster when there is one (its queues, OS, Slurm limits, memory
scheduling and ScaledownIdletime, as `up` would render them for ParallelCluster), ParallelCluster's defaults otherwise;
every option given on the command line wins."""

from __future__ import annotations

from dataclasses import dataclass, field

from cluster_tools.render.sandbox_node import DEFAULT_OS
from cluster_tools.services.sandbox import sandbox_nodes as nodes

DEFAULT_BUCKET = "clustertools-sandbox"
# ParallelCluster's Slurm defaults (MinJobAge 300); MaxJobCount raised so that a sandbox holds a large run.
DEFAULT_LIMITS = {"max_array_size": 1001, "max_job_count": 100_000, "min_job_age": 300}


@dataclass(frozen=True)
class SandboxOptions:
    max_array_size: int = DEFAULT_LIMITS["max_array_size"]
    max_job_count: int = DEFAULT_LIMITS["max_job_count"]
    min_job_age: int = DEFAULT_LIMITS["min_job_age"]
    buckets: tuple[str, ...] = (DEFAULT_BUCKET,)
    # ParallelCluster's EnableMemoryBasedScheduling: CR_CPU_Memory, and cgroup.conf's ConstrainRAMSpace
    # kills a task over its --mem (each node's slurmd has cgroups of its own: node-namespace.sh).
    memory_scheduling: bool = False
    requeue_delay: int = 70  # seconds before a requeued job starts again (Slurm's cred_expire)
    os_name: str = DEFAULT_OS  # the login user and shell start-up files are that OS's
    nodes: nodes.NodeOptions = field(default_factory=nodes.NodeOptions)


def sandbox_options(
    project,
    *,
    buckets: tuple[str, ...] = (),
    max_array_size: int | None = None,
    max_job_count: int | None = None,
    min_job_age: int | None = None,
    memory_scheduling: bool | None = None,
    requeue_delay: int = 70,
    os_name: str | None = None,
    node_count: int | None = None,
    static_nodes: int | None = None,
    cpus_per_node: int | None = None,
    boot_delay: float = nodes.DEFAULT_BOOT_DELAY,
    idle_time: int | None = None,
) -> SandboxOptions:
    """The options of `sandbox up` for ``project`` (None outside one); a None option is the project's or
    the default. The project's output bucket is always made. A project's cluster schedules by memory
    (clustertools renders EnableMemoryBasedScheduling: true); ParallelCluster's default does not."""
    spec = project.parallelcluster if project is not None else None
    limits = spec.slurm.model_dump() if spec is not None else DEFAULT_LIMITS
    given = {"max_array_size": max_array_size, "max_job_count": max_job_count, "min_job_age": min_job_age}
    wanted = (DEFAULT_BUCKET, *((project.storage.output.bucket,) if project is not None else ()), *buckets)
    return SandboxOptions(
        **{name: limits[name] if value is None else value for name, value in given.items()},
        buckets=tuple(dict.fromkeys(wanted)),
        requeue_delay=requeue_delay,
        memory_scheduling=spec is not None if memory_scheduling is None else memory_scheduling,
        os_name=os_name or (spec.os if spec is not None else DEFAULT_OS),
        nodes=nodes.node_options(
            spec,
            nodes=node_count,
            static_nodes=static_nodes,
            cpus_per_node=cpus_per_node,
            boot_delay=boot_delay,
            idle_time=idle_time,
        ),
    )

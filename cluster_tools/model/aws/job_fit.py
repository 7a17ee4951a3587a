"""Whether the project's task fits one node of the queue it goes to, offline (for `validate`).

ParallelCluster sizes a compute resource's Slurm nodes by the smallest of its instance types (CPUs, and
RealMemory = 0.95 of the memory: aws-parallelcluster-cookbook attributes/slurm_attributes.rb,
realmemory_to_ec2memory_ratio), and the rendered config turns memory-based scheduling on: a task asking
more than that is accepted by sbatch and pends for ever. Pure: instance sizes come from ``shape_of``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from cluster_tools.model.aws.cluster_spec import ClusterSpec
from cluster_tools.model.cost.cost_model import REAL_MEMORY_RATIO
from cluster_tools.model.runs.job_spec import JobSpec
from cluster_tools.slurm.partition_fit import memory_mb

ShapeOf = Callable[[str], "tuple[int, float] | None"]  # instance type -> (vCPUs, memory GiB), None if unknown
GpusOf = Callable[[str], "int | None"]  # instance type -> its GPUs, None if unknown


def job_fit_problems(job: JobSpec, spec: ClusterSpec, shape_of: ShapeOf, gpus_of: GpusOf = lambda _: None) -> list[str]:
    """Problems of ``job`` (JobSpec) on ``spec`` (ClusterSpec), one line each, named by their key."""
    queues = {q.name: q for q in spec.queues}
    name = job.partition or spec.queues[0].name
    if name not in queues:
        return [f"job.partition: {name} is not a queue of parallelcluster.queues ({', '.join(queues)})"]
    problems = _gpu_problems(job, name, queues[name].instance_types, gpus_of)
    shapes = {t: shape_of(t) for t in queues[name].instance_types}
    known = {t: s for t, s in shapes.items() if s is not None}
    if not known:
        return problems  # sizes unknown here: `submit` checks the request against the cluster's own nodes
    cpu_type = min(known, key=lambda t: known[t][0])
    mem_type = min(known, key=lambda t: known[t][1])
    cpus, memory_gib = known[cpu_type][0], known[mem_type][1]
    usable_mb = math.floor(memory_gib * 1024 * REAL_MEMORY_RATIO)
    if job.cpus > cpus:
        problems.append(
            f"job.cpus: {job.cpus} is more than one node of queue {name} has ({cpu_type}: {cpus} vCPUs); "
            f"the most that fits is cpus: {cpus}"
        )
    if memory_mb(job.mem) > usable_mb:
        problems.append(
            f"job.mem: {job.mem} is more than one node of queue {name} holds ({mem_type}: "
            f"{memory_gib:g} GiB, {usable_mb} MB of it for Slurm's tasks); the most that fits is "
            f"mem: {usable_mb}M"
        )
    return problems


def _gpu_problems(job: JobSpec, queue: str, instance_types: list[str], gpus_of: GpusOf) -> list[str]:
    if not job.gpus:
        return []
    counts: dict[str, int] = {}
    for instance_type in instance_types:
        count = gpus_of(instance_type)
        if count is None:
            return []  # a type not known here: `submit` checks against the cluster's nodes
        counts[instance_type] = count
    fewest = min(counts, key=counts.__getitem__)
    if not counts[fewest]:
        return [
            f"job.gpus: {job.gpus} asked, but queue {queue} has no GPU ({fewest}): name a queue of GPU "
            "instances in job.partition"
        ]
    if job.gpus > counts[fewest]:
        return [
            f"job.gpus: {job.gpus} is more than one node of queue {queue} has ({fewest}: {counts[fewest]} GPU(s)); "
            f"the most that fits is gpus: {counts[fewest]}"
        ]
    return []

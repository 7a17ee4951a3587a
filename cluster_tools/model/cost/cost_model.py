"""What a run costs: estimated before it is sent, and computed from its durable records after.

Pure: shapes and prices in, numbers out. The model follows how ParallelCluster bills a run:
- compute nodes start from zero: each pays its boot (launch + OnNodeConfigured) before its first task,
  then runs tasks packed by CPUs (and memory when given), then idles ``scaledown_idle_minutes`` before
  it stops: all three are billed;
- tasks run in waves of ``slots`` (nodes x tasks per node, or the throttle when lower); in the last wave
  only the nodes that still have tasks stay busy, the others idle out;
- the head node runs (on-demand) for the whole run and the idle tail.
Per-task overhead (staging inputs, uploading outputs) is part of the minutes per subject the user gives.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from cluster_tools.errors import ConfigError

Capacity = Literal["ondemand", "spot"]
DEFAULT_BOOT_MINUTES = 6.0  # EC2 launch + ParallelCluster's node setup + a short bootstrap: typically 5-7
REAL_MEMORY_RATIO = 0.95  # Slurm's RealMemory on a ParallelCluster node: this much of the instance's memory


@dataclass(frozen=True)
class NodeShape:
    """One queue's nodes as the estimate needs them."""

    instance_type: str
    vcpus: int
    memory_gib: float
    max_nodes: int
    capacity: Capacity
    boot_minutes: float = DEFAULT_BOOT_MINUTES
    scaledown_idle_minutes: float = 10.0
    gpus: int = 0


@dataclass(frozen=True)
class TaskShape:
    cpus: int
    mem_gib: float | None
    minutes: float  # per subject, overhead included
    throttle: int | None = None
    gpus: int = 0


@dataclass(frozen=True)
class Prices:
    """Hourly USD: the compute type both ways, and the head node (always on-demand)."""

    compute_ondemand: float
    compute_spot: float
    head_ondemand: float
    source: str
    spot_is_estimate: bool = True


@dataclass(frozen=True)
class RunEstimate:
    subjects: int
    tasks_per_node: int
    nodes: int
    waves: int
    wall_minutes: float
    compute_node_hours: float
    head_hours: float
    dollars: dict[str, float]  # "spot" / "ondemand" -> total with the head node
    head_dollars: float
    capacity: Capacity  # what the queue uses
    source: str
    notes: list[str] = field(default_factory=list)
    packing: str = ""  # why that many tasks per node: which of CPUs and memory runs out first

    @property
    def total(self) -> float:
        return self.dollars[self.capacity]

    def per_subject(self, capacity: Capacity | None = None) -> float:
        return self.dollars[capacity or self.capacity] / self.subjects if self.subjects else 0.0


def tasks_per_node(node: NodeShape, task: TaskShape) -> int:
    """How many tasks Slurm packs on one node: by CPUs, and by memory when the task names it (the rendered
    config turns EnableMemoryBasedScheduling on: CR_CPU_Memory against RealMemory, 0.95 of the instance's
    memory; aws-parallelcluster-cookbook attributes/slurm_attributes.rb, realmemory_to_ec2memory_ratio)."""
    return packing(node, task)[0]


def packing(node: NodeShape, task: TaskShape) -> tuple[int, str]:
    """Tasks per node, and which resource runs out first, said for the user."""
    by_cpu = node.vcpus // task.cpus
    schedulable = node.memory_gib * REAL_MEMORY_RATIO
    by_mem = math.floor(schedulable / task.mem_gib) if task.mem_gib else by_cpu
    by_gpu = node.gpus // task.gpus if task.gpus else by_cpu
    fit = min(by_cpu, by_mem, by_gpu)
    if fit < 1:
        raise ConfigError(
            f"one task ({task.cpus} CPUs"
            + (f", {task.mem_gib:g} GiB" if task.mem_gib else "")
            + (f", {task.gpus} GPU(s)" if task.gpus else "")
            + f") does not fit on a {node.instance_type} ({node.vcpus} vCPUs, {node.memory_gib:g} GiB, "
            f"{schedulable:.1f} GiB of it for Slurm's tasks" + (f", {node.gpus} GPU(s)" if task.gpus else "") + ")",
            "lower job.cpus / job.mem / job.gpus, or choose a larger instance type for the queue",
        )
    if by_gpu == fit and by_gpu < min(by_cpu, by_mem):
        return fit, f"by GPUs: {task.gpus} each of {node.gpus}; its CPUs and memory would take {min(by_cpu, by_mem)}"
    if by_mem < by_cpu:
        return fit, (
            f"by memory: {task.mem_gib:g} GiB each of the {schedulable:.1f} GiB Slurm schedules on a node; "
            f"its {node.vcpus} vCPUs would take {by_cpu}"
        )
    return fit, f"by CPUs: {task.cpus} each of {node.vcpus}"


def estimate_run(subjects: int, task: TaskShape, node: NodeShape, prices: Prices) -> RunEstimate:
    """Wall time and dollars of a run of ``subjects`` tasks; both capacity types are priced."""
    if subjects < 0 or task.minutes <= 0:
        raise ConfigError(
            "the estimate needs a subject count >= 0 and minutes per subject > 0",
            "pass --minutes-per-subject M (a measured figure, e.g. from a small first run)",
        )
    per_node, packed = packing(node, task)
    slots = node.max_nodes * per_node
    notes = []
    if task.throttle and task.throttle < slots:
        slots = task.throttle
        notes.append(f"throttled to {task.throttle} tasks at a time")
    if subjects == 0:
        nothing = {"spot": 0.0, "ondemand": 0.0}
        return RunEstimate(0, per_node, 0, 0, 0.0, 0.0, 0.0, nothing, 0.0, node.capacity, prices.source, notes, packed)
    waves, nodes, node_minutes = _waves(subjects, slots, per_node, task, node)
    wall = node.boot_minutes + waves * task.minutes
    head_hours = (wall + node.scaledown_idle_minutes) / 60
    head_dollars = head_hours * prices.head_ondemand
    compute_hours = node_minutes / 60
    dollars = {
        "spot": compute_hours * prices.compute_spot + head_dollars,
        "ondemand": compute_hours * prices.compute_ondemand + head_dollars,
    }
    return RunEstimate(
        subjects,
        per_node,
        nodes,
        waves,
        wall,
        compute_hours,
        head_hours,
        dollars,
        head_dollars,
        node.capacity,
        prices.source,
        notes,
        packed,
    )


def _waves(subjects: int, slots: int, per_node: int, task: TaskShape, node: NodeShape) -> tuple[int, int, float]:
    """How many waves of ``slots`` tasks the run takes, on how many nodes, for how many node-minutes in all."""
    waves = math.ceil(subjects / slots)
    nodes = math.ceil(min(subjects, slots) / per_node)
    last_wave = subjects - (waves - 1) * slots
    # every node: boot, its busy waves, then idle until scale-down stops it (a node with no task in the
    # last wave stops one wave earlier: its idle tail is the same length)
    busy_node_waves = (waves - 1) * nodes + math.ceil(last_wave / per_node)
    node_minutes = nodes * (node.boot_minutes + node.scaledown_idle_minutes) + busy_node_waves * task.minutes
    return waves, nodes, node_minutes


@dataclass(frozen=True)
class TaskSpan:
    """One task as its durable record tells it."""

    subject: str
    node: str
    start: datetime
    end: datetime

    @property
    def minutes(self) -> float:
        return max(0.0, (self.end - self.start).total_seconds() / 60)

    @classmethod
    def of_record(cls, subject: str, node: str, start: str, end: str) -> TaskSpan | None:
        """From a durable record's (or status's) text fields; None for a task not finished."""
        from cluster_tools.model.runs.run_status import record_time

        began, ended = record_time(start), record_time(end)
        return cls(subject, node or "?", began, ended) if began and ended else None


@dataclass(frozen=True)
class RunCost:
    node_hours: float
    head_hours: float
    compute_dollars: float
    head_dollars: float
    per_subject: dict[str, float]  # each task's share of its node for its runtime, attempts summed
    overhead_dollars: float  # boot, idle and the head node: billed, but no subject's own

    @property
    def total(self) -> float:
        return self.compute_dollars + self.head_dollars


def cost_from_records(
    spans: Iterable[TaskSpan], node: NodeShape, task: TaskShape, *, compute_hourly: float, head_hourly: float
) -> RunCost:
    """The cost of a run that happened: each node billed from its boot before its first task to the end
    of its idle time after its last; the head node from the first boot to the last node's stop."""
    spans = list(spans)
    if not spans:
        return RunCost(0.0, 0.0, 0.0, 0.0, {}, 0.0)
    per_node = tasks_per_node(node, task)
    by_node: dict[str, list[TaskSpan]] = {}
    for span in spans:
        by_node.setdefault(span.node, []).append(span)
    node_minutes = 0.0
    for tasks in by_node.values():
        up = (max(t.end for t in tasks) - min(t.start for t in tasks)).total_seconds() / 60
        node_minutes += node.boot_minutes + up + node.scaledown_idle_minutes
    first = min(t.start for t in spans)
    last = max(t.end for t in spans)
    head_minutes = node.boot_minutes + (last - first).total_seconds() / 60 + node.scaledown_idle_minutes
    compute_dollars = node_minutes / 60 * compute_hourly
    head_dollars = head_minutes / 60 * head_hourly
    per_subject: dict[str, float] = {}
    for span in spans:
        per_subject[span.subject] = per_subject.get(span.subject, 0.0) + span.minutes / 60 * compute_hourly / per_node
    overhead = compute_dollars + head_dollars - sum(per_subject.values())
    return RunCost(node_minutes / 60, head_minutes / 60, compute_dollars, head_dollars, per_subject, overhead)


def slurm_minutes(value: str) -> float:
    """Slurm's time formats (``30``, ``30:00``, ``01:30:00``, ``1-00``, ``1-02:30``, ``1-02:30:00``) in minutes."""
    days, _, rest = value.rpartition("-") if "-" in value else ("0", "", value)
    parts = [int(p) for p in rest.split(":")]
    if days != "0" or "-" in value:
        hours, minutes, seconds = [*parts, 0, 0][:3]
        return int(days) * 1440 + hours * 60 + minutes + seconds / 60
    if len(parts) == 1:
        return float(parts[0])
    if len(parts) == 2:
        return parts[0] + parts[1] / 60
    return parts[0] * 60 + parts[1] + parts[2] / 60


def slurm_mem_gib(value: str) -> float:
    """Slurm's --mem (``4G``, ``512M``, ``2000`` = MB, ``1T``) in GiB."""
    units = {"K": 1 / 1024**2, "M": 1 / 1024, "G": 1.0, "T": 1024.0}
    text = value.strip().upper()
    if text and text[-1] in units:
        return float(text[:-1]) * units[text[-1]]
    return float(text) / 1024


def stretched(spans: Iterable[TaskSpan], factor: float) -> list[TaskSpan]:
    """The spans of a run replayed at compressed time, stretched back by ``factor`` around its first start
    (a sandbox replay of an 8-minute-per-subject run in seconds)."""
    spans = list(spans)
    if not spans:
        return []
    origin = min(s.start for s in spans)
    return [
        TaskSpan(s.subject, s.node, origin + (s.start - origin) * factor, origin + (s.end - origin) * factor)
        for s in spans
    ]


@dataclass(frozen=True)
class ReplayCheck:
    """An estimate beside the cost of the same run replayed at compressed time (see ``stretched``)."""

    estimate: RunEstimate
    replayed: RunCost
    factor: float  # how much the replay's time was stretched
    mean_seconds: float  # a subject's mean duration in the replay

    @property
    def ratio(self) -> float:
        return self.estimate.total / self.replayed.total if self.replayed.total else float("inf")


def check_against_replay(
    spans: Iterable[TaskSpan], minutes: float, node: NodeShape, task: TaskShape, prices: Prices
) -> ReplayCheck:
    """Stretch a compressed replay so its mean subject takes ``minutes``, cost it from its records, and
    estimate the same run: what is compared is the model (waves, packing, gaps, the head node), not the
    minutes a user guesses."""
    spans = list(spans)
    mean = sum((s.end - s.start).total_seconds() for s in spans) / len(spans)
    factor = minutes * 60 / mean
    hourly = prices.compute_spot if node.capacity == "spot" else prices.compute_ondemand
    replayed = cost_from_records(
        stretched(spans, factor), node, task, compute_hourly=hourly, head_hourly=prices.head_ondemand
    )
    estimate = estimate_run(len({s.subject for s in spans}), task, node, prices)
    return ReplayCheck(estimate, replayed, factor, mean)

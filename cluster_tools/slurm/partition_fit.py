"""Whether a task's request can ever run on a partition: what its nodes have, as ``sinfo`` reports them.

Slurm accepts ``sbatch --cpus-per-task 16`` on a partition of 2-CPU nodes (or ``--mem 62G`` on 24 GB
nodes) and leaves it pending for ever with no useful reason; ParallelCluster's cloud nodes are listed
with their CPUs and memory even while powered down, so the request can be checked before it is sent.
Pure: parsing and the check, from text captured from the sandbox (tests/golden).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Partition (the default marked with "*"), CPUs, memory (MB) and generic resources of each distinct node
# configuration (``sinfo -e``: nodes are grouped only when these are identical), and the partition's state
# (up, down, drain, inactive: when autostop or ParallelCluster's stopped compute fleet set it so).
SINFO_FIT_FORMAT = "%P|%c|%m|%G|%a"
_GPU_GRES = re.compile(r"(?:^|,)gpu(?::[A-Za-z0-9_.-]+)?:(\d+)")
_MEM = re.compile(r"^(\d+)([KMGT]?)$")
_MB_PER_UNIT = {"K": 1 / 1024, "": 1, "M": 1, "G": 1024, "T": 1024 * 1024}


@dataclass(frozen=True)
class NodeConfig:
    cpus: int
    memory_mb: int
    gpus: int = 0


@dataclass(frozen=True)
class Partitions:
    nodes: dict[str, list[NodeConfig]]
    default: str | None
    inactive: frozenset[str] = frozenset()  # partitions that take no new job: the cluster is stopped

    def stopped(self, partition: str | None) -> bool:
        """Whether the job's partition (named, else the default) is INACTIVE: nothing sent there would start."""
        chosen = partition or self.default
        return chosen is not None and chosen in self.inactive


def parse_partitions(text: str) -> Partitions:
    """``sinfo -h -e -o SINFO_FIT_FORMAT`` into each partition's node configurations; lines that do not
    parse (a node whose CPUs read ``4+``) are skipped rather than guessed."""
    nodes: dict[str, list[NodeConfig]] = {}
    default, inactive = None, set()
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) not in (4, 5) or not parts[1].isdigit() or not parts[2].isdigit():
            continue
        name = parts[0].rstrip("*")
        if parts[0].endswith("*"):
            default = name
        if parts[4:] in (["inactive"], ["inact"]):  # sinfo 22.05 prints "inactive"
            inactive.add(name)
        gpus = sum(int(n) for n in _GPU_GRES.findall(parts[3]))
        nodes.setdefault(name, []).append(NodeConfig(int(parts[1]), int(parts[2]), gpus))
    return Partitions(nodes, default, frozenset(inactive))


def memory_mb(value: str) -> int:
    """Slurm's --mem (``4G``, ``512M``, ``2000`` = MB, ``1T``) in MB, rounded up."""
    match = _MEM.fullmatch(value.strip().upper())
    if not match:
        raise ValueError(f"not a Slurm memory size: {value!r}")
    mb = int(match[1]) * _MB_PER_UNIT[match[2]]
    return int(-(-mb // 1))


def partition_problem(partitions: Partitions, partition: str | None) -> str | None:
    """Why the partition cannot take the task at all (it does not exist, or none is named and there is no
    default), or None. ``partition`` None is the cluster's default partition."""
    name = partition or partitions.default
    if name is None or name not in partitions.nodes:
        known = ", ".join(sorted(partitions.nodes)) or "none"
        return (
            f"partition {name} does not exist on this cluster (its partitions: {known})"
            if name
            else f"the cluster has no default partition: name one (its partitions: {known})"
        )
    return None


def request_problem(partitions: Partitions, partition: str | None, *, cpus: int, mem: str, gpus: int = 0) -> str | None:
    """Why no node of the partition could ever run one task of this shape (naming the largest request that
    fits), or None when one can. ``partition`` None is the cluster's default partition."""
    missing = partition_problem(partitions, partition)
    name = partition or partitions.default
    if missing or name is None:  # no name is a problem partition_problem names
        return missing
    configs = partitions.nodes[name]
    wanted = NodeConfig(cpus, memory_mb(mem), gpus)
    if any(_fits(wanted, node) for node in configs):
        return None
    if gpus and not any(node.gpus for node in configs):
        return f"no node of partition {name} has a GPU: name a partition whose nodes have them (--partition)"
    largest = max(configs, key=lambda n: (n.gpus >= gpus, n.cpus >= cpus, n.memory_mb, n.cpus))
    asked = [
        f"{cpus} CPUs" if cpus > largest.cpus else None,
        f"--mem {mem} ({wanted.memory_mb} MB)" if wanted.memory_mb > largest.memory_mb else None,
        f"{gpus} GPU(s)" if gpus > largest.gpus else None,
    ]
    fits = [f"--cpus {largest.cpus}", f"--mem {largest.memory_mb}M"] + ([f"--gpus {largest.gpus}"] if gpus else [])
    return (
        f"no node of partition {name} can hold a task asking {' and '.join(a for a in asked if a) or 'all that'}: "
        f"its largest node has {largest.cpus} CPUs, {largest.memory_mb} MB"
        + (f", {largest.gpus} GPU(s)" if gpus else "")
        + f"; the most a task can ask there is {' '.join(fits)}"
    )


def _fits(wanted: NodeConfig, node: NodeConfig) -> bool:
    return wanted.cpus <= node.cpus and wanted.memory_mb <= node.memory_mb and wanted.gpus <= node.gpus

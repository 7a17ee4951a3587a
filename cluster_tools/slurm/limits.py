"""The cluster's limits that shape a submission, from ``scontrol show config``."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

_LINE = re.compile(r"^(\w+)\s+=\s+(.*?)\s*$")


@dataclass(frozen=True)
class SlurmLimits:
    max_array_size: int
    max_job_count: int
    min_job_age: int


def parse_scontrol_config(text: str) -> SlurmLimits:
    """``scontrol show config``: ``MaxArraySize            = 1001`` lines; Slurm's defaults when absent."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        match = _LINE.match(line)
        if match:
            values[match[1]] = match[2]
    return SlurmLimits(
        max_array_size=_int(values.get("MaxArraySize"), 1001),
        max_job_count=_int(values.get("MaxJobCount"), 10000),
        min_job_age=_int(values.get("MinJobAge"), 300),
    )


def _int(raw: str | None, default: int) -> int:
    match = re.match(r"\d+", raw or "")
    return int(match[0]) if match else default


@dataclass(frozen=True)
class ChunkPlan:
    index: int
    offset: int
    count: int


def plan_chunks(task_count: int, max_array_size: int) -> list[ChunkPlan]:
    """Split tasks into arrays Slurm accepts: indices 0..MaxArraySize-1, so MaxArraySize tasks each."""
    size = max(1, max_array_size)
    return [
        ChunkPlan(index=i, offset=i * size, count=min(size, task_count - i * size))
        for i in range(math.ceil(task_count / size))
    ]

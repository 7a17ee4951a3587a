"""Numbers for run reports, pure: percentiles, runtime statistics, histogram bins and "nice" steps,
durations for people, a natural sort of node names."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from cluster_tools.model.runs.run_record import FAILURES

HISTOGRAM_BINS = 20  # at most; fewer for few tasks
# "Nice" widths in seconds for histogram bins and time-axis ticks: 1 s ... 1 week.
NICE_SECONDS = (
    1,
    2,
    5,
    10,
    15,
    30,
    60,
    120,
    300,
    600,
    900,
    1800,
    3600,
    7200,
    10800,
    21600,
    43200,
    86400,
    172800,
    604800,
)


@dataclass(frozen=True, slots=True)
class RuntimeStats:
    count: int
    min: float
    median: float
    p90: float
    max: float
    total: float  # seconds, summed over tasks


@dataclass(frozen=True, slots=True)
class HistogramBin:
    low: float  # seconds, inclusive
    high: float  # exclusive, but the last bin holds the maximum
    count: int
    failed: int


def percentile(ordered: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default) of an ascending list."""
    if not ordered:
        raise ValueError("no values")
    position = (len(ordered) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def runtime_stats(seconds: list[float]) -> RuntimeStats | None:
    if not seconds:
        return None
    ordered = sorted(seconds)
    return RuntimeStats(
        len(ordered), ordered[0], percentile(ordered, 0.5), percentile(ordered, 0.9), ordered[-1], sum(ordered)
    )


def nice_step(span: float, target: int) -> float:
    """The smallest "nice" width (1 s, 2 s, 5 s, ... 1 week, then whole weeks) cutting ``span`` into at
    most ``target`` pieces."""
    for step in NICE_SECONDS:
        if span / step <= target:
            return float(step)
    return float(math.ceil(span / target / NICE_SECONDS[-1]) * NICE_SECONDS[-1])


def histogram(tasks: list[tuple[float, str]], max_bins: int = HISTOGRAM_BINS) -> tuple[HistogramBin, ...]:
    """Runtimes (seconds, state) in bins of one nice width, from a multiple of it below the shortest
    to just past the longest: ~sqrt(n) bins, at most ``max_bins``."""
    if not tasks:
        return ()
    low, high = min(s for s, _ in tasks), max(s for s, _ in tasks)
    target = max(1, min(max_bins, math.ceil(math.sqrt(len(tasks)))))
    step = max(1.0, nice_step(high - low, target))  # records say whole seconds: no bin narrower
    first = math.floor(low / step) * step
    count = max(1, math.floor((high - first) / step) + 1)
    if count > 1 and first + (count - 1) * step == high:  # the maximum alone would open a bin: last bin closed
        count -= 1
    totals, failed = [0] * count, [0] * count
    for seconds, state in tasks:
        index = min(count - 1, int((seconds - first) // step))
        totals[index] += 1
        failed[index] += state in FAILURES
    return tuple(HistogramBin(first + i * step, first + (i + 1) * step, totals[i], failed[i]) for i in range(count))


def natural_key(name: str) -> list[tuple[int, int, str]]:
    """``node-2`` before ``node-10``."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", name)]


def format_duration(seconds: float | None) -> str:
    """``45s``, ``3m05s``, ``2h04m``, ``1d03h``: two units at most, for people."""
    if seconds is None:
        return "-"
    total = round(seconds)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"

"""Resources asked vs used, per subject and in sum, for `report`. Pure.

What a task asked is its attempt's job (--mem, --cpus); what it used is what its wrapper measured: the peak
of its memory cgroup (when Slurm gives the task one) and the CPU seconds of its command, over its wall time.
A task with no figure (no memory cgroup, a record from an older clustertools) is left out of the sums.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cluster_tools.model.runs.report_stats import percentile
from cluster_tools.model.runs.run_status import RunStatus, record_time
from cluster_tools.slurm.partition_fit import memory_mb


@dataclass(frozen=True)
class SubjectUsage:
    subject: str
    attempt: int
    asked_mem_mb: float
    asked_cpus: int
    peak_mem_mb: float | None
    cpu_s: float | None
    wall_s: float | None

    def to_json(self) -> dict[str, object]:
        return {
            "subject": self.subject,
            "attempt": self.attempt,
            "asked_mem_mb": self.asked_mem_mb,
            "asked_cpus": self.asked_cpus,
            "peak_mem_mb": self.peak_mem_mb,
            "cpu_s": self.cpu_s,
            "wall_s": self.wall_s,
        }


def subject_usage(status: RunStatus, asked: Callable[[int], tuple[str, int]]) -> tuple[SubjectUsage, ...]:
    """Each subject's latest attempt; ``asked(attempt)``: that attempt's (--mem, --cpus)."""
    rows = []
    for s in status.subjects:
        if s.state in ("PENDING", "MISSING"):
            continue
        mem, cpus = asked(s.attempt)
        start, end = record_time(s.start), record_time(s.end)
        wall = (end - start).total_seconds() if start and end else None
        rows.append(SubjectUsage(s.subject, s.attempt, float(memory_mb(mem)), cpus, s.peak_mem_mb, s.cpu_s, wall))
    return tuple(rows)


def usage_lines(rows: tuple[SubjectUsage, ...]) -> list[str]:
    """``memory: asked 1024 MB a task; peak median 120 MB, max 410 MB (40% of asked) over 30 task(s)``."""
    lines = []
    peaks = [(r.peak_mem_mb, r.asked_mem_mb) for r in rows if r.peak_mem_mb is not None]
    if peaks:
        values = sorted(p for p, _ in peaks)
        most = max(p / a for p, a in peaks if a) if any(a for _, a in peaks) else 0
        lines.append(
            f"memory: asked {_mb(peaks[0][1])} a task; peak median {_mb(percentile(values, 0.5))}, "
            f"max {_mb(values[-1])} ({most:.0%} of asked at most) over {len(values)} task(s)"
        )
    cpu = [(r.cpu_s / (r.wall_s * r.asked_cpus)) for r in rows if r.cpu_s is not None and r.wall_s and r.asked_cpus]
    if cpu:
        lines.append(
            f"CPU: {rows[0].asked_cpus} asked a task; busy median {percentile(sorted(cpu), 0.5):.0%} of "
            f"them over its wall time, over {len(cpu)} task(s)"
        )
    return lines


def _mb(value: float) -> str:
    return f"{value / 1024:.1f} GB" if value >= 10240 else f"{value:.0f} MB"

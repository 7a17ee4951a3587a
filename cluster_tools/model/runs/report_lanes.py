"""Pure: a run report's timeline. Each attempt that started is a ``TaskBar`` on its node's ``NodeLane``; tasks
overlapping in time on a node get different rows (``node_lanes``); ``occupancy`` sums the task-seconds a lane
ran in each slice of time, as the report's renderers draw it. The rest of the report is run_report.py.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from datetime import UTC, datetime

from cluster_tools.model.runs.report_stats import natural_key
from cluster_tools.model.runs.run_record import FAILURES


@dataclass(frozen=True, slots=True)
class TaskBar:
    """One attempt of one subject that started on a node. ``end`` is None when no end was recorded."""

    subject: str
    attempt: int
    state: str
    exit_code: int | None
    start: datetime
    end: datetime | None
    latest: bool  # the subject's latest attempt (else an earlier, rerun one)
    row: int = 0  # tasks overlapping in time on one node get different rows of its lane

    @property
    def seconds(self) -> float | None:
        return None if self.end is None else max(0.0, (self.end - self.start).total_seconds())

    def to_json(self) -> dict[str, object]:
        return {
            "subject": self.subject,
            "attempt": self.attempt,
            "state": self.state,
            "exit_code": self.exit_code,
            "start": iso_utc(self.start),
            "end": iso_utc(self.end),
            "latest": self.latest,
        }


@dataclass(frozen=True, slots=True)
class NodeLane:
    node: str
    tasks: tuple[TaskBar, ...]  # by start
    rows: int  # the most tasks that overlapped in time on this node
    busy_seconds: float  # the union of its tasks' intervals (a running task counts up to the report's time)

    def to_json(self) -> dict[str, object]:
        return {
            "node": self.node,
            "rows": self.rows,
            "busy_seconds": self.busy_seconds,
            "tasks": [t.to_json() for t in self.tasks],
        }


def node_lanes(bars: list[tuple[str, TaskBar]], as_of: datetime) -> tuple[NodeLane, ...]:
    """The bars by node, in natural order; tasks overlapping in time on a node get different rows."""
    by_node: dict[str, list[TaskBar]] = {}
    for node, bar in bars:
        by_node.setdefault(node, []).append(bar)
    lanes = []
    for node in sorted(by_node, key=natural_key):
        tasks = sorted(by_node[node], key=lambda b: (b.start, b.subject, b.attempt))
        free: list[tuple[datetime, int]] = []  # (end, row): rows whose last task has ended
        placed, rows, busy, reach = [], 0, 0.0, None
        for bar in tasks:
            end = drawn_end(bar, as_of)
            if free and free[0][0] <= bar.start:
                row = heapq.heappop(free)[1]
            else:
                row, rows = rows, rows + 1
            heapq.heappush(free, (end, row))
            placed.append(
                TaskBar(bar.subject, bar.attempt, bar.state, bar.exit_code, bar.start, bar.end, bar.latest, row)
            )
            if reach is None or bar.start >= reach:  # a gap: a new busy stretch
                busy += (end - bar.start).total_seconds()
                reach = end
            elif end > reach:
                busy += (end - reach).total_seconds()
                reach = end
        lanes.append(NodeLane(node, tuple(placed), rows, busy))
    return tuple(lanes)


def drawn_end(bar: TaskBar, as_of: datetime) -> datetime:
    """Where a bar ends: its end; a running one at the report's time; a lost one where it started."""
    if bar.end is not None:
        return max(bar.end, bar.start)
    return max(as_of, bar.start) if bar.state == "RUNNING" else bar.start


def occupancy(
    lane: NodeLane, as_of: datetime, t0: datetime, span: float, slices: int
) -> tuple[list[float], list[float]]:
    """Task-seconds run on ``lane`` in each of ``slices`` equal slices of ``span`` seconds from ``t0``:
    all tasks, and those that failed. One sweep over start/end events: O(tasks log tasks + slices)."""
    width = span / slices
    result = []
    for wanted in (None, FAILURES):
        target = [0.0] * slices
        events = []
        for t in lane.tasks:
            if wanted is None or t.state in wanted:
                events.append(((t.start - t0).total_seconds(), 1))
                events.append(((drawn_end(t, as_of) - t0).total_seconds(), -1))
        events.sort()
        level, at = 0, 0.0
        for when, delta in events:
            _spread(target, at, when, level, width)
            level, at = level + delta, when
        result.append(target)
    return result[0], result[1]


def _spread(target: list[float], a: float, b: float, level: int, width: float) -> None:
    """Add ``level`` tasks running from ``a`` to ``b`` (seconds) to the slices they cover."""
    if level <= 0 or b <= a:
        return
    index = max(0, min(len(target) - 1, int(a // width)))
    while a < b and index < len(target):
        edge = b if index == len(target) - 1 else min(b, (index + 1) * width)
        target[index] += (edge - a) * level
        a, index = edge, index + 1


def iso_utc(when: datetime | None) -> str | None:
    return None if when is None else when.astimezone(UTC).isoformat().replace("+00:00", "Z")

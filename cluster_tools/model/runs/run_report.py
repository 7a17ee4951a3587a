"""A run's report: who ran when and where, how long tasks took, what failed, what it cost. Pure.

Built from what ``status`` already has: the merged status (each subject's latest attempt, with its
node, start, end, state and exit code) and the raw task records (for the attempts before the latest:
they ran on nodes and may have failed, so they belong on the timeline and in the failure counts).

Cost is not computed here: the caller may pass ``costs``, the run's ``cost_model.RunCost`` (what
``services.cost.cost_of_run`` computes, so the report's total is the one ``cost RUN`` shows: nodes' boot
and scale-down idle time and the head node included), or per-subject figures only (a mapping subject -> USD
or a callable ``subject -> USD | None``), whose total then counts the subjects' own runtime and says so.
Without it the report carries ``cost=None`` and the renderers say "cost: not available for this cluster",
or "cost unknown: <why>" when the caller passes ``cost_unknown``.

The timeline (each node's lane of task bars, and how busy it was over time) is report_lanes.py.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from cluster_tools.model.cost.cost_model import RunCost
from cluster_tools.model.runs.report_lanes import NodeLane, TaskBar, iso_utc, node_lanes
from cluster_tools.model.runs.report_stats import (
    HistogramBin,
    RuntimeStats,
    histogram,
    percentile,
    runtime_stats,
)
from cluster_tools.model.runs.report_usage import SubjectUsage, subject_usage, usage_lines
from cluster_tools.model.runs.run_record import FAILURES
from cluster_tools.model.runs.run_status import LOST, RunStatus, SubjectStatus, TaskRecord, record_time

ReportCosts = RunCost | Mapping[str, float] | Callable[[str], "float | None"]
_Failure = tuple[bool, str, str]  # (the subject's latest attempt, subject, error)
UNKNOWN_NODE = "(no node recorded)"
SUBJECTS_PER_FAILURE = 50  # each exit code lists at most this many subjects (and says how many more)
ERROR_CHARS = 300
TOP_COSTS = 10


@dataclass(frozen=True, slots=True)
class FailureGroup:
    exit_code: int | None  # None: the task left no exit code (it was lost)
    failed_now: int  # subjects whose latest attempt failed so
    failed_before: int  # earlier attempts that failed so (their subject was rerun)
    subjects: tuple[str, ...]  # still-failed first; at most SUBJECTS_PER_FAILURE
    more: int  # subjects of the group not listed
    error: str  # the most common error text of the group, shortened

    def to_json(self) -> dict[str, object]:
        return {
            "exit_code": self.exit_code,
            "failed_now": self.failed_now,
            "failed_before": self.failed_before,
            "subjects": list(self.subjects),
            "more": self.more,
            "error": self.error,
        }


@dataclass(frozen=True, slots=True)
class CostSummary:
    total: float  # USD: the run's bill as `cost RUN` computes it (overhead known), else the subjects' shares
    priced: int
    unpriced: int
    mean: float
    median: float
    max: float
    top: tuple[tuple[str, float], ...]  # the most expensive subjects, dearest first
    subjects_total: float = 0.0  # the priced subjects' own shares: each one's runtime on its share of a node
    overhead: float | None = None  # node boot, scale-down idle and the head node (in ``total``); None: not known

    def to_json(self) -> dict[str, object]:
        return {
            "total": self.total,
            "subjects_total": self.subjects_total,
            "overhead": self.overhead,
            "priced": self.priced,
            "unpriced": self.unpriced,
            "mean": self.mean,
            "median": self.median,
            "max": self.max,
            "top": [{"subject": s, "usd": usd} for s, usd in self.top],
        }


@dataclass(frozen=True)
class RunReport:
    run_id: str
    source: str  # "head node" or "s3"
    queue_readable: bool
    as_of: datetime  # when the states were read: a running task's bar ends here
    subjects: int
    attempts: int
    counts: dict[str, int]
    first_start: datetime | None
    last_end: datetime | None
    runtime: RuntimeStats | None  # tasks with both a start and an end, every attempt
    histogram: tuple[HistogramBin, ...]
    failures: tuple[FailureGroup, ...]
    lanes: tuple[NodeLane, ...]
    without_end: int  # tasks that started but recorded no end (running, or lost)
    cost: CostSummary | None
    requeued: tuple[tuple[str, int], ...] = ()  # (subject, restarts): Slurm requeued it when its node was lost
    cost_unknown: str | None = None  # why the run could not be priced, when it could not
    usage: tuple[SubjectUsage, ...] = ()  # asked vs used, per subject (report_usage)
    cost_note: str | None = None  # why there is no cost to show, when that is no problem (the sandbox's runs)

    @property
    def tasks(self) -> int:
        return sum(len(lane.tasks) for lane in self.lanes)

    @property
    def wall_seconds(self) -> float | None:
        if self.first_start is None or self.last_end is None:
            return None
        return max(0.0, (self.last_end - self.first_start).total_seconds())

    @property
    def node_hours(self) -> float:
        """Hours the nodes were busy with at least one task (not boot or idle time)."""
        return sum(lane.busy_seconds for lane in self.lanes) / 3600

    @property
    def task_hours(self) -> float:
        return (self.runtime.total if self.runtime else 0.0) / 3600

    def to_json(self) -> dict[str, object]:
        stamp = iso_utc
        return {
            "run": self.run_id,
            "source": self.source,
            "queue_readable": self.queue_readable,
            "as_of": stamp(self.as_of),
            "subjects": self.subjects,
            "attempts": self.attempts,
            "counts": self.counts,
            "first_start": stamp(self.first_start),
            "last_end": stamp(self.last_end),
            "wall_seconds": self.wall_seconds,
            "node_hours": round(self.node_hours, 4),
            "task_hours": round(self.task_hours, 4),
            "tasks": self.tasks,
            "without_end": self.without_end,
            "runtime": None
            if self.runtime is None
            else {k: getattr(self.runtime, k) for k in ("count", "min", "median", "p90", "max", "total")},
            "histogram": [{"low": b.low, "high": b.high, "count": b.count, "failed": b.failed} for b in self.histogram],
            "failures": [f.to_json() for f in self.failures],
            "nodes": [lane.to_json() for lane in self.lanes],
            "requeued": [{"subject": subject, "restarts": n} for subject, n in self.requeued],
            "cost": None if self.cost is None else self.cost.to_json(),
            "cost_unknown": self.cost_unknown,
            "cost_note": self.cost_note,
            "usage": {"summary": usage_lines(self.usage), "subjects": [u.to_json() for u in self.usage]},
        }


def build_report(
    status: RunStatus,
    records: Iterable[TaskRecord],
    *,
    as_of: datetime,
    costs: ReportCosts | None = None,
    cost_unknown: str | None = None,
    asked: Callable[[int], tuple[str, int]] | None = None,
    cost_note: str | None = None,
) -> RunReport:
    """The report of a run from its merged ``status`` and its raw ``records`` (any attempts, any order,
    duplicates allowed: a final record wins over a RUNNING one, a later line over an earlier).

    ``as_of`` is when the status was read (injected, so a report is reproducible). ``costs`` is the
    optional cost hook (module docstring); subjects it has no figure for count as ``unpriced``.
    ``cost_unknown``: why the run could not be priced (with ``costs`` None).
    """
    as_of = _aware(as_of)
    latest = {s.subject: s for s in status.subjects}
    bars, failures = _bars_and_failures(status, records, latest)
    finished = [(seconds, b.state) for _, b in bars if (seconds := b.seconds) is not None]  # None: no end
    ends = [b.end for _, b in bars if b.end is not None]
    return RunReport(
        run_id=status.run_id,
        source=status.source,
        queue_readable=status.queue_readable,
        as_of=as_of,
        subjects=len(status.subjects),
        attempts=max((s.attempt for s in status.subjects), default=0),
        counts=status.counts,
        first_start=min((b.start for _, b in bars), default=None),
        last_end=max(ends, default=None),
        runtime=runtime_stats([sec for sec, _ in finished]),
        histogram=histogram(finished),
        failures=_failure_groups(failures),
        lanes=node_lanes(bars, as_of),
        without_end=sum(1 for _, b in bars if b.end is None),
        cost=None if costs is None else summarize_costs(list(latest), costs),
        requeued=tuple((s.subject, s.restarts) for s in status.subjects if s.restarts),
        cost_unknown=cost_unknown if costs is None else None,
        usage=subject_usage(status, asked) if asked else (),
        cost_note=cost_note,
    )


def _bars_and_failures(
    status: RunStatus, records: Iterable[TaskRecord], latest: Mapping[str, SubjectStatus]
) -> tuple[list[tuple[str, TaskBar]], dict[int | None, list[_Failure]]]:
    """(node, bar) of every attempt that started, latest and earlier ones, and the failures by exit code."""
    bars: list[tuple[str, TaskBar]] = []
    failures: dict[int | None, list[_Failure]] = {}
    for s in status.subjects:
        if s.state in FAILURES:
            failures.setdefault(_code(s.exit_code), []).append((True, s.subject, s.error))
        start = record_time(s.start)
        if start is not None:
            bars.append(
                (
                    _node(s.node),
                    TaskBar(s.subject, s.attempt, s.state, _code(s.exit_code), start, record_time(s.end), True),
                )
            )
    for r in _earlier_attempts(records, latest):
        state, error = (r.state, r.error) if r.state != "RUNNING" else ("FAILED", LOST)
        if state in FAILURES:
            failures.setdefault(_code(r.exit_code), []).append((False, r.subject, str(error)))
        start = record_time(r.start)
        if start is not None:
            bars.append(
                (
                    _node(r.node),
                    TaskBar(r.subject, r.attempt, state, _code(r.exit_code), start, record_time(r.end), False),
                )
            )
    return bars, failures


def _earlier_attempts(records: Iterable[TaskRecord], latest: Mapping[str, SubjectStatus]) -> list[TaskRecord]:
    """One record per (subject, attempt) before the subject's latest; subjects outside the run ignored."""
    chosen: dict[tuple[str, int], TaskRecord] = {}
    for r in records:
        current = latest.get(r.subject) if isinstance(r.subject, str) else None
        if current is None or not isinstance(r.attempt, int) or r.attempt >= current.attempt:
            continue
        key = (r.subject, r.attempt)
        if r.state != "RUNNING" or key not in chosen or chosen[key].state == "RUNNING":
            chosen[key] = r
    return list(chosen.values())


def _code(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _node(name: str) -> str:
    name = " ".join(str(name or "").split())  # CR, LF, tabs: one line
    return name or UNKNOWN_NODE


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _failure_groups(failures: dict[int | None, list[_Failure]]) -> tuple[FailureGroup, ...]:
    groups = []
    for code, items in failures.items():
        now = [subject for is_now, subject, _ in items if is_now]
        before = [subject for is_now, subject, _ in items if not is_now]
        distinct = list(dict.fromkeys(now + before))
        listed = distinct[:SUBJECTS_PER_FAILURE]
        errors = Counter(error for *_, error in items if error)
        error = errors.most_common(1)[0][0] if errors else ""
        if len(error) > ERROR_CHARS:
            error = error[: ERROR_CHARS - 1] + "…"
        groups.append(FailureGroup(code, len(now), len(before), tuple(listed), len(distinct) - len(listed), error))
    return tuple(
        sorted(groups, key=lambda g: (-(g.failed_now + g.failed_before), g.exit_code is None, g.exit_code or 0))
    )


def summarize_costs(subjects: list[str], costs: ReportCosts) -> CostSummary:
    """Per-subject USD from the caller's RunCost, mapping or callable; a missing or non-finite figure is
    unpriced. With a RunCost the total is the run's (its overhead included), else the subjects' sum."""
    run = costs if isinstance(costs, RunCost) else None
    lookup: Callable[[str], float | None]
    if isinstance(costs, RunCost):
        lookup = costs.per_subject.get
    elif isinstance(costs, Mapping):
        lookup = costs.get
    else:
        lookup = costs
    priced: list[tuple[str, float]] = []
    for subject in subjects:
        value = lookup(subject)
        if isinstance(value, (int, float)) and math.isfinite(value):
            priced.append((subject, float(value)))
    figures = sorted(usd for _, usd in priced)
    top = tuple(sorted(priced, key=lambda p: (-p[1], p[0]))[:TOP_COSTS])
    shares = sum(figures)
    total, overhead = (run.total, run.overhead_dollars) if run else (shares, None)
    if not figures:
        return CostSummary(total, 0, len(subjects), 0.0, 0.0, 0.0, (), 0.0, overhead)
    return CostSummary(
        total,
        len(figures),
        len(subjects) - len(figures),
        shares / len(figures),
        percentile(figures, 0.5),
        figures[-1],
        top,
        shares,
        overhead,
    )

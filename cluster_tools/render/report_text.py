"""A run report for the terminal: the HTML page's summary as plain text (no colour), so it reads
the same on a TTY, in a pipe and in a CI log. Pure."""

from __future__ import annotations

from datetime import UTC, datetime

from cluster_tools.model.cost.pricing import format_usd
from cluster_tools.model.runs.report_lanes import drawn_end, occupancy
from cluster_tools.model.runs.report_stats import format_duration
from cluster_tools.model.runs.report_usage import usage_lines
from cluster_tools.model.runs.run_record import FAILURES
from cluster_tools.model.runs.run_report import RunReport

COLUMNS = 48  # of a node's timeline strip
LEVELS = " ▁▂▃▄▅▆▇█"
BAR_WIDTH = 30  # of the widest histogram bar
SUBJECTS_SHOWN = 8
ERROR_SHOWN = 60


def render_report_text(report: RunReport) -> str:
    lines = [
        f"run {report.run_id}: as of {_stamp(report.as_of)}, states from "
        + ("the records in S3" if report.source == "s3" else f"the {report.source}")
        + ("" if report.queue_readable else " (the queue did not answer)")
    ]
    counts = ", ".join(f"{state.lower()} {n:,}" for state, n in report.counts.items() if n)
    lines.append(f"subjects {report.subjects:,} in {report.attempts} attempt(s)" + (f": {counts}" if counts else ""))
    if report.first_start is not None:
        lines.append(
            f"wall time {format_duration(report.wall_seconds)} ({_stamp(report.first_start)} to "
            f"{_stamp(report.last_end)}), {len(report.lanes)} node(s), {report.node_hours:.2f} node-hours busy, "
            f"{report.task_hours:.2f} task-hours"
        )
    if report.without_end:
        lines.append(f"{report.without_end} task(s) started with no end recorded (running, or lost)")
    if report.requeued:
        lines.append(requeued_line(report))
    lines += [
        "",
        *_timeline(report),
        "",
        *_runtimes(report),
        *usage_lines(report.usage),
        "",
        *_failures(report),
        "",
        *_cost(report),
    ]
    return "\n".join(lines) + "\n"


def requeued_line(report: RunReport) -> str:
    """Interruptions: the subjects Slurm requeued because their node was lost (a spot reclaim)."""
    shown = ", ".join(f"{subject} ({n}x)" for subject, n in report.requeued[:10])
    more = f" and {len(report.requeued) - 10} more" if len(report.requeued) > 10 else ""
    return f"interrupted: {len(report.requeued)} subject(s) requeued after their node was lost: {shown}{more}"


def _stamp(when: datetime | None) -> str:
    return "-" if when is None else when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _timeline(report: RunReport) -> list[str]:
    if not report.lanes or report.first_start is None:
        return ["timeline: no task has started yet"]
    t0 = report.first_start
    t1 = max(drawn_end(t, report.as_of) for lane in report.lanes for t in lane.tasks)
    # Records say seconds: a column is one at least (a run of a few seconds draws on the strip's left).
    span = max(float(COLUMNS), (t1 - t0).total_seconds())
    width = max(len(lane.node) for lane in report.lanes)
    lines = [
        f"timeline: tasks running per node, one column = {format_duration(span / COLUMNS)} "
        f"(UTC {t0.astimezone(UTC):%H:%M:%S} to {t1.astimezone(UTC):%H:%M:%S})"
    ]
    for lane in report.lanes:
        busy, _ = occupancy(lane, report.as_of, t0, span, COLUMNS)
        strip = "".join(_level(seconds / (span / COLUMNS) / lane.rows) for seconds in busy)
        failed = sum(t.state in FAILURES for t in lane.tasks)
        lines.append(
            f"  {lane.node.ljust(width)} |{strip}| {len(lane.tasks)} task(s), {failed} failed, "
            f"busy {format_duration(lane.busy_seconds)}, at most {lane.rows} at once"
        )
    return lines


def _level(fraction: float) -> str:
    if fraction <= 0:
        return LEVELS[0]
    return LEVELS[max(1, min(len(LEVELS) - 1, round(fraction * (len(LEVELS) - 1))))]


def _runtimes(report: RunReport) -> list[str]:
    stats = report.runtime
    if stats is None:
        return ["task runtimes: no task has finished yet"]
    lines = [
        f"task runtimes ({stats.count} finished task(s), every attempt): min {format_duration(stats.min)}, "
        f"median {format_duration(stats.median)}, p90 {format_duration(stats.p90)}, max {format_duration(stats.max)}"
    ]
    top = max(b.count for b in report.histogram)
    labels = [f"{format_duration(b.low)} to {format_duration(b.high)}" for b in report.histogram]
    width = max(len(label) for label in labels)
    for label, b in zip(labels, report.histogram, strict=True):
        bar = "#" * (round(BAR_WIDTH * b.count / top) if b.count else 0)
        lines.append(
            f"  {label.rjust(width)}  {bar.ljust(BAR_WIDTH)} {b.count}" + (f" ({b.failed} failed)" if b.failed else "")
        )
    return lines


def _failures(report: RunReport) -> list[str]:
    if not report.failures:
        return ["failures: none"]
    rows = [("exit", "now", "earlier", "subjects", "error")]
    for f in report.failures:
        shown = list(f.subjects[:SUBJECTS_SHOWN])
        more = len(f.subjects) - len(shown) + f.more
        error = " ".join(f.error.split())
        rows.append(
            (
                "none" if f.exit_code is None else str(f.exit_code),
                str(f.failed_now),
                str(f.failed_before),
                ", ".join(shown) + (f" and {more} more" if more else ""),
                error if len(error) <= ERROR_SHOWN else error[: ERROR_SHOWN - 1] + "…",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return ["failures by exit code:"] + [
        ("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)) + "  " + row[4]).rstrip()
        for row in rows
    ]


def _cost(report: RunReport) -> list[str]:
    lines = [cost_sentence(report) if report.cost is None else f"cost: {cost_sentence(report)}"]
    if report.cost and report.cost.top:
        lines.append("  dearest: " + ", ".join(f"{subject} {format_usd(usd)}" for subject, usd in report.cost.top[:5]))
    return lines


def cost_sentence(report: RunReport) -> str:
    """The report's cost in one sentence, the page's and the terminal's alike (the terminal puts "cost: "
    before a figure). With the run's own cost (that of `clustertools cost RUN`), its total and how it splits;
    with per-subject figures only, their sum, said to leave out what no subject runs on (node boot,
    scale-down idle, the head node)."""
    cost, usd = report.cost, format_usd
    if cost is None:
        if report.cost_note:
            return f"cost: {report.cost_note}"
        return f"cost unknown: {report.cost_unknown}" if report.cost_unknown else "cost: not available for this cluster"
    per_subject = f"mean {usd(cost.mean)}, median {usd(cost.median)}, max {usd(cost.max)}" + (
        f"; {cost.unpriced} subject(s) without a figure" if cost.unpriced else ""
    )
    if cost.overhead is None:
        return (
            f"{usd(cost.total)} over {cost.priced} subject(s): {per_subject} (the subjects' runtime only: node "
            "boot, scale-down idle and the head node are not counted)"
        )
    return (
        f"{usd(cost.total)} for the run, as `clustertools cost RUN` counts it: {usd(cost.subjects_total)} over "
        f"{cost.priced} subject(s) + {usd(cost.overhead)} node boot, scale-down idle and head node; per subject "
        f"{per_subject}"
    )

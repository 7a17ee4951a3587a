"""A run report as one self-contained HTML page: inline CSS and SVG, no script, nothing fetched. Pure.

Geometry is computed here (numbers formatted short, so a big page stays small); the template only
places it, with autoescaping on: subjects, node names and error texts are data, never markup. A
Content-Security-Policy of ``default-src 'none'`` makes the page unable to load or run anything.

The timeline has one lane per node; tasks that overlapped in time on a node take different rows of
its lane. Up to ``MAX_TASK_BARS`` tasks, every task is a bar coloured by its state, with a <title>
tooltip. Beyond that a bar per task would make a page of many megabytes that no one can read: each
lane becomes an occupancy strip instead, cut into at most ``MAX_CELLS`` time slices over all lanes,
each slice as high as the mean number of tasks running on the node then (red for the share spent in
tasks that failed), so a 100,000-task run renders in about the size of a 3,000-task one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cluster_tools.model.cost.pricing import format_usd
from cluster_tools.model.runs.report_lanes import NodeLane, TaskBar, drawn_end, occupancy
from cluster_tools.model.runs.report_stats import format_duration, nice_step
from cluster_tools.model.runs.report_usage import usage_lines
from cluster_tools.model.runs.run_record import FAILURES
from cluster_tools.model.runs.run_report import RunReport
from cluster_tools.render.report_text import cost_sentence, requeued_line  # one wording, page and terminal
from cluster_tools.render.templates import environment

WIDTH = 1200  # the timeline's viewBox; it scales to the window
LABEL_W = 180
PLOT_X = LABEL_W + 10
PLOT_W = WIDTH - PLOT_X - 16
AXIS_H = 24
ROW_H = 10.0
LANE_MAX_H = 64.0  # a lane's height when there are many; with few, they share TIMELINE_H
TIMELINE_H = 480.0
LANE_GAP = 6
MAX_TASK_BARS = 3000
MAX_CELLS = 6000
HIST_W, HIST_H, HIST_LEFT, HIST_BOTTOM = 560, 220, 44, 36
STATES = ("SUCCEEDED", "FAILED", "CANCELLED", "RUNNING", "PENDING", "MISSING")


@dataclass(frozen=True, slots=True)
class Shape:
    x: str
    y: str
    w: str
    h: str
    cls: str
    title: str
    fy: str = ""  # an occupancy slice's failed share, drawn over it
    fh: str = ""


def render_report_html(report: RunReport) -> str:
    """The page for ``report`` (deterministic: the same report gives the same bytes)."""
    env = environment().overlay(autoescape=True)
    env.filters["duration"] = format_duration
    env.filters["usd"] = format_usd
    env.globals["cost_sentence"] = cost_sentence  # the terminal's words, so page and text say the same
    return env.get_template("report/report.html.j2").render(
        r=report,
        timeline=timeline(report),
        hist=histogram_svg(report),
        states=STATES,
        as_of=_stamp(report.as_of),
        first_start=_stamp(report.first_start),
        last_end=_stamp(report.last_end),
        requeued_line=requeued_line(report) if report.requeued else "",
        usage_lines=usage_lines(report.usage),
    )


def _n(value: float) -> str:
    """A coordinate, short: ``12``, ``12.5``."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def _stamp(when: datetime | None) -> str:
    return "-" if when is None else when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def timeline(report: RunReport) -> dict[str, Any]:
    """The timeline's SVG geometry: lanes, bars (or occupancy cells), axis ticks, the mode and its note."""
    if not report.lanes or report.first_start is None:
        return {"empty": True, "height": 0, "lanes": [], "shapes": [], "ticks": [], "aggregated": False, "note": ""}
    t0 = report.first_start
    t1 = max(drawn_end(t, report.as_of) for lane in report.lanes for t in lane.tasks)
    span = max(1.0, (t1 - t0).total_seconds())
    scale = PLOT_W / span
    aggregated = report.tasks > MAX_TASK_BARS
    lanes: list[dict[str, str]] = []
    shapes: list[Shape] = []
    y: float = AXIS_H
    slices = max(20, min(240, MAX_CELLS // len(report.lanes)))
    lane_max = max(LANE_MAX_H, TIMELINE_H / len(report.lanes))
    for lane in report.lanes:
        height = min(lane_max, lane.rows * ROW_H)
        lanes.append(_lane_label(lane, y, height))
        if aggregated:
            shapes.extend(_occupancy(lane, report.as_of, t0, span, slices, y, height))
        else:
            shapes.extend(_task_bars(lane, report.as_of, t0, scale, y, height))
        y += height + LANE_GAP
    note = (
        (
            f"{report.tasks:,} tasks: more than {MAX_TASK_BARS:,}, so each node shows how many tasks ran on it "
            f"per {format_duration(span / slices)} slice (red: the share in tasks that failed)"
        )
        if aggregated
        else ""
    )
    return {
        "empty": False,
        "height": _n(y + 4),
        "lanes": lanes,
        "shapes": shapes,
        "aggregated": aggregated,
        "ticks": _ticks(t0, span, scale, y),
        "note": note,
        "span": format_duration(span),
    }


def _lane_label(lane: NodeLane, y: float, height: float) -> dict[str, str]:
    failed = sum(t.state in FAILURES for t in lane.tasks)
    return {
        "y": _n(y),
        "h": _n(height),
        "mid": _n(y + height / 2 + 4),
        "label": _short(lane.node),
        "title": f"{lane.node}: {len(lane.tasks)} task(s) ({failed} failed), busy "
        f"{format_duration(lane.busy_seconds)}, at most {lane.rows} at once",
    }


def _task_bars(lane: NodeLane, as_of: datetime, t0: datetime, scale: float, y: float, height: float) -> list[Shape]:
    """One bar per task of ``lane``, each in its row (tasks that overlapped in time are stacked)."""
    row_h = height / lane.rows
    pad = row_h * 0.15 if row_h >= 4 else 0.0
    shapes = []
    for t in lane.tasks:
        start = (t.start - t0).total_seconds()
        end = (drawn_end(t, as_of) - t0).total_seconds()
        cls = t.state.lower() + ("" if t.end is not None else " open")
        shapes.append(
            Shape(
                _n(PLOT_X + start * scale),
                _n(y + t.row * row_h + pad),
                _n(max(1.0, (end - start) * scale)),
                _n(row_h - 2 * pad),
                cls,
                _bar_title(t),
            )
        )
    return shapes


def _short(node: str, limit: int = 24) -> str:
    return node if len(node) <= limit else node[: limit - 1] + "…"


def _bar_title(t: TaskBar) -> str:
    state = t.state + (f" (exit {t.exit_code})" if t.state in FAILURES and t.exit_code is not None else "")
    end = (
        t.end.astimezone(UTC).strftime("%H:%M:%S")
        if t.end
        else "still running"
        if t.state == "RUNNING"
        else "no end recorded"
    )
    began = t.start.astimezone(UTC).strftime("%H:%M:%S")
    took = f" ({format_duration(t.seconds)})" if t.end else ""
    earlier = "" if t.latest else ", rerun since"
    return f"{t.subject}, attempt {t.attempt}{earlier}: {state}, {began} → {end}{took}"


def _ticks(t0: datetime, span: float, scale: float, bottom: float) -> list[dict[str, str]]:
    step = nice_step(span, 8)
    origin = t0.timestamp()
    first = math.ceil(origin / step) * step
    fmt = "%H:%M:%S" if step < 60 else "%H:%M"
    if span >= 86400 or t0.astimezone(UTC).date() != datetime.fromtimestamp(origin + span, UTC).date():
        fmt = "%m-%d %H:%M"
    ticks, at = [], first
    while at <= origin + span:
        x = PLOT_X + (at - origin) * scale
        ticks.append({"x": _n(x), "label": datetime.fromtimestamp(at, UTC).strftime(fmt)})
        at += step
    return ticks


def _occupancy(
    lane: NodeLane, as_of: datetime, t0: datetime, span: float, slices: int, y: float, height: float
) -> list[Shape]:
    width = span / slices
    busy, failed = occupancy(lane, as_of, t0, span, slices)
    shapes = []
    for i, seconds in enumerate(busy):
        if seconds <= 0:
            continue
        mean = seconds / width
        h = height * min(1.0, mean / lane.rows)
        x, w = PLOT_X + i * PLOT_W / slices, PLOT_W / slices
        share = failed[i] / seconds
        title = (
            f"{lane.node} {_clock(t0, i * width)}\N{EN DASH}{_clock(t0, (i + 1) * width)}: "
            f"{mean:.1f} running on average "
            f"(max {lane.rows})" + (f", {share:.0%} in failed tasks" if share else "")
        )
        shapes.append(
            Shape(
                _n(x),
                _n(y + height - h),
                _n(w),
                _n(h),
                "busy",
                title,
                *((_n(y + height - h * share), _n(h * share)) if share > 0 else ()),
            )
        )
    return shapes


def _clock(t0: datetime, offset: float) -> str:
    return datetime.fromtimestamp(t0.timestamp() + offset, UTC).strftime("%H:%M:%S")


def histogram_svg(report: RunReport) -> dict[str, Any]:
    """The runtime histogram's SVG geometry: one bar per bin, its failed part stacked at the bottom."""
    bins = report.histogram
    if not bins:
        return {"empty": True, "bars": [], "labels": [], "top": 0}
    plot_w, plot_h = HIST_W - HIST_LEFT - 28, HIST_H - HIST_BOTTOM - 10  # room for the last edge's label
    top = max(b.count for b in bins)
    step_w = plot_w / len(bins)
    every = max(1, math.ceil(len(bins) / 7))
    bars, labels = [], []
    for i, b in enumerate(bins):
        x = HIST_LEFT + i * step_w
        h = plot_h * b.count / top
        title = (
            f"{format_duration(b.low)} to {format_duration(b.high)}: {b.count} task{'s' if b.count != 1 else ''}"
            + (f" ({b.failed} failed)" if b.failed else "")
        )
        bars.append(
            {
                "x": _n(x + 1),
                "w": _n(max(1.0, step_w - 2)),
                "y": _n(10 + plot_h - h),
                "h": _n(h),
                "fy": _n(10 + plot_h - plot_h * b.failed / top),
                "fh": _n(plot_h * b.failed / top),
                "title": title,
                "failed": b.failed,
            }
        )
        if i % every == 0 and (i == 0 or len(bins) - i >= every):  # never crowding the last edge's label
            labels.append({"x": _n(x), "text": format_duration(b.low)})
    labels.append({"x": _n(HIST_LEFT + plot_w), "text": format_duration(bins[-1].high)})
    return {
        "empty": False,
        "bars": bars,
        "labels": labels,
        "top": top,
        "axis_y": _n(10 + plot_h),
        "label_y": _n(10 + plot_h + 16),
        "left": HIST_LEFT,
        "right": _n(HIST_LEFT + plot_w),
        "width": HIST_W,
        "height": HIST_H,
    }

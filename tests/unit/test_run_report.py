"""The run report: its numbers on literal records (edge cases included), the page (golden, escaped,
self-contained, big runs), the terminal text, the cost hook both ways, and the service's one read."""

from __future__ import annotations

import json
import math
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

import pytest

from cluster_tools.model.runs.report_stats import format_duration, histogram, nice_step, percentile
from cluster_tools.model.runs.run_record import Chunk
from cluster_tools.model.runs.run_report import LOST, UNKNOWN_NODE, build_report
from cluster_tools.model.runs.run_status import RunStatus, SubjectStatus, merge_status
from cluster_tools.model.runs.status_reply import parse_records
from cluster_tools.render.report_html import MAX_TASK_BARS, render_report_html
from cluster_tools.render.report_text import render_report_text
from cluster_tools.slurm.queue import parse_squeue
from tests.helpers import assert_golden
from tests.unit.report_fixtures import AS_OF, COSTS, QUEUE, RUN_COST, rec, small_run, small_status, status_text
from tests.unit.run_fixtures import make_run, parse_status

UTC = UTC


def at(clock: str) -> datetime:
    return datetime.fromisoformat(f"2026-11-22T{clock}+00:00")


def test_the_numbers_of_a_small_run():
    report = build_report(small_status(), parse_records(status_text()), as_of=AS_OF)
    assert report.counts == {
        "PENDING": 1,
        "RUNNING": 1,
        "SUCCEEDED": 3,
        "FAILED": 1,
        "TIMEOUT": 0,
        "OOM": 0,
        "NODE_FAIL": 0,
        "CANCELLED": 0,
        "MISSING": 0,
    }
    assert (report.subjects, report.attempts, report.tasks, report.without_end) == (6, 2, 6, 1)
    assert (report.first_start, report.last_end, report.wall_seconds) == (at("12:00:00"), at("12:07:30"), 450)
    stats = report.runtime  # 60 (sub-03 #1), 90, 120, 120, 300
    assert (stats.count, stats.min, stats.median, stats.p90, stats.max, stats.total) == (5, 60, 120, 228, 300, 690)
    assert [(b.low, b.high, b.count, b.failed) for b in report.histogram] == [
        (0, 120, 2, 2),
        (120, 240, 2, 0),
        (240, 360, 1, 0),
    ]
    assert [(f.exit_code, f.failed_now, f.failed_before, f.subjects, f.more, f.error) for f in report.failures] == [
        (3, 0, 1, ("sub-03",), 0, "boom"),
        (137, 1, 0, ("sub-04",), 0, "out of memory"),
    ]
    lanes = {lane.node: lane for lane in report.lanes}
    assert [lane.node for lane in report.lanes] == ["node-1", "node-2", "node-10"]  # natural order
    assert [(t.subject, t.attempt, t.row, t.latest) for t in lanes["node-1"].tasks] == [
        ("sub-01", 1, 0, True),
        ("sub-03", 1, 1, False),
        ("sub-04", 1, 1, True),
    ]
    assert {n: (lane.rows, lane.busy_seconds) for n, lane in lanes.items()} == {
        "node-1": (2, 210),
        "node-2": (1, 420),
        "node-10": (1, 120),
    }  # sub-05 runs until the report's time
    assert math.isclose(report.node_hours, 750 / 3600) and math.isclose(report.task_hours, 690 / 3600)
    assert report.cost is None
    assert json.loads(json.dumps(report.to_json()))["nodes"][2]["tasks"][0]["end"] is None


def test_an_empty_run_and_an_all_pending_run_render_without_a_task():
    empty = build_report(RunStatus("empty-1", ()), [], as_of=AS_OF)
    assert (empty.subjects, empty.tasks, empty.runtime, empty.histogram, empty.failures) == (0, 0, None, (), ())
    assert empty.wall_seconds is None and empty.node_hours == 0
    run = make_run(("a", "b"))
    pending = build_report(
        merge_status(
            run, [], parse_squeue("12|0|PENDING|Priority|ct:demo-1:a1:c0\n12|1|PENDING|Priority|ct:demo-1:a1:c0\n")
        ),
        [],
        as_of=AS_OF,
    )
    assert pending.counts["PENDING"] == 2 and pending.lanes == ()
    for report in (empty, pending):
        page = render_report_html(report)
        assert "No task has started yet." in page and "No task has finished yet." in page and "<svg" not in page
        text = render_report_text(report)
        assert "no task has started yet" in text and "cost: not available for this cluster" in text


def test_a_subject_with_no_end_runs_until_the_report_or_is_lost():
    run = make_run(("run", "lost"))
    records = parse_records(
        "\n".join([rec("run", "RUNNING", None, "12:00:00"), rec("lost", "RUNNING", None, "12:01:00", node="node-2")])
    )
    report = build_report(
        merge_status(run, records, parse_squeue("12|0|RUNNING|None|ct:demo-1:a1:c0\n")), records, as_of=at("12:10:00")
    )
    assert report.without_end == 2 and report.runtime is None and report.last_end is None
    lanes = {lane.node: lane for lane in report.lanes}
    assert lanes["node-1"].busy_seconds == 600 and lanes["node-2"].busy_seconds == 0
    assert [(f.exit_code, f.failed_now, f.error) for f in report.failures] == [(None, 1, LOST)]
    page = render_report_html(report)
    assert 'class="task running open"' in page and 'class="task failed open"' in page
    assert "no end recorded" in page and "still running" in page and "none (lost)" in page


def test_node_names_with_crlf_spaces_or_nothing_share_lanes_sensibly():
    run = make_run(("a", "b", "c", "d"))
    records = parse_records(
        "\n".join(
            [
                rec("a", "SUCCEEDED", 0, "12:00:00", "12:01:00", node="ip-10-0-0-12\r\n"),
                rec("b", "SUCCEEDED", 0, "12:00:00", "12:01:00", node="ip-10-0-0-12"),
                rec("c", "SUCCEEDED", 0, "12:00:00", "12:01:00", node="ip-10-0-0-9"),
                rec("d", "SUCCEEDED", 0, "12:00:00", "12:01:00", node=" \t"),
            ]
        )
    )
    report = build_report(merge_status(run, records, []), records, as_of=AS_OF)
    assert [(lane.node, len(lane.tasks), lane.rows) for lane in report.lanes] == [
        (UNKNOWN_NODE, 1, 1),
        ("ip-10-0-0-9", 1, 1),
        ("ip-10-0-0-12", 2, 2),
    ]


def test_attempts_duplicates_strays_and_damaged_fields():
    run = small_run()
    extra = [rec("sub-03", "FAILED", 3, "12:00:10", "12:01:10", error="boom")] * 3 + [
        rec("stranger", "FAILED", 1, "12:00:00", "12:00:01"),  # not a subject of the run
        rec("sub-01", "FAILED", 9, "12:00:00", "12:00:01", attempt=5),  # an attempt the run never had
        rec("sub-06", "FAILED", None, "not a time", "12:00:01"),
    ]
    records = parse_records(status_text() + "\n".join(extra))
    # merge_status itself would fail on a non-string subject: the report's own reading of records must not
    damaged = parse_records(
        '{"subject": ["x"], "attempt": "1", "state": "FAILED", "exit_code": "3"}\n'
        '{"subject": "sub-03", "attempt": "1", "state": "FAILED", "exit_code": "3"}'
    )
    report = build_report(merge_status(run, records, parse_squeue(QUEUE)), records + damaged, as_of=AS_OF)
    assert [(f.exit_code, f.failed_now + f.failed_before) for f in report.failures] == [(3, 1), (137, 1), (None, 1)]
    assert report.tasks == 6  # sub-03's first attempt once; sub-06's start is unreadable: no bar
    sub03 = [t for lane in report.lanes for t in lane.tasks if t.subject == "sub-03"]
    assert sorted((t.attempt, t.state, t.latest) for t in sub03) == [(1, "FAILED", False), (2, "SUCCEEDED", True)]


@pytest.mark.parametrize(
    "values, edges",
    [
        ([5, 5, 5], [(5, 6, 3)]),
        ([0, 10], [(0, 5, 1), (5, 10, 1)]),
        ([59, 61], [(59, 60, 1), (60, 61, 1)]),
        (
            [float(s) for s in range(0, 3601, 36)],  # 101 values: at most 11 bins, so 10 min wide; 1 h is in the last
            [(0, 600, 17), (600, 1200, 17), (1200, 1800, 16), (1800, 2400, 17), (2400, 3000, 17), (3000, 3600, 17)],
        ),
    ],
)
def test_histogram_bins_have_nice_edges_and_hold_every_value(values, edges):
    bins = histogram([(v, "SUCCEEDED") for v in values])
    assert [(b.low, b.high, b.count) for b in bins] == edges and sum(b.count for b in bins) == len(values)


def test_steps_percentiles_and_durations():
    assert [nice_step(s, 8) for s in (0, 8, 9, 100, 3600, 86400, 10**7)] == [1, 1, 2, 15, 600, 10800, 1814400]
    assert [percentile([1, 2, 3, 4], q) for q in (0, 0.5, 0.9, 1)] == [1, 2.5, pytest.approx(3.7), 4]
    assert [format_duration(s) for s in (None, 0, 59.6, 185, 7440, 97200)] == [
        "-",
        "0s",
        "1m00s",
        "3m05s",
        "2h04m",
        "1d03h",
    ]


def test_costs_from_a_mapping_a_callable_or_nothing():
    status, records = small_status(), parse_records(status_text())
    by_mapping = build_report(status, records, as_of=AS_OF, costs=COSTS).cost
    assert (by_mapping.priced, by_mapping.unpriced) == (4, 2)
    assert math.isclose(by_mapping.total, 0.1633) and math.isclose(by_mapping.mean, 0.040825)
    assert math.isclose(by_mapping.median, 0.0405) and by_mapping.max == 0.07
    assert [s for s, _ in by_mapping.top] == ["sub-03", "sub-02", "sub-04", "sub-01"]
    by_callable = build_report(
        status, records, as_of=AS_OF, costs=lambda s: {"sub-01": 2.5, "sub-02": float("nan")}.get(s)
    ).cost
    assert (by_callable.total, by_callable.priced, by_callable.unpriced, by_callable.top) == (
        2.5,
        1,
        5,
        (("sub-01", 2.5),),
    )
    page = render_report_html(build_report(status, records, as_of=AS_OF, costs=COSTS))
    assert "$0.16 over 4 subject(s)" in page and "2 subject(s) without a figure" in page and "$0.0123" in page
    nothing = build_report(status, records, as_of=AS_OF)
    assert "cost: not available for this cluster" in render_report_html(nothing)
    assert "cost: not available for this cluster" in render_report_text(nothing)
    assert "cost: $2.50 over 1 subject(s)" in render_report_text(
        build_report(status, records, as_of=AS_OF, costs=lambda s: 2.5 if s == "sub-01" else None)
    )


def test_golden_page_and_text_of_the_small_run():
    report = build_report(small_status(), parse_records(status_text()), as_of=AS_OF, costs=RUN_COST)
    assert_golden("report_run.html", render_report_html(report))
    assert_golden("report_run.txt", render_report_text(report))


def test_the_runs_own_cost_is_the_total_and_per_subject_figures_alone_say_what_they_leave_out():
    status, records = small_status(), parse_records(status_text())
    run = build_report(status, records, as_of=AS_OF, costs=RUN_COST).cost
    assert math.isclose(run.total, 0.2062) and math.isclose(run.subjects_total, 0.1633)
    assert math.isclose(run.overhead, 0.2062 - 0.1633) and (run.priced, run.unpriced) == (4, 2)
    shares = build_report(status, records, as_of=AS_OF, costs=COSTS)
    assert shares.cost.overhead is None and math.isclose(shares.cost.total, 0.1633)
    assert "(the subjects' runtime only: node boot, scale-down idle and the head node are not counted)" in (
        render_report_text(shares)
    )
    unknown = build_report(status, records, as_of=AS_OF, cost_unknown="no price for c8g.xlarge in the table")
    assert unknown.to_json()["cost_unknown"] == "no price for c8g.xlarge in the table"
    assert "cost unknown: no price for c8g.xlarge in the table" in render_report_text(unknown)
    assert '<p class="note" id="cost">cost unknown: no price for c8g.xlarge in the table</p>' in (
        render_report_html(unknown)
    )


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.attributes: set[str] = set()
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.attributes.update(name for name, _ in attrs)

    def handle_data(self, data):
        self.text.append(data)


HOSTILE = '<script>alert(1)</script>" onload="alert(2)\' & <img src=x onerror=alert(3)>'


def test_user_data_is_escaped_and_the_page_fetches_nothing():
    run = make_run(("a",))
    line = json.dumps(
        {
            "subject": "a",
            "attempt": 1,
            "state": "FAILED",
            "exit_code": 2,
            "error": HOSTILE,
            "start": "2026-11-22T12:00:00Z",
            "end": "2026-11-22T12:00:30Z",
            "node": HOSTILE,
        }
    )
    status = merge_status(run, parse_records(line), [])
    status = RunStatus(
        HOSTILE,
        tuple(
            SubjectStatus(HOSTILE, s.state, s.exit_code, s.attempt, s.node, s.start, s.end, s.error)
            for s in status.subjects
        ),
    )
    page = render_report_html(build_report(status, [], as_of=AS_OF, costs={HOSTILE: 1.0}))
    parsed = Tags()
    parsed.feed(page)
    assert parsed.tags <= {
        "html",
        "head",
        "meta",
        "title",
        "style",
        "body",
        "h1",
        "h2",
        "div",
        "b",
        "span",
        "p",
        "svg",
        "line",
        "text",
        "g",
        "rect",
        "table",
        "tr",
        "th",
        "td",
    }
    assert not {a for a in parsed.attributes if a.startswith("on")} and "src" not in parsed.attributes
    assert "<script" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;&#34; onload=&#34;" in page
    assert "&#39; &amp; &lt;img" in page and HOSTILE in "".join(parsed.text)  # shown as text, intact
    assert "default-src 'none'" in page  # and were anything missed, the browser would load and run nothing
    plain = render_report_html(build_report(small_status(), parse_records(status_text()), as_of=AS_OF))
    for fetching in ("href=", "src=", "url(", "@import", "https://", "<link", "<iframe", "<script"):
        assert fetching not in plain
    assert plain.count("http://") == plain.count('xmlns="http://www.w3.org/2000/svg"')  # a namespace, not a fetch
    assert HOSTILE in render_report_text(build_report(status, [], as_of=AS_OF))  # the terminal shows it as is


def big_status(n: int, nodes: int) -> RunStatus:
    base, subjects, free = at("10:00:00"), [], {}
    for k in range(n):
        node = f"ip-10-0-{k % nodes}-1"
        start = free.get(node, base) + timedelta(seconds=(k * 7) % 11)
        end = start + timedelta(seconds=60 + (k * 37) % 900)
        free[node] = start + timedelta(seconds=30)  # tasks overlap: several rows per node
        failed = k % 23 == 0
        subjects.append(
            SubjectStatus(
                f"sub-{k:05d}",
                "FAILED" if failed else "SUCCEEDED",
                1 if failed else 0,
                1,
                node,
                start.isoformat(),
                end.isoformat(),
            )
        )
    return RunStatus("big-1", tuple(subjects))


def test_a_10000_task_run_renders_small_as_occupancy_and_2000_tasks_as_bars():
    big = build_report(big_status(10_000, 40), [], as_of=at("23:00:00"))
    page = render_report_html(big)
    assert 'id="timeline"' in page and 'class="task ' not in page and page.count('class="slice"') > 1000
    assert len(page.encode()) < 3_000_000, len(page.encode())
    assert f"more than {MAX_TASK_BARS:,}" in page and render_report_text(big).count("ip-10-0-") >= 40
    assert len(json.dumps(big.to_json())) < 5_000_000
    some = render_report_html(build_report(big_status(2_000, 40), [], as_of=at("23:00:00")))
    assert some.count('<rect class="task ') == 2_000 and len(some.encode()) < 1_000_000


def test_the_service_reads_status_once_and_keeps_earlier_attempts(tmp_path):
    from cluster_tools.services.runs.report import run_report
    from cluster_tools.store.state_dir import StateDir

    commands = []

    class Conn:
        def stream(self, command, *, stdout, stderr, timeout=None):  # as an older run's status.sh answers
            commands.append(command[:3])
            stdout.write(status_text().encode())
            return 0

    @contextmanager
    def connect(cluster):
        yield Conn()

    run = small_run()
    seen = []
    report = run_report(
        StateDir(tmp_path),
        run,
        object(),
        connect,
        now=lambda: AS_OF,
        costs_from_status=lambda status: seen.append(len(status.subjects)) or COSTS,
    )
    assert commands == [["bash", f"{run.remote_dir}/status.sh", "0"]] and seen == [6]
    assert (
        report.to_json()
        == build_report(
            small_status(), parse_records(status_text()), as_of=AS_OF, costs=COSTS, asked=lambda n: ("1G", 1)
        ).to_json()
    )
    assert report.to_json()["usage"]["subjects"][0]["asked_mem_mb"] == 1024.0
    assert (report.failures[0].exit_code, report.failures[0].failed_before) == (3, 1)


def test_a_page_is_written_over_an_earlier_report_only(tmp_path):
    from cluster_tools.cli.report_cmds import _check_writable, _write
    from cluster_tools.errors import ConfigError

    page = tmp_path / "out" / "r.html"
    _check_writable(page, force=False)
    assert _write(page, render_report_html(build_report(small_status(), [], as_of=AS_OF))) == page.stat().st_size
    _check_writable(page, force=False)  # an earlier report: replaced
    other = tmp_path / "notes.html"
    other.write_text("<p>my notes</p>")
    with pytest.raises(ConfigError, match="not a clustertools report"):
        _check_writable(other, force=False)
    _check_writable(other, force=True)
    with pytest.raises(ConfigError, match="is a directory"):
        _check_writable(tmp_path, force=True)
    assert [p.name for p in page.parent.iterdir()] == ["r.html"]  # no temporary left behind


def test_status_from_s3_with_one_attempt_needs_no_second_read(tmp_path, monkeypatch):
    import cluster_tools.services.runs.report as service
    from cluster_tools.store.state_dir import StateDir

    run = make_run(("a",), chunks=[Chunk(index=0, offset=0, count=1, job_id="12")])
    from_s3 = parse_status(run, rec("a", "SUCCEEDED", 0, "12:00:00", "12:00:09"))
    s3_status = RunStatus(from_s3.run_id, from_s3.subjects, True, "s3")
    monkeypatch.setattr(service, "status_once", lambda *a, **k: s3_status)
    monkeypatch.setattr(service, "earlier_records_from_s3", lambda run: pytest.fail("no earlier attempt to read"))
    report = service.run_report(StateDir(tmp_path), run, None, None, now=lambda: AS_OF)
    assert report.source == "s3" and report.tasks == 1
    assert "the records in S3" in render_report_html(report)


def test_the_report_shows_subjects_requeued_after_their_node_was_lost():
    """A spot reclaim (`sandbox interrupt`): the requeued subjects are named in the text, the page and JSON."""
    from cluster_tools.render.report_html import render_report_html
    from cluster_tools.render.report_text import render_report_text

    subjects = (
        SubjectStatus("s-1", "SUCCEEDED", 0, 1, "node-a", "2026-11-22T07:00:00Z", "2026-11-22T07:01:00Z", restarts=1),
        SubjectStatus("s-2", "SUCCEEDED", 0, 1, "node-a", "2026-11-22T07:00:00Z", "2026-11-22T07:01:00Z"),
    )
    report = build_report(RunStatus("spot-1", subjects), [], as_of=AS_OF)
    assert report.requeued == (("s-1", 1),) and report.to_json()["requeued"] == [{"subject": "s-1", "restarts": 1}]
    line = "interrupted: 1 subject(s) requeued after their node was lost: s-1 (1x)"
    assert line in render_report_text(report)
    assert f'<p class="note" id="requeued">{line}</p>' in render_report_html(report)
    quiet = build_report(RunStatus("calm-1", subjects[1:]), [], as_of=AS_OF)
    assert "requeued" not in render_report_text(quiet) and 'id="requeued"' not in render_report_html(quiet)


def test_report_and_cost_run_give_the_same_figure_for_the_same_records(tmp_path, monkeypatch):
    """`clustertools report` and `clustertools cost RUN` on one run, through the CLI, reading the same status
    (the head node's read is replaced by the small run's literal records): one total, in JSON and in text."""
    from click.testing import CliRunner

    import cluster_tools.services.runs.report as report_service
    import cluster_tools.services.runs.run_follow as runs_service
    from cluster_tools.cli.app import cli
    from cluster_tools.model.cost.pricing import format_usd
    from cluster_tools.services.project.project_init import render_project_file
    from cluster_tools.store.run_store import save_run
    from cluster_tools.store.state_dir import StateDir

    state = tmp_path / "state"
    save_run(StateDir(state), small_run())
    (tmp_path / "clustertools.yaml").write_text(render_project_file("demo", "sandbox", "s3://bucket-1/study"))
    monkeypatch.chdir(tmp_path)
    for module in (report_service, runs_service):
        monkeypatch.setattr(module, "status_once", lambda *a, **k: small_status())

    def run(*args: str):
        result = CliRunner().invoke(cli, list(args), env={"CLUSTERTOOLS_STATE_DIR": str(state)})
        assert result.exit_code == 0, result.output
        return result.stdout

    cost_json, report_json = json.loads(run("cost", "demo-1", "--json")), json.loads(run("report", "demo-1", "--json"))
    assert cost_json["total"] > 0 and report_json["cost"]["total"] == pytest.approx(cost_json["total"], abs=1e-4)
    assert report_json["cost"]["overhead"] == pytest.approx(cost_json["overhead"], abs=1e-4)
    shown = format_usd(report_json["cost"]["total"])
    assert f"run demo-1: {shown} = compute " in run("cost", "demo-1")
    assert f"cost: {shown} for the run, as `clustertools cost RUN` counts it: " in run("report", "demo-1", "--text")


def test_a_run_of_a_few_seconds_reads_in_whole_seconds_and_a_sandbox_costs_nothing():
    """Records say whole seconds: a short sandbox run's timeline column and runtime bins are a second at least
    (not `one column = 0s`, `0s to 0s`); with nothing to price it as, the sandbox's cost line says why."""
    run = make_run(("a", "b", "c"), chunks=[Chunk(index=0, offset=0, count=3, job_id="12")])
    text = (
        "\n".join(
            [
                rec("a", "SUCCEEDED", 0, "12:00:00", "12:00:01"),
                rec("b", "SUCCEEDED", 0, "12:00:00", "12:00:02"),
                rec("c", "FAILED", 1, "12:00:01", "12:00:04"),
            ]
        )
        + "\n"
    )
    status = parse_status(run, text)
    from cluster_tools.services.runs.report import SANDBOX_COST

    report = build_report(status, [], as_of=AS_OF, cost_note=SANDBOX_COST)
    shown = render_report_text(report)
    assert "one column = 1s " in shown and "0s to 0s" not in shown, shown
    assert all(b.high - b.low >= 1 for b in report.histogram)
    assert "cost: none (the sandbox runs on this machine)" in shown

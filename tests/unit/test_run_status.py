"""Status = durable records merged with the live queue; squeue/scontrol text captured from the sandbox."""

from __future__ import annotations

import json

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cluster_tools.model.runs.run_record import Chunk
from cluster_tools.model.runs.run_status import RunStatus, SubjectStatus, TaskRecord, merge_status
from cluster_tools.model.runs.status_reply import (
    RECORDS_FROM_MARK,
    SQUEUE_EXIT_MARK,
    StatusReply,
    parse_records,
    split_status_reply,
)
from cluster_tools.slurm.limits import SlurmLimits, parse_scontrol_config
from cluster_tools.slurm.queue import parse_squeue, task_ids
from tests.unit.run_fixtures import make_run, parse_status

# `squeue -h -r --name=ct-demo-1 -o '%F|%K|%T|%k'` on the sandbox: array 12 (%2 throttle), array 13; Slurm's
# reason added in the place %r takes (None while running)
SQUEUE = """12|2|PENDING|Priority|ct:demo-1:a1:c0
12|3|PENDING|Priority|ct:demo-1:a1:c0
12|4|PENDING|Priority|ct:demo-1:a1:c0
12|5|PENDING|Priority|ct:demo-1:a1:c0
12|0|RUNNING|None|ct:demo-1:a1:c0
12|1|RUNNING|None|ct:demo-1:a1:c0
13|0|RUNNING|None|ct:demo-1:a2:c1
13|1|RUNNING|None|ct:demo-1:a2:c1
"""
# Without -r (as status.sh reads it) an array's pending tasks are one line; the sandbox's squeue (slurm-wlm
# 22.05.8) printed a throttled array as `1|4-999%4|PENDING|JobArrayTaskLimit|(null)`.
SQUEUE_UNEXPANDED = "12|2-5%2|PENDING|Priority|ct:demo-1:a1:c0\n12|0|RUNNING|None|ct:demo-1:a1:c0\n"

SCONTROL = """Configuration data as of 2026-11-22T05:12:01
AccountingStorageType   = accounting_storage/none
ClusterName             = sandbox
MaxArraySize            = 1001
MaxJobCount             = 100000
MinJobAge               = 10 sec
SLURM_VERSION           = 22.05.8
"""


def record(subject, state, code, attempt=1):
    return (
        f'{{"subject":"{subject}","attempt":{attempt},"state":"{state}","exit_code":{code},"error":"",'
        f'"start":"2026-11-22T05:10:51Z","end":"","node":"vm","job_id":"12_0"}}'
    )


def test_scontrol_limits():
    assert parse_scontrol_config(SCONTROL) == SlurmLimits(max_array_size=1001, max_job_count=100000, min_job_age=10)
    assert parse_scontrol_config("") == SlurmLimits(1001, 10000, 300)  # Slurm's defaults


def test_squeue_parses_tasks_and_skips_strangers():
    tasks = parse_squeue(SQUEUE + "99|0|RUNNING|someone else's job\n")
    assert len(tasks) == 8 and {t.state for t in tasks} == {"PENDING", "RUNNING"}
    assert (tasks[0].array_job_id, tasks[0].task_id, tasks[0].attempt, tasks[0].chunk) == ("12", 2, 1, 0)


def test_an_arrays_pending_tasks_in_one_line_are_each_a_task():
    """status.sh reads squeue without -r: the pending tasks of an array are one line (issue 16)."""
    tasks = parse_squeue(SQUEUE_UNEXPANDED)
    assert [(t.task_id, t.state, t.reason) for t in tasks] == [
        (2, "PENDING", "Priority"),
        (3, "PENDING", "Priority"),
        (4, "PENDING", "Priority"),
        (5, "PENDING", "Priority"),
        (0, "RUNNING", ""),
    ]
    assert task_ids("4-999%16")[:2] == [4, 5] and len(task_ids("4-999%16")) == 996
    assert task_ids("1,3,5-7") == [1, 3, 5, 6, 7] and task_ids("0-8:2") == [0, 2, 4, 6, 8]
    for hostile in ("9-4", "0-99999999999", "1,,2", "0-8:0", "-3", "1-"):
        assert task_ids(hostile) == [], hostile


def test_records_of_the_wrong_shape_are_skipped_not_fatal():
    text = "\n".join(
        [
            '{"subject": ["a"], "attempt": 1, "state": "SUCCEEDED"}',  # unhashable: broke the merge
            '{"subject": "b", "attempt": "1", "state": "FAILED"}',
            '{"subject": "c", "attempt": true, "state": "FAILED"}',
            '{"subject": "d", "attempt": 1, "state": "FAILED", "exit_code": "3", "node": null, "error": 7}',
            '["not", "a", "record"]',
        ]
    )
    records = parse_records(text)
    assert [(r.subject, r.exit_code, r.node, r.error) for r in records] == [("d", None, "", "7")]
    merge_status(make_run(("a", "b", "c", "d")), records, [])  # and the merge holds


def test_records_skip_damaged_lines():
    text = record("a", "SUCCEEDED", 0) + '\n{"subject": "b", "att\n' + "garbage\n" + record("c", "FAILED", 3)
    assert [r.subject for r in parse_records(text)] == ["a", "c"]


def test_merge_final_record_beats_queue_and_lost_tasks_are_failed():
    run = make_run(("s0", "s1", "s2", "s3", "s4", "s5", "s6"), chunks=[Chunk(index=0, offset=0, count=7, job_id="12")])
    records = parse_records(
        "\n".join(
            [
                record("s0", "RUNNING", "null"),
                record("s0", "SUCCEEDED", 0),  # finished: COMPLETING in squeue still
                record("s1", "RUNNING", "null"),  # running
                record("s6", "RUNNING", "null"),  # gone from the queue, no end: lost
                record("s5", "FAILED", 3),
            ]
        )
    )
    queued = parse_squeue(
        "12|0|COMPLETING|None|ct:demo-1:a1:c0\n12|1|RUNNING|None|ct:demo-1:a1:c0\n12|2|PENDING|Priority|ct:demo-1:a1:c0\n"
    )
    status = merge_status(run, records, queued)
    states = {s.subject: (s.state, s.exit_code) for s in status.subjects}
    assert states == {
        "s0": ("SUCCEEDED", 0),
        "s1": ("RUNNING", None),
        "s2": ("PENDING", None),
        "s3": ("MISSING", None),
        "s4": ("MISSING", None),
        "s5": ("FAILED", 3),
        "s6": ("FAILED", None),
    }
    assert status.counts == {
        "PENDING": 1,
        "RUNNING": 1,
        "SUCCEEDED": 1,
        "FAILED": 2,
        "TIMEOUT": 0,
        "OOM": 0,
        "NODE_FAIL": 0,
        "CANCELLED": 0,
        "MISSING": 2,
    }
    assert not status.done


def test_a_later_attempt_decides_and_unsubmitted_chunks_say_so():
    run = make_run(
        ("a", "b"), chunks=[Chunk(index=0, offset=0, count=1, job_id="12"), Chunk(index=1, offset=1, count=1)]
    )
    status = merge_status(run, parse_records(record("a", "FAILED", 3)), [])
    assert status.subjects[1].state == "MISSING" and "not known to be submitted" in status.subjects[1].error
    from cluster_tools.model.runs.run_record import Attempt

    rerun = run.model_copy(
        update={
            "attempts": [
                *run.attempts,
                Attempt(number=2, subjects=["a"], chunks=[Chunk(index=0, offset=0, count=1, job_id="14")]),
            ]
        }
    )
    status = merge_status(
        rerun, parse_records(record("a", "FAILED", 3) + "\n" + record("a", "SUCCEEDED", 0, attempt=2)), []
    )
    assert (status.subjects[0].state, status.subjects[0].attempt) == ("SUCCEEDED", 2)


@pytest.mark.parametrize(
    ("ids", "one_run"),
    [("4", True), ("4-999", True), ("4-999%16", True), ("1,3,5-9", False), ("0-98:2", False), ("4-9,11", False)],
)
def test_a_line_whose_ids_are_one_run_is_known_from_its_text(ids, one_run):
    from cluster_tools.slurm.queue import one_run_of_ids

    line = f"12|{ids}|PENDING|Priority|ct:demo-1:a1:c0"
    assert one_run_of_ids(line) is one_run
    tasks = [t.task_id for t in parse_squeue(line)]
    assert (tasks == list(range(tasks[0], tasks[-1] + 1))) is one_run


def test_a_task_id_beyond_its_arrays_count_is_of_no_subject():
    """Never so from Slurm (an array has its count of tasks), so such a task is not taken for the next array's
    subject: b stays MISSING (its own array, 13, lists nothing), in the full merge and the incremental one."""
    from cluster_tools.model.runs.status_merger import StatusMerger

    run = make_run(
        ("a", "b"),
        chunks=[Chunk(index=0, offset=0, count=1, job_id="12"), Chunk(index=1, offset=1, count=1, job_id="13")],
    )
    for queue in ("12|1|RUNNING|None|ct:demo-1:a1:c0\n", "12|0-1|PENDING|Priority|ct:demo-1:a1:c0\n"):
        full = merge_status(run, [], parse_squeue(queue))
        assert [s.state for s in full.subjects] == (
            ["MISSING", "MISSING"] if "RUNNING" in queue else ["PENDING", "MISSING"]
        )
        assert StatusMerger(run).merge([], queue, queue_readable=True) == full


def test_status_output_with_an_unreadable_queue_keeps_running_tasks_running():
    run = make_run(("a", "b"))
    text = (
        "squeue: error: slurm_load_jobs error: Unable to contact slurm controller\n@@clustertools-squeue-exit 1\n"
        + record("a", "RUNNING", "null")
        + "\n"
    )
    status = parse_status(run, text)
    assert [s.state for s in status.subjects] == ["RUNNING", "PENDING"] and not status.queue_readable


def test_status_json_shape():
    data = parse_status(make_run(("a",)), "@@clustertools-squeue-exit 0\n" + record("a", "FAILED", 3)).to_json()
    assert data["run"] == "demo-1" and data["counts"]["FAILED"] == 1
    assert data["subjects"][0]["subject"] == "a" and data["subjects"][0]["exit_code"] == 3


def test_a_record_says_where_outputs_wait_after_a_failed_upload():
    from cluster_tools.model.runs.status_reply import parse_records

    line = (
        '{"subject":"sub-1","attempt":2,"state":"FAILED","exit_code":96,"error":"uploading to S3 failed","start":"",'
        '"end":"","node":"vm","job_id":"7_0","kept":"/home/u/.clustertools/runs/r/unsent/sub-1.2"}'
    )
    assert parse_records(line)[0].kept == "/home/u/.clustertools/runs/r/unsent/sub-1.2"
    assert parse_records(line.replace(',"kept":"/home/u/.clustertools/runs/r/unsent/sub-1.2"', ""))[0].kept == ""


def test_a_requeued_task_is_said_so() -> None:
    """Records carry SLURM_RESTART_COUNT: a subject whose node was lost says it was requeued."""
    from cluster_tools.model.runs.run_status import SubjectStatus
    from cluster_tools.model.runs.status_reply import parse_records

    text = (
        '{"subject":"s-1","attempt":1,"state":"RUNNING","start":"a","restarts":0}\n'
        '{"subject":"s-1","attempt":1,"state":"SUCCEEDED","exit_code":0,"restarts":1}\n'
        '{"subject":"s-2","attempt":1,"state":"SUCCEEDED","exit_code":0,"restarts":"x"}\n'
    )
    records = parse_records(text)
    assert [r.restarts for r in records] == [0, 1, 0]
    assert SubjectStatus("s-1", "SUCCEEDED", 0, 1, restarts=1).note == "requeued 1x"
    assert SubjectStatus("s-1", "FAILED", 3, 1, error="boom", restarts=2).note == "requeued 2x; boom"


# `squeue -h -r --name=ct-demo-1 -o '%F|%K|%T|%r|%k'` on the sandbox (queue cpu: one static and one dynamic
# 4-CPU node): array 10 (-c 1, %2 throttle), 11 (-c 3: one task waits for a node), 15 (-c 4: behind it).
SQUEUE_REASONS = """10|2|PENDING|JobArrayTaskLimit|ct:demo-1:a1:c0
10|3|PENDING|JobArrayTaskLimit|ct:demo-1:a1:c0
10|4|PENDING|JobArrayTaskLimit|ct:demo-1:a1:c0
10|5|PENDING|JobArrayTaskLimit|ct:demo-1:a1:c0
11|1|PENDING|Resources|ct:demo-1:a2:c1
15|0|PENDING|Priority|ct:demo-1:a2:c2
15|1|PENDING|Priority|ct:demo-1:a2:c2
10|0|RUNNING|None|ct:demo-1:a1:c0
10|1|RUNNING|None|ct:demo-1:a1:c0
11|0|RUNNING|None|ct:demo-1:a2:c1
"""


def test_pending_subjects_say_why_they_wait_as_slurm_says_it():
    tasks = parse_squeue(SQUEUE_REASONS)
    assert [t.reason for t in tasks] == ["JobArrayTaskLimit"] * 4 + ["Resources", "Priority", "Priority", "", "", ""]
    run = make_run(tuple(f"s{i}" for i in range(6)), chunks=[Chunk(index=0, offset=0, count=6, job_id="10")])
    status = merge_status(run, [], tasks)
    assert [s.note for s in status.subjects] == ["", "", *["pending (JobArrayTaskLimit)"] * 4]
    assert status.waiting == {"JobArrayTaskLimit": 4} and status.blocked == []
    assert status.counts_text() == "pending 4 (JobArrayTaskLimit 4), running 2"
    assert status.to_json()["subjects"][2]["reason"] == "JobArrayTaskLimit"


def test_a_reason_no_waiting_ends_is_said():
    run = make_run(("a", "b"), chunks=[Chunk(index=0, offset=0, count=2, job_id="12")])
    status = merge_status(
        run,
        [],
        parse_squeue(
            "12|0|PENDING|PartitionTimeLimit|ct:demo-1:a1:c0\n"
            "12|1|PENDING|launch failed requeued held|ct:demo-1:a1:c0\n"
        ),
    )
    assert status.blocked == [
        "1 subject(s) cannot start: Slurm says PartitionTimeLimit: the time limit is above the partition's MaxTime",
        "1 subject(s) cannot start: Slurm says launch failed requeued held: its launch failed and Slurm held it "
        "(scontrol release, or cancel)",
    ]


_BOUNDS = [2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1]  # where msgspec and orjson differ
_FIELD_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.integers(),
    st.sampled_from(_BOUNDS),
    st.floats(-2, 2),
    st.floats(),
    st.text(max_size=3),
    st.lists(st.integers(), max_size=1),
    st.dictionaries(st.text(max_size=1), st.integers(), max_size=1),
)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(st.sampled_from(TaskRecord.__struct_fields__), _FIELD_VALUES),
    st.fixed_dictionaries(
        {
            "subject": st.text(max_size=4),
            "attempt": st.integers(0, 3),
            "state": st.sampled_from(["SUCCEEDED", "RUNNING"]),
        }
    ),
)
def test_the_fast_record_check_agrees_with_the_field_by_field_one(fields, plain):
    """parse_records decodes and type-checks records with msgspec (issue 16); a record it refuses goes field by field,
    as orjson reads it. Whatever a hostile file holds, both paths give the same record, or both skip it: alone, and
    among good lines (decoded all at once, or line by line when one fails)."""
    from cluster_tools.model.runs.status_reply import _checked_record, _loaded, parse_records

    for data in (fields, {**plain, **fields}, {**fields, **plain}):
        line = json.dumps(data)
        checked = _checked_record(_loaded(line.encode()))  # orjson: as parse_records reads it (a huge int is a float)
        assert parse_records(line) == parse_records(line.encode()) == [r for r in [checked] if r], data
        good = json.dumps(plain)
        assert parse_records(f"{good}\n{line}\n{good}\n") == [
            *parse_records(good),
            *parse_records(line),
            *parse_records(good),
        ], data


@pytest.mark.parametrize("field", ["attempt", "exit_code", "restarts", "peak_mem_mb", "cpu_s"])
@pytest.mark.parametrize("value", [*_BOUNDS, -1, 0])
def test_numbers_at_the_edges_read_as_orjson_reads_them(field, value):
    """msgspec reads any integer; orjson, beyond 64 bits, a float: a record is read the same either way."""
    from cluster_tools.model.runs.status_reply import _checked_record, _loaded, parse_records

    line = json.dumps({"subject": "s", "attempt": 1, "state": "SUCCEEDED", field: value})
    checked = _checked_record(_loaded(line.encode()))
    assert parse_records(line) == [r for r in [checked] if r]


def test_a_record_with_bytes_that_are_not_utf8_is_kept():
    from cluster_tools.model.runs.status_reply import parse_records

    line = b'{"subject":"s-1","attempt":1,"state":"FAILED","exit_code":2,"error":"bad \xff byte"}\n{"subject":"s-2",'
    assert [(r.subject, r.error) for r in parse_records(line)] == [("s-1", "bad \ufffd byte")]


def _split_by_partition(reply: bytes, mark: str = "") -> StatusReply:
    """status.sh's reply split the plain way (the reference split_status_reply is held to; it copies the records
    several times, which costs a millisecond each at a first read of 10,000 tasks)."""
    if reply.startswith(RECORDS_FROM_MARK):  # this version's: records, the mark, the queue, records
        start, first, records = _records_by_partition(reply)
        if start < 0:
            return StatusReply("", False, -1, b"")
        records, found, rest = records.partition(b"\n@@clustertools-queue " + mark.encode() + b"\n")
        if not found:
            return StatusReply("", False, -1, b"")
        queue, exit_mark, rest = rest.partition(SQUEUE_EXIT_MARK.encode())
        code, _, more = rest.partition(b"\n")
        return StatusReply(
            queue.decode("utf-8", "replace"), bool(exit_mark) and code.strip() == b"0", start, records + more, first
        )
    queue, exit_mark, rest = reply.partition(SQUEUE_EXIT_MARK.encode())
    if not exit_mark:
        return StatusReply("", False, 0, reply)
    code, _, records = rest.partition(b"\n")
    start, first = 0, b""
    if records.startswith(RECORDS_FROM_MARK):
        start, first, records = _records_by_partition(records)
        if start < 0:
            return StatusReply(queue.decode("utf-8", "replace"), code.strip() == b"0", -1, b"")
    return StatusReply(queue.decode("utf-8", "replace"), code.strip() == b"0", start, records, first)


def _records_by_partition(text: bytes) -> tuple[int, bytes, bytes]:
    header, _, records = text[len(RECORDS_FROM_MARK) :].partition(b"\n")
    numbers = header.split()
    if len(numbers) != 2 or not all(n.isdigit() for n in numbers):
        return -1, b"", b""
    start, length = int(numbers[0]), int(numbers[1])
    return start, records[:length], records[length:]


_REPLY_PIECES = st.sampled_from(
    [
        SQUEUE_EXIT_MARK.encode(),
        RECORDS_FROM_MARK,
        b"\n",
        b" ",
        b"0",
        b"1",
        b"12",
        b"x",
        b"\xff",
        b'{"subject":"s"}',
        b"1|0-9|PENDING|None|ct:r:a1:c0",
        b"\n@@clustertools-queue \n",
        b"\n@@clustertools-queue 0a1b\n",
    ]
)


@settings(max_examples=500, deadline=None)
@given(st.lists(_REPLY_PIECES, max_size=12))
def test_the_reply_splits_as_the_plain_way_does(pieces):
    reply = b"".join(pieces)
    assert split_status_reply(reply) == _split_by_partition(reply)
    assert split_status_reply(reply, "0a1b") == _split_by_partition(reply, "0a1b")


_TEXT = st.text(max_size=6)
_STATUSES = st.lists(
    st.builds(
        SubjectStatus,
        _TEXT,
        st.sampled_from(["PENDING", "FAILED", "SUCCEEDED"]),
        st.none() | st.integers(-(2**63), 2**63 - 1),
        st.integers(1, 9),
        _TEXT,
        _TEXT,
        _TEXT,
        _TEXT,
        _TEXT,
        _TEXT,
        st.integers(0, 5),
        _TEXT,
        _TEXT,
        st.none() | st.integers(0, 2**40) | st.floats(0, 1e12),
        st.none() | st.floats(0, 1e9),
        _TEXT,
    ),
    max_size=5,
)


@settings(max_examples=200, deadline=None)
@given(_STATUSES, st.booleans())
def test_the_compact_json_of_a_status_is_its_to_json(subjects, readable):
    """`status --json` piped prints to_json_bytes(): msgspec encodes the subjects' Structs; it is to_json() exactly,
    and for the JSON values a status holds the same bytes orjson writes of to_json()."""
    status = RunStatus("demo-1", tuple(subjects), readable)
    assert orjson.loads(status.to_json_bytes()) == status.to_json()
    assert status.to_json_bytes() == orjson.dumps(status.to_json())

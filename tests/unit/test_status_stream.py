"""status.sh sends the records it has before squeue answers, and the client reads them meanwhile (issue 16). What must
hold: however the reply is cut into pieces, the records part is handed on once and whole; a task that ends while
squeue answers is seen finished, never lost; a record cannot pose as the queue; older runs' scripts still read right.
The head node's side runs here under bash, with a stand-in squeue."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cluster_tools.model.runs.status_reply import split_status_reply
from cluster_tools.services.runs.run_follow import records_cache
from cluster_tools.services.runs.status_stream import StatusStream
from tests.unit.test_records_cache import Head, record

MARK = "0123456789abcdef"
REPLY = (
    b"@@clustertools-records-from 0 0\n"
    + record("sub-1", "SUCCEEDED")
    + record("sub-3", "FAILED")
    + b'{"subject":"sub-2","att'  # the file ended mid-line when status.sh read it
    + b"\n@@clustertools-queue "
    + MARK.encode()
    + b"\n12_[2-3]|1|PENDING|None|ct:demo-1:a1:c0\n@@clustertools-squeue-exit 0\n"
    + b'empt":1,"state":"RUNNING"}\n'
)
OLDER = Path(__file__).parent.parent / "golden" / "older"


RECORDS = record("sub-1", "SUCCEEDED") + record("sub-3", "FAILED") + b'{"subject":"sub-2","att'


def stream_in_pieces(reply: bytes, cuts: list[int], piece: int, take=lambda *_: True):
    handed: list[tuple[int, bytes, bytes | None]] = []
    stream = StatusStream(MARK, lambda *call: handed.append(call) or take(*call), piece=piece)
    at = 0
    for cut in [*sorted(set(cuts)), len(reply)]:
        stream.write(reply[at:cut])
        at = cut
    return stream, handed


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=len(REPLY)), max_size=12), st.integers(min_value=1, max_value=400))
def test_records_are_handed_on_in_whole_lines_and_the_reply_goes_on_where_they_end(cuts, piece):
    """However the reply is cut and whatever the stretch size: stretches of whole lines, each where the last ended,
    then the reply from there; together, the records as sent."""
    stream, handed = stream_in_pieces(REPLY, cuts, piece)
    assert stream.getvalue() == REPLY
    offset = 0
    for number, (start, chunk, first) in enumerate(handed):
        assert start == offset and chunk.endswith(b"\n") and first == (b"" if number == 0 else None)
        offset += len(chunk)
    reply = stream.reply()
    assert reply.start == offset and stream.continued == bool(handed)
    assert b"".join(chunk for _, chunk, _ in handed) + reply.records == RECORDS + b'empt":1,"state":"RUNNING"}\n'
    assert reply.queue == "12_[2-3]|1|PENDING|None|ct:demo-1:a1:c0\n" and reply.queue_ok
    assert split_status_reply(REPLY, MARK).records == RECORDS + b'empt":1,"state":"RUNNING"}\n'


def test_a_stretch_not_taken_stops_the_handing_on_and_nothing_is_believed():
    stream, handed = stream_in_pieces(REPLY, list(range(1, len(REPLY), 40)), 1, take=lambda *_: False)
    assert len(handed) == 1 and stream.reply().start == -1


def test_a_record_cannot_pose_as_the_queue_without_the_clients_one_time_mark():
    forged = REPLY.replace(b"\n@@clustertools-queue " + MARK.encode(), b"\n@@clustertools-queue 00000000000000ff")
    stream, handed = stream_in_pieces(forged, [], 1 << 20)
    assert handed == [] and stream.reply().start == -1, "not believed: the read is made again, from the first byte"
    assert split_status_reply(forged, MARK).start == -1


@pytest.fixture
def head(tmp_path) -> Head:
    return Head(tmp_path)


def squeue_that_runs(head: Head, script: str) -> None:
    """The stand-in squeue runs ``script`` (in the run's directory) before it answers, and lists nothing. It starts
    as status.sh does, so it first waits for status.sh to have folded and sent the first part (the records file
    exists by then, and sending it takes a few milliseconds here)."""
    squeue = Path(head.conn.path.split(":")[0]) / "squeue"
    squeue.write_text(
        f"#!/bin/bash\ncd {head.dir}\n"
        "for _ in {1..200}; do [[ -e records/all.jsonl ]] && break; sleep 0.05; done\nsleep 0.3\n"
        f"{script}\nexit 0\n"
    )


def test_a_task_that_ends_while_squeue_answers_is_seen_finished_not_lost(head):
    """Its record lands after the first part was sent and before squeue's answer: it comes after the queue."""
    head.task_writes(record("sub-1", "RUNNING"), "a")
    ended = json.loads(record("sub-1", "SUCCEEDED"))
    squeue_that_runs(head, f"echo '{json.dumps(ended)}' > records/new/sub-1.1.SUCCEEDED.json")
    assert head.states()["sub-1"] == "SUCCEEDED"
    assert head.state.records_cache(head.run.run_id).read_bytes() == head.all_jsonl


def test_records_another_reader_folds_while_squeue_answers_are_read_too(head):
    """Another `status --watch` folds a record (and finishes a half-written line) meanwhile: read from where the first
    part ended."""
    line = record("sub-2", "FAILED")
    (head.dir / "records" / "all.jsonl").write_bytes(record("sub-1", "SUCCEEDED") + line[:15])
    squeue_that_runs(head, f"printf '%s' '{line[15:].decode()}' >> records/all.jsonl")
    cache = records_cache(head.state, head.run)
    assert head.states(cache) == {"sub-1": "SUCCEEDED", "sub-2": "FAILED", "sub-3": "MISSING", "sub-4": "MISSING"}
    assert cache.data == head.all_jsonl


def test_the_first_records_of_a_run_are_read_even_when_its_records_file_is_made_meanwhile(head):
    assert not (head.dir / "records" / "all.jsonl").exists()
    ended = json.loads(record("sub-3", "SUCCEEDED"))
    squeue_that_runs(head, f"echo '{json.dumps(ended)}' > records/new/sub-3.1.SUCCEEDED.json")
    assert head.states()["sub-3"] == "SUCCEEDED"


@pytest.mark.parametrize("script", ["run_status_queue_first.sh", "run_status_whole_file.sh"])
def test_an_older_runs_status_sh_still_reads_right_and_nothing_is_counted_twice(head, script):
    """Runs submitted by an earlier version keep the status.sh they were given: queue first, then the records from
    byte FROM (the one before this), or the whole file every time (the first)."""
    (head.dir / "status.sh").write_text((OLDER / script).read_text())
    head.task_writes(record("sub-1", "FAILED"), "a")
    cache = records_cache(head.state, head.run)
    assert head.states(cache)["sub-1"] == "FAILED"
    head.task_writes(record("sub-1", "SUCCEEDED"), "b")  # its rerun
    assert head.states(cache)["sub-1"] == "SUCCEEDED"
    assert cache.data == head.all_jsonl and len(cache.records) == 2

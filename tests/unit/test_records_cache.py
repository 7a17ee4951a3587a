"""Incremental status (issue 16, item 1): each read fetches only the records appended since the last, and the
cache is never wrong: appended between refreshes, truncated, replaced, a re-created cluster's file, two watchers
at once, a line caught half-appended (an older run's status.sh, and records that land while squeue answers:
test_status_stream.py). The head node's side (the rendered status.sh) runs here under bash, with a stand-in squeue."""

from __future__ import annotations

import json
import shutil

import pytest

from cluster_tools.render.run_scripts import render_status_script
from cluster_tools.services.runs.records_cache import OVERLAP, RecordsCache
from cluster_tools.services.runs.run_follow import read_status, records_cache
from cluster_tools.services.runs.status_stream import StatusStream
from cluster_tools.store.state_dir import StateDir
from tests.unit.run_fixtures import make_run
from tests.unit.test_output_check import LocalHead

SUBJECTS = tuple(f"sub-{i}" for i in range(1, 5))


def record(subject: str, state: str, padding: int = 0) -> bytes:
    return (
        json.dumps(
            {
                "subject": subject,
                "attempt": 1,
                "state": state,
                "exit_code": 0 if state == "SUCCEEDED" else 1,
                "error": "x" * padding,
                "start": "2026-11-30T05:00:00Z",
                "end": "2026-11-30T05:08:00Z",
                "node": "vm",
                "job_id": "7_0",
            }
        )
        + "\n"
    ).encode()


class Head:
    def __init__(self, tmp_path) -> None:
        self.run = make_run(SUBJECTS).model_copy(update={"remote_dir": str(tmp_path / "run")})
        self.dir = tmp_path / "run"
        (self.dir / "records" / "new").mkdir(parents=True)
        (self.dir / "status.sh").write_text(render_status_script(self.run))
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        (bin_dir / "squeue").write_text("#!/bin/sh\nexit 0\n")  # nothing queued: every subject has a record or none
        (bin_dir / "squeue").chmod(0o755)
        self.conn = LocalHead(bin_dir)
        self.state = StateDir(tmp_path / "state")

    def task_writes(self, data: bytes, name: str = "x") -> None:
        """A task's record, as the wrapper leaves it for status.sh to fold in."""
        (self.dir / "records" / "new" / f"{name}.json").write_bytes(data)

    @property
    def all_jsonl(self) -> bytes:
        return (self.dir / "records" / "all.jsonl").read_bytes()

    def states(self, cache: RecordsCache | None = None) -> dict[str, str]:
        status = read_status(self.conn, self.run, cache if cache is not None else records_cache(self.state, self.run))
        return {s.subject: s.state for s in status.subjects}

    def asked_from(self) -> list[int]:
        return [int(c[2]) for c in self.conn.commands]


@pytest.fixture(params=["whole", "in pieces"])
def head(tmp_path, request, monkeypatch) -> Head:
    """Each test twice: the records handed on at the end of the first part, and a stretch at each piece the
    connection brings (tests/unit/test_output_check.py's LocalHead brings 61 bytes at a time)."""
    if request.param == "in pieces":
        monkeypatch.setattr(StatusStream.__init__, "__defaults__", (0, 1))
    return Head(tmp_path)


def test_each_refresh_reads_only_what_was_appended_since(head):
    head.task_writes(record("sub-1", "SUCCEEDED", padding=3 * OVERLAP), "a")
    assert head.states() == {"sub-1": "SUCCEEDED", "sub-2": "MISSING", "sub-3": "MISSING", "sub-4": "MISSING"}
    head.task_writes(record("sub-2", "FAILED"), "b")
    assert head.states()["sub-2"] == "FAILED"
    first = len(record("sub-1", "SUCCEEDED", padding=3 * OVERLAP))
    assert head.asked_from() == [0, first - OVERLAP], "the second read asked for the end alone"
    assert head.state.records_cache(head.run.run_id).read_bytes() == head.all_jsonl


def test_a_refresh_over_many_short_records_is_one_read(head):
    """What the client asks again (the last 4 KiB it has) spans many lines: it is checked whole, never line by line."""
    head.task_writes(b"".join(record("sub-1", "RUNNING") for _ in range(100)), "a")
    assert head.states()["sub-1"] == "FAILED"  # began, neither queued nor ended: lost
    head.task_writes(record("sub-1", "SUCCEEDED"), "b")
    assert head.states()["sub-1"] == "SUCCEEDED"
    assert head.asked_from() == [0, 100 * len(record("sub-1", "RUNNING")) - OVERLAP], "no second, full read"
    assert head.state.records_cache(head.run.run_id).read_bytes() == head.all_jsonl


def test_a_truncated_or_replaced_file_is_read_again_whole(head):
    head.task_writes(record("sub-1", "SUCCEEDED", padding=2 * OVERLAP) + record("sub-2", "SUCCEEDED"), "a")
    assert head.states()["sub-2"] == "SUCCEEDED"
    (head.dir / "records" / "all.jsonl").write_bytes(record("sub-3", "FAILED"))  # shorter than what is cached
    assert head.states() == {"sub-1": "MISSING", "sub-2": "MISSING", "sub-3": "FAILED", "sub-4": "MISSING"}
    assert head.asked_from()[-2:] == [
        len(record("sub-1", "SUCCEEDED", padding=2 * OVERLAP)) + len(record("sub-2", "SUCCEEDED")) - OVERLAP,
        0,
    ], "a second, full read"
    # Replaced by a longer file that does not begin as the cache does: the run re-created on a new cluster.
    (head.dir / "records" / "all.jsonl").write_bytes(record("sub-4", "SUCCEEDED", padding=5 * OVERLAP))
    assert head.states() == {"sub-1": "MISSING", "sub-2": "MISSING", "sub-3": "MISSING", "sub-4": "SUCCEEDED"}
    assert head.state.records_cache(head.run.run_id).read_bytes() == head.all_jsonl


def test_a_line_caught_half_appended_is_taken_whole_at_the_next_read(head):
    line = record("sub-1", "SUCCEEDED")
    (head.dir / "records" / "all.jsonl").write_bytes(line[:20])  # the fold was writing when status.sh read
    assert head.states()["sub-1"] == "MISSING"
    (head.dir / "records" / "all.jsonl").write_bytes(line)
    assert head.states()["sub-1"] == "SUCCEEDED"
    assert head.state.records_cache(head.run.run_id).read_bytes() == line


def test_two_watchers_at_once_each_stay_right_and_so_does_the_file(head):
    one, two = records_cache(head.state, head.run), records_cache(head.state, head.run)
    for step, subject in enumerate(SUBJECTS):
        head.task_writes(record(subject, "SUCCEEDED", padding=OVERLAP), f"r{step}")
        expected = {s: "SUCCEEDED" if i <= step else "MISSING" for i, s in enumerate(SUBJECTS)}
        assert head.states(one) == expected
        if step % 2:
            assert head.states(two) == expected
    assert head.states(two) == {s: "SUCCEEDED" for s in SUBJECTS}
    assert head.state.records_cache(head.run.run_id).read_bytes() == head.all_jsonl
    assert head.states(records_cache(head.state, head.run)) == {s: "SUCCEEDED" for s in SUBJECTS}, "a third, from disk"


def test_a_damaged_cache_on_disk_is_never_believed(head):
    head.task_writes(record("sub-1", "SUCCEEDED", padding=OVERLAP), "a")
    head.states()
    cache = head.state.records_cache(head.run.run_id)
    cache.write_bytes(record("sub-2", "SUCCEEDED", padding=OVERLAP))  # says sub-2, which the head node never had
    assert head.states() == {"sub-1": "SUCCEEDED", "sub-2": "MISSING", "sub-3": "MISSING", "sub-4": "MISSING"}


def test_no_state_dir_needed_and_a_missing_run_dir_is_still_run_files_missing(head):
    from cluster_tools.services.runs.run_follow import RunFilesMissing

    head.task_writes(record("sub-3", "SUCCEEDED"), "a")
    assert read_status(head.conn, head.run).subjects[2].state == "SUCCEEDED"
    shutil.rmtree(head.dir)
    with pytest.raises(RunFilesMissing):
        read_status(head.conn, head.run)

"""Daemons are stopped by PID and start time, never by name; leftovers are found by their marker."""

from __future__ import annotations

import dataclasses
import sys

from cluster_tools.transport import local_processes as procs

SLEEP = [sys.executable, "-c", "import time; time.sleep(60)"]


def test_spawn_and_stop(tmp_path):
    record = procs.spawn("sleeper", SLEEP, env={"PATH": "/usr/bin:/bin"}, log_path=tmp_path / "log", cwd=tmp_path)
    assert procs.is_running(record)
    assert procs.stop([record], timeout=5) == []
    assert not procs.is_running(record)


def test_a_reused_pid_is_not_ours(tmp_path):
    record = procs.spawn("sleeper", SLEEP, env={}, log_path=tmp_path / "log", cwd=tmp_path)
    impostor = dataclasses.replace(record, start_ticks=record.start_ticks + 1)
    assert not procs.is_running(impostor)
    assert procs.stop([impostor]) == [] and procs.is_running(record)  # the real one was not touched
    procs.stop([record])


def test_marked_processes_are_found_and_the_caller_is_spared(tmp_path):
    marker = ("CLUSTERTOOLS_TEST_MARK", str(tmp_path))
    record = procs.spawn("marked", SLEEP, env={marker[0]: marker[1]}, log_path=tmp_path / "log", cwd=tmp_path)
    other = procs.spawn("unmarked", SLEEP, env={}, log_path=tmp_path / "log2", cwd=tmp_path)
    try:
        found = procs.find_marked(marker)
        assert record.pid in found and other.pid not in found
        assert procs.kill_pids(found) == []
        assert procs.find_marked(marker) == []
    finally:
        procs.stop([record, other])


def test_records_round_trip_through_json(tmp_path):
    record = procs.ProcessRecord(name="x", pid=1, start_ticks=2, argv=("a", "b c"))
    assert procs.ProcessRecord.from_json(record.to_json()) == record

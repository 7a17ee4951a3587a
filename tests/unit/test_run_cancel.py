"""A whole run is cancelled on the head node by cancel_run.py (issue 16). It runs there alone (the head node's
python3, without this package), so these tests hold its rules equal to the package's, and run it here, under
python3, against a run directory laid out as submit leaves it, with stand-in squeue and scancel."""

from __future__ import annotations

import fcntl
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cluster_tools.model.names import SUBJECT_ID
from cluster_tools.model.runs.run_record import FINAL_STATES
from cluster_tools.model.runs.status_reply import parse_records
from cluster_tools.render.run_scripts import cancel_script
from cluster_tools.services.runs.run_cancel import cancel_record, cancel_records
from cluster_tools.slurm import queue

SCRIPT = Path(__file__).parents[2] / "cluster_tools" / "templates" / "run" / "cancel_run.py"


def _load():
    spec = importlib.util.spec_from_file_location("cancel_run", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


cancel_run = _load()


def test_its_rules_are_the_packages():
    assert cancel_run.RUNNING == queue._RUNNING and set(queue.ENDED) == cancel_run.ENDED
    assert set(FINAL_STATES) == cancel_run.FINAL and cancel_run.MAX_TASK_ID == queue.MAX_TASK_ID
    assert cancel_run.SUBJECT.pattern == SUBJECT_ID.pattern.pattern + r"\Z"
    assert cancel_script() == SCRIPT.read_text()
    for subject in ("sub-1", "a.b_c-9", "x%s"[:1]):
        line = cancel_run.records_text([subject], 3, "2026-11-30T00:00:00Z")
        assert line.encode() == cancel_record(subject, 3, "2026-11-30T00:00:00Z")
        assert cancel_run.records_text([subject, "b"], 3, "T").encode() == cancel_records([(subject, 3), ("b", 3)], "T")
        assert cancel_run.final_records_of(3).findall(line.encode()) == [subject.encode()]
        assert cancel_run.final_records_of(2).findall(line.encode()) == [], "another attempt's"
    wrapper_like = {"subject": "s1", "attempt": 12, "state": "RUNNING"}
    for state, found in (("RUNNING", []), ("SUCCEEDED", [b"s1"]), ("NODE_FAIL", [b"s1"])):
        for separators in ((",", ":"), (", ", ": ")):  # as the wrapper and json.dumps write them
            text = json.dumps({**wrapper_like, "state": state}, separators=separators).encode()
            assert cancel_run.final_records_of(12).findall(text) == found, text
            assert cancel_run.final_records_of(1).findall(text) == [], "attempt 1 is not attempt 12"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet='ab1._-%"\n\x1f', min_size=1, max_size=4), min_size=1, max_size=5))
def test_a_manifest_subject_is_taken_only_when_it_is_a_subject_id(subjects):
    """The manifest is a file on the head node: one that does not hold a subject ID names no subject."""
    assert all(SUBJECT_ID.is_valid(s) or s == "" for s in _manifest_subjects(subjects))
    if all(SUBJECT_ID.is_valid(s) for s in subjects):
        assert _manifest_subjects(subjects) == subjects


def _manifest_subjects(subjects):
    import tempfile

    with tempfile.TemporaryDirectory() as root, pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        os.makedirs("attempts/1")
        Path("attempts/1/chunks").write_text("0 0 9\n")
        Path("attempts/1/manifest").write_text("SUBJECT\n" + "".join(f"{s}\x1f1\n" for s in subjects))
        return cancel_run.attempt_subjects(1)[1]


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789-,:%", max_size=12))
def test_task_ranges_are_read_as_the_package_reads_them(text):
    assert cancel_run.task_ids(text) == queue.task_ids(text)


class HeadNode:
    """A run directory as submit leaves it, and stand-ins for squeue (prints QUEUE) and scancel (logs its call)."""

    def __init__(self, root: Path, subjects: list[str]) -> None:
        self.dir, self.bin = root / "run", root / "bin"
        (self.dir / "attempts" / "1").mkdir(parents=True)
        (self.dir / "records" / "new").mkdir(parents=True)
        self.bin.mkdir()
        (self.dir / "attempts" / "1" / "manifest").write_text(
            "SUBJECT\x1fage\n" + "".join(f"{s}\x1f9\n" for s in subjects)
        )
        (self.dir / "attempts" / "1" / "chunks").write_text("0 0 4\n1 4 4\n")
        self.queue = self.dir.parent / "queue.txt"
        self.calls = self.dir.parent / "scancel.log"
        self._stand_in("squeue", f"[ -f {self.queue}.fail ] && exit 1; cat {self.queue}")
        self._stand_in("scancel", f'echo "$*" >>{self.calls}; [ ! -f {self.calls}.fail ]')

    def _stand_in(self, name: str, body: str) -> None:
        path = self.bin / name
        path.write_text(f"#!/bin/sh\n{body}\n")
        path.chmod(0o755)

    def cancel(self, queue_text: str) -> subprocess.CompletedProcess:
        self.queue.write_text(queue_text)
        env = {**os.environ, "PATH": f"{self.bin}:{os.environ['PATH']}"}
        return subprocess.run(
            [sys.executable, "-", str(self.dir), "ct-demo-1", "2026-11-30T00:00:00Z"],
            input=cancel_script(),
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )

    def records(self) -> list:
        return [r for f in sorted((self.dir / "records" / "new").glob("*.json")) for r in parse_records(f.read_bytes())]


@pytest.fixture
def head(tmp_path):
    return HeadNode(tmp_path, [f"s{i}" for i in range(8)])


QUEUE = (
    "12|2-3|PENDING|ct:demo-1:a1:c0\n"  # s2, s3
    "13|0-3:2%2|PENDING|ct:demo-1:a1:c1\n"  # s4, s6
    "12|1|RUNNING|ct:demo-1:a1:c0\n"  # s1
    "12|0|NODE_FAIL|ct:demo-1:a1:c0\n"  # ended: not cancelled again
    "99|0|PENDING|ct:other-run:a1:c0\n"
)  # another run's


def test_pending_subjects_get_a_cancelled_record_and_running_ones_are_listed(head):
    done = head.cancel(QUEUE)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("@")[1:] == ["PENDING\ns2\ns3\n", "PENDING\ns4\ns6\n", "RUNNING\ns1\n"]
    assert head.calls.read_text() == "--name=ct-demo-1\n"
    assert sorted((r.subject, r.attempt, r.state) for r in head.records()) == [
        ("s2", 1, "CANCELLED"),
        ("s3", 1, "CANCELLED"),
        ("s4", 1, "CANCELLED"),
        ("s6", 1, "CANCELLED"),
    ]
    assert not list((head.dir / "records" / "new").glob(".*"))  # no temporary file left


def test_a_subject_that_already_ended_keeps_its_outcome(head):
    """A task Slurm requeued after its wrapper wrote a final record: cancelled, but no CANCELLED record over it."""
    (head.dir / "records" / "all.jsonl").write_text(
        '{"subject":"s2","attempt":1,"state":"SUCCEEDED","exit_code":0}\n{"subject":"s3","attempt":1,"state":"RUNNING"}\n'
    )
    (head.dir / "records" / "new" / "s4.1.FAILED.json").write_text('{"subject":"s4","attempt":1,"state":"FAILED"}\n')
    done = head.cancel(QUEUE)
    assert done.stdout.split("@")[1:] == ["PENDING\ns3\n", "PENDING\ns6\n", "RUNNING\ns1\n"]
    assert sorted(r.subject for r in head.records() if r.state == "CANCELLED") == ["s3", "s6"]


def test_nothing_is_cancelled_when_squeue_does_not_answer_or_a_submit_runs(head):
    head.queue.with_name("queue.txt.fail").write_text("")
    done = head.cancel(QUEUE)
    assert done.returncode == 3 and "nothing was cancelled" in done.stderr and not head.calls.exists()
    head.queue.with_name("queue.txt.fail").unlink()
    with open(head.dir / "submit.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        cancel_run.LOCK_WAIT_S = 0.3
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("PATH", f"{head.bin}:{os.environ['PATH']}")
            patch.chdir(head.dir.parent)
            assert cancel_run.main(str(head.dir), "ct-demo-1", "2026-11-30T00:00:00Z") == 75
    assert not head.calls.exists() and head.records() == []
    assert head.cancel("").returncode == 0 and not head.calls.exists()  # nothing queued: no scancel at all


def test_when_scancel_fails_no_record_is_left(head):
    head.calls.with_name("scancel.log.fail").write_text("")
    done = head.cancel(QUEUE)
    assert done.returncode == 4 and done.stdout == "" and head.calls.read_text() == "--name=ct-demo-1\n"
    assert list((head.dir / "records" / "new").iterdir()) == []


def test_a_missing_run_directory_is_exit_44(tmp_path):
    done = subprocess.run(
        [sys.executable, "-", str(tmp_path / "gone"), "ct-x", "now"],
        input=cancel_script(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 44


def test_without_python3_on_the_head_node_the_run_is_cancelled_from_its_status(tmp_path):
    from cluster_tools.services.runs import run_cancel
    from cluster_tools.transport.ssh import RemoteResult
    from tests.unit.run_fixtures import make_run

    class NoPython:
        def run(self, argv, **_):
            assert argv[0] == "python3"
            return RemoteResult("python3 -", 127, b"", b"bash: python3: command not found")

    assert run_cancel.cancel_on_head_node(NoPython(), make_run(("a", "b"))) is None

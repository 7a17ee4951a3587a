"""Idle autostop on a real sandbox of its own (Slurm + sshd + S3, MinJobAge 2 s), with the real 1-minute limit
and a check every 2 s by the sandbox's timer process: it does not fire while an interactive SSH session is
open, while an upload marker is present, or while a task runs; after the last task ends it fires about a
minute later, exactly once, logged; `sandbox down` leaves nothing running (the timer process included).

The conditions are held one after another. During each, every check logs "busy" for it and the idle
clock is not running (status.json's idle_since is null), so the limit cannot be reached however long the
condition lasts; the last step shows the clock: it fires 60-66 s after it started, once. About two minutes
in all (each condition held for the whole limit instead would take five). The sandbox's action sets its partitions INACTIVE (its head node is
this machine and is not stopped). The upload marker of step (c) is written by the test, as the run wrapper
writes one (tests/unit/test_wrapper_upload_marker.py proves the wrapper does).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest

from tests.conftest import start_sandbox, stop_sandbox
from tests.helpers import err, out
from tests.integration.run_helpers import make_project, submit, wait_for_run, write_subjects

pytestmark = pytest.mark.sandbox
HOLD = 12  # seconds each busy condition is held: several checks, each seen busy with the idle clock stopped


@pytest.fixture(scope="module")
def box(tmp_path_factory):
    box = start_sandbox(tmp_path_factory.mktemp("state-autostop"), "--min-job-age", "2", "--static-nodes", "1")
    yield box
    stop_sandbox(box)  # asserts that no process of the sandbox is left, the autostop timer included


def log_path(box) -> Path:
    return box.state / "sandbox" / "log" / "clustertools-autostop.log"


def local_status(box) -> dict:
    return json.loads((box.state / "sandbox" / "node" / "opt" / "clustertools" / "autostop" / "status.json").read_text())


def describe(box) -> tuple[str, dict]:
    """`describe` as a user runs it: the text line, and --json's autostop fields."""
    text = box.cli("describe", "-c", "sandbox")
    as_json = box.cli("describe", "-c", "sandbox", "--json")
    assert text.returncode == 0 and as_json.returncode == 0, err(text) + err(as_json)
    line = next(l for l in out(text).splitlines() if l.startswith("autostop:"))
    return line, json.loads(out(as_json))["autostop"]


def decisions(box, since: float, until: float) -> list[str]:
    """The log's messages written between two moments."""
    found = []
    for line in log_path(box).read_text().splitlines():
        when = datetime.strptime(line[:20], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()
        if since <= when <= until:
            found.append(line.split("]: ", 1)[1])
    return found


def hold(box, reason: str, seconds: float = HOLD) -> None:
    """Wait until a check sees ``reason``; then, for ``seconds``, every check says busy for it and none fires."""
    deadline = time.monotonic() + 15
    while reason not in " ".join(local_status(box)["reasons"]):
        assert time.monotonic() < deadline, f"autostop did not see {reason!r}: {local_status(box)}"
        time.sleep(0.5)
    start = time.time()
    while time.time() - start < seconds:
        assert local_status(box)["idle_since_epoch"] is None, f"the idle clock runs while {reason}: {local_status(box)}"
        time.sleep(1)
    seen = decisions(box, start, time.time())
    assert len(seen) >= seconds / 2 / 2 - 1, f"too few checks: {seen}"
    assert all(m.startswith("busy: ") and reason in m for m in seen), seen
    assert local_status(box)["decision"] == "busy" and "FIRING" not in log_path(box).read_text()


def test_autostop_waits_for_ssh_uploads_and_tasks_then_fires_once(box, tmp_path):
    armed = box.cli("autostop", "-c", "sandbox", "1", "--interval", "2")
    assert armed.returncode == 0, err(armed)
    assert "after 1 min idle" in out(armed) and "a check every 2 s by the sandbox's timer process" in out(armed)

    # (b) An interactive SSH session (a shell with a pty) keeps it up; describe's own execs do not count.
    from cluster_tools.services.remote import connect

    with connect(box.record) as conn:
        shell = conn.open_shell(None, pty=("xterm", 80, 24))
        hold(box, "1 SSH session open")
        line, status = describe(box)
        assert line == "autostop: busy: 1 SSH session open (1 min limit, action sandbox)", line
        assert status["ssh_sessions"] == 1 and status["decision"] == "busy" and status["timer_running"] is True
        shell.close()

    # (c) An output upload in flight, as the wrapper marks it (under the user's home, named by its job and
    # this sandbox's slurm.conf), keeps it up.
    run_dir = f"/home/{box.record.user}/.clustertools/runs/autostop-test-{uuid.uuid4().hex[:8]}"
    marked = box.cli("ssh", "--", "sh", "-c", f"mkdir -p {run_dir}/uploading && "
                     f"echo job=1 slurm_conf=/opt/slurm/etc/slurm.conf > {run_dir}/uploading/sub-01.1")
    assert marked.returncode == 0, err(marked)  # as the login user writes it (SLURM_CONF as a job sees it)
    try:
        hold(box, "1 upload pending")
    finally:
        assert box.cli("ssh", "--", "rm", "-r", run_dir).returncode == 0

    # (a) A running task keeps it up.
    project = make_project(box, tmp_path, "idle")
    run_id = submit(box, project, str(write_subjects(project, ["sub-01"])), "--command", f"sleep {HOLD + 4}")["run"]
    hold(box, "1 job running", seconds=HOLD)
    finished = wait_for_run(box, project, run_id, timeout=60)
    assert finished["counts"]["SUCCEEDED"] == 1
    task_end = datetime.fromisoformat(finished["subjects"][0]["end"].replace("Z", "+00:00")).timestamp()

    # (d) After the last task ends: idle (from the first check that no longer sees the job: it may still be
    # COMPLETING in squeue for a moment), then it fires about a minute later, once.
    deadline = time.monotonic() + 20
    while local_status(box)["idle_since_epoch"] is None:
        assert time.monotonic() < deadline, f"no idle check after the task ended: {local_status(box)}"
        time.sleep(0.5)
    line, status = describe(box)
    assert line.startswith("autostop: idle since ") and "(1 min limit), action sandbox" in line, line
    assert status["fires_at_epoch"] == status["idle_since_epoch"] + 60
    assert task_end - 1 <= status["idle_since_epoch"] <= task_end + 10, (task_end, status)
    deadline = time.monotonic() + 90
    while local_status(box)["decision"] != "fired":
        assert time.monotonic() < deadline, local_status(box)
        time.sleep(1)
    fired = local_status(box)
    assert 60 <= fired["fired_at_epoch"] - status["idle_since_epoch"] <= 66, fired
    time.sleep(6)  # more checks: none repeats the action
    log = log_path(box).read_text()
    assert log.count("FIRING: idle since") == 1 and log.count("State=INACTIVE") == 1, log
    assert "action sandbox done" in log and "already fired at" in log
    line, status = describe(box)
    assert line.startswith("autostop: fired at ") and line.endswith(": action sandbox done"), line
    assert status["decision"] == "fired" and status["action_exit"] == 0
    partitions = box.cli("ssh", "--", "sinfo", "-h", "-o", "%P %a")
    assert out(partitions).split() == ["compute*", "inactive"], out(partitions)
    assert os.path.exists(box.state / "sandbox" / "node" / "opt" / "clustertools" / "autostop" / "autostop.sh")

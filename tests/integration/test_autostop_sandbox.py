"""Idle autostop on a real sandbox of its own (Slurm + sshd + S3, MinJobAge 2 s), with the real 1-minute limit
and a check every 2 s by the sandbox's timer process: it does not fire while an interactive SSH session is
open or while a task runs (an upload marker of that task is said too, and one whose job is not in squeue
is ignored); after the last task ends it fires about a minute later, exactly once, logged; `sandbox down`
leaves nothing running (the timer process included).

The conditions are held one after another. During each, every check logs "busy" for it and the idle
clock is not running (status.json's idle_since is null), so the limit cannot be reached however long the
condition lasts; the last step shows the clock: it fires 60-66 s after it started, once. About a minute and a half
in all (each condition held for the whole limit instead would take five). The sandbox's action sets its partitions
INACTIVE (its head node is this machine and is not stopped). The upload markers of step (c) are written by the test,
as the run wrapper writes one (tests/unit/test_wrapper_upload_marker.py proves the wrapper does), with the job id
squeue prints.
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.conftest import start_sandbox, stop_sandbox
from tests.helpers import err, out
from tests.integration.run_helpers import make_project, submit, wait_for_run, write_subjects

pytestmark = pytest.mark.sandbox
HOLD = 6  # seconds each busy condition is held: 3 checks at the 2 s interval, each seen busy, the idle clock stopped


@pytest.fixture(scope="module")
def box(tmp_path_factory):
    box = start_sandbox(tmp_path_factory.mktemp("state-autostop"), "--min-job-age", "2", "--static-nodes", "1")
    yield box
    stop_sandbox(box)  # asserts that no process of the sandbox is left, the autostop timer included


def log_path(box) -> Path:
    return box.state / "sandbox" / "log" / "clustertools-autostop.log"


def local_status(box) -> dict:
    return json.loads(
        (box.state / "sandbox" / "node" / "opt" / "clustertools" / "autostop" / "status.json").read_text()
    )


def describe(box) -> tuple[str, dict]:
    """`describe` as a user runs it: the text line, and --json's autostop fields."""
    text = box.cli("describe", "-c", "sandbox")
    as_json = box.cli("describe", "-c", "sandbox", "--json")
    assert text.returncode == 0 and as_json.returncode == 0, err(text) + err(as_json)
    line = next(row for row in out(text).splitlines() if row.startswith("autostop:"))
    return line, json.loads(out(as_json))["autostop"]


def decisions(box, since: float, until: float) -> list[str]:
    """The log's messages written between two moments."""
    found = []
    for line in log_path(box).read_text().splitlines():
        when = datetime.strptime(line[:20], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
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
    from cluster_tools.services.remote.cluster_shell import connect

    with connect(box.record) as conn:
        shell = conn.open_shell(None, pty=("xterm", 80, 24))
        hold(box, "1 SSH session open")
        line, status = describe(box)
        assert line == "autostop: busy: 1 SSH session open (1 min limit, action sandbox)", line
        assert status["ssh_sessions"] == 1 and status["decision"] == "busy" and status["timer_running"] is True
        shell.close()

    # (c) An upload marker (under the user's home, named by its job and this sandbox's slurm.conf, as the
    # login user writes it) whose job is not in squeue: its task's node died mid-upload. Ignored, and logged.
    run_dir = f"/home/{box.record.user}/.clustertools/runs/autostop-test-{uuid.uuid4().hex[:8]}"

    def mark(job: str) -> None:
        marked = box.cli(
            "ssh",
            "--",
            "sh",
            "-c",
            f"mkdir -p {run_dir}/uploading && "
            f"echo job={job} slurm_conf=/opt/slurm/etc/slurm.conf > {run_dir}/uploading/sub-01.1",
        )
        assert marked.returncode == 0, err(marked)

    mark("999999_0")
    deadline = time.monotonic() + 15
    while local_status(box)["busy"]["stale_uploads"] != 1:
        assert time.monotonic() < deadline, f"autostop did not judge the marker: {local_status(box)}"
        time.sleep(0.5)
    assert local_status(box)["busy"]["uploads"] == 0 and "upload" not in " ".join(local_status(box)["reasons"])
    assert "1 upload marker ignored (job finished or not in squeue)" in log_path(box).read_text()
    assert box.cli("ssh", "--", "rm", "-r", run_dir).returncode == 0  # (each check would log it again)

    # (a) A running task keeps it up; while an upload marker of its job is there, that is said too.
    project = make_project(box, tmp_path, "idle")
    run_id = submit(box, project, str(write_subjects(project, ["sub-01"])), "--command", f"sleep {3 * HOLD}")["run"]
    hold(box, "1 job running", seconds=HOLD)
    listed = box.cli("ssh", "--", "squeue", "-h", "-r", "-t", "RUNNING", "-o", "%i")
    job = out(listed).strip()
    assert re.fullmatch(r"[0-9]+_[0-9]+", job), out(listed)  # as the wrapper writes it: ARRAY_JOB_ID_ARRAY_TASK_ID
    mark(job)
    try:
        hold(box, "1 upload pending", seconds=HOLD / 2)
    finally:
        assert box.cli("ssh", "--", "rm", "-r", run_dir).returncode == 0

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


def list_state(box) -> tuple[str, str | None]:
    listed = next(c for c in json.loads(out(box.cli("list", "--json"))) if c["name"] == "sandbox")
    return listed["state"], listed["state_detail"]


def test_after_autostop_submit_says_stopped_and_start_brings_it_back(box, tmp_path):
    """Issue 17, item 1 on the sandbox. Runs after the test above, which leaves the autostop fired."""
    partitions = box.cli("ssh", "--", "sinfo", "-h", "-e", "-o", "%P|%c|%m|%G|%a")
    assert out(partitions).strip().endswith("|inactive"), "the test above leaves the sandbox stopped: " + out(
        partitions
    )
    project = make_project(box, tmp_path, "again")
    subjects = write_subjects(project, ["sub-1"])
    refused = box.cli("submit", str(subjects), "--command", "true", cwd=project)
    lines = err(refused).strip().splitlines()
    assert refused.returncode == 1 and len(lines) == 1, err(refused)
    assert lines[0] == (
        "Error: nothing was submitted: cluster sandbox is stopped (its partition compute is INACTIVE, "
        "as autostop leaves an idle cluster) (hint: start it: clustertools start -c sandbox, then "
        "submit again)"
    ), lines[0]
    described = box.cli("describe", "-c", "sandbox")
    assert "stopped: it takes no new job (hint: `clustertools start -c sandbox`)" in out(described), out(described)
    assert json.loads(out(box.cli("describe", "-c", "sandbox", "--json")))["stopped"] is True
    assert list_state(box) == ("stopped", "its autostop stopped it: `clustertools start -c sandbox`")
    started = box.cli("start", "-c", "sandbox", "--json")
    assert started.returncode == 0, err(started)
    assert json.loads(out(started)) == {
        "cluster": "sandbox",
        "started": ["compute"],
        "autostop_minutes": 1,
        "host": None,
    }
    assert out(box.cli("ssh", "--", "sinfo", "-h", "-o", "%P %a")).split() == ["compute*", "up"]
    assert "autostop: " in describe(box)[0] and describe(box)[1]["decision"] in ("armed", "idle", "busy")
    assert json.loads(out(box.cli("describe", "-c", "sandbox", "--json")))["stopped"] is False
    assert list_state(box) == ("running", None)
    run_id = submit(box, project, str(subjects), "--command", "true", "--start")["run"]  # the same submit goes
    # through (--start finds nothing to start now)
    assert wait_for_run(box, project, run_id)["counts"]["SUCCEEDED"] == 1
    again = box.cli("start", "-c", "sandbox")
    assert again.returncode == 0 and out(again).strip() == "sandbox is not stopped: nothing to start", out(again)

"""A sandbox of its own, one daemon killed at a time: `sandbox up` restarts only that one, on the same
ports, with the queue and the S3 objects kept (a lost static node is replaced, as clustermgtd does);
`sandbox down` says what it cancels, and status then shows the run's pending subjects CANCELLED, not MISSING."""

from __future__ import annotations

import json
import os
import signal
import time

from cluster_tools.transport.s3 import S3Target, make_s3_client
from tests.conftest import start_sandbox, stop_sandbox
from tests.helpers import err, out, sandbox_admin

QUEUED = 2000


def test_up_restarts_only_the_dead_daemon_and_down_says_what_it_cancels(tmp_path):
    state = tmp_path / "state"
    box = start_sandbox(state, "--nodes", "1", "--static-nodes", "1")
    try:
        _drain(box)  # nothing may start: every task stays pending through the restarts
        run_id = _submit_run(box, tmp_path)
        for _ in range(QUEUED // 1000):  # MaxArraySize 1001
            held = box.cli("ssh", "--", "sbatch", "-o", "/dev/null", "--array=0-999", "--wrap", "true")
            assert held.returncode == 0, err(held)
        s3 = make_s3_client(S3Target(region="us-east-1", endpoint_url=box.status["s3_endpoint_url"], sandbox=True))
        s3.put_object(Bucket="clustertools-sandbox", Key="kept/object.txt", Body=b"still here")
        before = _status(box)
        _wait_until_saved(state / "sandbox" / "slurm" / "state" / "job_state")

        _kill_node_slurmd(state)
        again = box.cli("sandbox", "up", "--json")
        assert again.returncode == 0 and "static node(s) compute-st-compute-1 lost: booting replacements" in err(again)
        assert _queued(box) == QUEUED + 3

        for victim in ("slurmctld", "munged", "sshd", "head"):
            _kill(before, victim)
            again = box.cli("sandbox", "up", "--json")
            assert again.returncode == 0, err(again)
            after = json.loads(out(again))
            assert after["restarted"] == [victim] and f"restarted {victim}; the rest kept running" in err(again)
            assert "cancel" not in err(again).lower()
            assert (after["ssh"], after["s3_endpoint_url"]) == (before["ssh"], before["s3_endpoint_url"])
            assert _queued(box) == QUEUED + 3, victim
            assert s3.get_object(Bucket="clustertools-sandbox", Key="kept/object.txt")["Body"].read() == b"still here"
            before = after

        _multipart(s3, "kept/big.bin", 2)
        s3.put_object(Bucket="clustertools-sandbox", Key="gone.txt", Body=b"x")
        s3.delete_object(Bucket="clustertools-sandbox", Key="gone.txt")
        _kill(before, "s3")  # moto keeps objects in memory: they come back from its request recording
        again = box.cli("sandbox", "up", "--json")
        assert again.returncode == 0 and json.loads(out(again))["restarted"] == ["s3"], err(again)
        assert "bringing the S3 endpoint's objects back" in err(again) and "warning" not in err(again)
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket="clustertools-sandbox")["Contents"]]
        assert keys == ["kept/big.bin", "kept/object.txt"]
        assert s3.get_object(Bucket="clustertools-sandbox", Key="kept/big.bin")["Body"].read() == _parts(2)
        assert s3.get_object(Bucket="clustertools-sandbox", Key="kept/object.txt")["Body"].read() == b"still here"
        assert _queued(box) == QUEUED + 3

        down = box.cli("sandbox", "down")
        assert down.returncode == 0, err(down)
        assert f"cancelling {QUEUED + 3} queued or running task(s): 3 of run {run_id}; {QUEUED} other job(s)" in err(
            down
        )
        assert box.cli("sandbox", "up").returncode == 0
        status = box.cli("status", run_id, "--json")
        assert status.returncode == 0, err(status)
        counts = json.loads(out(status))["counts"]
        assert counts["CANCELLED"] == 3 and counts["MISSING"] == 0, counts
    finally:
        stop_sandbox(box)


def _drain(box) -> None:
    drained = sandbox_admin(
        box.state, "scontrol", "update", "nodename=compute-st-compute-1", "state=drain", "reason=restart-test"
    )
    assert drained.returncode == 0, drained.stderr


def _kill_node_slurmd(state) -> None:
    """The static node's slurmd dies, as when its instance is lost."""
    pid = int((state / "sandbox" / "run" / "slurmd-compute-st-compute-1.pid").read_text().strip())
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and os.path.exists(f"/proc/{pid}"):
        time.sleep(0.1)


def _submit_run(box, tmp_path) -> str:
    project = tmp_path / "proj"
    assert box.cli("init", str(project), "--name", "restart").returncode == 0
    (project / "s.txt").write_text("r-1\nr-2\nr-3\n")
    submitted = box.cli("submit", str(project / "s.txt"), "--command", "true", "--json", cwd=project)
    assert submitted.returncode == 0, err(submitted)
    return json.loads(out(submitted))["run"]


def _status(box) -> dict:
    return json.loads(out(box.cli("sandbox", "status", "--json")))


def _queued(box) -> int:
    listing = box.cli("ssh", "--", "squeue", "-h", "-r", "-t", "PD", "-o", "%i")
    assert listing.returncode == 0, err(listing)
    return len(out(listing).split())


def _kill(status: dict, name: str) -> None:
    pid = next(c["pid"] for c in status["components"] if c["name"] == name)
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not _stopped(status, name):
        time.sleep(0.1)


def _stopped(status: dict, name: str) -> bool:
    from cluster_tools.transport.local_processes import ProcessRecord, is_running

    state = json.loads((status_root(status) / "sandbox.json").read_text())
    record = next(p for p in state["processes"] if p["name"] == name)
    return not is_running(ProcessRecord.from_json(record))


def status_root(status: dict):
    from pathlib import Path

    return Path(status["root"])


def _wait_until_saved(job_state) -> None:
    """slurmctld saves its queue a few seconds after a change: killed before, it would forget the jobs."""
    submitted = time.time()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (job_state.exists() and job_state.stat().st_mtime > submitted + 0.5):
        time.sleep(0.2)


def _parts(count: int) -> bytes:
    return b"".join(bytes([65 + i]) * (5 << 20) for i in range(count))


def _multipart(s3, key: str, count: int) -> None:
    """An upload in parts, as `aws s3 cp` sends any file over 8 MB."""
    upload = s3.create_multipart_upload(Bucket="clustertools-sandbox", Key=key)["UploadId"]
    parts = []
    for number in range(1, count + 1):
        body = bytes([64 + number]) * (5 << 20)
        etag = s3.upload_part(Bucket="clustertools-sandbox", Key=key, UploadId=upload, PartNumber=number, Body=body)[
            "ETag"
        ]
        parts.append({"PartNumber": number, "ETag": etag})
    s3.complete_multipart_upload(
        Bucket="clustertools-sandbox", Key=key, UploadId=upload, MultipartUpload={"Parts": parts}
    )


def test_a_run_whose_outputs_went_with_a_sandbox_taken_down_says_so(tmp_path):
    """The sandbox's S3 keeps objects while it runs, not across `sandbox down`: results of a run from before
    say exactly that, in one line, instead of an empty listing or a refused connection."""
    from tests.integration.run_helpers import make_project, submit, wait_for_run, write_subjects

    box = start_sandbox(tmp_path / "state", "--nodes", "1", "--static-nodes", "1")
    try:
        project = make_project(box, tmp_path, "gone")
        run_id = submit(box, project, str(write_subjects(project, ["g-1"])), "--command", 'echo x > "$OUTPUT_DIR/x"')[
            "run"
        ]
        assert wait_for_run(box, project, run_id)["counts"]["SUCCEEDED"] == 1
        assert box.cli("results", "ls", run_id, cwd=project).returncode == 0
        assert box.cli("sandbox", "down").returncode == 0
        stopped = box.cli("results", "ls", run_id, cwd=project)
        assert stopped.returncode == 1 and "and the sandbox is not running" in err(stopped), err(stopped)
        assert len(err(stopped).strip().splitlines()) == 1
        box = start_sandbox(tmp_path / "state", "--nodes", "1", "--static-nodes", "1")
        gone = box.cli("results", "get", run_id, "-o", str(tmp_path / "got"), cwd=project)
        assert gone.returncode == 1 and "wrote its outputs to an earlier sandbox's S3" in err(gone), err(gone)
        assert "--new-run" in err(gone) and len(err(gone).strip().splitlines()) == 1
    finally:
        stop_sandbox(box)

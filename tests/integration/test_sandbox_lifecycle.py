"""A sandbox of its own: options reach slurm.conf, the project's bucket is made, and `down` leaves
nothing running, jobs included."""

from __future__ import annotations

import json
import time

from cluster_tools.services.sandbox.sandbox_lifecycle import MARKER_ENV
from cluster_tools.transport.local_processes import ProcessRecord, find_marked, is_running
from tests.conftest import start_sandbox, stop_sandbox
from tests.helpers import err, out, run_cli


def test_up_with_options_then_down_leaves_nothing_running(tmp_path):
    project = tmp_path / "proj"
    state = tmp_path / "state"
    assert run_cli("init", str(project), "--output", "s3://my-out-bucket/x", state=state).returncode == 0
    box = start_sandbox(state, "--max-array-size", "11", "--min-job-age", "5", "--static-nodes", "1")
    try:
        assert "my-out-bucket" not in box.status["buckets"]  # started outside the project: default only
        config = out(box.cli("ssh", "--", "scontrol", "show", "config"))
        assert "MaxArraySize            = 11" in config and "MinJobAge               = 5 sec" in config
        too_big = box.cli("ssh", "--", "sbatch", "--array=0-11", "--wrap", "true")
        assert too_big.returncode != 0 and "Invalid job array specification" in err(too_big)
        for extra in ([], ["--export=NONE"]):
            job = box.cli("ssh", "--", "sbatch", *extra, "-o", "/dev/null", "--wrap", "sleep 300")
            assert job.returncode == 0, err(job)
        assert wait_until(lambda: len(out(box.cli("ssh", "--", "squeue", "-h", "-t", "R", "-o", "%i")).split()) == 2), (
            out(box.cli("ssh", "--", "squeue"))
        )
        records = [
            ProcessRecord.from_json(p)
            for p in json.loads((state / "sandbox" / "sandbox.json").read_text())["processes"]
        ]
    finally:
        stop_sandbox(box)
    assert not any(is_running(r) for r in records)
    assert find_marked((MARKER_ENV, str(state / "sandbox"))) == []
    # Up again from inside the project: its output bucket is made too, and the keys are reused.
    again = run_cli("sandbox", "up", "--json", state=state, cwd=project)
    try:
        assert again.returncode == 0, err(again)
        assert "my-out-bucket" in json.loads(out(again))["buckets"]
    finally:
        assert run_cli("sandbox", "down", "--purge", state=state).returncode == 0
    assert not (state / "sandbox").exists() and not (state / "clusters" / "sandbox.json").exists()


def test_down_without_a_sandbox_is_a_no_op(tmp_path):
    result = run_cli("sandbox", "down", state=tmp_path / "state")
    assert result.returncode == 0 and "not running" in out(result)


def wait_until(condition, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


def test_down_refuses_while_subjects_run_and_names_them_then_force(tmp_path):
    state = tmp_path / "state"
    box = start_sandbox(state)
    try:
        project = tmp_path / "busy"
        assert box.cli("init", str(project), "--name", "busy").returncode == 0
        (project / "s.txt").write_text("busy-1\nbusy-2\nbusy-3\n")
        submitted = box.cli("submit", str(project / "s.txt"), "--command", "sleep 120", "--json", cwd=project)
        assert submitted.returncode == 0, err(submitted)
        refused = box.cli("down", "-c", "sandbox", cwd=project)
        assert refused.returncode == 1
        line = err(refused).strip()
        assert line.startswith("Error: sandbox still has work") and "busy-1, busy-2, busy-3" in line
        assert json.loads(out(box.cli("sandbox", "status", "--json")))["running"]
        forced = box.cli("down", "-c", "sandbox", "--force", cwd=project)
        assert forced.returncode == 0, err(forced)
        assert "--force: left unfinished" in err(forced)
        assert not json.loads(out(box.cli("sandbox", "status", "--json")))["running"]
    finally:
        stop_sandbox(box)


def test_down_never_deletes_a_cluster_it_did_not_create(tmp_path):
    from cluster_tools.model.clusters.cluster_record import ClusterRecord
    from cluster_tools.store.cluster_store import save_cluster
    from cluster_tools.store.state_dir import StateDir

    state = StateDir(tmp_path / "state")
    save_cluster(
        state, ClusterRecord(name="uni", host="login.example.edu", user="u", known_hosts=state.known_hosts("uni"))
    )
    result = run_cli("down", "-c", "uni", state=state.root)
    assert result.returncode == 1 and "never deletes it" in err(result) and "forget uni" in err(result)

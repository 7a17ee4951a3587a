"""`sandbox interrupt NODE` takes a node away mid-task as a spot reclaim does: Slurm requeues its jobs
(NODE_FAIL), and every subject still ends SUCCEEDED exactly once, with one set of outputs in S3; status
and the report say it was requeued."""

from __future__ import annotations

import json
import time
from pathlib import Path

from cluster_tools.transport.s3 import S3Target, make_s3_client
from tests.conftest import start_sandbox, stop_sandbox
from tests.helpers import err, out
from tests.integration.run_helpers import make_project, status, submit, wait_for_run, write_subjects

COMMAND = 'sleep 6; echo "$SUBJECT $SLURM_RESTART_COUNT" > "$OUTPUT_DIR/result.txt"'


def test_an_interrupted_node_s_tasks_are_requeued_and_each_subject_succeeds_once(tmp_path: Path) -> None:
    # One static node of 4 CPUs takes the three tasks; a dynamic node stands by for the requeued ones.
    box = start_sandbox(
        tmp_path / "state", "--requeue-delay", "5", "--nodes", "2", "--static-nodes", "1", "--cpus-per-node", "4"
    )
    try:
        project = make_project(box, tmp_path, "spot")
        run = submit(box, project, str(write_subjects(project, ["s-1", "s-2", "s-3"])), "--command", COMMAND)["run"]
        _wait_all_running(box, project, run)
        node = "compute-st-compute-1"
        interrupted = box.cli("sandbox", "interrupt", node, "--json")
        assert interrupted.returncode == 0, err(interrupted)
        assert len(json.loads(out(interrupted))["jobs"]) == 3
        assert f"{node} is DOWN" in err(interrupted) and f"a new instance takes {node}'s place" in err(interrupted)
        final = wait_for_run(box, project, run, timeout=180)
        assert final["counts"]["SUCCEEDED"] == 3, final["counts"]
        assert {s["subject"]: s["restarts"] for s in final["subjects"]} == {"s-1": 1, "s-2": 1, "s-3": 1}
        table = box.cli("status", run, "--all", cwd=project)
        assert out(table).count("requeued 1x") == 3, out(table)
        report = box.cli("report", run, "--text", cwd=project)
        assert report.returncode == 0 and "interrupted: 3 subject(s) requeued after their node was lost" in out(
            report
        ), out(report) + err(report)
        s3 = make_s3_client(S3Target(region="us-east-1", endpoint_url=box.status["s3_endpoint_url"], sandbox=True))
        listed = s3.list_objects_v2(Bucket="clustertools-sandbox", Prefix="")["Contents"]
        outputs = sorted(o["Key"] for o in listed if o["Key"].endswith("/result.txt") and f"/{run}/" in f"/{o['Key']}")
        assert len(outputs) == 3, outputs
        for key in outputs:
            body = s3.get_object(Bucket="clustertools-sandbox", Key=key)["Body"].read().decode().split()
            assert body[1] == "1", (key, body)  # written by the run after the requeue, once
    finally:
        stop_sandbox(box)


def _wait_all_running(box, project: Path, run: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if status(box, project, run)["counts"]["RUNNING"] == 3:
            time.sleep(1)  # each task's command has started
            return
        time.sleep(0.3)
    raise AssertionError("the three tasks did not all start")


def test_a_replaced_node_is_a_new_machine_with_a_new_host_key(tmp_path: Path) -> None:
    """Each node runs its own sshd at its own address, with a host key made at boot: `ssh --node` lands on
    that node, and after the node is replaced its new key is refused, with the hint, as on ParallelCluster."""
    box = start_sandbox(tmp_path / "state", "--nodes", "1", "--static-nodes", "1")
    node = "compute-st-compute-1"
    try:
        first = box.cli("ssh", "--node", node, "--", "hostname")
        assert first.returncode == 0 and out(first).strip() == node, err(first)
        assert f"first contact with [{node}]:{box.record.port}" in err(first)
        again = box.cli("ssh", "--node", node, "--", "hostname")
        assert again.returncode == 0 and "first contact" not in err(again)
        assert box.cli("sandbox", "interrupt", node).returncode == 0
        refused = box.cli("ssh", "--node", node, "--", "hostname")
        lines = err(refused).strip().splitlines()
        assert refused.returncode == 1 and len(lines) == 1 and "has changed" in lines[0], lines
        assert "a compute node gets a new key when it is replaced" in lines[0] and "ssh-keygen -R" in lines[0]
    finally:
        stop_sandbox(box)

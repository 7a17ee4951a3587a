"""`sandbox up` after a daemon died, `sandbox down` with jobs queued: the pure and local parts."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from cluster_tools.errors import SandboxError
from cluster_tools.model.runs.run_status import merge_status
from cluster_tools.model.runs.status_reply import parse_records
from cluster_tools.services.sandbox import sandbox_daemons as daemons
from cluster_tools.services.sandbox import sandbox_nodes
from cluster_tools.services.sandbox.sandbox_daemons import ports_for_restart, ports_for_start
from cluster_tools.services.sandbox.sandbox_files import free_ports
from cluster_tools.services.sandbox.sandbox_queue import describe_cancellation, record_pending_as_cancelled
from cluster_tools.slurm.queue import parse_squeue
from cluster_tools.store.run_store import save_run
from cluster_tools.store.state_dir import StateDir
from tests.unit.run_fixtures import make_run

# `squeue -h -r -o '%F|%K|%T|%k'` on the sandbox: a run's three tasks (one running) and a job of someone's own
QUEUE = """12|0|RUNNING|None|ct:demo-1:a1:c0
12|1|PENDING|Priority|ct:demo-1:a1:c0
12|2|PENDING|Priority|ct:demo-1:a1:c0
14|0|PENDING|
"""


def test_down_says_how_many_tasks_of_which_runs_it_cancels():
    lines = QUEUE.splitlines()
    line = describe_cancellation(lines, parse_squeue(QUEUE))
    assert line == (
        "cancelling 4 queued or running task(s): 3 of run demo-1; 1 other job(s) "
        "(`clustertools status` shows them CANCELLED)"
    )


def test_pending_tasks_get_a_cancelled_record_and_status_says_cancelled(tmp_path):
    state = StateDir(tmp_path / "state")
    run = make_run().model_copy(update={"remote_dir": str(tmp_path / "runs" / "demo-1")})
    save_run(state, run)
    (tmp_path / "runs" / "demo-1").mkdir(parents=True)
    assert record_pending_as_cancelled(state, parse_squeue(QUEUE), progress=print) == 2
    new = sorted((tmp_path / "runs" / "demo-1" / "records" / "new").iterdir())
    assert [p.name for p in new] == ["sub-02.1.CANCELLED.json", "sub-03.1.CANCELLED.json"]
    records = parse_records("".join(p.read_text() for p in new))
    status = merge_status(run, records, [])  # the queue is empty after the scancel
    assert [s.state for s in status.subjects] == [
        "MISSING",
        "CANCELLED",
        "CANCELLED",
    ]  # sub-01 ran: its wrapper records itself


def test_cancelled_records_skip_runs_of_other_clusters_and_unknown_runs(tmp_path):
    state = StateDir(tmp_path / "state")
    save_run(state, make_run().model_copy(update={"remote_dir": str(tmp_path / "r"), "cluster": "hpc"}))
    assert record_pending_as_cancelled(state, parse_squeue(QUEUE.replace("demo-1", "other-9") + QUEUE), print) == 0
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    "state, responds",
    [
        ("idle", True),
        ("mixed", True),
        ("allocated", True),
        ("drained", True),
        ("draining", True),
        ("idle*", False),
        ("down*", False),
        ("unknown", False),
        (None, False),
        ("", False),
        ("idle~", False),
        ("idle#", False),
        ("idle%", False),  # powered down, powering up, powering down
    ],
)
def test_a_node_is_up_once_its_slurmd_answers(state, responds):
    assert sandbox_nodes.responds(state) is responds


def test_lost_jobs_are_read_from_the_new_part_of_slurmctlds_log(tmp_path):
    log = tmp_path / "slurmctld.log"
    log.write_text("[t] Purged files for defunct batch JobId=1\n")
    offset = log.stat().st_size
    with open(log, "a") as handle:
        handle.write(
            "[t] Recovered state of 1 nodes\n[t] Purged files for defunct batch JobId=7\n"
            "[t] Purged files for defunct batch JobId=8\n"
        )
    assert daemons.lost_jobs(log, offset) == ["7", "8"]
    assert daemons.lost_jobs(tmp_path / "absent.log", 0) == []


def test_a_restart_keeps_the_ports_and_refuses_when_one_is_taken():
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        ports = dict(zip(("slurmctld", "ssh"), free_ports(2), strict=True), s3=taken)
        saved = {"ports": ports}
        assert ports_for_restart(saved, ("slurmctld", "sshd")) == ports
        with pytest.raises(SandboxError, match=rf"cannot restart s3 \(127.0.0.1:{taken}\): another program holds"):
            ports_for_restart(saved, ("s3",))


def test_a_fresh_start_reuses_the_last_ports_when_free_and_says_when_not():
    notes: list[str] = []
    first = ports_for_start({}, 2, notes.append)
    assert sorted(first) == sorted([*daemons.PORT_NAMES, "nodes"]) and len(first["nodes"]) == 2 and not notes
    daemon_ports = {name: first[name] for name in daemons.PORT_NAMES}
    again = ports_for_start({"ports": daemon_ports}, 2, notes.append)
    assert {name: again[name] for name in daemons.PORT_NAMES} == daemon_ports and not notes
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", first["s3"]))
        holder.listen()
        other = ports_for_start({"ports": daemon_ports}, 2, notes.append)
    assert other["s3"] != first["s3"] and "previous ports are taken" in notes[0]


def test_upload_ids_of_the_dead_endpoint_map_to_the_new_ones():
    from cluster_tools.services.sandbox.sandbox_s3 import _map_upload_id

    new_ids: dict[str, str] = {}
    started = {"/b/big": "NEW1"}
    assert _map_upload_id("/b/big", "uploadId=OLD1&partNumber=2", new_ids, started) == "uploadId=NEW1&partNumber=2"
    assert new_ids == {"OLD1": "NEW1"}
    assert _map_upload_id("/b/big", "uploadId=OLD1", new_ids, {"/b/big": "NEW2"}) == "uploadId=NEW1"
    assert _map_upload_id("/b/x", "uploads", new_ids, started) == "uploads"


def test_a_recording_set_aside_by_a_failed_restart_is_kept_and_extended(tmp_path):
    from cluster_tools.services.sandbox.sandbox_s3 import forget, set_aside

    recording = tmp_path / "s3" / "requests.jsonl"
    assert set_aside(recording) is None
    recording.parent.mkdir()
    recording.write_text("one\n")
    aside = set_aside(recording)
    assert aside is not None and aside.read_text() == "one\n" and not recording.exists()
    recording.write_text("two\n")  # the restart failed after its endpoint took a request
    assert set_aside(recording) == aside and aside.read_text() == "one\ntwo\n"
    forget(recording)
    assert not aside.exists() and not recording.exists()


def test_a_run_dir_on_the_nodes_is_found_in_the_head_node_s_layers(tmp_path):
    from cluster_tools.render.sandbox_layout import SandboxPaths
    from cluster_tools.services.sandbox.sandbox_files import node_path

    paths = SandboxPaths(tmp_path / "sb", runtime=tmp_path / "rt")
    assert (
        node_path(paths, "/home/ec2-user/.clustertools/runs/r")
        == tmp_path / "sb/node/home/ec2-user/.clustertools/runs/r"
    )
    assert node_path(paths, "/opt/parallelcluster/shared") == tmp_path / "sb/node/opt/parallelcluster/shared"
    assert node_path(paths, "/homeless/x") == Path("/homeless/x") and node_path(paths, "/tmp/x") == Path("/tmp/x")

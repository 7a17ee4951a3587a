"""A sandbox with MaxArraySize 11: runs are split into arrays, and a submit cut mid-way then run
again submits every subject exactly once."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest

from cluster_tools.errors import TransportError
from cluster_tools.model.project.project_config import load_project
from cluster_tools.model.runs.subjects import read_subject_file
from cluster_tools.services.remote.cluster_shell import connect
from cluster_tools.services.runs.run_prepare import job_spec, prepare_run
from cluster_tools.services.runs.submit import submit_attempt
from cluster_tools.store.cluster_store import load_cluster
from cluster_tools.store.state_dir import StateDir
from tests.conftest import start_sandbox, stop_sandbox
from tests.helpers import err, out
from tests.integration.run_helpers import make_project, states, submit, wait_for_run, write_subjects


@pytest.fixture(scope="module")
def small_arrays(tmp_path_factory):
    # One static node that holds every task at once: the arrays, not nodes booting, are what is tested here.
    box = start_sandbox(
        tmp_path_factory.mktemp("state11"),
        "--max-array-size",
        "11",
        "--nodes",
        "1",
        "--static-nodes",
        "1",
        "--cpus-per-node",
        "16",
    )
    yield box
    stop_sandbox(box)


def records_on_head_node(box, run_id: str) -> list[dict]:
    text = out(box.cli("ssh", "--", "sh", "-c", f'cat "$HOME/.clustertools/runs/{run_id}/records/all.jsonl"'))
    return [json.loads(line) for line in text.splitlines()]


def assert_each_subject_ran_once(box, project, run_id: str, ids: list[str]) -> None:
    final = wait_for_run(box, project, run_id)
    assert states(final) == {i: ("SUCCEEDED", 0, 1) for i in ids}
    starts = Counter(r["subject"] for r in records_on_head_node(box, run_id) if r["state"] == "RUNNING")
    assert starts == Counter(ids), "a subject ran more (or less) than once"
    runs = json.loads(out(box.cli("runs", "--json", cwd=project)))
    assert [r["run"] for r in runs].count(run_id) == 1


def test_35_subjects_become_4_arrays_and_all_succeed(small_arrays, tmp_path):
    project = make_project(small_arrays, tmp_path, "split")
    ids = [f"s{n:02d}" for n in range(35)]
    result = submit(small_arrays, project, str(write_subjects(project, ids)), "--command", "true")
    assert [a["tasks"] for a in result["arrays"]] == [11, 11, 11, 2]
    assert len({a["job_id"] for a in result["arrays"]}) == 4
    assert_each_subject_ran_once(small_arrays, project, result["run"], ids)


class DropAfterSubmitStarts:
    """The real connection, dropped right after the submit command has left: the worst moment."""

    def __init__(self, record):
        self.conn = connect(record)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.conn.close()

    def __getattr__(self, name):
        return getattr(self.conn, name)

    def run(self, argv, **kwargs):
        if isinstance(argv, str) and "submit.sh" in argv:
            channel = self.conn._client.get_transport().open_session()
            channel.exec_command(argv)
            time.sleep(0.05)
            self.conn.close()
            raise TransportError("the connection dropped")
        return self.conn.run(argv, **kwargs)


def test_a_connection_dropped_mid_submit_then_submit_again_runs_each_subject_once(small_arrays, tmp_path):
    project = make_project(small_arrays, tmp_path, "cut")
    ids = [f"c{n:02d}" for n in range(30)]
    subjects_file = write_subjects(project, ids)
    state = StateDir(small_arrays.state)
    cluster = load_cluster(state, "sandbox")
    spec = load_project(project / "clustertools.yaml")
    run, _ = prepare_run(
        state, spec, cluster, read_subject_file(subjects_file), job_spec(spec, {"command": "true"}), None
    )
    with pytest.raises(TransportError):
        submit_attempt(state, run, cluster, progress=lambda _: None, connect=DropAfterSubmitStarts)
    again = small_arrays.cli("submit", str(subjects_file), "--command", "true", "--json", cwd=project)
    assert again.returncode == 0, err(again)
    assert "resuming run" in err(again)
    result = json.loads(out(again))
    assert result["run"] == run.run_id and len(result["arrays"]) == 3
    assert_each_subject_ran_once(small_arrays, project, run.run_id, ids)


@pytest.mark.parametrize("cut_after", [0.4, 0.9])
def test_a_submit_killed_at_any_moment_then_run_again_runs_each_subject_once(small_arrays, tmp_path, cut_after):
    project = make_project(small_arrays, tmp_path, f"kill{int(cut_after * 10)}")
    ids = [f"k{n:02d}" for n in range(25)]
    subjects_file = write_subjects(project, ids)
    env = {"CLUSTERTOOLS_STATE_DIR": str(small_arrays.state)}
    import os

    proc = subprocess.Popen(
        [sys.executable, "-m", "cluster_tools", "submit", str(subjects_file), "--command", "true"],
        cwd=project,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    time.sleep(cut_after)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    again = small_arrays.cli("submit", str(subjects_file), "--command", "true", "--json", cwd=project)
    if again.returncode == 0:  # killed before every array was submitted: this finished it
        run_id = json.loads(out(again))["run"]
    else:  # killed after: the run is named, not started again
        runs = json.loads(out(small_arrays.cli("runs", "--json", cwd=project)))
        assert len(runs) == 1, err(again)
        run_id = runs[0]["run"]
        assert f"Error: run {run_id} with exactly these subjects and this spec was submitted at" in err(again)
    assert_each_subject_ran_once(small_arrays, project, run_id, ids)

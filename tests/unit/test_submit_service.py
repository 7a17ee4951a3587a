"""The submit service over a scripted head node: a refused submit is not listed as a run (yet the same
submit finds it again), an sbatch without answer is reported unknown, and a whole run is never
started twice by accident."""

from __future__ import annotations

import json

import pytest

from cluster_tools.errors import ClusterToolsError, TransportError
from cluster_tools.model.clusters.cluster_record import ClusterRecord
from cluster_tools.model.project.project_config import load_project
from cluster_tools.model.runs.subjects import SubjectList
from cluster_tools.services.project.project_init import init_project
from cluster_tools.services.runs.run_prepare import job_spec, prepare_run
from cluster_tools.services.runs.submit import submit_attempt
from cluster_tools.store.run_store import list_runs, save_run
from cluster_tools.store.state_dir import StateDir
from cluster_tools.transport.ssh import RemoteResult
from tests.helpers import out, run_cli

CLUSTER = ClusterRecord(name="uni", host="login.example.edu", user="alice", known_hosts="/nonexistent")


class ScriptedHeadNode:
    """Answers the probe with MaxJobCount and the queue's size, and submit.sh with a fixed output (or,
    with ``submit_exit=None``, a dropped connection)."""

    def __init__(self, *, max_job_count=10000, queued=0, submit_output="chunk 0 4242 submitted\n", submit_exit=0):
        self.max_job_count, self.queued = max_job_count, queued
        self.submit_output, self.submit_exit = submit_output, submit_exit
        self.commands: list[str] = []

    def __call__(self, cluster):
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def run(self, argv, **kwargs):
        command = argv if isinstance(argv, str) else " ".join(argv)
        self.commands.append(command)
        if "scontrol show config" in command:
            text = (
                f"/home/alice\nMaxArraySize = 1001\nMaxJobCount = {self.max_job_count}\n@@clustertools-probe\n"
                f"{self.queued}\n@@clustertools-probe\ncompute*|8|15000|(null)\n"
            )
            return RemoteResult(command, 0, text.encode(), b"")
        if "submit.sh" in command and self.submit_exit is None:
            raise TransportError("the connection dropped")
        if "submit.sh" in command:
            return RemoteResult(command, self.submit_exit, self.submit_output.encode(), b"")
        return RemoteResult(command, 0, b"", b"")

    def put_files(self, files):
        return None


@pytest.fixture
def setup(tmp_path):
    state = StateDir(tmp_path / "state")
    init_project(tmp_path / "p", name="p", cluster="uni", output="s3://bucket-1/p", force=False)
    project = load_project(tmp_path / "p" / "clustertools.yaml")
    subjects = SubjectList(ids=("sub-01", "sub-02"))

    def prepare(**kwargs):
        return prepare_run(state, project, CLUSTER, subjects, job_spec(project, {"command": "true"}), None, **kwargs)

    return state, prepare


def listed_runs(state: StateDir) -> list[str]:
    return [r["run"] for r in json.loads(out(run_cli("runs", "--json", state=state.root)))]


@pytest.mark.parametrize(
    "head_node",
    [
        ScriptedHeadNode(max_job_count=10, queued=9),  # refused before sending: no MaxJobCount headroom
        ScriptedHeadNode(submit_output="chunk 0 refused\n", submit_exit=1),  # sbatch said no
    ],
    ids=["max-job-count", "sbatch-refused"],
)
def test_a_refused_submit_is_not_listed_but_the_same_submit_finds_it_again(setup, head_node):
    state, prepare = setup
    run, resumed = prepare()
    with pytest.raises(ClusterToolsError):
        submit_attempt(state, run, CLUSTER, progress=lambda _: None, connect=head_node)
    assert [r.run_id for r in list_runs(state)] == [run.run_id]  # kept: a retry must find it
    assert listed_runs(state) == []
    again, resumed = prepare()
    assert again.run_id == run.run_id and resumed
    submit_attempt(state, again, CLUSTER, progress=lambda _: None, connect=ScriptedHeadNode())
    assert listed_runs(state) == [run.run_id]


def test_an_sbatch_without_answer_is_reported_unknown_and_the_run_is_listed(setup):
    state, prepare = setup
    run, _ = prepare()
    with pytest.raises(ClusterToolsError) as caught:
        submit_attempt(
            state,
            run,
            CLUSTER,
            progress=lambda _: None,
            connect=ScriptedHeadNode(submit_output="chunk 0 unknown\n", submit_exit=75),
        )
    text = caught.value.one_line()
    assert "unknown" in text and "running the same command again is safe" in text
    assert "stopped after 0" not in text and "nothing" not in text
    assert listed_runs(state) == [run.run_id]


def test_a_connection_lost_during_submit_sh_says_unknown_and_the_run_is_listed(setup):
    state, prepare = setup
    run, _ = prepare()
    with pytest.raises(TransportError) as caught:
        submit_attempt(state, run, CLUSTER, progress=lambda _: None, connect=ScriptedHeadNode(submit_exit=None))
    text = caught.value.one_line()
    assert "the connection dropped" in text and "unknown" in text and "running the same command again is safe" in text
    assert listed_runs(state) == [run.run_id]
    assert prepare() == (list_runs(state)[0], True)


def test_a_run_submitted_whole_is_not_started_again_without_new_run(setup):
    state, prepare = setup
    run, _ = prepare()
    submit_attempt(state, run, CLUSTER, progress=lambda _: None, connect=ScriptedHeadNode())
    with pytest.raises(ClusterToolsError) as caught:
        prepare()
    text = caught.value.one_line()
    assert f"run {run.run_id} with exactly these subjects and this spec was submitted at" in text
    assert f"clustertools status {run.run_id}" in text and "--new-run" in text
    other, resumed = prepare(new_run=True)
    assert other.run_id != run.run_id and not resumed
    save_run(state, other)  # an unfinished new run is resumed, even with --new-run: a retry never duplicates
    assert prepare(new_run=True) == (other, True)


def test_a_run_from_before_job_gpus_keeps_its_hash_so_its_rerun_is_still_found(setup):
    """job.gpus, job.container_args and job.workdir are new: a job without them hashes as it did before they existed
    (else a rerun of an old run would silently run every subject twice); one with GPUs is another run."""
    from cluster_tools.model.runs.run_record import spec_hash

    _, prepare = setup
    run, _ = prepare()
    before = {k: v for k, v in run.job.model_dump().items() if k not in ("gpus", "container_args", "workdir")}
    payload = {
        "job": before,
        "columns": [],
        "rows": [],
        "output": run.output,
        "input": "",
        "cluster": "uni",
        "name": "p",
    }
    assert run.spec_hash == spec_hash(["sub-01", "sub-02"], payload)

"""An sbatch whose array Slurm accepted but whose answer never came (slurmctld slow, sbatch timed out):
the submit resolves it or says its state is unknown, and running the same submit again, after the
job finished and squeue forgot it (MinJobAge), never runs a subject twice.

The slow controller is a PATH shim in front of the real sbatch, used by this test's submit alone
(the session's sandbox is shared): the real sbatch is called, its answer is dropped, and the shim
outlives submit.sh's sbatch timeout (made 2 s here)."""

from __future__ import annotations

import json
import shlex
import time
import uuid
from collections import Counter

from cluster_tools.errors import ClusterToolsError
from cluster_tools.model.project.project_config import load_project
from cluster_tools.model.runs.subjects import read_subject_file
from cluster_tools.services.remote.cluster_shell import connect
from cluster_tools.services.runs.run_prepare import job_spec, prepare_run
from cluster_tools.services.runs.submit import submit_attempt
from cluster_tools.store.cluster_store import load_cluster
from cluster_tools.store.state_dir import StateDir
from tests.helpers import err, out
from tests.integration.run_helpers import make_project, status, wait_for_run, write_subjects

# The array is queued at once; the answer is lost.
ANSWER_LOST = '"$REAL" "$@" >/dev/null 2>&1; sleep 30\n'
# The request reaches Slurm only after submit.sh gave up looking for it (a controller stalled ~25 s).
ACCEPTED_LATE = 'setsid bash -c \'sleep 25; exec "$0" "$@"\' "$REAL" "$@" </dev/null >/dev/null 2>&1 &\nsleep 30\n'


class SlowSbatch:
    """The real connection; submit.sh waits 2 s for sbatch, which is the shim for this submit only."""

    def __init__(self, record, shim_body: str):
        self.conn = connect(record)
        real = self.conn.run("command -v sbatch").check().text.strip()
        home = self.conn.run('echo "$HOME"').check().text.strip()
        self.shim_dir = f"{home}/.clustertools/test-shims/{uuid.uuid4().hex}"
        self.conn.run(["mkdir", "-p", self.shim_dir]).check()
        shim = f"#!/bin/bash\nREAL={shlex.quote(real)}\n{shim_body}"
        self.conn.put_files({f"{self.shim_dir}/sbatch": (shim.encode(), 0o755)})

    def __call__(self, record):
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def close(self):
        self.conn.run(["rm", "-rf", self.shim_dir])
        self.conn.close()

    def put_files(self, files):
        for path, (content, mode) in list(files.items()):
            if path.endswith("/submit.sh"):
                text = content.decode()
                assert text.count("timeout 120 sbatch") == 1
                files[path] = (text.replace("timeout 120 sbatch", "timeout 2 sbatch").encode(), mode)
        return self.conn.put_files(files)

    def run(self, argv, **kwargs):
        if isinstance(argv, str) and "setsid -w bash submit.sh" in argv:
            argv = argv.replace(
                "setsid -w bash submit.sh", f'PATH={shlex.quote(self.shim_dir)}:"$PATH" setsid -w bash submit.sh'
            )
        return self.conn.run(argv, **kwargs)


def first_submit(sandbox, project, subjects_file, shim_body: str):
    """The service as the CLI calls it, through the slow sbatch: (run, the error it raised or None)."""
    state = StateDir(sandbox.state)
    cluster = load_cluster(state, "sandbox")
    spec = load_project(project / "clustertools.yaml")
    run, _ = prepare_run(
        state, spec, cluster, read_subject_file(subjects_file), job_spec(spec, {"command": "true"}), None
    )
    slow = SlowSbatch(cluster, shim_body)
    try:
        submit_attempt(state, run, cluster, progress=lambda _: None, connect=slow)
        return run, None
    except ClusterToolsError as exc:
        return run, exc.one_line()
    finally:
        slow.close()


def runs_of_each_subject(sandbox, run_id: str) -> Counter:
    status_script = f".clustertools/runs/{run_id}/status.sh"
    text = out(sandbox.cli("ssh", "--", "bash", status_script))  # folds records/new into all.jsonl, then prints
    records = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    return Counter(r["subject"] for r in records if r["state"] == "RUNNING")


def wait_until_all_succeeded(sandbox, project, run_id: str, ids, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(s["state"] == "SUCCEEDED" for s in status(sandbox, project, run_id)["subjects"]):
            return
        time.sleep(1)
    raise AssertionError(f"run {run_id}: not every subject of {ids} succeeded in {timeout} s")


def submit_again_after_squeue_forgot(sandbox, project, subjects_file, run_id: str, timeout: float = 300):
    """MinJobAge is 10 s in the sandbox, but slurmctld purges about once a minute, later when loaded."""
    deadline = time.monotonic() + timeout
    while True:
        queue = sandbox.cli(
            "ssh", "-c", "sandbox", "--", "squeue", "-h", "-t", "all", f"--name=ct-{run_id}", "-o", "%i %T"
        )
        if queue.returncode == 0 and not out(queue).strip():
            break
        assert time.monotonic() < deadline, f"squeue still lists the run: {out(queue)}{err(queue)}"
        time.sleep(2)
    return sandbox.cli("submit", str(subjects_file), "--command", "true", "--json", cwd=project)


def test_an_accepted_array_whose_answer_was_lost_is_found_and_never_submitted_again(sandbox, tmp_path):
    project = make_project(sandbox, tmp_path, "lost-answer")
    ids = ["la-1", "la-2", "la-3"]
    subjects_file = write_subjects(project, ids)
    run, error = first_submit(sandbox, project, subjects_file, ANSWER_LOST)
    wait_until_all_succeeded(sandbox, project, run.run_id, ids)

    again = submit_again_after_squeue_forgot(sandbox, project, subjects_file, run.run_id)
    wait_for_run(sandbox, project, run.run_id)
    assert runs_of_each_subject(sandbox, run.run_id) == Counter(ids), "a subject ran more (or less) than once"
    assert error is None, error  # found in squeue by its comment: the first submit succeeded
    assert again.returncode == 1 and f"run {run.run_id} with exactly these subjects" in err(again)


def test_an_array_accepted_after_sbatch_gave_up_is_unknown_then_never_submitted_again(sandbox, tmp_path):
    project = make_project(sandbox, tmp_path, "late-accept")
    ids = ["lt-1", "lt-2", "lt-3"]
    subjects_file = write_subjects(project, ids)
    run, error = first_submit(sandbox, project, subjects_file, ACCEPTED_LATE)
    wait_until_all_succeeded(sandbox, project, run.run_id, ids)  # Slurm took it after all

    again = submit_again_after_squeue_forgot(sandbox, project, subjects_file, run.run_id)
    assert again.returncode == 0, err(again)
    wait_for_run(sandbox, project, run.run_id)
    assert runs_of_each_subject(sandbox, run.run_id) == Counter(ids), "a subject ran more (or less) than once"
    assert error is not None and "unknown" in error and "running the same command again is safe" in error, error
    assert "stopped after" not in error and "nothing" not in error
    assert "resuming run" in err(again)
    assert [a["new"] for a in json.loads(out(again))["arrays"]] == [False], "the array its tasks marked was sent again"

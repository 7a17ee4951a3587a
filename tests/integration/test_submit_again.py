"""The same submit on the sandbox: after the whole run was submitted it is refused with the run's name
(nothing queued twice) unless --new-run; a submit Slurm refused leaves no run in `runs`."""

from __future__ import annotations

import json

from tests.helpers import err, out, sandbox_admin
from tests.integration.run_helpers import make_project, submit, wait_for_run, write_subjects


def queued_jobs(sandbox, run_id: str) -> list[str]:
    queue = sandbox.cli("ssh", "--", "squeue", "-h", "-t", "all", f"--name=ct-{run_id}", "-o", "%F")
    assert queue.returncode == 0, err(queue)
    return sorted(set(out(queue).split()))


def test_a_submitted_run_is_not_started_again_unless_new_run(sandbox, tmp_path):
    project = make_project(sandbox, tmp_path, "twice")
    subjects = str(write_subjects(project, ["tw-1", "tw-2"]))
    first = submit(sandbox, project, subjects, "--command", "true")
    run_id = first["run"]
    jobs = queued_jobs(sandbox, run_id)

    again = sandbox.cli("submit", subjects, "--command", "true", cwd=project)
    lines = err(again).strip().splitlines()
    assert again.returncode == 1 and len(lines) == 1, err(again)
    assert lines[0].startswith(f"Error: run {run_id} with exactly these subjects and this spec was submitted at ")
    assert f"see `clustertools status {run_id}`; pass --new-run" in lines[0]
    assert queued_jobs(sandbox, run_id) == jobs  # nothing more queued
    assert [r["run"] for r in json.loads(out(sandbox.cli("runs", "--json", cwd=project)))] == [run_id]

    other = submit(sandbox, project, subjects, "--command", "true", "--new-run")["run"]
    assert other != run_id
    assert [r["run"] for r in json.loads(out(sandbox.cli("runs", "--json", cwd=project)))] == [run_id, other]
    for run in (run_id, other):
        assert wait_for_run(sandbox, project, run)["counts"]["SUCCEEDED"] == 2


def test_a_submit_slurm_refused_is_not_listed_as_a_run(sandbox, tmp_path):
    """sbatch itself says no (a partition closed to new jobs: State=DRAIN), past every check of ours."""
    project = make_project(sandbox, tmp_path, "refused")
    subjects = str(write_subjects(project, ["rf-1"]))
    assert sandbox_admin(sandbox.state, "scontrol", "update", "PartitionName=compute", "State=DRAIN").returncode == 0
    try:
        refused = sandbox.cli("submit", subjects, "--command", "true", cwd=project)
    finally:
        assert sandbox_admin(sandbox.state, "scontrol", "update", "PartitionName=compute", "State=UP").returncode == 0
    lines = err(refused).strip().splitlines()
    assert refused.returncode == 1 and lines[-1].startswith("Error: Slurm refused array 0 of run "), err(refused)
    assert "(0 of 1 arrays submitted)" in lines[-1] and "partition" in lines[-1].lower()
    assert json.loads(out(sandbox.cli("runs", "--json", cwd=project))) == []


def test_a_partition_that_does_not_exist_is_refused_before_anything_is_sent(sandbox, tmp_path):
    project = make_project(sandbox, tmp_path, "nopart")
    subjects = str(write_subjects(project, ["np-1"]))
    refused = sandbox.cli("submit", subjects, "--command", "true", "--partition", "nosuch", cwd=project)
    assert refused.returncode == 1 and err(refused).strip().splitlines() == [
        "Error: nothing was submitted: partition nosuch does not exist on this cluster (its partitions: compute) "
        "(hint: name one of them with --partition (or job.partition in clustertools.yaml))"
    ]
    assert json.loads(out(sandbox.cli("runs", "--json", cwd=project))) == []

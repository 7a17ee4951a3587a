"""The Python API against the real sandbox, as a script drives it: submit ids or rows, wait, read logs;
a failed subject raises RunFailed with the status; the status object is what `status --json` prints."""

from __future__ import annotations

import json

import pytest

from cluster_tools import Project, RunFailed
from tests.helpers import out
from tests.integration.run_helpers import make_project


def test_a_script_submits_waits_and_reads_logs(sandbox, tmp_path):
    project = Project.load(make_project(sandbox, tmp_path, "api") / "clustertools.yaml", state_dir=sandbox.state)
    cluster = project.cluster("sandbox")
    said = []
    run = cluster.submit(
        ["sub-01", "sub-02"], command='echo "hi $SUBJECT"; [ "$SUBJECT" != sub-02 ] || exit 3', progress=said.append
    )
    assert run.subjects == ["sub-01", "sub-02"] and any("submitting" in line for line in said)
    with pytest.raises(RunFailed) as failed:
        run.wait(interval=0.5, timeout=120)
    status = failed.value.status
    assert {s.subject: (s.state, s.exit_code) for s in status.subjects} == {
        "sub-01": ("SUCCEEDED", 0),
        "sub-02": ("FAILED", 3),
    }
    assert run.logs("sub-01") == "hi sub-01\n" and run.logs("sub-02", stderr=True) == ""
    assert run.wait(interval=0.5, check=False).counts["FAILED"] == 1
    assert [r.id for r in project.runs()] == [run.id] and project.run().id == run.id


def test_rows_become_each_tasks_environment_and_status_is_the_clis_json(sandbox, tmp_path):
    directory = make_project(sandbox, tmp_path, "sweep")
    project = Project.load(directory / "clustertools.yaml", state_dir=sandbox.state)
    run = project.cluster("sandbox").submit(
        [{"subject": "lr-1", "lr": "0.1"}, {"subject": "lr-2", "lr": "0.01"}], command='echo "lr=$lr"', name="sweep"
    )
    assert run.wait(interval=0.5, timeout=120).counts["SUCCEEDED"] == 2
    assert run.logs("lr-2") == "lr=0.01\n"
    cli = json.loads(out(sandbox.cli("status", run.id, "--json", cwd=directory)))
    assert cli == run.status().to_json()


def test_a_wait_that_outlasts_its_timeout_says_so(sandbox, tmp_path):
    project = Project.load(make_project(sandbox, tmp_path, "slow") / "clustertools.yaml", state_dir=sandbox.state)
    run = project.cluster("sandbox").submit(["s-1"], command="sleep 30")
    try:
        with pytest.raises(TimeoutError, match="still had subjects pending or running after 2 s"):
            run.wait(interval=1, timeout=2)
    finally:
        assert sandbox.cli("cancel", run.id).returncode == 0


def test_failed_subjects_rerun_and_outputs_come_back_as_objects(sandbox, tmp_path):
    """Seed 004's shape: each task writes metrics.json; a failed one is rerun; the outputs are listed,
    downloaded and gathered into one list of rows."""
    project = Project.load(make_project(sandbox, tmp_path, "gather") / "clustertools.yaml", state_dir=sandbox.state)
    command = (
        '[ "$SUBJECT" = s-2 ] && [ "$ATTEMPT" = 1 ] && exit 5; '
        'printf \'{"subject_score": %s}\' "${SUBJECT#s-}" > "$OUTPUT_DIR/metrics.json"'
    )
    run = project.cluster("sandbox").submit(["s-1", "s-2"], command=command)
    assert run.wait(interval=0.5, timeout=120, check=False).counts["FAILED"] == 1
    again = run.resubmit(failed=True)
    assert again.id == run.id and len(again.record.attempts) == 2
    assert again.wait(interval=0.5, timeout=120).counts["SUCCEEDED"] == 2
    assert sorted(o.key for o in again.results()) == [
        "s-1/metrics.json",
        "s-1/provenance.json",
        "s-2/metrics.json",
        "s-2/provenance.json",
    ]
    report = again.download(tmp_path / "out")
    assert report.ok and (tmp_path / "out" / "s-2" / "metrics.json").read_text() == '{"subject_score": 2}'
    assert again.collect("metrics.json") == [
        {"subject": "s-1", "subject_score": 1},
        {"subject": "s-2", "subject_score": 2},
    ]

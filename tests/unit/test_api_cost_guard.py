"""The cost guard belongs to the API's submit, not to the CLI alone: a script that submits a run above
cost.confirm_above_usd is refused before anything is sent, unless yes=True or approve() says so."""

from __future__ import annotations

import pytest

from cluster_tools.api.project_api import Project
from cluster_tools.errors import ClusterToolsError
from cluster_tools.model.clusters.cluster_record import ClusterRecord
from cluster_tools.services.project.project_init import render_project_file
from cluster_tools.services.runs import submit as submit_service
from cluster_tools.store.cluster_store import save_cluster
from cluster_tools.store.state_dir import StateDir


@pytest.fixture
def expensive(tmp_path, monkeypatch):
    """A project whose cluster is its ParallelCluster one, with a threshold every run is above; what would
    be sent is recorded instead of sent."""
    text = render_project_file("study", "study", "s3://out-bucket/study") + "cost:\n  confirm_above_usd: 0\n"
    (tmp_path / "clustertools.yaml").write_text(text)
    state = StateDir(tmp_path / "state")
    save_cluster(
        state,
        ClusterRecord(
            name="study",
            provider="parallelcluster",
            host="192.0.2.10",
            user="ec2-user",
            known_hosts=state.known_hosts("study"),
            region="us-east-1",
        ),
    )
    sent = []
    monkeypatch.setattr(
        submit_service,
        "submit_attempt",
        lambda state, run, cluster, **kw: (
            sent.append(run) or submit_service.SubmitResult(run=run, attempt=1, arrays=(), resumed=False)
        ),
    )
    project = Project.load(tmp_path / "clustertools.yaml", state_dir=state.root, environ={})
    return project, sent


def test_above_the_threshold_nothing_is_sent_without_a_yes(expensive):
    project, sent = expensive
    said = []
    with pytest.raises(ClusterToolsError, match=r"is above cost\.confirm_above_usd .*nothing was submitted"):
        project.cluster().submit(["sub-01"], progress=said.append)
    assert sent == [] and any(line.startswith("estimate: ") for line in said)


def test_approve_is_asked_and_its_no_refuses_its_yes_sends(expensive):
    project, sent = expensive
    asked = []
    with pytest.raises(ClusterToolsError, match="nothing was submitted"):
        project.cluster().submit(["sub-01"], approve=lambda why: asked.append(why) or False)
    assert sent == [] and "above cost.confirm_above_usd" in asked[0]
    run = project.cluster().submit(["sub-01"], approve=lambda why: True)
    assert [r.run_id for r in sent] == [run.id] and run.subjects == ["sub-01"]


def test_yes_sends_without_asking(expensive):
    project, sent = expensive
    run = project.cluster().submit(["sub-01", "sub-02"], yes=True, approve=lambda why: pytest.fail("asked"))
    assert len(sent) == 1 and run.subjects == ["sub-01", "sub-02"]


def test_a_script_asks_the_estimate_submit_would_show(expensive):
    project, sent = expensive
    estimate = project.cluster().estimate(200, minutes_per_subject=30, mem="4G")
    assert estimate.run.total > 0 and estimate.run.subjects == 200 and estimate.run.nodes >= 1
    smaller = project.cluster().estimate(["sub-01", "sub-02"], minutes_per_subject=30, mem="4G")
    assert 0 < smaller.run.total < estimate.run.total and sent == []

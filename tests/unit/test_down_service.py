"""`down` of a ParallelCluster cluster, tested at our pcluster module's boundary (recorded results)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from cluster_tools.errors import ClusterToolsError
from cluster_tools.model.aws.cluster_storage_spec import SharedStorageSpec
from cluster_tools.model.clusters.cluster_record import ClusterRecord
from cluster_tools.services.clusters import lifecycle_down
from cluster_tools.store.cluster_store import list_clusters, save_cluster
from cluster_tools.store.state_dir import StateDir
from cluster_tools.transport import pcluster
from tests.helpers import no_connect


def pc_record(state: StateDir) -> ClusterRecord:
    return ClusterRecord(
        name="study",
        provider="parallelcluster",
        host="203.0.113.9",
        user="ec2-user",
        known_hosts=state.known_hosts("study"),
        region="us-east-1",
    )


def described(status: str) -> pcluster.ClusterDescription:
    return pcluster.ClusterDescription(
        name="study",
        region="us-east-1",
        version="3.16.1",
        status=status,
        stack_status=status,
        stack_arn="arn:aws:cloudformation:us-east-1:1:stack/study/x",
        scheduler="slurm",
        compute_fleet_status="STOPPED",
        creation_time=None,
        last_updated_time=None,
        head_node=None,
    )


DELETING = pcluster.StackEvent(
    event_id="e1",
    timestamp=datetime(2099, 1, 1, 12, 30, 5, tzinfo=UTC),
    logical_id="SharedEfs",
    resource_type="AWS::EFS::FileSystem",
    status="DELETE_SKIPPED",
    reason="",
)


def test_delete_waits_until_gone_forgets_the_cluster_and_lists_retained_storage(state_dir, monkeypatch):
    state = StateDir(state_dir)
    record = pc_record(state)
    save_cluster(state, record)
    calls, answers = [], iter([described("DELETE_IN_PROGRESS"), None])

    def fake_describe(name, *, region=None):
        answer = next(answers)
        if answer is None:
            raise pcluster.PclusterNotFound("Cluster 'study' does not exist", status=404)
        return answer

    monkeypatch.setattr(pcluster, "delete_cluster", lambda name, *, region=None: calls.append((name, region)))
    monkeypatch.setattr(pcluster, "describe_cluster", fake_describe)
    monkeypatch.setattr(lifecycle_down.time, "sleep", lambda _: None)
    monkeypatch.setattr(pcluster, "get_cluster_stack_events", lambda name, **kw: ([DELETING], None))
    spec = type("Spec", (), {"shared_storage": SharedStorageSpec(type="efs", name="data"), "region": "us-east-1"})()
    notes = []
    report = lifecycle_down.take_down(
        state, record, connect=no_connect, force=False, progress=notes.append, project_spec=spec
    )
    assert calls == [("study", "us-east-1")] and "deleting study: DELETE_IN_PROGRESS (0 min)" in notes
    assert "12:30:05 SharedEfs (AWS::EFS::FileSystem) DELETE_SKIPPED" in notes  # the stack's events as progress
    assert report.retained and "efs file system 'data'" in report.retained[0] and list_clusters(state) == []
    assert "per GB stored a month (price table of" in report.retained[0]


@pytest.mark.parametrize(
    "storage, expected",
    [
        (
            SharedStorageSpec(type="ebs", name="data", size_gb=500),
            "ebs file system 'data' (/shared, 500 GB): kept, and "
            "billed until you delete it: $40.00/month (500 GB ebs_gp3",
        ),
        (SharedStorageSpec(type="fsx-lustre"), "fsx-lustre file system 'shared' (/shared, 1200 GB): kept"),
        (SharedStorageSpec(type="ebs", existing_id="vol-0123456789abcdef0"), None),  # never ours: nothing to say
    ],
)
def test_retained_storage_says_what_it_costs_a_month(storage, expected):
    spec = type("Spec", (), {"shared_storage": storage, "region": "us-east-1"})()
    retained = lifecycle_down._retained_storage(spec)
    assert retained == [] if expected is None else retained[0].startswith(expected)


def test_an_already_deleted_cluster_is_done(state_dir, monkeypatch):
    state = StateDir(state_dir)
    record = pc_record(state)

    def gone(name, *, region=None):
        raise pcluster.PclusterNotFound("Cluster 'study' does not exist", status=404)

    monkeypatch.setattr(pcluster, "delete_cluster", gone)
    notes = []
    lifecycle_down.take_down(state, record, connect=no_connect, force=False, progress=notes.append)
    assert notes == ["study is already gone"]


def test_a_failed_delete_is_one_clear_error(state_dir, monkeypatch):
    state = StateDir(state_dir)
    monkeypatch.setattr(pcluster, "delete_cluster", lambda name, *, region=None: None)
    monkeypatch.setattr(pcluster, "describe_cluster", lambda name, *, region=None: described("DELETE_FAILED"))
    failed = pcluster.StackEvent(
        event_id="e2",
        timestamp=datetime(2099, 1, 1, 12, 31, tzinfo=UTC),
        logical_id="SharedEbs",
        resource_type="AWS::EC2::Volume",
        status="DELETE_FAILED",
        reason="Volume vol-0abc is in use",
    )
    monkeypatch.setattr(pcluster, "get_cluster_stack_events", lambda name, **kw: ([failed], None))
    with pytest.raises(
        ClusterToolsError,
        match=re.escape("deleting study failed: SharedEbs (AWS::EC2::Volume) DELETE_FAILED: Volume vol-0abc is in use"),
    ):
        lifecycle_down.take_down(state, pc_record(state), connect=no_connect, force=False, progress=lambda _: None)

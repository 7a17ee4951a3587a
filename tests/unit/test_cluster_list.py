"""`clustertools list` with each cluster's state (services/clusters/cluster_list.py). ParallelCluster is replaced at OUR
transport's boundary (describe-cluster records as test_transport_pcluster.py builds them); the sandbox's running and
stopped states are checked on the real sandbox in test_autostop_sandbox.py."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from cluster_tools.model.clusters.cluster_record import ClusterRecord
from cluster_tools.services.clusters.cluster_list import list_with_states
from cluster_tools.store.cluster_store import save_cluster
from cluster_tools.store.state_dir import StateDir
from cluster_tools.transport import pcluster as pc
from tests.helpers import err, no_connect, out, run_cli

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def described(
    status: str = "CREATE_COMPLETE", *, head: str | None = "running", fleet: str = "RUNNING", failures=()
) -> pc.ClusterDescription:
    node = (
        pc.Instance(instance_id="i-0a1b2c3d4e5f60718", instance_type="t3.medium", state=head, private_ip="10.0.1.25")
        if head
        else None
    )
    return pc.ClusterDescription(
        name="study",
        region="us-east-1",
        version="3.16.1",
        status=status,
        stack_status=status,
        stack_arn="arn",
        scheduler="slurm",
        compute_fleet_status=fleet,
        creation_time=T0,
        last_updated_time=T0,
        head_node=node,
        failures=tuple(failures),
    )


@pytest.fixture
def state(tmp_path) -> StateDir:
    state = StateDir(tmp_path / "state")
    for name, provider in (("study", "parallelcluster"), ("uni", "ssh")):
        save_cluster(
            state,
            ClusterRecord(
                name=name,
                provider=provider,
                host="192.0.2.7",
                user="alice",
                known_hosts=state.known_hosts(name),
                region="us-east-1",
            ),
        )
    return state


@pytest.mark.parametrize(
    "answer, expected",
    [
        (described(), ("running", None)),
        (described(head="stopped"), ("stopped", "head node stopped: `clustertools start -c study`")),
        (described(fleet="STOPPED"), ("stopped", "compute fleet STOPPED: `clustertools start -c study`")),
        (described("CREATE_IN_PROGRESS", head=None), ("creating", "stack CREATE_IN_PROGRESS")),
        (described("UPDATE_IN_PROGRESS"), ("updating", "stack UPDATE_IN_PROGRESS")),
        (described("UPDATE_FAILED"), ("running", "its last update failed and was rolled back")),
        (
            described(
                "CREATE_FAILED", head=None, failures=[("OnNodeConfiguredExecutionFailure", "Failed to execute script.")]
            ),
            ("failed", "Failed to execute script."),
        ),
        (
            pc.PclusterNotFound("describe cluster study: Cluster 'study' does not exist", status=404),
            ("gone", "not in AWS (us-east-1): `clustertools forget study`"),
        ),
        (
            pc.PclusterError("describe cluster study: cannot reach AWS (timeout)", "check your network"),
            ("unknown", "describe cluster study: cannot reach AWS (timeout) (hint: check your network)"),
        ),
    ],
)
def test_a_parallelcluster_clusters_state(state, monkeypatch, answer, expected):
    def describe(name, *, region=None):
        assert (name, region) == ("study", "us-east-1")
        if isinstance(answer, BaseException):
            raise answer
        return answer

    monkeypatch.setattr(pc, "describe_cluster", describe)
    listed = {item.record.name: (item.state, item.detail) for item in list_with_states(state, connect=no_connect)}
    assert listed["study"] == expected
    assert listed["uni"] == ("-", "not probed: `clustertools describe -c uni` reaches it")


def test_a_sandbox_that_is_not_running_is_down(tmp_path):
    state_dir = tmp_path / "state"
    state = StateDir(state_dir)
    save_cluster(
        state,
        ClusterRecord(
            name="sandbox",
            host="127.0.0.1",
            port=1,
            user="ec2-user",
            sandbox=True,
            known_hosts=state.known_hosts("sandbox"),
        ),
    )
    result = run_cli("list", "--json", state=state_dir)
    assert result.returncode == 0, err(result)
    (listed,) = json.loads(out(result))
    assert (listed["name"], listed["state"], listed["state_detail"]) == (
        "sandbox",
        "down",
        "`clustertools sandbox up` starts it",
    )
    table = run_cli("list", state=state_dir)
    assert "down" in out(table).splitlines()[-1] and "sandbox: down: `clustertools sandbox up` starts it" in err(table)

"""`describe` of a stopped cluster (issue 17, item 4, in part): said stopped, with `start`; a stopped head node
bills no hour (storage only), where it was priced as running before."""

from __future__ import annotations

from cluster_tools.services.clusters.describe import Description, hourly_cost
from cluster_tools.transport.pcluster import Instance


def head(state: str) -> Instance:
    return Instance("i-0123", "t3.medium", state, "10.0.0.5", "198.51.100.7")


def test_a_stopped_head_node_is_stopped_and_costs_storage_only():
    info = Description(
        "study", "parallelcluster", None, status="UPDATE_COMPLETE", region="us-east-1", head_node=head("stopped")
    )
    info.mark_stopped()
    assert info.stopped
    assert hourly_cost(info, {}) == (
        None,
        "no head node running: nothing bills per hour but storage (its EBS volumes, shared storage)",
    )
    running = Description("study", "parallelcluster", None, region="us-east-1", head_node=head("running"))
    running.mark_stopped()
    assert not running.stopped and hourly_cost(running, {})[0]["hourly_usd"] > 0


def test_every_partition_inactive_is_a_stopped_sandbox():
    info = Description(
        "sandbox",
        "ssh",
        "ec2-user@127.0.0.1:2222",
        partitions=[{"name": "compute*", "avail": "inactive", "nodes": "2", "state": "idle~"}],
    )
    info.mark_stopped()
    assert info.stopped
    info.partitions.append({"name": "spot", "avail": "up", "nodes": "1", "state": "idle"})
    info.mark_stopped()
    assert not info.stopped

"""ParallelCluster's answers as our pcluster transport returns them (cluster_tools.transport.pcluster's records),
built from the recorded pcluster.lib responses of test_transport_pcluster.py. The head node's public address is
127.0.0.1, so a host-key step meets a closed port at once instead of the internet."""

from __future__ import annotations

from datetime import UTC, datetime

from cluster_tools.transport import pcluster as pc

REGION = "us-east-1"
ARN = "arn:aws:cloudformation:us-east-1:123456789012:stack/study/5e3a1c40-07b1-11ef-9a0c-0e2f1b1c7a31"
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
HEAD = pc.Instance(
    instance_id="i-0a1b2c3d4e5f60718",
    instance_type="t3.medium",
    state="running",
    private_ip="10.0.1.25",
    public_ip="127.0.0.1",
    launch_time=T0,
)


def described(status: str, stack: str, *, head=HEAD, failures=(), fleet: str = "RUNNING") -> pc.ClusterDescription:
    return pc.ClusterDescription(
        name="study",
        region=REGION,
        version="3.16.1",
        status=status,
        stack_status=stack,
        stack_arn=ARN,
        scheduler="slurm",
        compute_fleet_status=fleet,
        creation_time=T0,
        last_updated_time=T0,
        head_node=head,
        failures=tuple(failures),
    )


IN_PROGRESS = described("CREATE_IN_PROGRESS", "CREATE_IN_PROGRESS", head=None)
COMPLETE = described("CREATE_COMPLETE", "CREATE_COMPLETE")
FAILED = described(
    "CREATE_FAILED",
    "ROLLBACK_IN_PROGRESS",
    head=None,
    failures=[("OnNodeConfiguredExecutionFailure", "Failed to execute OnNodeConfigured script.")],
)
NOT_FOUND = pc.PclusterNotFound("describe cluster study: Cluster 'study' does not exist", status=404)
CREATED = pc.CreateResult(
    name="study",
    dry_run=False,
    cluster=pc.ClusterSummary(
        name="study",
        region=REGION,
        version="3.16.1",
        status="CREATE_IN_PROGRESS",
        stack_status="CREATE_IN_PROGRESS",
        stack_arn=ARN,
        scheduler="slurm",
    ),
)

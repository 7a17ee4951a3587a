"""``describe``: a cluster's state. For AWS ParallelCluster its status, head node and the compute nodes of
each queue (from pcluster.lib, through our transport); for an SSH or sandbox cluster its partitions (sinfo).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cluster_tools.clusters import ClusterRecord
from cluster_tools.config import Project
from cluster_tools.state import StateDir
from cluster_tools.transport import pcluster as pc


@dataclass
class Description:
    """What ``describe`` shows: from ParallelCluster for an AWS cluster, else from the record and sinfo."""

    name: str
    provider: str
    address: str | None
    status: str | None = None
    region: str | None = None
    head_node: pc.Instance | None = None
    queues: dict[str, list[pc.Instance]] = field(default_factory=dict)
    partitions: list[dict[str, str]] = field(default_factory=list)  # sinfo: name, avail, nodes, state
    failure_reason: str | None = None


def describe(state: StateDir, explicit: str | None, project: Project | None) -> Description:
    """-c NAME, else the project's cluster, else the only one known. A ParallelCluster cluster of the project
    that is not recorded locally (still creating, or recorded elsewhere) is described from AWS all the same."""
    from cluster_tools.clusters import load_cluster, resolve_cluster_name
    from cluster_tools.errors import ClusterNotFound

    spec = project.parallelcluster if project else None
    ours = None
    if spec is not None:
        from cluster_tools.cluster_spec import cluster_name_for

        ours = cluster_name_for(spec, project.name)  # type: ignore[union-attr]
    try:
        record: ClusterRecord | None = load_cluster(state, resolve_cluster_name(
            state, explicit, project.cluster if project else None))
    except ClusterNotFound:
        if ours is None or explicit not in (None, ours):
            raise
        record = None
    if record is None or record.provider == "parallelcluster":
        name = record.name if record else ours
        region = (record.region if record else None) or (spec.region if spec else None)
        return describe_parallelcluster(name, region, record)  # type: ignore[arg-type]
    return _describe_over_ssh(record)


def describe_parallelcluster(name: str, region: str | None, record: ClusterRecord | None = None) -> Description:
    described = pc.describe_cluster(name, region=region)
    queues: dict[str, list[pc.Instance]] = {}
    for instance in pc.describe_cluster_instances(name, region=region, node_type="ComputeNode"):
        queues.setdefault(instance.queue_name or "?", []).append(instance)
    return Description(name=name, provider="parallelcluster", address=record.address if record else None,
                       status=described.status, region=described.region or region, head_node=described.head_node,
                       queues=queues, failure_reason=described.failure_reason)


def _describe_over_ssh(record: ClusterRecord) -> Description:
    from cluster_tools.services.remote import connect

    with connect(record) as conn:
        text = conn.run(["sinfo", "-h", "-o", "%P|%a|%D|%T"], timeout=30).check().text
    partitions = []
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) == 4:
            partitions.append(dict(zip(("name", "avail", "nodes", "state"), parts)))
    return Description(name=record.name, provider="sandbox" if record.sandbox else record.provider,
                       address=record.address, status="reachable", region=record.region, partitions=partitions)

"""`clustertools list`: every known cluster with its state now (issue 17, item 4).

The sandbox: its daemons on this machine, then its partitions (its autostop sets them INACTIVE, as ParallelCluster's
clustermgtd does a stopped fleet's). A ParallelCluster cluster: ParallelCluster's describe-cluster (its stack's status,
its head node's EC2 state, its compute fleet). A cluster registered over SSH is not ours to start or stop: its state is
not probed (`describe -c NAME` reaches it). A state that cannot be read is "unknown" with the reason, never an error
that hides the other clusters.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cluster_tools.errors import ClusterToolsError
from cluster_tools.model.clusters.cluster_record import ClusterRecord
from cluster_tools.store.cluster_store import list_clusters
from cluster_tools.store.state_dir import StateDir
from cluster_tools.transport.remote_shell import ShellFactory

_IN_PROGRESS = {"CREATE_IN_PROGRESS": "creating", "UPDATE_IN_PROGRESS": "updating", "DELETE_IN_PROGRESS": "deleting"}


@dataclass(frozen=True)
class ClusterListing:
    record: ClusterRecord
    state: str  # running, stopped, down, creating, updating, deleting, failed, gone, unknown; "-" when not probed
    detail: str | None = None  # what to do about it, or why the state is unknown

    def to_json(self) -> dict:
        return {**self.record.model_dump(mode="json"), "state": self.state, "state_detail": self.detail}


def list_with_states(
    state: StateDir, *, connect: ShellFactory, warn: Callable[[str], None] = lambda _: None
) -> list[ClusterListing]:
    """Every cluster record of the state dir, each with its state read now."""
    return [_listing(state, record, connect) for record in list_clusters(state, warn=warn)]


def _listing(state: StateDir, record: ClusterRecord, connect: ShellFactory) -> ClusterListing:
    try:
        if record.sandbox:
            return _sandbox_listing(state, record, connect)
        if record.provider == "parallelcluster":
            return _parallelcluster_listing(record)
    except ClusterToolsError as exc:
        return ClusterListing(record, "unknown", exc.one_line())
    return ClusterListing(record, "-", f"not probed: `clustertools describe -c {record.name}` reaches it")


def _sandbox_listing(state: StateDir, record: ClusterRecord, connect: ShellFactory) -> ClusterListing:
    from cluster_tools.services.sandbox.sandbox_lifecycle import sandbox_status

    if not sandbox_status(state).running:
        return ClusterListing(record, "down", "`clustertools sandbox up` starts it")
    with connect(record) as conn:
        avail = conn.run(["sinfo", "-h", "-o", "%a"], timeout=30).check().text.split()
    if avail and all(value == "inactive" for value in avail):
        return ClusterListing(record, "stopped", "its autostop stopped it: `clustertools start -c sandbox`")
    return ClusterListing(record, "running")


def _parallelcluster_listing(record: ClusterRecord) -> ClusterListing:
    from cluster_tools.transport import pcluster as pc

    try:
        described = pc.describe_cluster(record.name, region=record.region)
    except pc.PclusterNotFound:
        return ClusterListing(record, "gone", f"not in AWS ({record.region}): `clustertools forget {record.name}`")
    if described.status in _IN_PROGRESS:
        return ClusterListing(record, _IN_PROGRESS[described.status], f"stack {described.stack_status}")
    if described.status in ("CREATE_FAILED", "DELETE_FAILED"):
        return ClusterListing(record, "failed", described.failure_reason or f"stack {described.stack_status}")
    note = "its last update failed and was rolled back" if described.status == "UPDATE_FAILED" else None
    head = described.head_node.state if described.head_node else None
    if head in ("stopping", "stopped"):
        return ClusterListing(record, "stopped", f"head node {head}: `clustertools start -c {record.name}`")
    if described.compute_fleet_status in ("STOPPING", "STOPPED", "STOP_REQUESTED"):
        return ClusterListing(
            record, "stopped", f"compute fleet {described.compute_fleet_status}: `clustertools start -c {record.name}`"
        )
    return ClusterListing(record, "running", note)

"""The records ``transport/pcluster.py`` returns, frozen, and the functions that make them from pcluster's
answers (camelCase JSON). Callers reach them as ``pc.ClusterSummary`` etc.: pcluster.py imports them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from cluster_tools.transport.pcluster_errors import ChangeRequest, ValidationMessage

FleetStatus = Literal["START_REQUESTED", "STOP_REQUESTED"]
NodeType = Literal["HeadNode", "ComputeNode", "LoginNode"]


@dataclass(frozen=True)
class ClusterSummary:
    name: str
    region: str
    version: str  # ParallelCluster's version that made it
    status: str  # CREATE_IN_PROGRESS, CREATE_COMPLETE, DELETE_IN_PROGRESS, ...
    stack_status: str  # CloudFormation's status of the cluster's stack
    stack_arn: str
    scheduler: str | None


@dataclass(frozen=True)
class CreateResult:
    name: str
    dry_run: bool
    cluster: ClusterSummary | None  # None on a dry run: nothing was created
    validation_messages: tuple[ValidationMessage, ...] = ()


@dataclass(frozen=True)
class UpdateResult:
    name: str
    dry_run: bool
    change_set: tuple[ChangeRequest, ...]
    cluster: ClusterSummary | None  # None on a dry run: nothing was changed
    validation_messages: tuple[ValidationMessage, ...] = ()


@dataclass(frozen=True)
class Instance:
    instance_id: str
    instance_type: str
    state: str  # pending, running, stopping, stopped, shutting-down, terminated
    private_ip: str | None
    public_ip: str | None = None
    node_type: str | None = None  # HeadNode, ComputeNode, LoginNode (absent in describe's head node)
    queue_name: str | None = None
    launch_time: datetime | None = None


@dataclass(frozen=True)
class ClusterDescription:
    name: str
    region: str
    version: str
    status: str
    stack_status: str
    stack_arn: str
    scheduler: str | None
    compute_fleet_status: str | None
    creation_time: datetime | None
    last_updated_time: datetime | None
    head_node: Instance | None  # None while it is not running yet, or being deleted
    failures: tuple[tuple[str, str], ...] = ()  # (code, reason), set when the stack failed
    tags: dict[str, str] = field(default_factory=dict)
    config_url: str | None = None

    @property
    def failure_reason(self) -> str | None:
        return "; ".join(reason or code for code, reason in self.failures) or None

    @property
    def head_node_public_ip(self) -> str | None:
        return self.head_node.public_ip if self.head_node else None

    @property
    def head_node_private_ip(self) -> str | None:
        return self.head_node.private_ip if self.head_node else None

    @property
    def head_node_instance_id(self) -> str | None:
        return self.head_node.instance_id if self.head_node else None


@dataclass(frozen=True)
class ComputeFleet:
    status: str  # START_REQUESTED, STOP_REQUESTED, RUNNING, STOPPED, ...
    last_status_updated_time: datetime | None


@dataclass(frozen=True)
class LogEvent:
    timestamp: datetime | None
    message: str


@dataclass(frozen=True)
class LogStream:
    name: str  # "{hostname}.{instance_id}.{log}", e.g. ip-10-0-1-77.i-0fedcba9876543210.cloud-init-output
    last_event: datetime | None


@dataclass(frozen=True)
class StackEvent:
    """One CloudFormation event of the cluster's stack (``logical_id`` names the resource, e.g. HeadNode)."""

    event_id: str
    timestamp: datetime | None
    logical_id: str
    resource_type: str
    status: str
    reason: str


def summary_of(data: dict[str, Any]) -> ClusterSummary:
    """A cluster as pcluster's API answers it (camelCase JSON)."""
    return ClusterSummary(
        name=data["clusterName"],
        region=data.get("region", ""),
        version=data.get("version", ""),
        status=data["clusterStatus"],
        stack_status=data["cloudformationStackStatus"],
        stack_arn=data.get("cloudformationStackArn", ""),
        scheduler=(data.get("scheduler") or {}).get("type"),
    )


def instance_of(data: dict[str, Any]) -> Instance:
    """An instance as pcluster's API answers it (camelCase JSON)."""
    return Instance(
        instance_id=data["instanceId"],
        instance_type=data.get("instanceType", ""),
        state=data.get("state", ""),
        private_ip=data.get("privateIpAddress"),
        public_ip=data.get("publicIpAddress"),
        node_type=data.get("nodeType"),
        queue_name=data.get("queueName"),
        launch_time=time_of(data.get("launchTime")),
    )


def time_of(value: Any) -> datetime | None:
    """pcluster's ISO 8601 text (``2024-05-01T12:00:00.000Z``) as an aware datetime; None when absent or odd."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None

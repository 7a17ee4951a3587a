"""AWS ParallelCluster through ``pcluster.lib``: typed calls in, frozen records out, one error family.

The only module that imports ``pcluster.lib`` (offline schema checks live in pcluster_schema.py). Its
functions are generated at import time from ParallelCluster's API model and cost ~650 ms to import, so
the import happens inside each call. Credentials come from the boto3 chain (AWS_PROFILE included); the
region is passed explicitly, else the chain's region applies. Every pcluster exception becomes a
``PclusterError`` (a TransportError) with one line and a hint; no pcluster traceback reaches the user.
The records the calls return, and their making from pcluster's JSON, are in pcluster_results.py.
"""

from __future__ import annotations

import logging
import os
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

# The error family and its records, used by callers as pc.PclusterNotFound etc. (listed in __all__)
from cluster_tools.transport.pcluster_errors import (
    ChangeRequest,
    PclusterClusterExists,
    PclusterConfigRejected,
    PclusterError,
    PclusterNotFound,
    ValidationMessage,
    api_error,
    change_requests,
    cli_error,
    one_line,
    other_error,
    validation_messages,
)

# The records the calls return, used by callers as pc.ClusterSummary etc. (listed in __all__)
from cluster_tools.transport.pcluster_results import (
    ClusterDescription,
    ClusterSummary,
    ComputeFleet,
    CreateResult,
    FleetStatus,
    Instance,
    LogEvent,
    LogStream,
    NodeType,
    StackEvent,
    UpdateResult,
    instance_of,
    summary_of,
    time_of,
)

# The same lock as the offline schema check: both change AWS_DEFAULT_REGION around pcluster's calls.
from cluster_tools.transport.pcluster_schema import ENV_LOCK

__all__ = [
    "ChangeRequest",
    "ClusterDescription",
    "ClusterSummary",
    "ComputeFleet",
    "CreateResult",
    "FleetStatus",
    "Instance",
    "LogEvent",
    "LogStream",
    "NodeType",
    "PclusterClusterExists",
    "PclusterConfigRejected",
    "PclusterError",
    "PclusterNotFound",
    "StackEvent",
    "UpdateResult",
    "ValidationMessage",
    "cluster_config_text",
    "create_cluster",
    "delete_cluster",
    "describe_cluster",
    "describe_cluster_instances",
    "get_cluster_log_events",
    "get_cluster_stack_events",
    "list_cluster_log_streams",
    "list_clusters",
    "profile_environment",
    "update_cluster",
    "update_compute_fleet",
]


def create_cluster(
    name: str,
    config_yaml: str,
    *,
    region: str | None = None,
    dry_run: bool = False,
    suppress_validators: Sequence[str] = (),
    rollback_on_failure: bool = True,
) -> CreateResult:
    """Create the cluster (its stack starts CREATE_IN_PROGRESS; this does not wait), or with ``dry_run``
    run ParallelCluster's full validation only. ``suppress_validators``: validator types such as
    ``KeyPairValidator`` (or ``ALL``). Raises PclusterConfigRejected, PclusterClusterExists, PclusterError."""
    suppress = [v if v == "ALL" or v.startswith("type:") else f"type:{v}" for v in suppress_validators]
    try:
        with _config_file(config_yaml) as path:
            kwargs: dict[str, Any] = {
                "cluster_name": name,
                "cluster_configuration": path,
                "region": region,
                "dryrun": dry_run,
                "rollback_on_failure": rollback_on_failure,
            }
            if suppress:
                kwargs["suppress_validators"] = suppress
            data = _call("create_cluster", f"create cluster {name}", kwargs)
    except PclusterError as exc:
        if dry_run and exc.status == 412:  # DryrunOperationException: validation passed, nothing created
            return CreateResult(name=name, dry_run=True, cluster=None, validation_messages=exc.validation_messages)
        raise
    return CreateResult(
        name=name,
        dry_run=dry_run,
        cluster=summary_of(data["cluster"]),
        validation_messages=validation_messages(data.get("validationMessages")),
    )


def update_cluster(
    name: str, config_yaml: str, *, region: str | None = None, dry_run: bool = False, force: bool = False
) -> UpdateResult:
    """Update the cluster's stack to ``config_yaml`` (UPDATE_IN_PROGRESS; this does not wait), or with
    ``dry_run`` only validate the update and return its change set. ParallelCluster refuses changes its
    update policies do not allow now (PclusterError, status 400, ``change_set`` naming each refused one)
    unless ``force``. Raises PclusterConfigRejected, PclusterNotFound, PclusterError."""
    try:
        with _config_file(config_yaml) as path:
            data = _call(
                "update_cluster",
                f"update cluster {name}",
                {
                    "cluster_name": name,
                    "cluster_configuration": path,
                    "region": region,
                    "dryrun": dry_run,
                    "force_update": force,
                },
            )
    except PclusterError as exc:
        if dry_run and exc.status == 412:  # DryrunOperationException: the update would be accepted
            return UpdateResult(
                name=name,
                dry_run=True,
                change_set=exc.change_set,
                cluster=None,
                validation_messages=exc.validation_messages,
            )
        raise
    return UpdateResult(
        name=name,
        dry_run=False,
        change_set=change_requests(data.get("changeSet"), ()),
        cluster=summary_of(data["cluster"]),
        validation_messages=validation_messages(data.get("validationMessages")),
    )


def cluster_config_text(name: str, *, region: str | None = None, timeout: float = 30) -> str:
    """The config the cluster runs now, as ParallelCluster keeps it (its S3 bucket, reached through the
    pre-signed URL describe-cluster gives): the base an update is compared against."""
    import urllib.error
    import urllib.request

    url = describe_cluster(name, region=region).config_url
    if not url or not url.startswith("https://"):
        raise PclusterError(
            f"ParallelCluster has no config for {name} ({url or 'none'})",
            "the cluster's stack may be failed or being deleted: `clustertools describe`",
        )
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            return answer.read().decode("utf-8")
    except (urllib.error.URLError, OSError, UnicodeDecodeError) as exc:
        raise PclusterError(
            f"cannot read the config of {name} from ParallelCluster's bucket: {one_line(str(exc))}",
            "check your network, then retry",
        ) from None


def describe_cluster(name: str, *, region: str | None = None) -> ClusterDescription:
    """Status, stack status, head node and failures of one cluster. Raises PclusterNotFound."""
    data = _call("describe_cluster", f"describe cluster {name}", {"cluster_name": name, "region": region})
    head = data.get("headNode")
    return ClusterDescription(
        name=data["clusterName"],
        region=data.get("region", region or ""),
        version=data.get("version", ""),
        status=data["clusterStatus"],
        stack_status=data["cloudFormationStackStatus"],
        stack_arn=data.get("cloudformationStackArn", ""),
        scheduler=(data.get("scheduler") or {}).get("type"),
        compute_fleet_status=data.get("computeFleetStatus"),
        creation_time=time_of(data.get("creationTime")),
        last_updated_time=time_of(data.get("lastUpdatedTime")),
        head_node=instance_of(head) if head else None,
        failures=tuple((f.get("failureCode", ""), f.get("failureReason", "")) for f in data.get("failures") or ()),
        tags={t["key"]: t.get("value", "") for t in data.get("tags") or () if "key" in t},
        config_url=(data.get("clusterConfiguration") or {}).get("url"),
    )


def delete_cluster(name: str, *, region: str | None = None) -> ClusterSummary:
    """Start deleting the cluster (DELETE_IN_PROGRESS; this does not wait). Raises PclusterNotFound."""
    data = _call("delete_cluster", f"delete cluster {name}", {"cluster_name": name, "region": region})
    return summary_of(data["cluster"])


def list_clusters(*, region: str | None = None) -> list[ClusterSummary]:
    """Every cluster of the region (deleted ones excluded by ParallelCluster), all pages."""
    return [summary_of(c) for c in _all_pages("list_clusters", "list clusters", {"region": region}, "clusters")]


def update_compute_fleet(name: str, status: FleetStatus, *, region: str | None = None) -> ComputeFleet:
    """Start or stop the compute nodes. STOP_REQUESTED leaves the head node running (and billing)."""
    if status not in ("START_REQUESTED", "STOP_REQUESTED"):
        raise ValueError(f"status must be START_REQUESTED or STOP_REQUESTED, not {status!r}")
    data = _call(
        "update_compute_fleet",
        f"update compute fleet of {name}",
        {"cluster_name": name, "status": status, "region": region},
    )
    return ComputeFleet(status=data["status"], last_status_updated_time=time_of(data.get("lastStatusUpdatedTime")))


def describe_cluster_instances(
    name: str, *, region: str | None = None, node_type: NodeType | None = None, queue_name: str | None = None
) -> list[Instance]:
    """The cluster's EC2 instances (head, compute, login), all pages."""
    kwargs = {"cluster_name": name, "region": region, "node_type": node_type, "queue_name": queue_name}
    return [
        instance_of(i)
        for i in _all_pages("describe_cluster_instances", f"list instances of {name}", kwargs, "instances")
    ]


def get_cluster_log_events(
    name: str, log_stream: str, *, region: str | None = None, limit: int = 100, start_from_head: bool = False
) -> list[LogEvent]:
    """Up to ``limit`` events of one CloudWatch log stream of the cluster: the latest ones, or the first
    ones with ``start_from_head``."""
    data = _call(
        "get_cluster_log_events",
        f"read log {log_stream} of {name}",
        {
            "cluster_name": name,
            "log_stream_name": log_stream,
            "region": region,
            "limit": limit,
            "start_from_head": start_from_head,
        },
    )
    return [
        LogEvent(timestamp=time_of(e.get("timestamp")), message=e.get("message", "")) for e in data.get("events") or ()
    ]


def list_cluster_log_streams(
    name: str, *, region: str | None = None, private_dns_name: str | None = None, node_type: NodeType | None = None
) -> list[LogStream]:
    """The cluster's CloudWatch log streams (all pages), optionally of one host (``ip-10-0-1-77``) or node
    type. Raises PclusterNotFound."""
    filters = [
        f"Name={key},Values={value}"
        for key, value in (("private-dns-name", private_dns_name), ("node-type", node_type))
        if value
    ]
    kwargs: dict[str, Any] = {"cluster_name": name, "region": region}
    if filters:
        kwargs["filters"] = filters
    return [
        LogStream(name=item.get("logStreamName", ""), last_event=time_of(item.get("lastEventTimestamp")))
        for item in _all_pages("list_cluster_log_streams", f"list log streams of {name}", kwargs, "logStreams")
    ]


def get_cluster_stack_events(
    name: str, *, region: str | None = None, next_token: str | None = None
) -> tuple[list[StackEvent], str | None]:
    """One page of the cluster stack's events, NEWEST first as CloudFormation sends them, and the token of
    the next (older) page. Raises PclusterNotFound."""
    data = _call(
        "get_cluster_stack_events",
        f"read stack events of {name}",
        {"cluster_name": name, "region": region, "next_token": next_token},
    )
    events = [
        StackEvent(
            event_id=e.get("eventId", ""),
            timestamp=time_of(e.get("timestamp")),
            logical_id=e.get("logicalResourceId", ""),
            resource_type=e.get("resourceType", ""),
            status=e.get("resourceStatus", ""),
            reason=one_line(e.get("resourceStatusReason") or ""),
        )
        for e in data.get("events") or ()
    ]
    return events, data.get("nextToken")


def _all_pages(function: str, what: str, kwargs: dict[str, Any], key: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    token = None
    while True:
        data = _call(function, what, {**kwargs, "next_token": token})
        items += data.get(key) or []
        token = data.get("nextToken")
        if not token:
            return items


def _call(function: str, what: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """One pcluster.lib call: the response as pcluster's API sends it (camelCase JSON), or our error."""
    import pcluster.lib
    from pcluster.api.errors import ParallelClusterApiException
    from pcluster.aws.aws_api import AWSApi
    from pcluster.aws.common import Cache
    from pcluster.cli.exceptions import CLIException

    call: Callable[..., Any] = getattr(pcluster.lib, function)
    # pcluster logs the errors it raises; with no handler of its own Python would print them on stderr
    # beside our one-line error. The message reaches the user through the exception; --debug can add a handler.
    quiet = logging.getLogger("pcluster")
    if not quiet.handlers:
        quiet.addHandler(logging.NullHandler())
    # When one validator fails early pcluster drops its async validators unawaited; Python then warns on
    # stderr whenever they are collected, even at exit. The warning names pcluster's class: ignore just it.
    warnings.filterwarnings(
        "ignore", message="coroutine 'AsyncValidator.execute_async' was never awaited", category=RuntimeWarning
    )
    args = {key: value for key, value in kwargs.items() if value is not None}
    with ENV_LOCK:
        # pcluster sets AWS_DEFAULT_REGION for its clients and leaves it set: put back what was there.
        saved = os.environ.get("AWS_DEFAULT_REGION")
        # Like ParallelCluster's own API server before each request (api/flask_app.py): its caches and
        # AWSApi singleton would otherwise serve a long-lived process stale stack status on the next poll.
        Cache.clear_all()
        AWSApi.reset()
        try:
            result = call(**args)
        except Exception as exc:
            if isinstance(exc, ParallelClusterApiException):
                error, cause = api_error(exc, what), None
            elif isinstance(exc, CLIException):  # ParameterException (a bad argument), APIOperationException
                error, cause = cli_error(exc, what), None
            else:  # botocore (no credentials, unreachable endpoint) and the unforeseen: keep it for --debug
                error, cause = other_error(exc, what), exc
            error.command = f"pcluster.lib.{function}"
            raise error from cause
        finally:
            if saved is None:
                os.environ.pop("AWS_DEFAULT_REGION", None)
            else:
                os.environ["AWS_DEFAULT_REGION"] = saved
    return result if isinstance(result, dict) else {}


@contextmanager
def _config_file(config_yaml: str) -> Iterator[str]:
    # pcluster.lib reads a str cluster_configuration as a PATH; a file keeps our exact text (comments
    # included) as the config ParallelCluster stores, where yaml.dump of a dict would not.
    fd, path = tempfile.mkstemp(prefix="clustertools-", suffix=".yaml")  # 0600: readable by us alone
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(config_yaml)
        yield path
    finally:
        os.unlink(path)


@contextmanager
def profile_environment(profile: str | None) -> Iterator[None]:
    """pcluster.lib builds its clients from the boto3 chain only: a profile reaches it as AWS_PROFILE,
    set for the block and put back after (like the region in each call)."""
    if profile is None:
        yield
        return
    saved = os.environ.get("AWS_PROFILE")
    os.environ["AWS_PROFILE"] = profile
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("AWS_PROFILE", None)
        else:
            os.environ["AWS_PROFILE"] = saved

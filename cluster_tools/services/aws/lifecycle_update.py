"""`clustertools update`: the project's `parallelcluster:` section applied to its running cluster in place (issue 17,
item 2), through ParallelCluster's own update-cluster.

First the change set, judged offline by ParallelCluster's own update check (pcluster's ConfigPatch and each
parameter's UpdatePolicy, run here by ``pcluster_schema.preview_update``) against the config the cluster runs now
(read from ParallelCluster's bucket) and what the cluster is doing now (its compute fleet, from describe). Changes
ParallelCluster can never apply in place are refused with its reason; changes it applies only with the compute fleet
stopped are refused unless asked (``stop_fleet``: stop, update, start again). Then the update, waited for with the
stack's events as progress.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import yaml

from cluster_tools.errors import ClusterToolsError, ConfigError
from cluster_tools.model.clusters.cluster_record import ClusterRecord
from cluster_tools.model.progress import Progress
from cluster_tools.model.project.project_config import Project
from cluster_tools.store.cluster_store import load_cluster
from cluster_tools.store.state_dir import StateDir
from cluster_tools.transport import pcluster as pc
from cluster_tools.transport.pcluster_schema import ClusterFacts, ConfigChange, preview_update

# The one fleet state in which pcluster's has_running_capacity() is false (pcluster/models/cluster.py).
_FLEET_STOPPED = ("STOPPED",)


class UpdateRefused(ClusterToolsError):
    """ParallelCluster cannot apply the change set now, or ever, in place."""


@dataclass(frozen=True)
class UpdatePlan:
    cluster: str
    region: str
    fleet_status: str  # RUNNING, STOPPED, ... as describe says
    changes: tuple[ConfigChange, ...]  # as ParallelCluster judges them now
    target_yaml: str
    needs_fleet_stop: tuple[ConfigChange, ...] = ()  # applied only with the compute fleet stopped
    never: tuple[ConfigChange, ...] = ()  # not even then: a new cluster is needed
    head_node_state: str = "running"  # EC2's: an update needs it running (its cfn-hup applies the change)


@dataclass(frozen=True)
class UpdateOutcome:
    plan: UpdatePlan
    applied: bool
    fleet_stopped_and_started: bool = False
    stack_status: str | None = None


def plan_update(project: Project | None, record: ClusterRecord, *, allowed_ip: str | None = None) -> UpdatePlan:
    """The change set of the project's section against the cluster's running config, judged by ParallelCluster's
    update check for the fleet as it is now and, for what fails, as it would be stopped. Raises ConfigError (the
    section has problems, or names another cluster), UpdateRefused (the cluster is busy), PclusterError."""
    if record.sandbox or record.provider != "parallelcluster":
        raise ConfigError(
            f"{record.name} is not a ParallelCluster cluster: `update` changes one made by `clustertools up`",
            "the sandbox plays the project's cluster when it starts: `clustertools sandbox down`, then "
            "`clustertools sandbox up`"
            if record.sandbox
            else "change it by its own admin's means",
        )
    region = record.region or "us-east-1"
    described = pc.describe_cluster(record.name, region=region)
    if described.stack_status.endswith("_IN_PROGRESS"):
        raise UpdateRefused(
            f"{record.name} is {described.stack_status}: one change at a time",
            f"wait for it to finish (`clustertools describe -c {record.name}`), then update",
        )
    base_yaml = pc.cluster_config_text(record.name, region=region)
    target_yaml = _render_target(project, record, base_yaml, allowed_ip)
    fleet = described.compute_fleet_status or "UNKNOWN"
    head_state = described.head_node.state if described.head_node else "running"
    now = preview_update(
        base_yaml, target_yaml, ClusterFacts(record.name, fleet not in _FLEET_STOPPED, head_state), region
    )
    stopped = preview_update(base_yaml, target_yaml, ClusterFacts(record.name, False, head_state), region)
    stopped_by_key = {(c.parameter, c.current, c.requested): c for c in stopped}
    never = tuple(c for c in stopped if not c.allowed)
    needs_stop = tuple(
        c for c in now if not c.allowed and stopped_by_key.get((c.parameter, c.current, c.requested), c).allowed
    )
    return UpdatePlan(
        record.name,
        region,
        fleet,
        now,
        target_yaml,
        needs_fleet_stop=needs_stop,
        never=never,
        head_node_state=head_state,
    )


def apply_update(
    plan: UpdatePlan,
    *,
    stop_fleet: bool = False,
    progress: Progress = lambda _: None,
    on_event: Callable[[pc.StackEvent], None] | None = None,
    poll_seconds: float = 30.0,
    timeout_seconds: float = 3600.0,
    sleep: Callable[[float], None] = time.sleep,
) -> UpdateOutcome:
    """Apply a plan: refused when ParallelCluster cannot apply it in place, or needs the fleet stopped and
    ``stop_fleet`` was not given; else (fleet stopped first when needed) updated, waited for, fleet started again."""
    from cluster_tools.services.aws.stack_progress import wait_for_update

    if not plan.changes:
        return UpdateOutcome(plan, applied=False)
    _refuse_unless_applicable(plan, stop_fleet)
    stopping = bool(plan.needs_fleet_stop)
    if stopping:
        _set_fleet(plan, "STOP_REQUESTED", "STOPPED", progress, poll_seconds, timeout_seconds, sleep)
    progress(f"updating {plan.cluster}: {len(plan.changes)} change(s)")
    since = datetime.now(UTC) - timedelta(minutes=1)  # this clock may run behind AWS's a little
    pc.update_cluster(plan.cluster, plan.target_yaml, region=plan.region)
    described = wait_for_update(
        plan.cluster,
        plan.region,
        since=since,
        poll_seconds=poll_seconds,
        timeout_seconds=timeout_seconds,
        on_event=on_event,
        sleep=sleep,
    )
    if stopping:
        _set_fleet(plan, "START_REQUESTED", "RUNNING", progress, poll_seconds, timeout_seconds, sleep)
    return UpdateOutcome(plan, applied=True, fleet_stopped_and_started=stopping, stack_status=described.stack_status)


def _refuse_unless_applicable(plan: UpdatePlan, stop_fleet: bool) -> None:
    """UpdateRefused when ParallelCluster cannot apply ``plan`` in place, the head node is not running, or the
    plan needs the compute fleet stopped and ``stop_fleet`` was not given."""
    if plan.never:
        first = plan.never[0]
        raise UpdateRefused(
            f"ParallelCluster cannot change {first.parameter} of {plan.cluster} in place: "
            f"{first.reason or first.policy}",
            f"{first.action_needed or 'restore it'}; or `clustertools down`, then `clustertools up`",
        )
    if plan.head_node_state != "running":
        # ParallelCluster's update waits for the head node to apply it (cfn-hup, then a wait condition): a stopped
        # head node would keep the stack UPDATE_IN_PROGRESS until it times out and rolls back.
        raise UpdateRefused(
            f"the head node of {plan.cluster} is {plan.head_node_state}: it applies the update",
            f"`clustertools start -c {plan.cluster}`, then update",
        )
    if plan.needs_fleet_stop and not stop_fleet:
        first = plan.needs_fleet_stop[0]
        raise UpdateRefused(
            f"{len(plan.needs_fleet_stop)} change(s) need the compute fleet of {plan.cluster} stopped "
            f"(first: {first.parameter}: {first.reason or first.policy})",
            "rerun with --stop-fleet: it stops every compute node (running tasks are interrupted), "
            "updates, then starts the fleet again",
        )


def _render_target(project: Project | None, record: ClusterRecord, base_yaml: str, allowed_ip: str | None) -> str:
    """The project's section rendered and checked as `up` does. SSH ingress nobody restated (no --allowed-ip,
    no allowed_ips in the project) stays what the cluster has, never the placeholder."""
    from cluster_tools.services.aws.cluster_config import cluster_spec_of, validate_project_cluster

    spec = cluster_spec_of(project)
    if allowed_ip is None and spec.allowed_ips is None:
        allowed_ip = _running_allowed_ips(base_yaml)
    rendered, problems = validate_project_cluster(project, allowed_ip=allowed_ip)
    if rendered.cluster_name != record.name:
        raise ConfigError(
            f"the project's cluster is {rendered.cluster_name}, not {record.name}",
            "run update in that cluster's project, or set parallelcluster.name",
        )
    if problems:
        raise ConfigError(
            f"{len(problems)} problem(s) in the ParallelCluster config: {problems[0]}",
            "`clustertools validate` lists them all",
        )
    return rendered.yaml_text


def _running_allowed_ips(base_yaml: str) -> str | None:
    try:
        value = ((yaml.safe_load(base_yaml) or {}).get("HeadNode") or {}).get("Ssh", {}).get("AllowedIps")
    except (yaml.YAMLError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def _set_fleet(
    plan: UpdatePlan,
    request: pc.FleetStatus,
    goal: str,
    progress: Progress,
    poll_seconds: float,
    timeout_seconds: float,
    sleep: Callable[[float], None],
) -> None:
    pc.update_compute_fleet(plan.cluster, request, region=plan.region)
    waited = 0.0
    while True:
        status = pc.describe_cluster(plan.cluster, region=plan.region).compute_fleet_status or "UNKNOWN"
        progress(f"compute fleet of {plan.cluster}: {status}")
        if status == goal:
            return
        if waited >= timeout_seconds:
            raise ClusterToolsError(
                f"the compute fleet of {plan.cluster} did not reach {goal} in "
                f"{timeout_seconds / 60:.0f} minutes (it is {status})",
                f"`clustertools describe -c {plan.cluster}`; nothing was updated yet"
                if goal == "STOPPED"
                else f"start it with `clustertools start -c {plan.cluster}`",
            )
        sleep(poll_seconds)
        waited += poll_seconds


def project_cluster_record(state: StateDir, project: Project | None, explicit: str | None) -> ClusterRecord:
    """The cluster `update` changes: ``-c NAME``, else the one the project's parallelcluster: section makes (not the
    project's ``cluster:``, which names where runs go and may be the sandbox)."""
    from cluster_tools.model.aws.cluster_spec import cluster_name_for
    from cluster_tools.services.aws.cluster_config import cluster_spec_of, require_project

    if explicit:
        return load_cluster(state, explicit)
    project = require_project(project)
    return load_cluster(state, cluster_name_for(cluster_spec_of(project), project.name))


def update_cluster(
    project: Project | None,
    record: ClusterRecord,
    *,
    dry_run: bool = False,
    stop_fleet: bool = False,
    allowed_ip: str | None = None,
    profile: str | None = None,
    progress: Progress = lambda _: None,
    on_event: Callable[[pc.StackEvent], None] | None = None,
    poll_seconds: float = 30.0,
    timeout_seconds: float = 3600.0,
    sleep: Callable[[float], None] = time.sleep,
) -> UpdateOutcome:
    """`clustertools update`: the plan (all of it with ``dry_run``), then, unless refused, the update applied."""
    with pc.profile_environment(profile):
        plan = plan_update(project, record, allowed_ip=allowed_ip)
        if dry_run:
            return UpdateOutcome(plan, applied=False)
        return apply_update(
            plan,
            stop_fleet=stop_fleet,
            progress=progress,
            on_event=on_event,
            poll_seconds=poll_seconds,
            timeout_seconds=timeout_seconds,
            sleep=sleep,
        )

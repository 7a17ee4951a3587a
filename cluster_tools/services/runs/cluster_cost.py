"""What a cluster has cost so far (``cost --cluster``): a ParallelCluster cluster's head node since it started,
the compute nodes of the runs known here (priced by run_cost.py's ``cost_of_run``), its shared storage, and what
bills right now; the sandbox's figures are what it would have cost on AWS.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from cluster_tools.errors import ClusterToolsError, ConfigError, HostKeyMismatch
from cluster_tools.model.project.project_config import Project
from cluster_tools.services.runs.run_cost import cost_of_run
from cluster_tools.transport.remote_shell import ShellFactory, lent


@dataclass
class ClusterCost:
    """A ParallelCluster cluster's cost since it was created: its head node's uptime, the compute nodes
    of the runs known here (from their records), its storage; and what bills right now."""

    cluster: str
    since: datetime | None
    head_type: str
    head_hours: float
    head_dollars: float
    runs: list[tuple[str, float]]  # (run id, compute dollars from its records)
    storage: str | None  # what the shared storage is, and its cost so far
    storage_dollars: float
    running_now: list[tuple[str, str]]  # (instance id, type) of compute nodes running now
    hourly_now: float
    source: str
    notes: list[str] = field(default_factory=list)
    nodes: list[tuple[str, str, float, float]] = field(default_factory=list)  # the sandbox's: (node, type, hours, $)

    @property
    def total(self) -> float:
        return self.head_dollars + sum(d for _, d in self.runs) + self.storage_dollars + sum(d for *_, d in self.nodes)


def _runs_cost(state, record, project: Project | None, connect: ShellFactory, note) -> list[tuple[str, float]]:
    """(run id, compute dollars so far) of each run of ``record`` known here."""
    from cluster_tools.services.runs.run_follow import status_once
    from cluster_tools.store.run_store import list_runs

    runs = []
    known = [r for r in list_runs(state) if r.cluster == record.name and r.attempts]
    with ExitStack() as stack:
        reach: ShellFactory = connect
        if known:  # one SSH connection for every run's status (each falls back to S3 if it cannot be had)
            try:
                conn = stack.enter_context(connect(record))
                reach = lent(conn)
            except HostKeyMismatch:
                raise
            except ClusterToolsError:
                pass
        for run in known:
            status = status_once(state, run, record, reach, note=note)
            runs.append((run.run_id, cost_of_run(project, run.job, status.subjects).cost.compute_dollars))
    return runs


def _storage_cost(project: Project | None, table, region: str, hours: float) -> tuple[str | None, float]:
    """The shared storage the cluster created (not an existing one), and what its ``hours`` cost."""
    from cluster_tools.model.cost.pricing import HOURS_PER_MONTH, storage_monthly_price
    from cluster_tools.services.clusters.lifecycle_down import STORAGE_PRICE_KIND

    spec = project.parallelcluster if project is not None else None
    if spec is None or spec.shared_storage is None or spec.shared_storage.existing_id:
        return None, 0.0
    kind, default = STORAGE_PRICE_KIND[spec.shared_storage.type]
    size = spec.shared_storage.size_gb or default
    if size is None:  # EFS (no default size) bills what is stored: unknown here
        return None, 0.0
    quote = storage_monthly_price(table, region, kind, size)
    return f"{spec.shared_storage.type} '{spec.shared_storage.name}' {quote.size_gb:g} GB", (
        quote.monthly_usd * hours / HOURS_PER_MONTH
    )


def cluster_cost(
    state, record, project: Project | None, connect: ShellFactory, *, now: datetime | None = None, note=lambda _: None
) -> ClusterCost:
    """The cost so far of a ParallelCluster cluster (described through our pcluster transport)."""

    from cluster_tools.model.cost.pricing import instance_price, load_price_table
    from cluster_tools.services.clusters.describe import describe_parallelcluster, hourly_cost, queue_capacities

    if record.sandbox:
        return sandbox_cluster_cost(state, project, now=now)
    if record.provider != "parallelcluster":
        raise ConfigError(
            f"{record.name} is a cluster clustertools did not create: there is no AWS bill of it to add up",
            "`clustertools cost RUN` prices a run on the project's cluster",
        )
    now = now or datetime.now(UTC)
    info = describe_parallelcluster(record.name, record.region, record)
    table = load_price_table()
    region = info.region or record.region or ""
    head = info.head_node
    since = head.launch_time if head is not None else None
    head_hours = max(0.0, (now - since).total_seconds() / 3600) if since else 0.0
    head_type = head.instance_type if head is not None else "?"
    head_dollars = head_hours * instance_price(table, region, head_type).hourly_usd if head is not None else 0.0
    runs = _runs_cost(state, record, project, connect, note)
    storage, storage_dollars = _storage_cost(project, table, region, head_hours) if since else (None, 0.0)
    costs, cost_note = hourly_cost(info, queue_capacities(project) if project else {})
    notes = [cost_note] if cost_note else []
    if not runs:
        notes.append("no run of this cluster is known here: compute nodes are not counted")
    running = [
        (i.instance_id, i.instance_type)
        for nodes in info.queues.values()
        for i in nodes
        if i.state in ("pending", "running")
    ]
    return ClusterCost(
        record.name,
        since,
        head_type,
        head_hours,
        head_dollars,
        runs,
        storage,
        storage_dollars,
        running,
        costs["hourly_usd"] if costs else 0.0,
        table.label,
        notes,
    )


def sandbox_cluster_cost(state, project: Project | None, *, now: datetime | None = None) -> ClusterCost:
    """What the sandbox would have cost on AWS since it started: a head node all along, and each compute node
    from its boot to its power-down (as an instance bills from launch to termination; from power.log), at the
    project's region, head node type and queues' capacity types. It runs on this machine: it costs nothing."""
    from cluster_tools.model.cost.pricing import instance_price, load_price_table
    from cluster_tools.services.clusters.describe import queue_capacities
    from cluster_tools.services.sandbox.sandbox_files import sandbox_paths
    from cluster_tools.services.sandbox.sandbox_nodes import node_uptimes, saved_nodes

    paths = sandbox_paths(state.sandbox)
    since = _sandbox_started(paths.state_file)
    now = now or datetime.now(UTC)
    spec = project.parallelcluster if project else None
    region, head_type = (spec.region, spec.head_node_instance_type) if spec else ("us-east-1", "t3.medium")
    capacities = queue_capacities(project) if spec else {}
    table = load_price_table()
    notes = [
        "the sandbox runs on this machine and costs nothing: this is what it would have cost on AWS"
        + ("" if spec else " (us-east-1, a t3.medium head node: no project's parallelcluster: section here)")
    ]
    head_hourly = instance_price(table, region, head_type).hourly_usd
    head_hours = (now - since).total_seconds() / 3600
    log = paths.log / "power.log"
    spans = node_uptimes(log.read_text() if log.exists() else "", since, now)
    nodes, running, hourly_now = _sandbox_nodes(
        saved_nodes(state), spans, now, table, region, capacities, notes, head_hourly
    )
    return ClusterCost(
        "sandbox",
        since,
        head_type,
        head_hours,
        head_hours * head_hourly,
        [],
        None,
        0.0,
        running,
        hourly_now,
        table.label,
        notes,
        nodes,
    )


def _sandbox_started(state_file: Path) -> datetime:
    """When the sandbox was started here (its state file says); never started is a SandboxError."""
    import json

    from cluster_tools.errors import SandboxError

    try:
        return datetime.fromisoformat(json.loads(state_file.read_text())["started_at"])
    except (OSError, ValueError, KeyError):
        raise SandboxError("the sandbox was never started here", "clustertools sandbox up") from None


def _sandbox_nodes(saved, spans, now: datetime, table, region: str, capacities, notes: list[str], head_hourly: float):
    """Each compute node's (node, type, hours, $) while it was up, the nodes up now, and what bills per hour now
    (the head node's ``head_hourly`` and theirs). A node whose type has no price costs nothing; ``notes`` says so."""
    from cluster_tools.model.cost.pricing import PriceNotFound, instance_price

    nodes, running, hourly_now = [], [], head_hourly
    for node in saved:
        hours = sum(((end or now) - start).total_seconds() for start, end in spans.get(node.name, ())) / 3600
        try:
            hourly = instance_price(
                table, region, node.instance_type, capacities.get(node.queue, "ondemand")
            ).hourly_usd
        except PriceNotFound:
            hourly = 0.0
            notes.append(f"{node.name}: {node.instance_type} has no price (a project's queues give nodes EC2 types)")
        if spans.get(node.name) and spans[node.name][-1][1] is None:
            running.append((node.name, node.instance_type))
            hourly_now += hourly
        if hours:
            nodes.append((node.name, node.instance_type, hours, hours * hourly))
    return nodes, running, hourly_now

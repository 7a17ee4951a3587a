"""``describe``: a cluster's state. For AWS ParallelCluster its status, head node and the compute nodes of
each queue (from pcluster.lib, through our transport); for an SSH or sandbox cluster its partitions (sinfo).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cluster_tools.model.clusters.cluster_record import ClusterRecord
from cluster_tools.model.project.project_config import Project
from cluster_tools.services.remote.autostop_control import autostop_armed
from cluster_tools.store.state_dir import StateDir
from cluster_tools.transport import pcluster as pc

if TYPE_CHECKING:
    from cluster_tools.model.cost.pricing import Capacity


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
    # An SSH or sandbox cluster's nodes as sinfo shows them: name, partition, state (with its power state:
    # "idle (powered down)"), cpus, memory_mb; and on the sandbox the EC2 type its queue plays.
    nodes: list[dict] = field(default_factory=list)
    failure_reason: str | None = None
    # ParallelCluster: head node + running compute per hour: {"hourly_usd", "monthly_usd", "estimate",
    # "source", "lines"}; the sandbox costs nothing; a cluster reached over SSH is not ours to price.
    cost: dict | None = None
    cost_note: str | None = None
    # The head node's idle autostop (status.json of bootstrap/autostop.sh, read over SSH) with its "summary" line;
    # None where it is not installed or not readable (autostop_note says why).
    autostop: dict | None = None
    autostop_note: str | None = None
    # Stopped (autostop, or by hand): a ParallelCluster head node stopping or stopped, or every partition INACTIVE
    # (the sandbox's autostop; a ParallelCluster fleet stopped under a running head node). `clustertools start`.
    stopped: bool = False

    def mark_stopped(self) -> None:
        head = self.head_node.state if self.head_node else None
        self.stopped = head in ("stopping", "stopped") or bool(
            self.partitions and all(p.get("avail") == "inactive" for p in self.partitions)
        )


def describe(state: StateDir, explicit: str | None, project: Project | None, *, quote=None) -> Description:
    """-c NAME, else the project's cluster, else the only one known. A ParallelCluster cluster of the project
    that is not recorded locally (still creating, or recorded elsewhere) is described from AWS all the same."""
    from cluster_tools.errors import ClusterNotFound
    from cluster_tools.store.cluster_store import load_cluster, resolve_cluster_name

    spec = project.parallelcluster if project else None
    ours = None  # the name of the project's own ParallelCluster cluster
    if project is not None and spec is not None:
        from cluster_tools.model.aws.cluster_spec import cluster_name_for

        ours = cluster_name_for(spec, project.name)
    try:
        record: ClusterRecord | None = load_cluster(
            state, resolve_cluster_name(state, explicit, project.cluster if project else None)
        )
    except ClusterNotFound:
        if ours is None or explicit not in (None, ours):
            raise
        record = None
    if record is None or record.provider == "parallelcluster":
        name = record.name if record else ours
        assert name is not None  # without a record, ClusterNotFound was raised unless there is ours
        region = (record.region if record else None) or (spec.region if spec else None)
        info = describe_parallelcluster(name, region, record)
        info.cost, info.cost_note = hourly_cost(info, queue_capacities(project) if name == ours else {}, quote=quote)
        armed = (name == ours and spec is not None and spec.autostop_minutes is not None) or (
            record is not None and autostop_armed(state, name)
        )
        if record is not None and armed and info.head_node is not None and info.head_node.state == "running":
            info.autostop, info.autostop_note = _autostop_of(state, record)
        info.mark_stopped()
        return info
    info = _describe_over_ssh(state, record)
    if record.sandbox:
        info.cost, info.cost_note = _sandbox_cost(state, info, project, quote=quote)
    info.mark_stopped()
    return info


def describe_parallelcluster(name: str, region: str | None, record: ClusterRecord | None = None) -> Description:
    described = pc.describe_cluster(name, region=region)
    queues: dict[str, list[pc.Instance]] = {}
    for instance in pc.describe_cluster_instances(name, region=region, node_type="ComputeNode"):
        queues.setdefault(instance.queue_name or "?", []).append(instance)
    return Description(
        name=name,
        provider="parallelcluster",
        address=record.address if record else None,
        status=described.status,
        region=described.region or region,
        head_node=described.head_node,
        queues=queues,
        failure_reason=described.failure_reason,
    )


def hourly_cost(info: Description, capacities: Mapping[str, Capacity], *, quote=None) -> tuple[dict | None, str | None]:
    """What the cluster costs per hour now: its head node (on-demand) and its running compute nodes, priced
    from the shipped price table (its date is shown). ``capacities``: queue -> "spot"/"ondemand"; a queue
    not known (no project here) is priced on-demand, and the note says so."""
    from cluster_tools.model.cost.pricing import HOURS_PER_MONTH, PriceNotFound, hourly_cluster_cost, load_price_table

    if info.head_node is None or not info.region or info.head_node.state not in ("pending", "running"):
        return None, "no head node running: nothing bills per hour but storage (its EBS volumes, shared storage)"
    counts: dict[tuple[str, Capacity], int] = {}
    unknown = set()
    for queue, nodes in info.queues.items():
        for node in nodes:
            if node.state in ("pending", "running"):
                capacity = capacities.get(queue)
                if capacity is None:
                    unknown.add(queue)
                counts[node.instance_type, capacity or "ondemand"] = (
                    counts.get((node.instance_type, capacity or "ondemand"), 0) + 1
                )
    table = load_price_table()
    try:
        breakdown = hourly_cluster_cost(
            table,
            info.region,
            (info.head_node.instance_type, "ondemand"),
            [(t, c, n) for (t, c), n in sorted(counts.items())],
            quote=quote,
        )
    except PriceNotFound as exc:
        return None, f"no price: {exc.message}"
    note = (
        (
            f"queue(s) {', '.join(sorted(unknown))} priced on-demand: their capacity type is in the project's "
            "clustertools.yaml, not found here"
        )
        if unknown
        else None
    )
    return {
        "hourly_usd": round(breakdown.total_hourly_usd, 4),
        "monthly_usd": round(breakdown.total_hourly_usd * HOURS_PER_MONTH, 2),
        "estimate": breakdown.estimate,
        "source": table.label
        if quote is None
        else f"AWS's prices where it answered, else the {table.label} (each line says)",
        "lines": breakdown.text_lines(),
    }, note


def queue_capacities(project: Project | None) -> dict[str, Capacity]:
    """queue -> "spot" | "ondemand", as the project's config renders them (a queue's own capacity_type, else
    its template's). Offline and pure: no AWS call."""
    import yaml

    from cluster_tools.services.aws.cluster_config import render_project_cluster

    try:
        rendered = yaml.safe_load(render_project_cluster(project, allowed_ip="192.0.2.1/32").yaml_text)
    except Exception:  # a project that does not render is reported by `validate`; the cost is then unknown
        return {}
    capacities: dict[str, Capacity] = {
        q["Name"]: "spot" if q.get("CapacityType") == "SPOT" else "ondemand"
        for q in rendered.get("Scheduling", {}).get("SlurmQueues", [])
    }
    return capacities


def _autostop_of(state: StateDir, record: ClusterRecord) -> tuple[dict | None, str | None]:
    """A ParallelCluster head node's autostop status: one short SSH connection, bounded."""
    from cluster_tools.errors import ClusterToolsError
    from cluster_tools.services.remote.autostop_control import read_autostop, status_path
    from cluster_tools.services.remote.cluster_shell import connect

    try:
        with connect(record, connect_timeout=10) as conn:
            return read_autostop(conn, status_path(state, record))
    except ClusterToolsError as exc:
        return None, f"cannot reach the head node to read it: {exc.message}"


def _describe_over_ssh(state: StateDir, record: ClusterRecord) -> Description:
    from cluster_tools.services.remote.autostop_control import read_autostop, sandbox_timer_running, status_path
    from cluster_tools.services.remote.cluster_shell import connect
    from cluster_tools.slurm.node_info import SINFO_NODES_FORMAT, parse_sinfo_nodes

    with connect(record) as conn:
        text = conn.run(["sinfo", "-h", "-o", "%P|%a|%D|%T"], timeout=30).check().text
        listed = parse_sinfo_nodes(conn.run(["sinfo", "-h", "-N", "-o", SINFO_NODES_FORMAT], timeout=30).check().text)
        autostop, autostop_note = read_autostop(
            conn, status_path(state, record), timer_running=sandbox_timer_running(state) if record.sandbox else None
        )
    partitions = []
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) == 4:
            partitions.append(dict(zip(("name", "avail", "nodes", "state"), parts, strict=True)))
    return Description(
        name=record.name,
        provider="sandbox" if record.sandbox else record.provider,
        address=record.address,
        status="reachable",
        region=record.region,
        partitions=partitions,
        cost_note="runs on this machine: no cloud cost" if record.sandbox else None,
        autostop=autostop,
        autostop_note=autostop_note,
        nodes=[
            {
                "name": n.name,
                "partition": n.partition,
                "state": n.label,
                "cpus": n.cpus,
                "memory_mb": n.memory_mb,
                "up": not {"powered down", "powering down"} & set(n.flags),
            }
            for n in listed
        ],
    )  # powering down: its instance is already being terminated


def _sandbox_cost(
    state: StateDir, info: Description, project: Project | None, *, quote=None
) -> tuple[dict | None, str]:
    """What the sandbox's nodes that are up (booting, running, idle before their scale-down) would cost on
    AWS per hour: each as the EC2 type its queue plays, at the project's region and capacity type, with the
    project's head node. The sandbox itself runs on this machine and costs nothing."""
    from cluster_tools.model.cost.pricing import PriceNotFound, hourly_cluster_cost, load_price_table
    from cluster_tools.services.sandbox.sandbox_nodes import saved_nodes

    free = "runs on this machine: no cloud cost"
    types = {n.name: n.instance_type for n in saved_nodes(state)}
    spec = project.parallelcluster if project else None
    capacities = queue_capacities(project) if spec else {}
    counts: dict[tuple[str, Capacity], int] = {}
    for node in info.nodes:
        if node["up"]:
            key = (types.get(node["name"], "?"), capacities.get(node["partition"].rstrip("*"), "ondemand"))
            counts[key] = counts.get(key, 0) + 1
    region = spec.region if spec else "us-east-1"
    table = load_price_table()
    try:
        breakdown = hourly_cluster_cost(
            table,
            region,
            (spec.head_node_instance_type, "ondemand") if spec else None,
            [(t, c, n) for (t, c), n in sorted(counts.items())],
            quote=quote,
        )
    except PriceNotFound as exc:
        return None, f"{free} (on AWS: no price, {exc.message}; a project's parallelcluster: queues give it EC2 types)"
    up = sum(counts.values())
    return (
        {
            "hourly_usd": round(breakdown.total_hourly_usd, 4),
            "estimate": breakdown.estimate,
            "source": f"what it would cost on AWS, {table.label}",
            "lines": breakdown.text_lines(),
        },
        f"{free}; on AWS, {'its head node and ' if spec else ''}{up} compute node(s) up now would bill as above",
    )

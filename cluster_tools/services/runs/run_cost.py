"""Cost of a run on the project's AWS cluster: estimated before it is sent (``cost estimate``, and
``submit`` before it sends), and computed from the run's durable records after (``cost RUN``).

Both price the run as the project's ``parallelcluster:`` cluster runs it: the queue the job goes to
(``job.partition``, else the first queue), its first instance type, its capacity type as the config
renders it, the head node on-demand; prices from the shipped price table (spot figures there are
estimates), or where ``services.price_lookup`` says. A run on the sandbox or another SSH cluster is priced
the same way: "what it would cost on AWS", and said so.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime

from cluster_tools.errors import ClusterToolsError, ConfigError, HostKeyMismatch
from cluster_tools.model.cost.cost_model import (
    NodeShape,
    Prices,
    RunCost,
    RunEstimate,
    TaskShape,
    TaskSpan,
    cost_from_records,
    estimate_run,
    slurm_mem_gib,
    slurm_minutes,
)
from cluster_tools.model.project.project_config import Project
from cluster_tools.model.runs.job_spec import JobSpec
from cluster_tools.transport.remote_shell import ShellFactory, lent


@dataclass(frozen=True)
class PricedQueue:
    queue: str
    node: NodeShape
    prices: Prices
    head_instance_type: str
    region: str
    notes: tuple[str, ...] = ()


@dataclass
class Estimate:
    priced: PricedQueue
    run: RunEstimate
    minutes_from: str  # "option" or "job.time (an upper bound)"
    notes: list[str] = field(default_factory=list)
    asked_aws: str | None = None  # what the table lacked (a type or region), when AWS priced it


@dataclass(frozen=True)
class CostUnknown:
    """``submit`` could not price the run: the table lacks a type or region and AWS did not answer either.
    ``reason`` is one line naming both."""

    reason: str


def priced_queue(project: Project | None, job: JobSpec | None = None, *, quote=None, shape=None) -> PricedQueue:
    """The queue a run of ``job`` (default: the project's) goes to, with its node shape and prices
    (``quote(region, type, capacity)``, e.g. ``price_lookup.live_quoter``, and ``shape(region, type)``;
    default: the shipped table)."""
    from cluster_tools.model.cost.pricing import load_price_table, shipped_instance_gpus
    from cluster_tools.services.aws.price_lookup import table_lookups
    from cluster_tools.services.clusters.describe import queue_capacities

    if project is None or project.parallelcluster is None:
        raise ConfigError(
            "cost figures need the project's parallelcluster: section (the cluster a run is priced on)",
            "see the one `clustertools init` writes, or cluster-config/examples/",
        )
    spec, job = project.parallelcluster, job or project.job
    queues = {q.name: q for q in spec.queues}
    if job.partition and job.partition not in queues:
        raise ConfigError(
            f"job.partition {job.partition!r} is not a queue of the project's cluster", f"queues: {', '.join(queues)}"
        )
    queue = queues[job.partition] if job.partition else spec.queues[0]
    notes = []
    if len(queue.instance_types) > 1:
        notes.append(
            f"queue {queue.name} lists {len(queue.instance_types)} instance types: priced as the first, "
            f"{queue.instance_types[0]}"
        )
    table = table_lookups(load_price_table())
    capacity = queue_capacities(project).get(queue.name, "ondemand")
    itype = queue.instance_types[0]
    vcpus, memory = (shape or table.shape)(spec.region, itype)
    node = NodeShape(
        itype,
        vcpus,
        memory,
        queue.max_count,
        capacity,
        scaledown_idle_minutes=float(spec.scaledown_idletime),
        gpus=shipped_instance_gpus(itype) or 0,
    )
    ask = quote or table.quote
    ondemand = ask(spec.region, itype, "ondemand")
    spot = ask(spec.region, itype, "spot")
    head = ask(spec.region, spec.head_node_instance_type, "ondemand")
    quotes = (ondemand, spot, head)
    notes += list(dict.fromkeys(q.note for q in quotes if q.note))
    prices = Prices(
        ondemand.hourly_usd,
        spot.hourly_usd,
        head.hourly_usd,
        ", ".join(dict.fromkeys(q.source for q in quotes)),
        spot.estimate,
    )
    return PricedQueue(queue.name, node, prices, spec.head_node_instance_type, spec.region, tuple(notes))


def task_shape(job: JobSpec, minutes: float) -> TaskShape:
    return TaskShape(
        cpus=job.cpus, mem_gib=slurm_mem_gib(job.mem), minutes=minutes, throttle=job.throttle, gpus=job.gpus
    )


def estimate(
    project: Project | None,
    subjects: int,
    minutes_per_subject: float | None,
    job: JobSpec | None = None,
    *,
    quote=None,
    shape=None,
) -> Estimate:
    job = job or (project.job if project else None)
    priced = priced_queue(project, job, quote=quote, shape=shape)
    assert job is not None
    if minutes_per_subject is None:
        minutes, source = slurm_minutes(job.time), f"job.time {job.time} (an upper bound: pass --minutes-per-subject)"
    else:
        minutes, source = minutes_per_subject, "option"
    run = estimate_run(subjects, task_shape(job, minutes), priced.node, priced.prices)
    return Estimate(priced, run, source, [*priced.notes, *run.notes])


def table_else_aws(work, aws=None):
    """``work(lookups)`` priced from the shipped table (``lookups`` None: no network); when the table lacks a
    type or region, once more with AWS asked for what it lacks (``aws()`` -> ``price_lookup.Lookups``, default
    ``aws_lookups()``). Returns (result, what the table lacked or None); raises PriceNotFound naming both
    reasons when AWS cannot answer either."""
    from cluster_tools.model.cost.pricing import LivePriceUnavailable, PriceNotFound, load_price_table
    from cluster_tools.services.aws.price_lookup import aws_lookups, table_then_aws
    from cluster_tools.transport.aws_prices import LIVE_HINT

    try:
        return work(None), None
    except PriceNotFound as exc:
        lacking = exc.message
    try:
        return work(table_then_aws(load_price_table(), (aws or aws_lookups)())), lacking
    except (PriceNotFound, LivePriceUnavailable) as exc:
        raise PriceNotFound(f"{lacking}, and {exc.message}", LIVE_HINT) from None


def _priced_from(lookups):
    return {"quote": lookups.quote, "shape": lookups.shape} if lookups else {}


def submit_estimate(
    project: Project,
    job: JobSpec,
    subjects: int,
    cluster_provider: str,
    minutes_per_subject: float | None = None,
    *,
    aws=None,
) -> Estimate | CostUnknown | None:
    """The estimate ``submit`` shows before it sends: only where the run spends money on AWS (a
    ParallelCluster cluster of the project); None elsewhere (the sandbox, a cluster reached over SSH).

    A type or region the table lacks never stops a submit: it is asked of AWS (``table_else_aws``), and
    when AWS cannot answer either the result is CostUnknown, with both reasons (see ``needs_confirmation``)."""
    from cluster_tools.model.cost.pricing import PriceNotFound

    if cluster_provider != "parallelcluster" or project.parallelcluster is None:
        return None
    minutes = minutes_per_subject or project.cost.minutes_per_subject
    try:
        result, lacking = table_else_aws(
            lambda lookups: estimate(project, subjects, minutes, job, **_priced_from(lookups)), aws
        )
    except PriceNotFound as exc:
        return CostUnknown(exc.message)
    result.asked_aws = lacking
    return result


def needs_confirmation(result: Estimate | CostUnknown | None, threshold_usd: float) -> bool:
    """Above ``cost.confirm_above_usd`` submit asks (a terminal) or needs --yes (a script). An unknown cost
    cannot be shown to be under the threshold, so it needs the same confirmation: the threshold guards
    against a bill nobody looked at, and a run nobody could price is exactly that."""
    if isinstance(result, CostUnknown):
        return True
    return result is not None and result.run.total > threshold_usd


@dataclass
class RecordedCost:
    priced: PricedQueue
    cost: RunCost
    subjects_with_records: int
    subjects_without: int
    asked_aws: str | None = None  # what the table lacked, when AWS priced it


def cost_of_run(project: Project | None, job: JobSpec, records, *, aws=None) -> RecordedCost:
    """The one computation of what a run cost, for ``cost RUN`` and ``report`` alike (``cost_model.
    cost_from_records``: each node from its boot to the end of its scale-down idle time, the head node
    throughout, each subject's share of its node). ``records``: the run's SubjectStatus list (status_once);
    subjects without start and end are left out. Prices as ``table_else_aws``."""
    priced, lacking = table_else_aws(lambda lookups: priced_queue(project, job, **_priced_from(lookups)), aws)
    records = list(records)
    spans = [s for s in (TaskSpan.of_record(r.subject, r.node, r.start, r.end) for r in records) if s]
    cost = cost_from_records(
        spans,
        priced.node,
        task_shape(job, slurm_minutes(job.time)),
        compute_hourly=priced.prices.compute_spot if priced.node.capacity == "spot" else priced.prices.compute_ondemand,
        head_hourly=priced.prices.head_ondemand,
    )
    return RecordedCost(priced, cost, len(spans), len(records) - len(spans), lacking)


def run_costs(project: Project | None, job: JobSpec, *, aws=None):
    """The report's cost hook: the run's RunCost from ``cost_of_run`` (the figure ``cost RUN`` shows), or None
    when the project has no cluster to price it on (no parallelcluster: section). Raises PriceNotFound
    when neither the table nor AWS can price it: the report then says "cost unknown" and why."""

    def costs(status) -> RunCost | None:
        try:
            return cost_of_run(project, job, status.subjects, aws=aws).cost
        except ConfigError:
            return None

    return costs


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
    import json

    from cluster_tools.errors import SandboxError
    from cluster_tools.model.cost.pricing import PriceNotFound, instance_price, load_price_table
    from cluster_tools.services.clusters.describe import queue_capacities
    from cluster_tools.services.sandbox.sandbox_files import sandbox_paths
    from cluster_tools.services.sandbox.sandbox_nodes import node_uptimes, saved_nodes

    paths = sandbox_paths(state.sandbox)
    try:
        since = datetime.fromisoformat(json.loads(paths.state_file.read_text())["started_at"])
    except (OSError, ValueError, KeyError):
        raise SandboxError("the sandbox was never started here", "clustertools sandbox up") from None
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
    nodes, running, hourly_now = [], [], head_hourly
    for node in saved_nodes(state):
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

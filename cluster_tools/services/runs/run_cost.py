"""Cost of a run on the project's AWS cluster: estimated before it is sent (``cost estimate``, and
``submit`` before it sends), and computed from the run's durable records after (``cost RUN``).

Both price the run as the project's ``parallelcluster:`` cluster runs it: the queue the job goes to
(``job.partition``, else the first queue), its first instance type, its capacity type as the config
renders it, the head node on-demand; prices from the shipped price table (spot figures there are
estimates), or where ``services.price_lookup`` says. A run on the sandbox or another SSH cluster is priced
the same way: "what it would cost on AWS", and said so. What a whole cluster has cost so far (``cost
--cluster``) is cluster_cost.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cluster_tools.errors import ConfigError
from cluster_tools.model.aws.cluster_spec import ClusterSpec, QueueSpec
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

    spec, queue = _queue_of(project, job)
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
    prices, price_notes = _prices(quote or table.quote, spec.region, itype, spec.head_node_instance_type)
    return PricedQueue(queue.name, node, prices, spec.head_node_instance_type, spec.region, (*notes, *price_notes))


def _queue_of(project: Project | None, job: JobSpec | None) -> tuple[ClusterSpec, QueueSpec]:
    """The project's cluster spec and the queue ``job`` (default: the project's) goes to."""
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
    return spec, queues[job.partition] if job.partition else spec.queues[0]


def _prices(ask, region: str, itype: str, head_type: str) -> tuple[Prices, list[str]]:
    """A node's on-demand and spot prices and the head node's from ``ask(region, type, capacity)``, and
    what the quotes noted."""
    ondemand = ask(region, itype, "ondemand")
    spot = ask(region, itype, "spot")
    head = ask(region, head_type, "ondemand")
    quotes = (ondemand, spot, head)
    prices = Prices(
        ondemand.hourly_usd,
        spot.hourly_usd,
        head.hourly_usd,
        ", ".join(dict.fromkeys(q.source for q in quotes)),
        spot.estimate,
    )
    return prices, list(dict.fromkeys(q.note for q in quotes if q.note))


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

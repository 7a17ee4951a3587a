"""clustertools cost estimate | cost RUN"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from cluster_tools.cli.app import App, cli, note
from cluster_tools.cli.flags import cluster_option, json_option
from cluster_tools.cli.output import print_json, print_table

if TYPE_CHECKING:
    from collections.abc import Callable

    from cluster_tools.model.cost.pricing import Quoter
    from cluster_tools.services.runs.run_cost import Estimate


class _CostGroup(click.Group):
    """``cost RUN`` reads as ``cost run RUN``: a run id is not a subcommand; ``cost --cluster`` as ``cost cluster``."""

    def resolve_command(self, ctx: click.Context, args: list[str]):
        if args and args[0] == "--cluster":
            return "cluster", self.commands["cluster"], args[1:]
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            return "run", self.commands["run"], args
        return super().resolve_command(ctx, args)


@cli.group(
    cls=_CostGroup,
    epilog="""\b
Examples:
  clustertools cost estimate subjects.txt --minutes-per-subject 8
  clustertools cost estimate --subjects 1000 --minutes-per-subject 8 --json
  clustertools cost RUN                 # what a finished run cost, per subject and in total
  clustertools cost --cluster           # what the project's AWS cluster has cost so far
""",
)
def cost() -> None:
    """What a run costs on the project's AWS cluster: an estimate before you submit, and the cost of a
    run from its records. Prices: the price table shipped with clustertools (its date is shown; spot
    figures there are estimates)."""


def _money(amount: float) -> str:
    from cluster_tools.model.cost.pricing import format_usd

    return "<$0.0001" if 0 < amount < 0.00005 else format_usd(amount)  # a subject of seconds costs next to nothing


@cost.command(
    epilog="""\b
Examples:
  clustertools cost estimate subjects.txt --minutes-per-subject 8
  clustertools cost estimate --subjects 1000 --minutes-per-subject 8
  clustertools cost estimate --subjects 1000 --minutes-per-subject 8 --live-prices
"""
)
@click.argument("subjects_file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--subjects", "count", type=click.IntRange(0), help="How many subjects (instead of a file).")
@click.option(
    "--minutes-per-subject",
    type=click.FloatRange(min=0, min_open=True),
    metavar="M",
    help="Minutes one subject takes, staging and upload included (default: job.time, an upper bound).",
)
@click.option(
    "--live-prices",
    is_flag=True,
    help="Ask AWS for today's prices (Pricing API, spot price history); the table when it cannot answer.",
)
@click.option("--profile", metavar="P", help="AWS profile for --live-prices (default: AWS_PROFILE).")
@json_option
@click.pass_obj
def estimate(
    app: App,
    subjects_file: Path | None,
    count: int | None,
    minutes_per_subject: float | None,
    live_prices: bool,
    profile: str | None,
    as_json: bool,
) -> None:
    """Estimate wall time and dollars of a run, head node included, spot and on-demand side by side."""
    from cluster_tools.errors import ConfigError
    from cluster_tools.services.runs.run_cost import estimate as estimate_cost

    if (subjects_file is None) == (count is None):
        raise ConfigError("give a subjects file or --subjects N", "e.g. clustertools cost estimate subjects.txt")
    if subjects_file is not None:
        from cluster_tools.model.runs.subjects import read_subject_file

        count = len(read_subject_file(subjects_file))
    project = app.project()
    quote = shape = None
    if live_prices and project is not None and project.parallelcluster is not None:
        quote, shape = _live_prices(app, project.parallelcluster.region, profile)
    result = estimate_cost(project, count or 0, minutes_per_subject, quote=quote, shape=shape)
    if as_json:
        _print_estimate_json(result)
    else:
        _print_estimate(result, live_prices)


def _live_prices(app: App, region: str, profile: str | None) -> tuple[Quoter, Callable[[str, str], tuple[int, float]]]:
    """A quoter of today's AWS prices in ``region``, and the instance shapes (the table's, else AWS's)."""
    from cluster_tools.model.cost.pricing import load_price_table
    from cluster_tools.services.aws.price_lookup import aws_lookups, live_quoter, table_then_aws

    endpoint = app.environ.get("AWS_ENDPOINT_URL")
    quote = live_quoter(region, profile=profile, endpoint_url=endpoint)
    # vCPUs and memory from the table, or from AWS for a type it lacks
    shape = table_then_aws(load_price_table(), aws_lookups(profile=profile, endpoint_url=endpoint)).shape
    return quote, shape


def _print_estimate_json(result: Estimate) -> None:
    run, priced = result.run, result.priced
    print_json(
        {
            "subjects": run.subjects,
            "queue": priced.queue,
            "instance_type": priced.node.instance_type,
            "capacity": run.capacity,
            "tasks_per_node": run.tasks_per_node,
            "packing": run.packing,
            "nodes": run.nodes,
            "waves": run.waves,
            "wall_minutes": round(run.wall_minutes, 1),
            "compute_node_hours": round(run.compute_node_hours, 2),
            "head_hours": round(run.head_hours, 2),
            "dollars": {k: round(v, 2) for k, v in run.dollars.items()},
            "minutes_from": result.minutes_from,
            "prices": priced.prices.source,
            "spot_is_estimate": priced.prices.spot_is_estimate,
            "notes": result.notes,
        }
    )


def _print_estimate(result: Estimate, live_prices: bool) -> None:
    run, priced = result.run, result.priced
    node = priced.node
    click.echo(
        f"{run.subjects} subjects on queue {priced.queue}: {node.instance_type} ({node.capacity}, "
        f"{node.vcpus} vCPUs, {node.memory_gib:g} GiB), {run.tasks_per_node} tasks per node ({run.packing}), up to "
        f"{node.max_nodes} nodes"
    )
    hours, minutes = divmod(round(run.wall_minutes), 60)
    click.echo(
        f"wall time ~{hours} h {minutes:02d} min: {run.waves} wave(s) on {run.nodes} node(s), "
        f"{node.boot_minutes:g} min boot; minutes per subject from {result.minutes_from}"
    )
    click.echo(
        f"compute {run.compute_node_hours:.1f} node-hours; head node {priced.head_instance_type} "
        f"{run.head_hours:.1f} h ({_money(run.head_dollars)})"
    )
    spot_mark = "~" if priced.prices.spot_is_estimate else ""
    rows = [
        (
            ("spot" + (" (this queue)" if run.capacity == "spot" else "")),
            f"{spot_mark}{_money(run.dollars['spot'])}",
            f"{spot_mark}{_money(run.per_subject('spot'))}",
        ),
        (
            ("on-demand" + (" (this queue)" if run.capacity == "ondemand" else "")),
            _money(run.dollars["ondemand"]),
            _money(run.per_subject("ondemand")),
        ),
    ]
    print_table(None, ["capacity", "total", "per subject"], rows)
    for line in result.notes:
        note(f"note: {line}")
    click.echo(f"prices: {priced.prices.source} ({priced.region}" + ("; spot ~ estimate)" if spot_mark else ")"))
    if not live_prices:
        note("note: today's prices from AWS with --live-prices")


@cost.command(
    "run",
    epilog="""\b
Examples:
  clustertools cost RUN
  clustertools cost RUN --json | jq '.per_subject'
""",
)
@click.argument("run_id", required=False)
@json_option
@click.pass_obj
def run_cost(app: App, run_id: str | None, as_json: bool) -> None:
    """What a run cost, from its durable records: each node from boot to scale-down, the head node, and
    each subject's share (its runtime on its share of a node). `clustertools report` shows the same total."""
    from cluster_tools.services.aws.price_lookup import aws_for

    run = app.run(run_id)
    result = run.cost(app.project(), aws=aws_for(app.environ), progress=note)
    c, priced = result.cost, result.priced
    if as_json:
        print_json(
            {
                "run": run.id,
                "queue": priced.queue,
                "instance_type": priced.node.instance_type,
                "capacity": priced.node.capacity,
                "total": round(c.total, 4),
                "compute": round(c.compute_dollars, 4),
                "head": round(c.head_dollars, 4),
                "overhead": round(c.overhead_dollars, 4),
                "node_hours": round(c.node_hours, 3),
                "head_hours": round(c.head_hours, 3),
                "per_subject": {s: round(v, 6) for s, v in c.per_subject.items()},
                "subjects_without_records": result.subjects_without,
                "prices": priced.prices.source,
            }
        )
        return
    cluster = run.cluster_record()
    if cluster is None or cluster.provider != "parallelcluster":
        note(f"run {run.id} ran on {run.record.cluster}: priced as it would cost on the project's AWS cluster")
    top = sorted(c.per_subject.items(), key=lambda item: -item[1])[:10]
    if top:
        print_table("most expensive subjects", ["subject", "cost"], [(s, _money(v)) for s, v in top])
    click.echo(
        f"run {run.id}: {_money(c.total)} = compute {_money(c.compute_dollars)} "
        f"({c.node_hours:.2f} node-hours of {priced.node.instance_type} {priced.node.capacity}) + head node "
        f"{_money(c.head_dollars)} ({c.head_hours:.2f} h); boot, idle and head overhead {_money(c.overhead_dollars)}"
    )
    if result.subjects_without:
        note(f"note: {result.subjects_without} subject(s) have no finished record yet and are not counted")
    if result.asked_aws:
        note(f"note: {result.asked_aws}: priced with AWS's figures ({priced.prices.source})")
    click.echo(f"prices: {priced.prices.source}")


@cost.command(
    "cluster",
    epilog="""\b
Examples:
  clustertools cost --cluster
  clustertools cost cluster -c study --json
""",
)
@cluster_option
@json_option
@click.pass_obj
def cluster_cost(app: App, cluster_name: str | None, as_json: bool) -> None:
    """What a ParallelCluster cluster has cost so far: its head node since it started, the compute nodes
    of its runs (from their records), its shared storage; and what it bills per hour now. For the sandbox:
    what it would have cost on AWS, each node from its boot to its power-down."""
    from cluster_tools.services.remote.cluster_shell import connect
    from cluster_tools.services.runs.cluster_cost import cluster_cost as cost_so_far

    result = cost_so_far(app.state, app.cluster(cluster_name), app.project(), connect, note=note)
    if as_json:
        print_json(
            {
                "cluster": result.cluster,
                "since": result.since.isoformat() if result.since else None,
                "total": round(result.total, 2),
                "head": {
                    "type": result.head_type,
                    "hours": round(result.head_hours, 2),
                    "dollars": round(result.head_dollars, 2),
                },
                "runs": [{"run": r, "compute": round(d, 4)} for r, d in result.runs],
                "storage": {"what": result.storage, "dollars": round(result.storage_dollars, 2)},
                "running_now": [{"instance": i, "type": t} for i, t in result.running_now],
                "nodes": [
                    {"node": n, "type": t, "hours": round(h, 4), "dollars": round(d, 4)} for n, t, h, d in result.nodes
                ],
                "hourly_now": result.hourly_now,
                "prices": result.source,
                "notes": result.notes,
            }
        )
        return
    since = result.since.strftime("%Y-%m-%d %H:%M UTC") if result.since else "?"
    click.echo(f"{result.cluster} since {since}: {_money(result.total)} so far ({result.source})")
    click.echo(f"  head node {result.head_type}: {result.head_hours:.1f} h = {_money(result.head_dollars)}")
    for run_id, dollars in result.runs:
        click.echo(f"  run {run_id}: compute {_money(dollars)}")
    for node, instance_type, hours, dollars in result.nodes:
        click.echo(f"  node {node} {instance_type}: {hours:.2f} h = {_money(dollars)}")
    if result.storage:
        click.echo(f"  storage {result.storage}: {_money(result.storage_dollars)}")
    click.echo(f"now: {_money(result.hourly_now)}/h, {len(result.running_now)} compute node(s) running")
    for line in result.notes:
        note(f"note: {line}")

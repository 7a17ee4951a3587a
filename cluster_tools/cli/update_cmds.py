"""clustertools update"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING

import click

from cluster_tools.cli.app import App, cli, note
from cluster_tools.cli.flags import cluster_option, json_option
from cluster_tools.cli.output import print_json
from cluster_tools.cli.progress_display import StackDisplay

if TYPE_CHECKING:
    from cluster_tools.services.aws.lifecycle_update import UpdateOutcome


@cli.command(
    short_help="Apply the project's parallelcluster: section to its running cluster, in place.",
    epilog="""\b
Examples:
  clustertools update --dry-run        # the change set, and what each change needs
  clustertools update                  # apply it (ParallelCluster's update-cluster), with the stack's events
  clustertools update --stop-fleet     # changes that need the compute fleet stopped: stop, update, start
""",
)
@cluster_option
@click.option("--dry-run", is_flag=True, help="Show the change set and what it needs; change nothing.")
@click.option(
    "--stop-fleet",
    is_flag=True,
    help="Allow changes that need the compute fleet stopped: stop it (running tasks are interrupted), "
    "update, start it again.",
)
@click.option("--profile", metavar="P", help="AWS profile (like awscli's --profile; default: AWS_PROFILE).")
@click.option(
    "--allowed-ip",
    metavar="CIDR",
    help="SSH ingress to the head node from now on (default: the project's allowed_ips, else what it has).",
)
@json_option
@click.pass_obj
def update(
    app: App,
    cluster_name: str | None,
    dry_run: bool,
    stop_fleet: bool,
    profile: str | None,
    allowed_ip: str | None,
    as_json: bool,
) -> None:
    """Change a running ParallelCluster cluster to what the project's parallelcluster: section says now (queues,
    instance types, counts, scaledown idle time, Slurm settings) without recreating it. The change set is judged
    first by ParallelCluster's own update check: changes it cannot apply in place are refused with its reason;
    queue changes drain the queue's nodes (QueueUpdateStrategy DRAIN); a few need the compute fleet stopped."""
    from cluster_tools.services.aws.lifecycle_update import project_cluster_record, update_cluster

    project = app.project()
    record = project_cluster_record(app.state, project, cluster_name)
    with StackDisplay(enabled=not as_json) as display:
        outcome = update_cluster(
            project,
            record,
            dry_run=dry_run,
            stop_fleet=stop_fleet,
            allowed_ip=allowed_ip,
            profile=profile,
            progress=display.progress,
            on_event=display.event,
        )
    _print_outcome(outcome, dry_run=dry_run, as_json=as_json)


def _print_outcome(outcome: UpdateOutcome, *, dry_run: bool, as_json: bool) -> None:
    plan = outcome.plan
    if as_json:
        print_json(
            {
                "cluster": plan.cluster,
                "region": plan.region,
                "fleet": plan.fleet_status,
                "dry_run": dry_run,
                "applied": outcome.applied,
                "stack_status": outcome.stack_status,
                "changes": [{**asdict(change), "needs": _needs(plan, change)} for change in plan.changes],
            }
        )
        return
    if not plan.changes:
        click.echo(f"{plan.cluster} already runs the project's config: nothing to update")
        return
    click.echo(f"{plan.cluster}: {len(plan.changes)} change(s); its compute fleet is {plan.fleet_status}")
    for change in plan.changes:
        click.echo(f"  {change.parameter}: {change.current} -> {change.requested}  [{_needs(plan, change)}]")
    if dry_run:
        click.echo(_verdict(plan))
    elif outcome.applied:
        click.echo(
            f"updated {plan.cluster}: {len(plan.changes)} change(s) applied ({outcome.stack_status})"
            + ("; the compute fleet was stopped for it and started again" if outcome.fleet_stopped_and_started else "")
        )
        note("queues whose nodes changed drain them: running tasks finish, new nodes take the next ones")


def _needs(plan, change) -> str:
    if change in plan.never:
        return f"needs a new cluster: {change.reason or change.policy}"
    if change in plan.needs_fleet_stop:
        return "needs the compute fleet stopped: --stop-fleet"
    return "in place" if change.allowed else (change.reason or change.check)


def _verdict(plan) -> str:
    if plan.never:
        return (
            f"dry run: {plan.cluster} cannot take {len(plan.never)} of these change(s) in place; "
            "restore them, or `clustertools down` then `clustertools up`"
        )
    if plan.needs_fleet_stop:
        return (
            f"dry run: `clustertools update --stop-fleet` would apply these to {plan.cluster} (its compute fleet "
            f"is {plan.fleet_status}); nothing was changed"
        )
    return f"dry run: `clustertools update` would apply these to {plan.cluster}; nothing was changed"

"""clustertools up | describe  (AWS ParallelCluster; describe also covers ssh and sandbox clusters)"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import click

from cluster_tools.cli.app import App, cli, note
from cluster_tools.cli.flags import cluster_option, json_option
from cluster_tools.cli.output import print_json, print_table
from cluster_tools.cli.progress_display import StackDisplay

if TYPE_CHECKING:
    from cluster_tools.model.project.project_config import Project
    from cluster_tools.services.aws.lifecycle_up import UpResult
    from cluster_tools.services.clusters.describe import Description

# Only the test suite sets this: validators a local AWS stand-in (moto) cannot serve, comma-separated.
# It applies to `up --dry-run` alone; a real create is never weakened.
SUPPRESS_ENV = "CLUSTERTOOLS_TEST_SUPPRESS_VALIDATORS"


def _finding_line(finding) -> str:
    return f"{finding.level:<7} {finding.check}: {finding.message}" + (
        f" (hint: {finding.hint})" if finding.hint else ""
    )


@cli.command(
    short_help="Create the project's AWS ParallelCluster, wait for it, and record and pin its head node.",
    epilog="""\b
Examples:
  clustertools up --allowed-ip 203.0.113.7/32 --dry-run     # everything but the create; prints the config
  clustertools up --allowed-ip "$(curl -s https://checkip.amazonaws.com)"
  clustertools up --profile study --region us-west-2 --allowed-ip 203.0.113.7
""",
)
@cluster_option
@click.option("--profile", metavar="P", help="AWS profile (like awscli's --profile; default: AWS_PROFILE).")
@click.option("--region", metavar="R", help="AWS region (default: the project's parallelcluster.region).")
@click.option(
    "--allowed-ip",
    metavar="CIDR",
    help="Your public IPv4 address: the only one allowed to SSH to the head node. Wins over the "
    "project's allowed_ips. clustertools never looks it up over the network.",
)
@click.option(
    "--identity-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Private key for the head node (default: ~/.ssh/<key pair name>.pem when it exists).",
)
@click.option(
    "--autostop",
    "autostop_minutes",
    type=click.IntRange(1, 10080),
    metavar="MINUTES",
    help="Stop the cluster after MINUTES idle (no job, SSH session or upload), from its head node: "
    "overrides parallelcluster.autostop_minutes. See `clustertools autostop`.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Render, validate, pre-flight and run ParallelCluster's dry run; upload and create nothing, print the config.",
)
@json_option
@click.pass_obj
def up(
    app: App,
    cluster_name: str | None,
    profile: str | None,
    region: str | None,
    allowed_ip: str | None,
    identity_file: Path | None,
    autostop_minutes: int | None,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Create the project's AWS ParallelCluster (its parallelcluster: section): validate offline,
    pre-flight, upload bootstrap/ (checksummed), create, wait, record the head node and pin its SSH
    host key. Idempotent: a cluster that already exists is reported, not created again.
    """
    from cluster_tools.services.aws import lifecycle_up

    project = app.project()
    _check_cluster_option(cluster_name, project)
    suppress = [v.strip() for v in app.environ.get(SUPPRESS_ENV, "").split(",") if v.strip()]
    text = app.project_file.read_text(encoding="utf-8") if app.project_file else None
    try:
        with StackDisplay(enabled=not as_json) as display:
            request = lifecycle_up.UpRequest(
                project,
                app.state,
                allowed_ip=allowed_ip,
                region=region,
                profile=profile,
                dry_run=dry_run,
                identity_file=identity_file,
                project_text=text,
                autostop_minutes=autostop_minutes,
                project_dir=app.project_file.parent if app.project_file else None,
                endpoint_url=app.environ.get("AWS_ENDPOINT_URL"),
                suppress_validators=suppress if dry_run else (),
                on_status=display.update,
                on_event=display.event,
                on_progress=display.progress,
                on_new_host_key=lambda host, key: note(f"pinned host key of {host} on first use: {key}"),
            )
            result = lifecycle_up.up(request)
    except lifecycle_up.UpBlocked as blocked:
        for finding in blocked.findings:
            click.echo(_finding_line(finding))
        raise
    _print_up_result(result, dry_run, as_json)


def _check_cluster_option(cluster_name: str | None, project: Project | None) -> None:
    """``up -c NAME`` names the project's cluster: another name is refused, not created."""
    if not (cluster_name and project and project.parallelcluster):
        return
    from cluster_tools.errors import ConfigError
    from cluster_tools.model.aws.cluster_spec import cluster_name_for

    if cluster_name != cluster_name_for(project.parallelcluster, project.name):
        raise ConfigError(
            f"-c {cluster_name}: the project's cluster is {cluster_name_for(project.parallelcluster, project.name)}",
            "set parallelcluster.name in clustertools.yaml to create it under another name",
        )


def _print_up_result(result: UpResult, dry_run: bool, as_json: bool) -> None:
    if as_json:
        print_json(
            {
                **asdict(result),
                "findings": [asdict(f) for f in result.findings],
                "record": result.record.model_dump(mode="json") if result.record else None,
            }
        )
        return
    for finding in result.findings:
        click.echo(_finding_line(finding))
    for item in result.bootstrap:
        verb = ("would upload" if dry_run else "uploaded") if item.action == "upload" else "unchanged"
        click.echo(f"bootstrap: {verb} {item.key} (sha256 {item.sha256[:12]})")
    for line in result.notes:
        note(f"note: {line}")
    if result.outcome == "dry-run":
        click.echo(result.config_yaml, nl=False)
        click.echo(f"ok: dry run of {result.cluster_name} ({result.region}) passed; nothing was uploaded or created")
    elif result.outcome == "exists":
        cluster = result.cluster
        click.echo(
            f"cluster {result.cluster_name} already exists ({cluster.status if cluster else '?'}); nothing created"
        )
    else:
        click.echo(
            f"created {result.cluster_name} in {result.region}"
            + (f": head node {result.record.address}" if result.record else "")
        )
        if result.host_key:
            how = {
                "console output": "from the instance's console output, pinned before connecting",
                "console fingerprints": "matches the console output's fingerprints, now pinned",
            }
            click.echo(
                f"host key ({how.get(result.host_key_source or '', 'trusted on first use, now pinned')}): "
                f"{result.host_key}"
            )


@cli.command(
    short_help="Show a cluster: its status, queues and nodes, and what they cost per hour now.",
    epilog="""\b
Examples:
  clustertools describe
  clustertools describe -c study --json
  clustertools describe --live-prices
""",
)
@cluster_option
@click.option(
    "--live-prices",
    is_flag=True,
    help="Price the running nodes at AWS's prices of today (the shipped table when AWS cannot answer).",
)
@json_option
@click.pass_obj
def describe(app: App, cluster_name: str | None, live_prices: bool, as_json: bool) -> None:
    """Show a cluster: for AWS ParallelCluster its status, head node, queues and their nodes; for an
    SSH or sandbox cluster its address, Slurm partitions and nodes (powered down, booting, up); for the
    sandbox also what its nodes that are up would cost on AWS."""
    from cluster_tools.services.clusters.describe import describe as describe_cluster

    project = app.project()
    quote = None
    if live_prices:
        from cluster_tools.services.aws.price_lookup import live_quoter

        quote = live_quoter(endpoint_url=app.environ.get("AWS_ENDPOINT_URL"))  # each price in its cluster's region
    info = describe_cluster(app.state, cluster_name, project, quote=quote)
    if as_json:
        print_json(asdict(info))
        return
    _print_cluster(info)
    _print_nodes(info)
    _print_cost_and_autostop(info)


def _print_cluster(info: Description) -> None:
    click.echo(f"{info.name} ({info.provider}" + (f", {info.region}" if info.region else "") + f"): {info.status}")
    if info.stopped:
        click.echo(f"stopped: it takes no new job (hint: `clustertools start -c {info.name}`)")
    if info.failure_reason:
        click.echo(f"failure: {info.failure_reason} (hint: `clustertools triage -c {info.name}`)")
    if info.address:
        click.echo(f"address: {info.address}")
    head = info.head_node
    if head:
        click.echo(
            f"head node: {head.instance_id} {head.instance_type} {head.state} "
            f"public {head.public_ip or '-'} private {head.private_ip or '-'}"
        )


def _print_nodes(info: Description) -> None:
    if info.provider == "parallelcluster":
        rows = [
            (q, i.instance_id, i.instance_type, i.state, i.private_ip)
            for q, nodes in sorted(info.queues.items())
            for i in nodes
        ]
        if rows:
            print_table("compute nodes", ("queue", "instance", "type", "state", "private ip"), rows)
        else:
            click.echo("compute nodes: none running (queues scale from 0)")
    elif info.partitions:
        print_table(
            "partitions",
            ("partition", "avail", "nodes", "state"),
            [(p["name"], p["avail"], p["nodes"], p["state"]) for p in info.partitions],
        )
    if info.nodes:
        print_table(
            "compute nodes",
            ("node", "partition", "state", "cpus", "memory"),
            [(n["name"], n["partition"], n["state"], n["cpus"], f"{n['memory_mb']} MB") for n in info.nodes],
        )


def _print_cost_and_autostop(info: Description) -> None:
    if info.cost:
        click.echo(f"cost per hour now ({info.cost['source']}; storage not included):")
        for line in info.cost["lines"]:
            click.echo(f"  {line}")
    if info.cost_note:
        click.echo(f"cost: {info.cost_note}")
    if info.autostop:
        click.echo(f"autostop: {info.autostop['summary']}")
    elif info.autostop_note:
        click.echo(f"autostop: unknown ({info.autostop_note})")

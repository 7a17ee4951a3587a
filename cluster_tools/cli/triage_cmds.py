"""clustertools triage"""

from __future__ import annotations

import click

from cluster_tools.cli.app import App, cli
from cluster_tools.cli.flags import cluster_option, json_option
from cluster_tools.cli.output import print_json


@cli.command(
    epilog="""\b
Examples:
  clustertools triage -c sandbox               # after `clustertools sandbox bootstrap` failed
  clustertools triage -c study                 # the last node that failed to come up, and the fleet
  clustertools triage -c study spot-dy-c6i-3   # one node (its Slurm name, or an instance id i-...)
  clustertools triage -c study head            # the head node's own bootstrap
  clustertools triage --json | jq .bootstrap
"""
)
@cluster_option
@click.argument("node", required=False)
@click.option(
    "--lines", type=click.IntRange(1, 1000), default=15, show_default=True, help="Lines that matter shown per log."
)
@json_option
@click.pass_obj
def triage(app: App, cluster_name: str | None, node: str | None, lines: int, as_json: bool) -> None:
    """Why a node did not come up: the failed bootstrap step, the logs that matter, the fleet.

    Says whether the node's bootstrap finished, failed (at which step, with which exit code, when, and
    that step's last output), still runs or never ran; shows the lines that matter from cloud-init-output,
    computemgtd, slurmd, clustermgtd, slurm_resume and slurmctld, the nodes Slurm holds down, and whether
    ParallelCluster put the fleet in protected mode.

    NODE defaults to the last node whose bootstrap failed, else the last one launched. Logs are read over
    one SSH connection to the head node (and from CloudWatch for ParallelCluster's compute nodes); missing
    logs are reported, not fatal. URL query strings and key-like strings are redacted.
    """
    from cluster_tools.model.nodes.triage_report import detail_lines, summary_lines
    from cluster_tools.services.remote.triage_logs import resolve
    from cluster_tools.services.remote.triage_logs import triage as run_triage

    record, name, region = resolve(app.state, cluster_name, app.project())
    report = run_triage(app.state, record, node, lines=lines, cluster_name=name, region=region)
    if as_json:
        print_json(report.to_json())
        return
    for line in summary_lines(report):
        click.echo(line)
    click.echo("")
    for line in detail_lines(report):
        click.echo(line)

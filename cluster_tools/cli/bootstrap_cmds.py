"""clustertools bootstrap refresh."""

from __future__ import annotations

import click

from cluster_tools.cli.app import App, cli, note
from cluster_tools.cli.common import report_bootstrap_run
from cluster_tools.cli.flags import cluster_option


@cli.group()
def bootstrap() -> None:
    """The node bootstrap of a running cluster (bootstrap/on-node-configured.sh)."""


@bootstrap.command(
    epilog="""\b
Examples:
  clustertools bootstrap refresh                 # after editing the environment file or job.container
  clustertools bootstrap refresh -c sandbox
  clustertools bootstrap refresh --dry-run       # what would be uploaded and run
"""
)
@cluster_option
@click.option("--dry-run", is_flag=True, help="Print what would be uploaded and run; change nothing.")
@click.pass_obj
def refresh(app: App, cluster_name: str | None, dry_run: bool) -> None:
    """Run the node bootstrap again on a running cluster's head node, without recreating it: bootstrap/ and the
    project's environment file are uploaded again, and only the steps whose inputs changed run (a new environment
    is solved, a new image pulled, into shared storage beside the old ones). Tasks already running keep the
    environment and image they started with; the next ones use the new, and their records say which ran."""
    import sys

    from cluster_tools.services.remote.bootstrap_refresh import refresh_bootstrap
    from cluster_tools.services.remote.cluster_shell import connect

    record = app.cluster(cluster_name)
    result = refresh_bootstrap(
        app.state,
        app.project(),
        record,
        project_dir=app.project_file.parent if app.project_file else None,
        connect=connect,
        stdout=sys.stdout.buffer,
        dry_run=dry_run,
        progress=note,
    )
    report_bootstrap_run(result, record.name, dry_run=dry_run, where=f"the head node of {record.name}")

"""clustertools sandbox up|down|status"""

from __future__ import annotations

import click

from cluster_tools.cli.app import App, cli, note
from cluster_tools.cli.flags import json_option
from cluster_tools.cli.output import print_json, print_table


@cli.group(epilog="""\b
Examples:
  clustertools sandbox up
  clustertools ssh -c sandbox -- sinfo
  clustertools sandbox status
  clustertools sandbox down
""")
def sandbox() -> None:
    """A real small Slurm cluster on this machine (Slurm + sshd + S3), no AWS needed.

    It needs Debian's slurm-wlm, munge and openssh-server; `up` tells you the apt-get line if they
    are missing. It is registered as the cluster `sandbox`, reached over SSH like any other.
    """


@sandbox.command()
@click.option("--max-array-size", type=click.IntRange(2, 4_000_000), default=1001, show_default=True,
              help="Slurm's MaxArraySize (ParallelCluster's default is 1001).")
@click.option("--max-job-count", type=click.IntRange(100, 10_000_000), default=100_000, show_default=True,
              help="Slurm's MaxJobCount.")
@click.option("--min-job-age", type=click.IntRange(2, 86_400), default=10, show_default=True,
              help="Seconds a finished job stays in squeue (ParallelCluster: 300).")
@click.option("--bucket", "buckets", multiple=True, metavar="NAME",
              help="Extra S3 bucket to create (the project's output bucket is always made).")
@json_option
@click.pass_obj
def up(app: App, max_array_size: int, max_job_count: int, min_job_age: int, buckets: tuple[str, ...],
       as_json: bool) -> None:
    """Start the sandbox, or report the one already running."""
    from cluster_tools.services.sandbox import DEFAULT_BUCKET, SandboxOptions, sandbox_up

    project = app.project()
    wanted = (DEFAULT_BUCKET, *((project.storage.output.bucket,) if project else ()), *buckets)
    options = SandboxOptions(max_array_size=max_array_size, max_job_count=max_job_count,
                             min_job_age=min_job_age, buckets=tuple(dict.fromkeys(wanted)))
    status = sandbox_up(app.state, options, environ=app.environ, progress=note)
    if status.already_running:
        note("the sandbox is already running (options given now do not apply: `sandbox down` first)")
    if as_json:
        print_json(status.to_json())
        return
    _print_status(status)
    note("try: clustertools ssh -c sandbox -- sinfo")


@sandbox.command()
@click.option("--purge", is_flag=True, help="Also delete its keys, Slurm state and logs, and forget the cluster.")
@click.pass_obj
def down(app: App, purge: bool) -> None:
    """Stop every process the sandbox started (and jobs still running on it)."""
    from cluster_tools.services.sandbox import sandbox_down

    stopped = sandbox_down(app.state, progress=note, purge=purge)
    click.echo(f"sandbox stopped ({', '.join(stopped)})" if stopped else "sandbox was not running")


@sandbox.command()
@json_option
@click.pass_obj
def status(app: App, as_json: bool) -> None:
    """Say what runs where; exit 0 only when the whole sandbox runs."""
    from cluster_tools.services.sandbox import sandbox_status

    current = sandbox_status(app.state)
    if as_json:
        print_json(current.to_json())
    elif not current.components:
        click.echo("the sandbox is not running (start it: clustertools sandbox up)")
    else:
        _print_status(current)
    click.get_current_context().exit(0 if current.running else 3)


def _print_status(status) -> None:
    rows = [(c.name, "running" if c.running else "STOPPED", c.pid or "-", c.address) for c in status.components]
    state = "running" if status.running else "NOT fully running"
    print_table(f"sandbox {state} (cluster `{status.cluster}`, partition `{status.partition}`)",
                ["component", "state", "pid", "address"], rows)
    click.echo(f"ssh: {status.ssh}   s3: {status.s3_endpoint_url}   buckets: {', '.join(status.buckets)}")
    opts = status.options
    if opts:
        click.echo(f"MaxArraySize={opts.get('max_array_size')} MaxJobCount={opts.get('max_job_count')} "
                   f"MinJobAge={opts.get('min_job_age')}s   files: {status.root}")

"""clustertools autostop MINUTES|off"""

from __future__ import annotations

import click

from cluster_tools.cli.app import App, cli, note
from cluster_tools.cli.flags import cluster_option, json_option
from cluster_tools.cli.output import print_json


class _Minutes(click.ParamType):
    name = "MINUTES|off"

    def convert(self, value, param, ctx):  # -> int | None (None: off)
        if value is None or isinstance(value, int):
            return value
        if str(value).lower() == "off":
            return None
        try:
            minutes = int(value)
        except ValueError:
            self.fail(f"{value!r} is neither a number of minutes nor off", param, ctx)
        if not 1 <= minutes <= 10080:
            self.fail("between 1 and 10080 minutes (a week), or off", param, ctx)
        return minutes


@cli.command(
    epilog="""\b
Examples:
  clustertools autostop 30                  # stop the cluster after 30 idle minutes
  clustertools autostop -c study 60 --down  # delete it instead (needs the down policy and role, see README)
  clustertools autostop -c sandbox 1        # the sandbox: its partitions go INACTIVE after 1 idle minute
  clustertools autostop off
  clustertools describe                     # when it would fire, or what keeps the cluster busy
"""
)
@cluster_option
@click.argument("minutes", type=_Minutes(), metavar="MINUTES|off")
@click.option("--down", is_flag=True, help="Delete the cluster instead of stopping it (storage marked Retain is kept).")
@click.option(
    "--interval",
    type=click.IntRange(2, 3600),
    metavar="SECONDS",
    help="Seconds between checks (default: 60; the sandbox: 5).",
)
@json_option
@click.pass_obj
def autostop(
    app: App, cluster_name: str | None, minutes: int | None, down: bool, interval: int | None, as_json: bool
) -> None:
    """Stop the cluster from its head node after MINUTES idle, even while your laptop is off.

    Idle: no Slurm job pending or running, no interactive SSH session open, no task uploading its outputs.
    Then the head node stops the compute fleet and stops itself (or, with --down, deletes the cluster),
    once. Every check and action is logged on the head node; `describe` shows the timer and when it would
    fire. `off` removes the timer. `up --autostop MINUTES` sets it when the cluster is created.
    """
    from cluster_tools.services.remote.autostop_control import set_autostop

    record = app.cluster(cluster_name)
    result = set_autostop(app.state, record, app.project(), minutes, down=down, interval=interval, environ=app.environ)
    if as_json:
        print_json(
            {
                "cluster": result.cluster,
                "minutes": result.minutes,
                "action": result.action,
                "interval_seconds": result.interval_seconds,
                "timer": result.timer,
                "state_dir": result.where,
                "log": result.log,
                "pid": result.pid,
            }
        )
        return
    if result.minutes is None:
        click.echo(f"autostop on {result.cluster}: off")
        return
    click.echo(
        f"autostop on {result.cluster}: after {result.minutes} min idle (no job, no interactive SSH session, "
        f"no upload pending) it {result.action_text}"
    )
    how = "a systemd timer" if result.timer == "systemd" else f"the sandbox's timer process (pid {result.pid})"
    click.echo(f"a check every {result.interval_seconds} s by {how}; log: {result.log} on the head node")
    note(f"see when it would fire: clustertools describe -c {result.cluster}")


@cli.command(
    epilog="""\b
Examples:
  clustertools start                  # the project's cluster, after autostop stopped it
  clustertools start -c sandbox
"""
)
@cluster_option
@json_option
@click.pass_obj
def start(app: App, cluster_name: str | None, as_json: bool) -> None:
    """Bring a stopped cluster back. A ParallelCluster cluster: its head node started, its new address recorded and
    its pinned host key checked there, then its compute fleet started. The sandbox after its autostop: its
    partitions UP, autostop armed again with the limit it had."""
    from cluster_tools.services.clusters.lifecycle_start import start_cluster
    from cluster_tools.services.remote.cluster_shell import connect

    result = start_cluster(
        app.state, app.cluster(cluster_name), app.project(), connect, environ=app.environ, progress=note
    )
    if as_json:
        print_json(result.to_json())
    elif not result.started:
        click.echo(f"{result.cluster} is not stopped: nothing to start")
    elif result.host is None:  # the sandbox: its partitions
        click.echo(
            f"{result.cluster} started: partitions {', '.join(result.started)} UP"
            + (f"; autostop after {result.autostop_minutes} idle min" if result.autostop_minutes else "")
        )
    else:
        click.echo(f"{result.cluster} started: {', '.join(result.started)}; its head node is at {result.host}")

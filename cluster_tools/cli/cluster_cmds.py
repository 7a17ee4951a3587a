"""clustertools list | register | forget | ssh"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from cluster_tools.cli.app import App, CliError, cli, note
from cluster_tools.cli.common import announce_host_key, local_terminal
from cluster_tools.cli.flags import cluster_option, json_option
from cluster_tools.cli.output import print_json, print_table


@cli.command("list")
@json_option
@click.pass_obj
def list_(app: App, as_json: bool) -> None:
    """List the clusters clustertools knows, each with its state now: running, stopped (autostop; `clustertools
    start`), down (the sandbox), creating, updating, deleting, failed, gone (deleted in AWS); "-" for a cluster
    registered over SSH, which is not probed."""
    from cluster_tools.services.clusters.cluster_list import list_with_states
    from cluster_tools.services.remote.cluster_shell import connect

    listings = list_with_states(app.state, connect=connect, warn=note)
    if as_json:
        print_json([listing.to_json() for listing in listings])
    elif not listings:
        click.echo("no clusters yet: `clustertools sandbox up`, or `clustertools register NAME user@host`")
    else:
        print_table(
            None,
            ["name", "provider", "state", "head node", "s3 endpoint"],
            [
                (
                    item.record.name,
                    "sandbox" if item.record.sandbox else item.record.provider,
                    item.state,
                    item.record.address,
                    item.record.s3_endpoint_url or "aws",
                )
                for item in listings
            ],
        )
        for item in listings:
            if item.detail and item.state != "-":
                note(f"{item.record.name}: {item.state}: {item.detail}")


@cli.command(
    epilog="""\b
Examples:
  clustertools register uni alice@login.hpc.example.edu
  clustertools register uni hpc            # an alias from ~/.ssh/config
  clustertools register lab bob@10.1.2.3:2222 -i ~/.ssh/id_lab
"""
)
@click.argument("name")
@click.argument("destination")
@click.option("-p", "--port", type=click.IntRange(1, 65535), help="SSH port (default: from ~/.ssh/config, or 22).")
@click.option("-u", "--user", help="Login user (default: from DESTINATION or ~/.ssh/config, or yours).")
@click.option(
    "-i",
    "--identity-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Private key (default: ~/.ssh/config's, else ssh-agent and ~/.ssh keys).",
)
@click.option("--s3-endpoint-url", metavar="URL", help="A non-AWS S3 endpoint the cluster uses.")
@click.option("--region", help="AWS region of the cluster's buckets.")
@click.option("--force", is_flag=True, help="Replace a cluster of the same name.")
@click.option("--no-check", is_flag=True, help="Do not connect now (the host key is then pinned at first use).")
@click.pass_obj
def register(
    app: App,
    name: str,
    destination: str,
    port: int | None,
    user: str | None,
    identity_file: Path | None,
    s3_endpoint_url: str | None,
    region: str | None,
    force: bool,
    no_check: bool,
) -> None:
    """Add an existing Slurm cluster reached over SSH (its login or head node).

    The first connection pins the server's host key; a later change of that key is refused.
    """
    from cluster_tools.services.clusters.register import register_cluster, resolve_destination

    ssh_config = Path.home() / ".ssh" / "config"
    dest = resolve_destination(
        destination,
        port=port,
        user=user,
        identity_file=identity_file,
        ssh_config_text=ssh_config.read_text() if ssh_config.is_file() else None,
    )
    record = register_cluster(
        app.state,
        name,
        dest,
        s3_endpoint_url=s3_endpoint_url,
        region=region,
        force=force,
        check=not no_check,
        on_new_host_key=announce_host_key,
    )
    click.echo(f"registered {record.name}: {record.address}")


@cli.command()
@click.argument("name")
@click.pass_obj
def forget(app: App, name: str) -> None:
    """Forget a cluster and its pinned host key (the cluster itself is untouched)."""
    from cluster_tools.store.cluster_store import forget_cluster

    if not forget_cluster(app.state, name):
        raise CliError(f"no cluster named {name!r} (hint: `clustertools list`)")
    click.echo(f"forgot {name}")


@cli.command(
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
    epilog="""\b
Examples:
  clustertools ssh                              # an interactive shell on the head node
  clustertools ssh --node compute-dy-c5-1       # ... on a compute node, through the head node
  clustertools ssh -c sandbox -- sinfo
  clustertools ssh -- squeue -u "$USER"
  clustertools ssh -- sh -c 'sinfo | wc -l'     # shell syntax: wrap it in sh -c
  clustertools ssh -t -- htop                   # a full-screen program needs a pty
""",
)
@cluster_option
@click.option("--node", metavar="NODE", help="A compute node (as Slurm names it), reached through the head node.")
@click.option(
    "-t",
    "--tty",
    "force_tty",
    flag_value=True,
    default=None,
    help="Give COMMAND a pty (as ssh -t); a shell gets one whenever stdin is a terminal.",
)
@click.option("-T", "--no-tty", "force_tty", flag_value=False, help="Never a pty (as ssh -T).")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.pass_obj
def ssh(app: App, cluster_name: str | None, node: str | None, force_tty: bool | None, command: tuple[str, ...]) -> None:
    """Open a shell, or run COMMAND, on the head node or a compute node; exit with its status.

    Without COMMAND: an interactive shell with a real terminal (raw mode, window size followed).
    With COMMAND: each word is passed as it is (quoted for the remote shell), output streams as it
    comes, stdin is forwarded when it is not a terminal. Host keys are pinned at first contact, the
    compute node's too.
    """
    from cluster_tools.services.remote.cluster_shell import interactive_shell, run_on_head_node

    record = app.cluster(cluster_name)
    if command and node is None and not force_tty:
        stdin = None if sys.stdin is None or sys.stdin.isatty() else sys.stdin.buffer
        code = run_on_head_node(
            record,
            list(command),
            stdout=sys.stdout.buffer,
            stderr=sys.stderr.buffer,
            stdin=stdin,
            on_new_host_key=announce_host_key,
        )
    else:
        code = interactive_shell(
            record,
            list(command) if command else None,
            local_terminal(app),
            node=node,
            force_pty=force_tty if force_tty is not None else (False if command else None),
            on_new_host_key=announce_host_key,
            on_no_pty=None if command else _say_no_pty,
        )
    click.get_current_context().exit(code)


def _say_no_pty() -> None:
    note("stdin is not a terminal: no pty (as ssh -T); the shell reads its commands from stdin")


@cli.command(
    epilog="""\b
Examples:
  clustertools down -c sandbox
  clustertools down -c my-study --force     # even with subjects still pending or running
"""
)
@cluster_option
@click.option("--force", is_flag=True, help="Take it down even while runs have pending or running subjects.")
@click.pass_obj
def down(app: App, cluster_name: str | None, force: bool) -> None:
    """Take a cluster down without losing data: refuses while runs on it are unfinished.

    The sandbox stops its daemons; a ParallelCluster cluster is deleted (retained storage is listed);
    a cluster reached over SSH that clustertools did not create is never deleted.
    """
    from cluster_tools.services.clusters.lifecycle_down import describe_unfinished, take_down
    from cluster_tools.services.remote.cluster_shell import connect

    record = app.cluster(cluster_name)
    project = app.project()
    report = take_down(
        app.state,
        record,
        connect,
        force=force,
        progress=note,
        project_spec=project.parallelcluster if project else None,
    )
    if report.unfinished_overridden:
        note(f"--force: left unfinished: {describe_unfinished(report.unfinished_overridden)}")
    for item in report.retained:
        click.echo(f"retained: {item}")
    click.echo(
        f"{record.name} is down"
        + (" (its files and keys are kept: `sandbox up` brings it back)" if report.provider == "sandbox" else "")
    )

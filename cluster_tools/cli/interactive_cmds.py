"""clustertools ssh-config | debug | put | get  (the interactive `ssh` shell lives with `ssh` in cluster_cmds)"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from cluster_tools.cli.app import App, cli, note
from cluster_tools.cli.common import announce_host_key, local_terminal
from cluster_tools.cli.flags import cluster_option, json_option

if TYPE_CHECKING:  # rich and the transfer service load when a copy runs
    from types import TracebackType

    from rich.progress import Progress, TaskID

    from cluster_tools.model.clusters.cluster_record import ClusterRecord
    from cluster_tools.model.project.project_config import Project
    from cluster_tools.model.runs.run_record import RunRecord
    from cluster_tools.services.remote.transfer import CopyPlan, FileCopy


@cli.command(
    "ssh-config",
    epilog="""\b
Examples:
  clustertools ssh-config -c sandbox                  # print the block
  clustertools ssh-config -c sandbox > cfg && ssh -F cfg sandbox true
  clustertools ssh-config -c my-study --write         # then: ssh my-study, scp f my-study:, rsync, VS Code
  ssh NODE.my-study                                   # a compute node, through the head node (after --write)
""",
)
@cluster_option
@click.option(
    "--write", is_flag=True, help="Put the block into ~/.ssh/config between markers (again: updated in place)."
)
@click.option(
    "--file",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The SSH config file --write edits (default: ~/.ssh/config).",
)
@click.option("--no-nodes", is_flag=True, help="Only the head node: do not connect to list the compute nodes.")
@click.pass_obj
def ssh_config(app: App, cluster_name: str | None, write: bool, config_file: Path | None, no_nodes: bool) -> None:
    """Print an OpenSSH config block for the cluster, so that ssh, scp, rsync and editors reach it.

    The head node is `Host NAME`, with the key clustertools uses and the host key it pinned
    (StrictHostKeyChecking yes); each compute node Slurm knows is `NODE.NAME`, through the head node
    (ProxyJump). With --write it goes first in ~/.ssh/config, so no `Host *` of yours overrides it.
    """
    from cluster_tools.services.remote.cluster_shell import connect
    from cluster_tools.services.remote.ssh_config_file import cluster_ssh_config, write_ssh_config

    record = app.cluster(cluster_name)
    block = cluster_ssh_config(record, list_nodes=not no_nodes, connect=connect, note=note)
    if not write:
        _print_to_pipe(block)
        return
    path = config_file or Path.home() / ".ssh" / "config"
    changed = write_ssh_config(path, record.name, block)
    note(f"{'wrote' if changed else 'already up to date:'} the block of {record.name} in {path}")
    click.echo(f"try: ssh {record.name}")


def _print_to_pipe(text: str) -> None:
    """Print ``text``; a reader that went away early (`| head`, a closed `<(...)`) is not an error."""
    import os

    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit flush is quiet too


@cli.command(
    epilog="""\b
Examples:
  clustertools debug --run RUN sub-0007     # where sub-0007 ran: its env, input, container
  clustertools debug sub-0007               # a subject of the project's latest run
  clustertools debug --partition gpu --cpus 8 --mem 32G --time 02:00:00
  clustertools debug --run RUN sub-0007 --dry-run   # print the srun line, start nothing
Inside: $SUBJECT, $RUN_ID, $INPUT_DIR (staged), $OUTPUT_DIR; arrow-up recalls the command. `exit` frees the node.
"""
)
@click.argument("subject", required=False)
@click.option("--run", "run_id", metavar="RUN", help="The run (default with SUBJECT: the project's latest).")
@click.option("--partition", help="Slurm partition (default: the run's or project's).")
@click.option("--cpus", type=click.IntRange(1), help="CPUs (default: the run's or project's).")
@click.option("--gpus", type=click.IntRange(0, 16), help="GPUs (default: the run's or project's).")
@click.option("--mem", help="Memory, e.g. 4G (default: the run's or project's).")
@click.option("--time", "time_limit", help="Time limit, e.g. 01:00:00 (default: the run's or project's).")
@click.option("--dry-run", is_flag=True, help="Print the command that would start the job; start nothing.")
@cluster_option
@click.pass_obj
def debug(
    app: App,
    subject: str | None,
    run_id: str | None,
    partition: str | None,
    cpus: int | None,
    gpus: int | None,
    mem: str | None,
    time_limit: str | None,
    dry_run: bool,
    cluster_name: str | None,
) -> None:
    """Open an interactive shell on a compute node (srun --pty) with a run's resources.

    With SUBJECT: inside the same container and environment as that subject's task, with its input
    staged and the command it ran printed first. Leaving the shell ends the job and frees the node.
    """
    from cluster_tools.services.remote.cluster_shell import connect
    from cluster_tools.services.remote.debug_shell import debug_resources, plan_debug, run_debug
    from cluster_tools.transport.ssh_session import wants_pty

    project = app.project() if run_id is None else None
    run, record = _debug_target(app, project, subject, run_id, cluster_name)
    base = run.job if run else (project.job if project else None)
    resources = debug_resources(
        base, {"partition": partition, "cpus": cpus, "gpus": gpus, "mem": mem, "time": time_limit}
    )
    terminal = local_terminal(app)
    pty = wants_pty(terminal, None)
    plan = plan_debug(run, subject, resources, pty=pty)
    if dry_run:
        for path in plan.files:
            click.echo(f"# upload {path} (the run's wrapper.sh, rendered from its record)")
        click.echo(plan.command)
        return
    if not pty:
        note("stdin is not a terminal: srun without --pty; the shell reads its commands from stdin")
    if subject is None:  # with a subject, the wrapper's first line is the task's command
        note(
            f"an interactive job on {record.name} (partition {resources.partition or 'default'}, "
            f"{resources.cpus} cpu, {resources.mem}, {resources.time}); leaving the shell frees the node"
        )
    code = run_debug(record, plan, terminal, pty=pty, connect=connect, on_new_host_key=announce_host_key)
    click.get_current_context().exit(code)


def _debug_target(
    app: App, project: Project | None, subject: str | None, run_id: str | None, cluster_name: str | None
) -> tuple[RunRecord | None, ClusterRecord]:
    """The run to debug (with a subject or a run id) and the cluster to debug on: the run's, else -c's."""
    from cluster_tools.errors import ConfigError
    from cluster_tools.store.cluster_store import load_cluster
    from cluster_tools.store.run_store import resolve_run

    if subject is None and run_id is None:
        return None, app.cluster(cluster_name)
    run = resolve_run(app.state, run_id, project.name if project else None, warn=note)
    if cluster_name and cluster_name != run.cluster:
        raise ConfigError(f"run {run.run_id} ran on {run.cluster}, not {cluster_name}", "leave out -c")
    return run, load_cluster(app.state, run.cluster)


@cli.command(
    epilog="""\b
Examples:
  clustertools put params.json                 # into the home directory of the head node
  clustertools put params.json ~/study/        # into a directory there
  clustertools put -r scripts/ ~/study/scripts
  clustertools put results.csv ~/results.csv --force
"""
)
@click.argument("local", type=click.Path(path_type=str))
@click.argument("remote", required=False)
@click.option("-r", "--recursive", is_flag=True, help="Copy a directory and everything in it.")
@click.option("--force", is_flag=True, help="Replace files that are already there.")
@cluster_option
@json_option
@click.pass_obj
def put(
    app: App, local: str, remote: str | None, recursive: bool, force: bool, cluster_name: str | None, as_json: bool
) -> None:
    """Copy a file (or with -r a directory) to the head node over SFTP, with progress.

    REMOTE defaults to the home directory; into it when it is a directory. Nothing is copied when
    a file would be replaced, unless --force.
    """
    _copy(app, "put", local, remote, recursive=recursive, force=force, cluster_name=cluster_name, as_json=as_json)


@cli.command(
    epilog="""\b
Examples:
  clustertools get ~/.clustertools/runs/RUN/logs/sub-01.1.err
  clustertools get -r ~/study/outputs ./outputs
  clustertools get notes.txt /tmp/ --force
"""
)
@click.argument("remote")
@click.argument("local", required=False, type=click.Path(path_type=str))
@click.option("-r", "--recursive", is_flag=True, help="Copy a directory and everything in it.")
@click.option("--force", is_flag=True, help="Replace files that are already here.")
@cluster_option
@json_option
@click.pass_obj
def get(
    app: App, remote: str, local: str | None, recursive: bool, force: bool, cluster_name: str | None, as_json: bool
) -> None:
    """Copy a file (or with -r a directory) from the head node over SFTP, with progress.

    LOCAL defaults to the current directory; into it when it is a directory. Nothing is copied when
    a file would be replaced, unless --force.
    """
    _copy(app, "get", remote, local, recursive=recursive, force=force, cluster_name=cluster_name, as_json=as_json)


def _copy(
    app: App,
    direction,
    source: str,
    destination: str | None,
    *,
    recursive: bool,
    force: bool,
    cluster_name: str | None,
    as_json: bool,
) -> None:
    from cluster_tools.cli.output import print_json
    from cluster_tools.services.remote.cluster_shell import connect
    from cluster_tools.services.remote.transfer import copy_files

    record = app.cluster(cluster_name)
    with _TransferBar(enabled=sys.stderr.isatty() and not as_json) as bar:
        plan = copy_files(
            record,
            direction,
            source,
            destination,
            recursive=recursive,
            force=force,
            listener=bar,
            connect=connect,
            on_new_host_key=announce_host_key,
        )
    if as_json:
        print_json({**plan.to_json(), "cluster": record.name})
        return
    where = f"{record.name}:{plan.target}" if direction == "put" else plan.target
    click.echo(f"copied {len(plan.files)} file(s), {_size(plan.total_bytes)}, to {where}")


class _TransferBar:
    """The service's listener: a rich byte-progress bar on stderr when enabled, else silent."""

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._before = 0  # bytes of the files before the current one
        self._current = 0  # size of the current file

    def __enter__(self) -> _TransferBar:
        return self

    def start(self, plan: CopyPlan) -> None:
        if not self.enabled or not plan.files:
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
        )
        self._progress.__enter__()
        self._task = self._progress.add_task("", total=plan.total_bytes)

    def file(self, copy: FileCopy) -> None:
        self._before += self._current
        self._current = copy.size
        if self._progress and self._task is not None:
            name = copy.source.rsplit("/", 1)[-1]
            self._progress.update(self._task, description=name[:40])

    def progress(self, copy: FileCopy, done: int) -> None:
        if not self._progress or self._task is None:
            return
        self._progress.update(self._task, completed=self._before + min(done, copy.size))

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._progress:
            self._progress.__exit__(kind, exc, tb)


def _size(count: int) -> str:
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{count} B"

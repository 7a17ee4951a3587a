"""clustertools sandbox up|down|status|bootstrap"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from cluster_tools.cli.app import App, cli, note
from cluster_tools.cli.common import report_bootstrap_run
from cluster_tools.cli.flags import json_option
from cluster_tools.cli.output import print_json, print_table

if TYPE_CHECKING:
    from cluster_tools.services.sandbox.sandbox_lifecycle import SandboxStatus


@cli.group(
    epilog="""\b
Examples:
  clustertools sandbox up
  clustertools ssh -c sandbox -- sinfo
  clustertools sandbox status
  clustertools sandbox bootstrap
  clustertools sandbox down
"""
)
def sandbox() -> None:
    """A real small Slurm cluster on this machine (Slurm + sshd + S3), no AWS needed.

    It needs Debian's slurm-wlm, munge and openssh-server; `up` tells you the apt-get line if they
    are missing. It is registered as the cluster `sandbox`, reached over SSH like any other.
    """


@sandbox.command()
@click.option(
    "--max-array-size",
    type=click.IntRange(2, 4_000_000),
    default=None,
    help="Slurm's MaxArraySize [default: the project's parallelcluster.slurm, else ParallelCluster's 1001].",
)
@click.option(
    "--max-job-count",
    type=click.IntRange(100, 10_000_000),
    default=None,
    help="Slurm's MaxJobCount [default: the project's, else 100000].",
)
@click.option(
    "--min-job-age",
    type=click.IntRange(2, 86_400),
    default=None,
    help="Seconds a finished job stays in squeue [default: the project's, else ParallelCluster's 300].",
)
@click.option(
    "--bucket",
    "buckets",
    multiple=True,
    metavar="NAME",
    help="Extra S3 bucket to create (the project's output bucket is always made).",
)
@click.option(
    "--memory-scheduling/--no-memory-scheduling",
    default=None,
    help="As ParallelCluster's EnableMemoryBasedScheduling: Slurm packs by --mem (CR_CPU_Memory) and a "
    "task that uses more than its --mem is killed by its cgroup (ConstrainRAMSpace) [default: on in "
    "a project, whose cluster clustertools renders with it; off outside one, as ParallelCluster].",
)
@click.option(
    "--requeue-delay",
    type=click.IntRange(5, 3600),
    default=70,
    show_default=True,
    help="Seconds a job requeued after its node was lost waits to start again (Slurm's cred_expire; "
    "ParallelCluster: 70).",
)
@click.option(
    "--os",
    "os_name",
    default=None,
    metavar="OS",
    help="The ParallelCluster OS the nodes play: its login user (ec2-user, ubuntu, rocky) and shell "
    "start-up files (on ubuntu*, Slurm is on PATH only in a login shell) [default: the project's "
    "parallelcluster.os, else alinux2023].",
)
@click.option(
    "--nodes",
    type=click.IntRange(1, 8),
    default=None,
    help="Nodes (MaxCount) of one queue `compute` [default: the project's parallelcluster: queues, else 4].",
)
@click.option(
    "--static-nodes",
    type=click.IntRange(0, 8),
    default=None,
    help="How many of them are static (MinCount): always up, never powered down [default: 0].",
)
@click.option("--cpus-per-node", type=click.IntRange(1, 64), default=None, help="CPUs of each node [default: 8].")
@click.option(
    "--boot-delay",
    type=click.FloatRange(2, 600),
    default=2.0,
    show_default=True,
    help="Seconds a powered-down node takes to boot when work arrives.",
)
@click.option(
    "--idle-time",
    type=click.IntRange(5, 86_400),
    default=None,
    help="Seconds an idle dynamic node stays up before it powers down [default: the project's "
    "scaledown_idletime, else 600].",
)
@json_option
@click.pass_obj
def up(
    app: App,
    max_array_size: int | None,
    max_job_count: int | None,
    min_job_age: int | None,
    buckets: tuple[str, ...],
    memory_scheduling: bool | None,
    requeue_delay: int,
    os_name: str | None,
    nodes: int | None,
    static_nodes: int | None,
    cpus_per_node: int | None,
    boot_delay: float,
    idle_time: int | None,
    as_json: bool,
) -> None:
    """Start the sandbox, or report the one already running.

    In a project it plays the project's `parallelcluster:` cluster: its queues (names, MaxCount, MinCount, each
    instance type's CPUs and memory, scaled to what this machine holds), OS, Slurm limits and scaledown
    idle time. With --nodes/--static-nodes/--cpus-per-node, or outside a project, one queue `compute`."""
    from cluster_tools.services.sandbox.sandbox_lifecycle import sandbox_up
    from cluster_tools.services.sandbox.sandbox_options import sandbox_options

    options = sandbox_options(
        app.project(),
        buckets=buckets,
        max_array_size=max_array_size,
        max_job_count=max_job_count,
        min_job_age=min_job_age,
        memory_scheduling=memory_scheduling,
        requeue_delay=requeue_delay,
        os_name=os_name,
        node_count=nodes,
        static_nodes=static_nodes,
        cpus_per_node=cpus_per_node,
        boot_delay=boot_delay,
        idle_time=idle_time,
    )
    _print_up(sandbox_up(app.state, options, environ=app.environ, progress=note), as_json)


def _print_up(status: SandboxStatus, as_json: bool) -> None:
    if status.already_running:
        note("the sandbox is already running (options given now do not apply: `sandbox down` first)")
    elif status.restarted:
        note(
            f"restarted {', '.join(status.restarted)}; the rest kept running: queued jobs, S3 objects and ports "
            "are unchanged (options given now do not apply: `sandbox down` first)"
        )
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
    from cluster_tools.services.sandbox.sandbox_lifecycle import sandbox_down

    stopped = sandbox_down(app.state, progress=note, purge=purge)
    click.echo(f"sandbox stopped ({', '.join(stopped)})" if stopped else "sandbox was not running")


@sandbox.command()
@json_option
@click.pass_obj
def status(app: App, as_json: bool) -> None:
    """Say what runs where; exit 0 only when the whole sandbox runs."""
    from cluster_tools.services.sandbox.sandbox_lifecycle import sandbox_status

    current = sandbox_status(app.state, with_nodes=True)
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
    print_table(
        f"sandbox {state} (cluster `{status.cluster}`, partition `{status.partition}`)",
        ["component", "state", "pid", "address"],
        rows,
    )
    click.echo(f"ssh: {status.ssh}   s3: {status.s3_endpoint_url}   buckets: {', '.join(status.buckets)}")
    if status.images:
        click.echo(f"images (job.container): {', '.join(i['reference'] for i in status.images)}")
    if status.nodes:
        print_table(
            "nodes",
            ["node", "partition", "state", "cpus", "memory"],
            [(n.name, n.partition, n.label, n.cpus, f"{n.memory_mb} MB") for n in status.nodes],
        )
    opts = status.options
    if opts:
        click.echo(
            f"MaxArraySize={opts.get('max_array_size')} MaxJobCount={opts.get('max_job_count')} "
            f"MinJobAge={opts.get('min_job_age')}s   files: {status.root}"
        )


@sandbox.command()
@click.argument("node")
@json_option
@click.pass_obj
def interrupt(app: App, node: str, as_json: bool) -> None:
    """Take NODE away as a spot reclaim does: its slurmd and tasks killed, the node DOWN, its jobs
    requeued by Slurm (NODE_FAIL), then a replacement in its place. `sandbox status` lists the nodes."""
    from cluster_tools.services.sandbox.sandbox_interrupt import sandbox_interrupt

    result = sandbox_interrupt(app.state, node, environ=app.environ, progress=note)
    if as_json:
        print_json(result.to_json())
        return
    click.echo(
        f"{node} interrupted: {len(result.jobs)} job(s) requeued by Slurm"
        + (f" ({', '.join(result.jobs)})" if result.jobs else "")
        + "; `clustertools status` shows them"
    )


@sandbox.command(
    epilog="""\b
Examples:
  clustertools sandbox bootstrap                       # the project's bootstrap: section
  clustertools sandbox bootstrap --miniforge-url s3://clustertools-sandbox/mirror/Miniforge3.sh \\
      --miniforge-sha256 HEX --env-file environment.yml
  clustertools sandbox bootstrap --dry-run             # what would be uploaded and run
  clustertools triage -c sandbox                       # why it failed
"""
)
@click.option(
    "--miniforge-url", metavar="URL", help="The Miniforge installer (https:// or s3://; default: the project's)."
)
@click.option("--miniforge-sha256", metavar="HEX", help="Its sha256 (default: the project's).")
@click.option(
    "--env-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A conda environment file to solve (default: the project's bootstrap.env_file).",
)
@click.option(
    "--image", metavar="REF", help="An image to pull (default: the project's job.container, unless --runtime none)."
)
@click.option(
    "--runtime",
    type=click.Choice(["none", "podman", "apptainer", "docker", "enroot"]),
    default=None,
    help="Container runtime [default: podman, the sandbox's, when there is an image to pull, else none]; "
    "apptainer, docker and enroot install a package on THIS machine when missing.",
)
@click.option("--dry-run", is_flag=True, help="Print what would be uploaded and run; change nothing.")
@click.pass_obj
def bootstrap(
    app: App,
    miniforge_url: str | None,
    miniforge_sha256: str | None,
    env_file: Path | None,
    image: str | None,
    runtime: str | None,
    dry_run: bool,
) -> None:
    """Run the node bootstrap script on the sandbox's node.

    bootstrap/ (and the environment file) go to the sandbox's S3 endpoint as `up` sends them to AWS; the
    node fetches the script from there and runs it with the Args a rendered cluster config gives it. Its
    files stay in the sandbox's directory (shared dir, logs, step markers). A second run with the same
    inputs does nothing and says so.
    """
    import sys

    from cluster_tools.services.sandbox.sandbox_bootstrap import sandbox_bootstrap

    result = sandbox_bootstrap(
        app.state,
        app.project(),
        project_dir=app.project_file.parent if app.project_file else None,
        miniforge_url=miniforge_url,
        miniforge_sha256=miniforge_sha256,
        env_file=env_file,
        image=image,
        runtime=runtime,
        dry_run=dry_run,
        stdout=sys.stdout.buffer,
        progress=note,
    )
    report_bootstrap_run(result, "sandbox", dry_run=dry_run, where="the sandbox's node")

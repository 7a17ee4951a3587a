"""clustertools submit | resubmit (status, logs, cancel, runs: run_cmds.py)"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from cluster_tools.cli.app import App, cli, note
from cluster_tools.cli.flags import cluster_option, json_option
from cluster_tools.cli.output import print_json

if TYPE_CHECKING:
    from cluster_tools.services.runs.submit_run import Submitted


def _require_project(app: App):
    project = app.project()
    if project is None:
        from cluster_tools.errors import ConfigError

        raise ConfigError(
            "no clustertools.yaml here or above", "create one with `clustertools init`, or pass --project FILE"
        )
    return project


@cli.command(
    epilog="""\b
Examples:
  clustertools submit subjects.txt
  clustertools submit subjects.txt --command 'run_seg.sh "$SUBJECT"' --throttle 50
  clustertools submit sweep.csv --name lr-sweep      # one task per row, columns as env vars
  clustertools submit subjects.txt --dry-run         # print the scripts and manifest, send nothing
"""
)
@click.argument("subjects_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--command", help="Shell command per subject; it sees $SUBJECT, $RUN_ID, $INPUT_DIR, $OUTPUT_DIR.")
@click.option(
    "--container", help="Image to run the command in (the cluster's runtime: enroot, apptainer, docker, podman)."
)
@click.option(
    "--workdir", metavar="DIR", help="A directory of the project sent with the run; each task works in a copy."
)
@click.option("--throttle", type=click.IntRange(1), help="At most N tasks of each array at once.")
@click.option("--cpus", type=click.IntRange(1), help="CPUs per task.")
@click.option("--gpus", type=click.IntRange(0, 16), help="GPUs per task (Slurm --gres=gpu:N; the container sees them).")
@click.option("--mem", help="Memory per task, e.g. 4G.")
@click.option("--time", "time_limit", help="Time limit per task, e.g. 01:00:00.")
@click.option("--partition", help="Slurm partition (queue).")
@click.option("--name", help="Run name (default: the project's); the run id adds date and hash.")
@click.option("--dry-run", is_flag=True, help="Print the array script, wrapper and manifest; send nothing.")
@click.option(
    "--minutes-per-subject",
    type=click.FloatRange(min=0, min_open=True),
    metavar="M",
    help="For the cost estimate on AWS (default: cost.minutes_per_subject, else job.time).",
)
@click.option("--yes", "-y", is_flag=True, help="Submit even when the estimate is above cost.confirm_above_usd.")
@click.option(
    "--new-run",
    is_flag=True,
    help="Start a new run even if one with exactly these subjects and this spec was submitted.",
)
@click.option(
    "--start", "start_cluster", is_flag=True, help="Start the cluster first if it is stopped (as `clustertools start`)."
)
@cluster_option
@json_option
@click.pass_obj
def submit(
    app: App,
    subjects_file: Path,
    command,
    container,
    workdir,
    throttle,
    cpus,
    gpus,
    mem,
    time_limit,
    partition,
    name,
    dry_run: bool,
    minutes_per_subject,
    yes: bool,
    new_run: bool,
    start_cluster: bool,
    cluster_name,
    as_json: bool,
) -> None:
    """Submit one Slurm array task per subject (arrays split by the cluster's MaxArraySize).

    Running the same submit again after an interruption finishes it: arrays already submitted are
    kept and no task is ever submitted twice. Once every array of it was submitted, the same submit
    is refused (it names the run) unless --new-run.
    """
    from cluster_tools.model.runs.subjects import read_subject_file
    from cluster_tools.services.remote.cluster_shell import connect
    from cluster_tools.services.runs.submit_run import submit_run

    project = _require_project(app)
    subjects = read_subject_file(subjects_file)
    cluster = app.cluster(cluster_name)
    asks = sys.stdin.isatty() and sys.stderr.isatty()
    done = submit_run(
        app.state,
        project,
        cluster,
        subjects,
        {
            "command": command,
            "container": container,
            "workdir": workdir,
            "throttle": throttle,
            "cpus": cpus,
            "gpus": gpus,
            "mem": mem,
            "time": time_limit,
            "partition": partition,
        },
        name=name,
        new_run=new_run,
        minutes_per_subject=minutes_per_subject,
        yes=yes,
        approve=(lambda why: click.confirm(f"{why}: submit?", err=True)) if asks else None,
        dry_run=dry_run,
        progress=note,
        environ=app.environ,
        connect=connect,
        start=start_cluster,
    )
    _print_submitted(done, len(subjects), cluster.name, as_json)


def _print_submitted(done: Submitted, subject_count: int, cluster_name: str, as_json: bool) -> None:
    """A dry run's files, or the run's arrays (as JSON with --json)."""
    result = done.result
    if result is None:  # a dry run: nothing was sent, done.files is what would have been
        for path, text in (done.files or {}).items():
            click.echo(f"==> {path} <==")
            click.echo(text.replace("\x1f", "\t"), nl=False)
        note(
            f"dry run: nothing was sent (run {done.run.run_id}, {subject_count} subjects; the manifest's fields are "
            "split by \\x1f, shown as tabs)"
        )
        return
    if as_json:
        print_json(
            {
                "run": result.run.run_id,
                "attempt": result.attempt,
                "subjects": subject_count,
                "arrays": [{"chunk": c, "job_id": j, "tasks": n, "new": new} for c, j, n, new in result.arrays],
            }
        )
        return
    submitted_now = sum(1 for *_, fresh in result.arrays if fresh)
    click.echo(
        f"run {result.run.run_id}: {subject_count} subjects in {len(result.arrays)} array(s) "
        f"({submitted_now} submitted now) on {cluster_name}: jobs {', '.join(j for _, j, _, _ in result.arrays)}"
    )
    click.echo(f"follow it: clustertools status {result.run.run_id} --watch")


@cli.command(
    epilog="""\b
Examples:
  clustertools resubmit --failed         # the project's latest run
  clustertools resubmit RUN --missing     # no success record, or no output in S3
  clustertools resubmit --failed --state OOM --mem 16G        # more memory for those the kernel killed
  clustertools resubmit --failed --state TIMEOUT --time 04:00:00
"""
)
@click.argument("run_id", metavar="[RUN]", required=False)
@click.option("--failed", is_flag=True, help="Rerun unsuccessful subjects: FAILED, TIMEOUT, OOM, NODE_FAIL, CANCELLED.")
@click.option(
    "--state",
    "states",
    multiple=True,
    metavar="STATE",
    type=click.Choice(["FAILED", "TIMEOUT", "OOM", "NODE_FAIL", "CANCELLED"], case_sensitive=False),
    help="With --failed: only subjects in this state (repeatable).",
)
@click.option("--mem", help="Memory per task for the rerun (e.g. 16G: out-of-memory subjects).")
@click.option("--cpus", type=int, help="CPUs per task for the rerun.")
@click.option("--time", help="Time limit per task for the rerun (e.g. 02:00:00: subjects that hit TIMEOUT).")
@click.option("--partition", help="Partition (queue) for the rerun (e.g. an on-demand one after spot losses).")
@click.option("--gpus", type=int, help="GPUs per task for the rerun.")
@click.option("--missing", is_flag=True, help="Rerun subjects with no success record or no output in S3.")
@click.option("--dry-run", is_flag=True, help="Say which subjects would rerun; send nothing.")
@click.option(
    "--recompute-kept",
    is_flag=True,
    help="Also rerun subjects whose outputs are kept on the head node (default: `results push` them).",
)
@json_option
@click.pass_obj
def resubmit(
    app: App,
    run_id: str | None,
    failed: bool,
    states: tuple[str, ...],
    mem: str | None,
    cpus: int | None,
    time: str | None,
    partition: str | None,
    gpus: int | None,
    missing: bool,
    dry_run: bool,
    recompute_kept: bool,
    as_json: bool,
) -> None:
    """Rerun only some subjects of a run, as a new attempt; SUCCEEDED subjects with outputs never rerun.

    RUN is any unique start of its id; default: the project's latest run."""
    done = app.run(run_id).rerun(
        failed=failed,
        missing=missing,
        states=states,
        mem=mem,
        cpus=cpus,
        time=time,
        partition=partition,
        gpus=gpus,
        dry_run=dry_run,
        recompute_kept=recompute_kept,
        progress=note,
    )
    rerun = done.subjects
    if as_json:
        print_json(done.to_json())
    elif done.attempt is None:
        click.echo(f"would rerun {len(rerun)} subject(s): {' '.join(rerun[:20])}{' ...' if len(rerun) > 20 else ''}")
    else:
        click.echo(
            f"run {done.run.id}: attempt {done.attempt} reruns {len(rerun)} subject(s) in {done.arrays} array(s)"
        )

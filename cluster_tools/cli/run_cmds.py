"""clustertools status | logs | cancel | runs (submit and resubmit: submit_cmds.py)"""

from __future__ import annotations

import sys

import click

from cluster_tools.cli.app import App, cli, note
from cluster_tools.cli.flags import json_option
from cluster_tools.cli.output import print_json, print_json_of, print_table


@cli.command(
    epilog="""\b
Examples:
  clustertools status                 # the project's latest run
  clustertools status RUN --watch
  clustertools status RUN --json | jq '.counts'
"""
)
@click.argument("run_id", required=False)
@click.option(
    "--watch",
    is_flag=True,
    help="Refresh with a progress bar until no subject is pending or running; "
    "then exit 1 unless every subject succeeded.",
)
@click.option("--no-fail", is_flag=True, help="With --watch: exit 0 however the subjects ended.")
@click.option(
    "--interval", type=click.FloatRange(0.5), default=5.0, show_default=True, help="Seconds between refreshes."
)
@click.option("--all", "show_all", is_flag=True, help="List every subject (default: those not succeeded).")
@json_option
@click.pass_obj
def status(
    app: App, run_id: str | None, watch: bool, no_fail: bool, interval: float, show_all: bool, as_json: bool
) -> None:
    """Per-subject state of a run: PENDING, RUNNING, SUCCEEDED, FAILED (exit code), CANCELLED, MISSING.

    With --watch it waits for the run to end and exits 0 only when every subject succeeded (1 otherwise,
    for scripts: `clustertools status RUN --watch && next-step`), unless --no-fail.

    It merges the live queue with the durable records each task writes, so it stays right after
    Slurm forgets finished jobs and without accounting. One SSH round trip per refresh.
    """
    run = app.run(run_id)
    if watch:
        from cluster_tools.cli.progress_display import RunProgress

        with RunProgress(len(run.subjects), enabled=not as_json) as bar:
            result = run.wait(interval=interval, check=False, on_status=bar.update)
    else:
        result = run.status(progress=note)
    failed_run = watch and not no_fail and not result.all_succeeded
    if as_json:
        print_json_of(result)
        sys.exit(1 if failed_run else 0)
    if not result.queue_readable:
        note("warning: squeue did not answer; states come from the records alone")
    if result.source == "s3":
        note("from the records in S3: subjects without a final record show as MISSING")
    rows = [
        (s.subject, s.state, "" if s.exit_code is None else s.exit_code, s.attempt, s.node, s.end or s.start, s.note)
        for s in result.subjects
        if show_all or s.state != "SUCCEEDED" or s.restarts
    ]
    if rows:
        print_table(None, ["subject", "state", "exit", "attempt", "node", "time", "note"], rows)
    click.echo(f"run {run.id}: {len(result.subjects)} subjects: {result.counts_text()}")
    for line in result.blocked:
        note(f"warning: {line}")
    kept = sum(1 for s in result.subjects if s.kept and s.state == "FAILED")
    if kept:
        note(
            f"{kept} subject(s) computed but could not upload; their outputs wait on the head node: "
            f"clustertools results push {run.id}"
        )
    if failed_run:  # the run ended and not every subject succeeded: a script must not go on
        sys.exit(1)


@cli.command(
    epilog="""\b
Examples:
  clustertools logs RUN sub-0001
  clustertools logs RUN sub-0001 --stderr --follow
"""
)
@click.argument("run_id")
@click.argument("subject")
@click.option(
    "--stderr",
    "use_stderr",
    is_flag=True,
    help="The command's stderr alone (by default stdout, then stderr when it has any, on stderr).",
)
@click.option(
    "--follow", "-f", is_flag=True, help="Keep printing as the log grows, until the task ends (Ctrl-C stops sooner)."
)
@click.option("--attempt", type=click.IntRange(1), help="An earlier attempt (default: the latest).")
@click.pass_obj
def logs(app: App, run_id: str, subject: str, use_stderr: bool, follow: bool, attempt: int | None) -> None:
    """Print a subject's output (from the head node): its stdout, then its stderr (when it has any) on stderr."""
    code = app.run(run_id).write_logs(
        subject, sys.stdout.buffer, sys.stderr.buffer, stderr=use_stderr, attempt=attempt, follow=follow, both=True
    )
    click.get_current_context().exit(code)


@cli.command(
    epilog="""\b
Examples:
  clustertools cancel RUN                 # every pending and running task of the run
  clustertools cancel RUN sub-0003 sub-0007
"""
)
@click.argument("run_id")
@click.argument("subjects", nargs=-1)
@click.pass_obj
def cancel(app: App, run_id: str, subjects: tuple[str, ...]) -> None:
    """Cancel a run, or some of its subjects."""
    run = app.run(run_id)
    result = run.cancel(subjects)
    if not result.cancelled:
        click.echo("nothing to cancel: no subject is pending or running")
    else:
        click.echo(f"cancelled {len(result.cancelled)} subject(s) of {run.id}")


@cli.command(
    epilog="""\b
Examples:
  clustertools runs
  clustertools runs --json
"""
)
@json_option
@click.pass_obj
def runs(app: App, as_json: bool) -> None:
    """List the project's runs, with the counts last seen by `status`."""
    from cluster_tools.store.run_store import list_runs

    project = app.project()
    found = [
        r for r in list_runs(app.state, project.name if project else None, warn=note) if r.sent
    ]  # not refused ones
    if as_json:
        print_json(
            [
                {
                    "run": r.run_id,
                    "cluster": r.cluster,
                    "created_at": r.created_at,
                    "subjects": len(r.subjects),
                    "attempts": len(r.attempts),
                    "counts": r.last_counts,
                    "counts_at": r.last_status_at,
                }
                for r in found
            ]
        )
        return
    if not found:
        click.echo("no runs yet: clustertools submit subjects.txt")
        return
    print_table(
        None,
        ["run", "cluster", "created", "subjects", "attempts", "last seen"],
        [
            (
                r.run_id,
                r.cluster,
                r.created_at,
                len(r.subjects),
                len(r.attempts),
                ", ".join(f"{k.lower()} {v}" for k, v in r.last_counts.items() if v) or "-",
            )
            for r in found
        ],
    )

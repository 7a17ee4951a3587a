"""clustertools results ls | get | du | check | collect | push"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from cluster_tools.cli.app import App, CliError, cli, note
from cluster_tools.cli.flags import json_option
from cluster_tools.cli.output import print_json, print_table

if TYPE_CHECKING:  # rich loads only when a bar is drawn
    from rich.progress import Progress, TaskID

jobs_option = click.option(
    "-j", "--jobs", type=click.IntRange(1, 256), default=32, show_default=True, help="Concurrent S3 requests."
)


@cli.group(
    epilog="""\b
Examples:
  clustertools results check                 # which subjects of the latest run have no output
  clustertools results ls RUN sub-001        # one subject's objects
  clustertools results get RUN -o outputs/   # everything, 32 downloads at a time
  clustertools results collect RUN --file metrics.json -o metrics.csv
  clustertools results push RUN              # upload what tasks kept after S3 failed them
"""
)
def results() -> None:
    """A run's outputs in S3: list, download, sizes, missing subjects, one table from a file per subject.

    Subject S's outputs are the objects under <output>/<run-id>/S/. RUN is a run id; where it is
    optional, the default is the project's latest run.
    """


def _run(app: App, run_id: str | None):
    from cluster_tools.services.runs.results import check_sandbox_outputs

    run = app.run(run_id).record
    check_sandbox_outputs(app.state, run)
    return run


def _where(run) -> tuple[str, str]:
    return run.output_location.bucket, run.run_prefix


def _warn_unknown(run, subjects: tuple[str, ...]) -> None:
    from cluster_tools.services.runs.results import check_subject_names

    check_subject_names(subjects)
    known = set(run.subjects)
    unknown = [s for s in subjects if known and s not in known]
    if unknown:
        note(f"not subjects of run {run.run_id}: {', '.join(unknown[:10])}" + (" ..." if len(unknown) > 10 else ""))


@results.command(
    "ls",
    epilog="""\b
Examples:
  clustertools results ls                        # the latest run, every subject
  clustertools results ls RUN sub-001 sub-002
  clustertools results ls RUN --json | jq -r '.[].key'
""",
)
@click.argument("run_id", metavar="[RUN]", required=False)
@click.argument("subjects", metavar="[SUBJECT]...", nargs=-1)
@json_option
@click.pass_obj
def ls(app: App, run_id: str | None, subjects: tuple[str, ...], as_json: bool) -> None:
    """List result objects: key (relative to the run), size, last modified."""
    from cluster_tools.services.runs.results import client_for_run, list_results

    run = _run(app, run_id)
    _warn_unknown(run, subjects)
    listing = list_results(client_for_run(run), *_where(run), list(subjects) if subjects else None)
    if as_json:
        print_json([o.to_json() for o in listing.objects])
        return
    if listing.objects:
        width = max(len(str(o.size)) for o in listing.objects)
        click.echo(
            "\n".join(f"{_when(o.last_modified)}  {o.size:>{width}}  {_printable(o.key)}" for o in listing.objects)
        )
    total = sum(o.size for o in listing.objects)
    count = len({o.subject for o in listing.objects})
    note(
        f"{len(listing.objects)} objects, {_human(total)} in {count} subjects of s3://{run.output_location.bucket}/"
        f"{run.run_prefix}/" + (f" ({listing.ignored} keys outside any subject ignored)" if listing.ignored else "")
    )


@results.command(
    epilog="""\b
Examples:
  clustertools results get RUN                   # into ./RUN/<subject>/...
  clustertools results get RUN sub-001 -o here/
  clustertools results get RUN --jobs 64         # rerun: files already there are skipped
"""
)
@click.argument("run_id", metavar="RUN")
@click.argument("subjects", metavar="[SUBJECT]...", nargs=-1)
@click.option(
    "-o",
    "--output-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where to put them (default: ./RUN); files go to DIR/<subject>/<path>.",
)
@jobs_option
@click.pass_obj
def get(app: App, run_id: str, subjects: tuple[str, ...], output_dir: Path | None, jobs: int) -> None:
    """Download results; files already present with the same size are skipped."""
    from cluster_tools.services.runs.results import client_for_run, download_results

    run = _run(app, run_id)
    _warn_unknown(run, subjects)
    dest = output_dir or Path(run.run_id)
    client = client_for_run(run, max_pool_connections=jobs)
    with _Progress(enabled=sys.stderr.isatty()) as progress:
        report = download_results(
            client,
            *_where(run),
            dest,
            list(subjects) if subjects else None,
            jobs=jobs,
            on_plan=progress.start,
            on_bytes=progress.advance,
            on_file=progress.file_done,
        )
    note(
        f"downloaded {report.downloaded} files ({_human(report.bytes)}) into {dest}"
        + (f"; skipped {report.skipped} already there with the same size" if report.skipped else "")
    )
    for key in report.refused[:20]:
        note(f"refused {_printable(key)}: it would land outside {dest}")
    for key, why in list(report.failed.items())[:20]:
        note(f"failed {_printable(key)}: {why}")
    if not report.ok:
        problems = len(report.refused) + len(report.failed)
        raise CliError(
            f"{problems} of the run's objects were not downloaded (hint: rerun to retry; "
            "refused keys hold '..' or an absolute path, or pass through a symlink)"
        )


@results.command(
    epilog="""\b
Examples:
  clustertools results du
  clustertools results du RUN --json
"""
)
@click.argument("run_id", metavar="[RUN]", required=False)
@json_option
@click.pass_obj
def du(app: App, run_id: str | None, as_json: bool) -> None:
    """Bytes and objects per subject, and in total."""
    from cluster_tools.services.runs.results import client_for_run, results_usage

    run = _run(app, run_id)
    usage = results_usage(client_for_run(run), *_where(run))
    if as_json:
        print_json({"run": run.run_id, **usage.to_json()})
        return
    rows = [(u.subject, u.objects, u.bytes, _human(u.bytes)) for u in usage.subjects]
    rows.append(("total", usage.objects, usage.bytes, _human(usage.bytes)))
    print_table(
        f"run {run.run_id}: {len(usage.subjects)} subjects with output", ["subject", "objects", "bytes", "size"], rows
    )


@results.command(
    epilog="""\b
Examples:
  clustertools results check && echo "every subject has output"
  clustertools results check RUN --json
"""
)
@click.argument("run_id", metavar="[RUN]", required=False)
@json_option
@click.pass_obj
def check(app: App, run_id: str | None, as_json: bool) -> None:
    """Which subjects of the run have no output object; exit 1 when any."""
    from cluster_tools.services.runs.results import check_outputs, client_for_run

    run = _run(app, run_id)
    result = check_outputs(client_for_run(run), *_where(run), run.subjects)
    if as_json:
        print_json({"run": run.run_id, "missing": result.missing, "with_output": result.with_output})
    elif result.missing:
        click.echo("\n".join(result.missing))
        note(f"{len(result.missing)} of {result.subjects} subjects of run {run.run_id} have no output")
    else:
        note(f"all {result.subjects} subjects of run {run.run_id} have output")
    click.get_current_context().exit(1 if result.missing else 0)


@results.command(
    epilog="""\b
Examples:
  clustertools results collect RUN --file metrics.json > metrics.csv
  clustertools results collect RUN --file qc/summary.csv -o qc.csv
  clustertools results collect RUN --file metrics.json --format json -o all.json
"""
)
@click.argument("run_id", metavar="[RUN]", required=False)
@click.option(
    "--file",
    "name",
    required=True,
    metavar="NAME",
    help="The file under each subject's output: JSON object or list of objects, JSON lines, CSV or TSV.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    help="Write here (default, or -: stdout).",
)
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True)
@jobs_option
@click.pass_obj
def collect(app: App, run_id: str | None, name: str, output: Path | None, fmt: str, jobs: int) -> None:
    """Gather one file of every subject into one table, with a leading `subject` column.

    In CSV, a text cell a spreadsheet would run as a formula (starting with = + - @, a tab or CR, and
    not a number) gets a leading ' (OWASP's CSV-injection rule); JSON keeps every value as it is.
    """
    import json

    from cluster_tools.services.runs.results import client_for_run
    from cluster_tools.services.runs.results_collect import collect_table, write_csv

    run = _run(app, run_id)
    table = collect_table(client_for_run(run, max_pool_connections=jobs), *_where(run), run.subjects, name, jobs=jobs)
    to_file = output if output is not None and str(output) != "-" else None
    handle = to_file.open("w", encoding="utf-8", newline="") if to_file is not None else sys.stdout
    try:
        if fmt == "csv":
            write_csv(table, handle)
        else:
            handle.write(json.dumps(table.rows, indent=2, default=str) + "\n")
    finally:
        if to_file is not None:
            handle.close()
    if table.missing:
        shown = ", ".join(table.missing[:20]) + (" ..." if len(table.missing) > 20 else "")
        note(f"{len(table.missing)} subjects have no {name}: {shown}")
    for subject, why in list(table.unreadable.items())[:20]:
        note(f"cannot read {subject}/{name}: {why}")
    note(
        f"{len(table.rows)} rows from {table.read} of {len(run.subjects)} subjects"
        + (f" -> {output}" if output else "")
    )
    if table.unreadable:
        raise CliError(f"{len(table.unreadable)} subjects' {name} could not be read (hint: see the lines above)")


@results.command(
    epilog="""\b
Examples:
  clustertools results push                  # every kept output of the latest run
  clustertools results push RUN sub-001
"""
)
@click.argument("run_id", metavar="[RUN]", required=False)
@click.argument("subjects", metavar="[SUBJECT]...", nargs=-1)
@json_option
@click.pass_obj
def push(app: App, run_id: str | None, subjects: tuple[str, ...], as_json: bool) -> None:
    """Upload outputs that tasks kept on the head node after their upload to S3 failed; no recomputing.

    Each such subject shows as FAILED with "outputs kept at ..."; after the push it has the state its
    command ended with (a new record), and its outputs are in S3.
    """
    from cluster_tools.services.remote.cluster_shell import connect
    from cluster_tools.services.runs.results_push import push_kept_outputs
    from cluster_tools.store.cluster_store import load_cluster

    run = _run(app, run_id)
    _warn_unknown(run, subjects)
    result = push_kept_outputs(app.state, run, load_cluster(app.state, run.cluster), connect, subjects)
    if as_json:
        print_json(result.to_json())
    for s in result.pushed if not as_json else ():
        click.echo(f"{s.subject}: uploaded; {s.state}" + (f" (exit code {s.exit_code})" if s.exit_code else ""))
    for subject, why in result.failed.items():
        note(f"{subject}: not pushed: {why}")
    note(
        f"pushed {len(result.pushed)} subject(s) of run {run.run_id} to s3://{run.output_location.bucket}/"
        f"{run.run_prefix}/"
    )
    if result.failed:
        raise CliError(
            f"{len(result.failed)} subject(s) were not pushed (hint: is S3 reachable again? run the same "
            "command again; subjects whose kept outputs are gone: `clustertools resubmit RUN --failed "
            "--recompute-kept`)"
        )


class _Progress:
    """A rich progress bar (bytes and files) on stderr, or nothing when stderr is not a terminal."""

    def __init__(self, enabled: bool) -> None:
        import itertools

        self.bar: Progress | None = None
        self.task: TaskID | None = None
        self.total_files = 0
        self._done = itertools.count(1)  # next() is atomic in CPython: safe from worker threads
        if enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
                TransferSpeedColumn,
            )

            self.bar = Progress(
                TextColumn("downloading"),
                BarColumn(),
                DownloadColumn(binary_units=True),
                TransferSpeedColumn(),
                TextColumn("{task.fields[files]} files"),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=True,
            )

    def __enter__(self) -> _Progress:
        if self.bar:
            self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar:
            self.bar.stop()

    def start(self, files: int, total: int) -> None:
        self.total_files = files
        if self.bar:
            self.task = self.bar.add_task("download", total=total, files=f"0/{files}")

    def advance(self, n: int) -> None:
        if self.bar and self.task is not None:
            self.bar.update(self.task, advance=n)

    def file_done(self) -> None:
        done = next(self._done)
        if self.bar and self.task is not None:
            self.bar.update(self.task, files=f"{done}/{self.total_files}")


def _when(value: str) -> str:
    return value[:19].replace("T", " ")


def _printable(key: str) -> str:
    """A key on one line: control characters shown escaped."""
    if key.isprintable():
        return key
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in key)


def _human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"

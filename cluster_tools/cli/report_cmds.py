"""clustertools report"""

from __future__ import annotations

import os
from pathlib import Path

import click

from cluster_tools.cli.app import App, cli, note
from cluster_tools.cli.output import print_json

GENERATOR_MARK = b'<meta name="generator" content="clustertools report">'


@cli.command(
    epilog="""\b
Examples:
  clustertools report RUN                    # writes report-RUN.html here: open it in a browser
  clustertools report RUN -o /tmp/run.html
  clustertools report RUN --text             # the same summary in the terminal
  clustertools report RUN --json | jq '.failures'
"""
)
@click.argument("run_id", metavar="[RUN]", required=False)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    help="Write the page here (default: report-RUN.html in the current directory; -: stdout).",
)
@click.option("--text", "as_text", is_flag=True, help="Print the summary for the terminal (no page unless -o).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON for scripts (no page unless -o).")
@click.option("--force", is_flag=True, help="Overwrite an existing file that is not an earlier clustertools report.")
@click.pass_obj
def report(app: App, run_id: str | None, output: Path | None, as_text: bool, as_json: bool, force: bool) -> None:
    """A report page of a run: timeline per node, runtimes, failures, cost.

    One self-contained HTML page: a timeline of tasks per node (who ran when), a histogram of task
    runtimes, failures by exit code, and the run's cost (the figure `clustertools cost RUN` shows) with each
    subject's share when the cluster can be priced. The page
    needs no network to view (no script, font or image is fetched). States are read as `clustertools
    status` reads them: one SSH round trip to the head node, or the records in S3 when the head node
    is gone. An earlier report at the same path is replaced; any other file only with
    --force. RUN defaults to the project's latest run.
    """
    if as_text and as_json:
        raise click.UsageError("--text and --json exclude each other")
    run = app.run(run_id)
    page = output if output is not None else (None if as_text or as_json else Path(f"report-{run.id}.html"))
    to_stdout = page is not None and str(page) == "-"
    if to_stdout and (as_text or as_json):
        raise click.UsageError("-o - writes the page to stdout: it cannot go with --text or --json")
    if page is not None and not to_stdout:
        _check_writable(page, force)
    from cluster_tools.services.aws.price_lookup import aws_for

    result = run.report(app.project(), aws=aws_for(app.environ), progress=note)
    if as_json:
        print_json(result.to_json())
    elif as_text:
        from cluster_tools.render.report_text import render_report_text

        click.echo(render_report_text(result), nl=False)
    if page is None:
        return
    from cluster_tools.render.report_html import render_report_html

    if to_stdout:
        click.echo(render_report_html(result), nl=False)
        return
    size = _write(page, render_report_html(result))
    message = (
        f"wrote {page} ({size / 1024:,.0f} KiB): run {run.id}, {result.subjects:,} subjects, "
        f"{result.tasks:,} tasks on {len(result.lanes)} node(s); open it in a browser"
    )
    (note if as_text or as_json else click.echo)(message)


def _check_writable(path: Path, force: bool) -> None:
    """Before any remote work: refuse a directory, and a file that is not an earlier report (unless --force)."""
    from cluster_tools.errors import ConfigError

    if path.is_dir():
        raise ConfigError(f"{path} is a directory", "give -o a file name, e.g. -o report.html")
    if path.exists() and not force:
        with path.open("rb") as existing:
            if GENERATOR_MARK not in existing.read(1024):
                raise ConfigError(
                    f"{path} exists and is not a clustertools report",
                    "pass --force to overwrite it, or -o another file",
                )


def _write(path: Path, text: str) -> int:
    """Atomically: a reader (or a browser reloading) never sees half a page."""
    data = text.encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temporary.write_bytes(data)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return len(data)

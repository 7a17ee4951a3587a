"""clustertools init, clustertools subjects"""

from __future__ import annotations

from pathlib import Path

import click

from cluster_tools.cli.app import App, cli
from cluster_tools.cli.flags import cluster_option, json_option


@cli.command(
    epilog="""\b
Examples:
  clustertools init my-study          # a new project dir
  clustertools init . --name abcd-seg --output s3://my-bucket/abcd
"""
)
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path), default=".")
@click.option("--name", help="Project name (default: from the directory's name).")
@click.option("--cluster", default="sandbox", show_default=True, help="The project's default cluster.")
@click.option("--output", metavar="S3_URL", help="Where outputs go (default: the sandbox's bucket).")
@click.option("--force", is_flag=True, help="Overwrite existing files.")
@click.pass_obj
def init(app: App, directory: Path, name: str | None, cluster: str, output: str | None, force: bool) -> None:
    """Write a commented clustertools.yaml and an example subjects.txt."""
    from cluster_tools.services.project.project_init import init_project

    result = init_project(directory, name=name, cluster=cluster, output=output, force=force)
    for path in result.written:
        click.echo(f"wrote {path}")
    click.echo("next: `clustertools sandbox up`, then `clustertools ssh -- sinfo`")


@cli.command(
    epilog="""\b
Examples:
  clustertools subjects s3://my-bucket/bids/ --pattern 'sub-*' -o subjects.txt
  clustertools subjects s3://clustertools-sandbox/inputs/ -c sandbox --json
"""
)
@click.argument("url", metavar="S3_URL")
@click.option("--pattern", metavar="GLOB", help="Only names matching this shell pattern, e.g. 'sub-*'.")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    help="Write a subjects file here ('-': stdout, the default).",
)
@cluster_option
@json_option
@click.pass_obj
def subjects(
    app: App, url: str, pattern: str | None, output: Path | None, cluster_name: str | None, as_json: bool
) -> None:
    """List the subjects under an S3 prefix (its 'directories': BIDS sub-* or plain IDs) as a subjects file.

    It reads the storage the cluster's tasks use (the sandbox's S3 for the sandbox), with your credentials.
    """
    from cluster_tools.cli.app import note
    from cluster_tools.cli.output import print_json
    from cluster_tools.services.project.subjects_from_s3 import subjects_in
    from cluster_tools.services.runs.results import client_for_cluster

    found = subjects_in(client_for_cluster(app.cluster(cluster_name)), url, pattern)
    if found.skipped:
        note(
            f"skipped {len(found.skipped)} name(s) that are not subjects{' matching ' + pattern if pattern else ''}: "
            f"{', '.join(found.skipped[:5])}{' ...' if len(found.skipped) > 5 else ''}"
        )
    if as_json:
        print_json(found.to_json())
    elif output is None or str(output) == "-":
        click.echo(found.text(), nl=False)
    else:
        output.write_text(found.text())
        note(f"wrote {len(found.subjects)} subject(s) to {output}")

"""clustertools init"""

from __future__ import annotations

from pathlib import Path

import click

from cluster_tools.cli.app import App, cli


@cli.command(epilog="""\b
Examples:
  clustertools init my-study          # a new project dir
  clustertools init . --name abcd-seg --output s3://my-bucket/abcd
""")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path), default=".")
@click.option("--name", help="Project name (default: from the directory's name).")
@click.option("--cluster", default="sandbox", show_default=True, help="The project's default cluster.")
@click.option("--output", metavar="S3_URL", help="Where outputs go (default: the sandbox's bucket).")
@click.option("--force", is_flag=True, help="Overwrite existing files.")
@click.pass_obj
def init(app: App, directory: Path, name: str | None, cluster: str, output: str | None, force: bool) -> None:
    """Write a commented clustertools.yaml and an example subjects.txt."""
    from cluster_tools.services.project import init_project

    result = init_project(directory, name=name, cluster=cluster, output=output, force=force)
    for path in result.written:
        click.echo(f"wrote {path}")
    click.echo("next: `clustertools sandbox up`, then `clustertools ssh -- sinfo`")

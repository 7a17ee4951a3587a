"""Options shared by many commands, defined once."""

from __future__ import annotations

import click

cluster_option = click.option(
    "-c",
    "--cluster",
    "cluster_name",
    metavar="NAME",
    help="The cluster (default: the project's cluster, or the only one known).",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts instead of a table.")

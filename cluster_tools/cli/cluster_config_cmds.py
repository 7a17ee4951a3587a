"""clustertools validate | render cluster  (offline: no AWS call)"""

from __future__ import annotations

import click

from cluster_tools.cli.app import App, cli, note

allowed_ip_option = click.option(
    "--allowed-ip",
    metavar="CIDR",
    help="Your public IPv4 address (203.0.113.7 or 203.0.113.7/32): the only address allowed to SSH to "
    "the head node. Wins over the project's allowed_ips. It cannot be learned offline.",
)
template_option = click.option(
    "--template",
    metavar="NAME",
    help="A template of cluster-config/ instead of the project's (spot-cpu, ondemand-gpu).",
)


@cli.command(
    short_help="Check the project's ParallelCluster config offline: ParallelCluster's schema and our checks.",
    epilog="""\b
Examples:
  clustertools validate --allowed-ip 203.0.113.7/32
  clustertools validate --allowed-ip "$(curl -s https://checkip.amazonaws.com)"
  clustertools validate --template ondemand-gpu --allowed-ip 203.0.113.7
""",
)
@allowed_ip_option
@template_option
@click.pass_obj
def validate(app: App, allowed_ip: str | None, template: str | None) -> None:
    """Check the project's ParallelCluster config offline: ParallelCluster's own schema, then
    clustertools' checks (SSH not open to the world, IMDSv2, encrypted volumes, storage kept after
    `down`, no secrets, valid names and instance types). One line per problem; exit 1 if any.
    """
    from cluster_tools.errors import ConfigError
    from cluster_tools.services.aws.cluster_config import validate_project_cluster

    rendered, problems = validate_project_cluster(app.project(), allowed_ip=allowed_ip, template=template)
    for line in rendered.notes:
        note(f"note: {line}")
    if problems:
        for line in problems:
            click.echo(line)
        raise ConfigError(
            f"{len(problems)} problem(s) in the ParallelCluster config of {rendered.cluster_name}",
            "fix them in clustertools.yaml (parallelcluster:); `clustertools render cluster` shows the config",
        )
    if rendered.open_ssh_ok:
        note("warning: allowed_ips is 0.0.0.0/0: SSH to the head node is open to the whole internet")
    click.echo(
        f"ok: {rendered.cluster_name} ({rendered.template}, {rendered.region}) passes ParallelCluster's "
        "schema and clustertools' checks"
    )


@cli.group(
    epilog="""\b
Examples:
  clustertools render cluster --allowed-ip 203.0.113.7/32 > cluster.yaml
"""
)
def render() -> None:
    """Print what clustertools would send, without sending anything."""


@render.command(
    "cluster",
    epilog="""\b
Examples:
  clustertools render cluster --allowed-ip 203.0.113.7/32
  clustertools render cluster --template ondemand-gpu --allowed-ip 203.0.113.7 > cluster.yaml
""",
)
@allowed_ip_option
@template_option
@click.pass_obj
def render_cluster(app: App, allowed_ip: str | None, template: str | None) -> None:
    """Print the ParallelCluster config (YAML) that `up` would send, rendered from clustertools.yaml."""
    from cluster_tools.services.aws.cluster_config import render_project_cluster

    rendered = render_project_cluster(app.project(), allowed_ip=allowed_ip, template=template)
    click.echo(rendered.yaml_text, nl=False)
    if rendered.allowed_ips_from == "placeholder":
        note(
            "note: your public address cannot be learned offline, so HeadNode.Ssh.AllowedIps is the placeholder "
            "YOUR-PUBLIC-IP/32, which fails validation (it never falls back to 0.0.0.0/0); pass --allowed-ip "
            "YOUR.IP/32 or set parallelcluster.allowed_ips"
        )
    elif rendered.allowed_ips == "0.0.0.0/0":
        note("warning: AllowedIps is 0.0.0.0/0: SSH to the head node is open to the whole internet")

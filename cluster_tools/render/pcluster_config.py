"""Pure: a project's ``parallelcluster:`` section -> ParallelCluster v3 YAML, through a template of
``cluster-config/``. No AWS call and no pcluster import: validation lives in transport/pcluster_schema.py.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jinja2

from cluster_tools import __version__
from cluster_tools.errors import ConfigError
from cluster_tools.model.aws.cluster_checks import ALLOWED_IPS_PLACEHOLDER
from cluster_tools.model.aws.cluster_spec import ClusterSpec, check_allowed_ips
from cluster_tools.model.aws.ecr import ecr_read_policy
from cluster_tools.model.clusters.cluster_record import check_cluster_name
from cluster_tools.render.node_bootstrap import NodeBootstrap, autostop_of
from cluster_tools.render.templates import environment, yaml_scalar

# ParallelCluster's HeadNodeBootstrapTimeout (pcluster.constants.NODE_BOOTSTRAP_TIMEOUT: 2100 s in 3.16, 1800 s
# before), written here so a rendered config does not change with the installed release.
PCLUSTER_HEAD_NODE_BOOTSTRAP_S = 2100
# What the head node's OnNodeConfigured adds inside that budget, before it signals CloudFormation: pulling
# (and for apptainer, building a SIF from) a multi-GB image on a small head node, and solving a conda environment.
IMAGE_PULL_ALLOWANCE_S = 3600
CONDA_ENV_ALLOWANCE_S = 1800


def bootstrap_prefix(output_bucket: str, cluster_name: str) -> str:
    """Where ``up`` uploads bootstrap/ for this cluster."""
    return f"s3://{output_bucket}/clustertools/{cluster_name}/bootstrap/"


def bootstrap_url(output_bucket: str, cluster_name: str) -> str:
    """The OnNodeConfigured script every node runs (head node and each queue)."""
    return bootstrap_prefix(output_bucket, cluster_name) + "on-node-configured.sh"


def head_node_bootstrap_timeout(spec: ClusterSpec, node: NodeBootstrap) -> int | None:
    """DevSettings.Timeouts.HeadNodeBootstrapTimeout: the project's, else ParallelCluster's default plus an
    allowance for each slow step the head node runs (image pull, conda environment); None when it runs none."""
    if spec.head_node_bootstrap_timeout is not None:
        return spec.head_node_bootstrap_timeout
    extra = (IMAGE_PULL_ALLOWANCE_S if node.image else 0) + (CONDA_ENV_ALLOWANCE_S if node.env_file_key else 0)
    return PCLUSTER_HEAD_NODE_BOOTSTRAP_S + extra if extra else None


def available_templates(templates_dir: Path) -> list[str]:
    """Template names a project may choose (files starting with ``_`` are shared pieces). ``templates_dir`` is
    cluster-config/ (the checkout's or an installed copy's): the caller finds it, this module reads no files
    but the ones it is given."""
    return sorted(
        p.name.removesuffix(".yaml.j2") for p in templates_dir.glob("*.yaml.j2") if not p.name.startswith("_")
    )


def yaml_value(value: Any) -> str:
    """A YAML scalar that reads back as exactly ``value`` with its type (int, bool or str)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return yaml_scalar(value)
    # Anything else (None, lists, dicts) would be a template bug: refuse rather than print its repr.
    raise TypeError(f"yaml_value takes str, int or bool, not {type(value).__name__}")


def render_cluster_config(
    spec: ClusterSpec,
    *,
    cluster_name: str,
    bootstrap_url: str,
    caller_cidr: str | None,
    output_bucket: str,
    project: str,
    owner: str | None = None,
    extra_input_buckets: Sequence[str] = (),
    container_runtime: str = "none",
    bootstrap: NodeBootstrap | None = None,
    templates_dir: Path,
) -> str:
    """The ParallelCluster config ``up`` would send, as YAML text.

    SSH to the head node is allowed from ``spec.allowed_ips`` when the project sets it, else from
    ``caller_cidr`` (the caller's public address), else from a placeholder that fails validation:
    never 0.0.0.0/0 unless the project asks for it. ``extra_input_buckets`` (e.g. the bucket of the
    project's storage.input) get read-only access like ``spec.input_buckets``; ``output_bucket`` gets write.
    ``bootstrap`` gives every node's OnNodeConfigured Args (the project's Miniforge, environment and image);
    without it the nodes get only the project, the cluster, ``container_runtime`` and the bootstrap prefix.
    ``templates_dir`` is the cluster-config/ folder to render from (store.shipped_files finds it).
    """
    check_cluster_name(cluster_name)
    allowed_ips = _allowed_ips(spec, caller_cidr)
    read_buckets = [b for b in dict.fromkeys([*spec.input_buckets, *extra_input_buckets]) if b != output_bucket]
    node = bootstrap or _minimal_bootstrap(spec, project, cluster_name, container_runtime, bootstrap_url)
    values = {
        "spec": spec,
        "cluster_name": cluster_name,
        "project": project,
        "version": __version__,
        "template_name": spec.template,
        "allowed_ips": allowed_ips,
        "read_buckets": read_buckets,
        "output_bucket": output_bucket,
        "bootstrap_url": bootstrap_url,
        # What the bootstrap script needs to find the rest of bootstrap/ and to label its logs.
        # The runtime is said explicitly: a node never installs one the project does not use.
        "bootstrap_args": node.args(),
        "head_bootstrap_args": node.head_args(),  # + the idle autostop, installed on the head node only
        **_policies(spec, node),
        "compute_subnet_ids": spec.compute_subnet_ids or [spec.subnet_id],
        "tag_pairs": _tag_pairs(spec, project, spec.owner or owner),
        "head_node_bootstrap_timeout": head_node_bootstrap_timeout(spec, node),
    }
    return _render(templates_dir, spec.template, values)


def _minimal_bootstrap(
    spec: ClusterSpec, project: str, cluster: str, runtime: str, bootstrap_url: str
) -> NodeBootstrap:
    """The nodes' OnNodeConfigured Args when the caller gives none: the project, the cluster, the runtime, the
    bootstrap prefix (``bootstrap_url``'s folder) and the spec's autostop."""
    return NodeBootstrap(
        project=project,
        cluster=cluster,
        runtime=runtime,
        prefix=bootstrap_url.rsplit("/", 1)[0] + "/",
        **autostop_of(spec),
    )


def _tag_pairs(spec: ClusterSpec, project: str, owner: str | None) -> list[tuple[str, str]]:
    """The tags of every resource: ours (project, owner, clustertools' version), then the project's own."""
    return [
        ("project", project),
        *([("owner", owner)] if owner else []),
        ("clustertools", __version__),
        *sorted(spec.tags.items()),
    ]


def _allowed_ips(spec: ClusterSpec, caller_cidr: str | None) -> str:
    """The project's allowed_ips, else the caller's address, else a placeholder that fails validation."""
    try:
        return spec.allowed_ips or (check_allowed_ips(caller_cidr) if caller_cidr else ALLOWED_IPS_PLACEHOLDER)
    except ValueError as exc:
        raise ConfigError(f"the caller's address: {exc}", "set parallelcluster.allowed_ips") from None


def _policies(spec: ClusterSpec, node: NodeBootstrap) -> dict[str, list[str]]:
    """The IAM policies of the compute nodes and of the head node (which may also take the cluster down)."""
    # An image in ECR: every node may pull it (the head node's bootstrap, a compute node's first task).
    node_policies = list(dict.fromkeys([*spec.additional_iam_policies, *filter(None, [ecr_read_policy(node.image)])]))
    head_policies = list(dict.fromkeys([*node_policies, *filter(None, [spec.autostop_down_policy_arn])]))
    return {"node_policies": node_policies, "head_policies": head_policies}


def _render(templates_dir: Path, template_name: str, values: Mapping[str, object]) -> str:
    """``template_name``.yaml.j2 of cluster-config/ rendered with ``values``, without blank lines."""
    # The one environment (StrictUndefined, shquote, yaml_scalar), rooted at cluster-config/ instead of the package.
    env = environment(line_safe=False).overlay(loader=jinja2.FileSystemLoader(str(templates_dir)))
    env.filters = {**env.filters, "yaml_value": yaml_value}
    try:
        template = env.get_template(f"{template_name}.yaml.j2")
    except jinja2.TemplateNotFound:
        raise ConfigError(
            f"parallelcluster.template: no template {template_name!r} in {templates_dir}",
            f"choose one of: {', '.join(available_templates(templates_dir)) or '(none found)'}",
        ) from None
    text = template.render(**values)
    # Blank lines left by optional sections carry no meaning; dropping them keeps goldens stable.
    return "\n".join(line for line in text.splitlines() if line.strip()) + "\n"

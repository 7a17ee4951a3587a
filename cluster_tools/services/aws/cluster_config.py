"""The project's ParallelCluster config: rendered from clustertools.yaml (``parallelcluster:``) and checked
offline. ``up`` sends exactly what ``render_project_cluster`` returns."""

from __future__ import annotations

import getpass
import re
from dataclasses import dataclass, replace

from cluster_tools.errors import ConfigError
from cluster_tools.model.aws.cluster_checks import ALLOWED_IPS_PLACEHOLDER
from cluster_tools.model.aws.cluster_spec import ClusterSpec, check_allowed_ips, cluster_name_for, is_open_to_world
from cluster_tools.model.aws.job_fit import job_fit_problems
from cluster_tools.model.cost.pricing import shipped_instance_gpus, shipped_instance_shape
from cluster_tools.model.nodes.container_runtimes import apptainer_arch_problem
from cluster_tools.model.project.project_config import Project
from cluster_tools.render.node_bootstrap import default_runtime, node_bootstrap_for
from cluster_tools.render.pcluster_config import (
    available_templates,
    bootstrap_prefix,
    bootstrap_url,
    render_cluster_config,
)
from cluster_tools.store.shipped_files import cluster_config_dir


@dataclass(frozen=True)
class RenderedCluster:
    cluster_name: str
    region: str
    template: str
    yaml_text: str
    allowed_ips: str  # HeadNode.Ssh.AllowedIps as rendered
    allowed_ips_from: str  # "project", "option" (--allowed-ip) or "placeholder" (unknown offline)
    open_ssh_ok: bool  # the project or the user asked for 0.0.0.0/0 on purpose
    notes: tuple[str, ...] = ()  # from validate: checks that could not be made, and why


def require_project(project: Project | None) -> Project:
    """The project, or the ConfigError that there is none."""
    if project is None:
        raise ConfigError(
            "no clustertools.yaml here or above", "create one with `clustertools init`, or pass --project FILE"
        )
    return project


def cluster_spec_of(project: Project | None) -> ClusterSpec:
    project = require_project(project)
    if project.parallelcluster is None:
        raise ConfigError(
            "clustertools.yaml has no parallelcluster: section (what `up` builds on AWS)",
            "copy one from cluster-config/examples/, or see the one `clustertools init` writes",
        )
    return project.parallelcluster


def render_project_cluster(
    project: Project | None, *, allowed_ip: str | None = None, template: str | None = None
) -> RenderedCluster:
    """Render the project's cluster. ``allowed_ip`` (``--allowed-ip``) wins over the project's
    ``allowed_ips``; with neither, AllowedIps is a placeholder that fails validation."""
    project = require_project(project)
    spec = configured = cluster_spec_of(project)
    update: dict[str, str] = {}
    if template is not None:
        templates = available_templates(cluster_config_dir())
        if template not in templates:
            raise ConfigError(f"--template: no template {template!r}", f"choose one of: {', '.join(templates)}")
        update["template"] = template
    if allowed_ip is not None:
        try:
            update["allowed_ips"] = check_allowed_ips(allowed_ip)
        except ValueError as exc:
            raise ConfigError(f"--allowed-ip: {exc}", "give your public IPv4 address, e.g. 203.0.113.7/32") from None
    spec = spec.model_copy(update=update)  # both values were checked above
    name = cluster_name_for(spec, project.name)
    output_bucket = project.storage.output.bucket
    # Every node reads the input bucket and, when the Miniforge installer sits in S3, its bucket.
    read_buckets = [b.bucket for b in (project.storage.input,) if b] + [
        b for b in (project.bootstrap.installer_bucket,) if b
    ]
    text = render_cluster_config(
        spec,
        cluster_name=name,
        bootstrap_url=bootstrap_url(output_bucket, name),
        caller_cidr=None,  # unknown offline; `up` will pass the caller's address here
        output_bucket=output_bucket,
        project=project.name,
        owner=_local_user(),
        extra_input_buckets=read_buckets,
        bootstrap=node_bootstrap_for(project, name, bootstrap_prefix(output_bucket, name)),
        templates_dir=cluster_config_dir(),  # the checkout's cluster-config/, or the copy an installed one ships
    )
    source = "option" if allowed_ip is not None else ("project" if spec.allowed_ips else "placeholder")
    # Only the project file can open SSH to the world on purpose: --allowed-ip stands for your address.
    open_ssh_ok = is_open_to_world(configured.allowed_ips) and is_open_to_world(spec.allowed_ips)
    return RenderedCluster(
        cluster_name=name,
        region=spec.region,
        template=spec.template,
        yaml_text=text,
        allowed_ips=spec.allowed_ips or ALLOWED_IPS_PLACEHOLDER,
        allowed_ips_from=source,
        open_ssh_ok=open_ssh_ok,
    )


def validate_project_cluster(
    project: Project | None, *, allowed_ip: str | None = None, template: str | None = None
) -> tuple[RenderedCluster, list[str]]:
    """Check the section against the installed ParallelCluster and the node bootstrap (ConfigError naming
    each key's line), render, then check with ParallelCluster's schema and clustertools' own checks (offline).
    ``rendered.notes`` says which checks could not be made."""
    from cluster_tools.transport.pcluster_schema import validate_cluster_config

    notes = check_project_spec(project)
    rendered = render_project_cluster(project, allowed_ip=allowed_ip, template=template)
    problems = validate_cluster_config(
        rendered.yaml_text, rendered.cluster_name, rendered.region, open_ssh_ok=rendered.open_ssh_ok
    )
    if project is not None and project.parallelcluster is not None:
        problems += job_fit_problems(
            project.job, project.parallelcluster, shipped_instance_shape, shipped_instance_gpus
        )
        problems += _runtime_problems(project, project.parallelcluster)
    return replace(rendered, notes=tuple(notes)), problems


def check_project_spec(project: Project | None) -> list[str]:
    """Raise one ConfigError for every error of cluster_spec_checks, each as ``clustertools.yaml:7:
    parallelcluster.os: ...``; return its notes (checks that could not be made) in the same form."""
    from cluster_tools.model.aws.cluster_spec_checks import check_cluster_spec
    from cluster_tools.model.aws.pcluster_support import installed_support

    project = require_project(project)
    spec = cluster_spec_of(project)
    findings = check_cluster_spec(spec, installed_support(), shipped_instance_shape)
    lines = {f: f"{project.where('parallelcluster', *f.loc)}: {f.message}" for f in findings}
    errors = [f for f in findings if f.level == "error"]
    if errors:
        hint = errors[0].hint if len(errors) == 1 else None
        raise ConfigError(
            "; ".join(lines[f] for f in errors), hint or "fix them in clustertools.yaml (parallelcluster:)"
        )
    return [lines[f] for f in findings]


def _runtime_problems(project: Project, spec: ClusterSpec) -> list[str]:
    """The container runtime's fit beyond the OS (checked at load): apptainer's packages are x86_64 only."""
    if default_runtime(project) != "apptainer":
        return []
    types = [spec.head_node_instance_type, *(t for queue in spec.queues for t in queue.instance_types)]
    problem = apptainer_arch_problem(list(dict.fromkeys(types)))
    return [problem] if problem else []


def _local_user() -> str | None:
    """The owner tag's default; None when the login name cannot be a tag value."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry and no USER: a container, a CI runner
        return None
    return user if re.fullmatch(r"[A-Za-z0-9 +=._:/@-]{1,256}", user) else None


def with_autostop(project: Project | None, minutes: int | None) -> Project | None:
    """``up --autostop MINUTES`` over the project's ``parallelcluster.autostop_minutes`` (checked by the same model)."""
    if project is None or minutes is None or project.parallelcluster is None:
        return project
    from pydantic import ValidationError

    try:
        spec = ClusterSpec.model_validate({**project.parallelcluster.model_dump(), "autostop_minutes": minutes})
    except ValidationError as exc:
        raise ConfigError(f"--autostop {minutes}: {exc.errors()[0]['msg']}", "1 to 10080 minutes") from None
    return project.model_copy(update={"parallelcluster": spec})


def with_region(project: Project | None, region: str | None) -> Project | None:
    """``up --region REGION`` over the project's ``parallelcluster.region``."""
    if project is None or region is None or project.parallelcluster is None or region == project.parallelcluster.region:
        return project
    from pydantic import ValidationError

    try:
        spec = ClusterSpec.model_validate({**project.parallelcluster.model_dump(), "region": region})
    except ValidationError:
        raise ConfigError(f"--region {region!r} is not an AWS region", "e.g. us-east-1") from None
    return project.model_copy(update={"parallelcluster": spec})

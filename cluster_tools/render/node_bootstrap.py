"""Pure: the arguments of the node bootstrap (bootstrap/on-node-configured.sh), from the project.

The same list goes into every ``OnNodeConfigured.Args`` of a rendered ParallelCluster config and onto the
command line of ``clustertools sandbox bootstrap``, so the sandbox runs the script as a real node would.
Each value is one word: ParallelCluster hands Args to the script as separate arguments, and the project
model refuses spaces, quotes and shell syntax in every one of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cluster_tools.model.aws.cluster_spec import ClusterSpec
from cluster_tools.model.nodes.container_runtimes import default_runtime as runtime_default_of
from cluster_tools.model.project.project_config import Project

RUNTIMES: tuple[str, ...] = ("apptainer", "docker", "enroot", "podman", "none")


@dataclass(frozen=True)
class NodeBootstrap:
    """What one cluster's nodes are told to set up."""

    project: str
    cluster: str
    prefix: str  # s3://BUCKET/clustertools/CLUSTER/bootstrap/ (ends with /)
    runtime: str = "none"
    miniforge_url: str | None = None
    miniforge_sha256: str | None = None
    env_file_key: str | None = None  # a name under ``prefix``, e.g. env/environment.yml
    image: str | None = None
    # With runtime apptainer: its release package, checked against this sha256 before it is installed.
    apptainer_version: str | None = None
    apptainer_sha256: str | None = None
    shared_dir: str | None = None  # the shared storage's mount dir; the script's default: /shared, else /home
    # The head node's idle autostop (bootstrap/autostop.sh); compute nodes never get these.
    autostop_minutes: int | None = None
    autostop_action: str = "stop"
    autostop_down_role_arn: str | None = None

    def args(self) -> list[str]:
        """The script's arguments, in a fixed order (golden files depend on it)."""
        args = [
            "--project",
            self.project,
            "--cluster",
            self.cluster,
            "--runtime",
            self.runtime,
            "--bootstrap-prefix",
            self.prefix,
        ]
        if self.miniforge_url:
            args += ["--miniforge-url", self.miniforge_url, "--miniforge-sha256", self.miniforge_sha256 or ""]
        if self.env_file_key:
            args += ["--env-file", self.env_file_key]
        if self.image:
            args += ["--image", self.image]
        if self.runtime == "apptainer" and self.apptainer_version:
            args += ["--apptainer-version", self.apptainer_version, "--apptainer-sha256", self.apptainer_sha256 or ""]
        if self.shared_dir:
            args += ["--shared-dir", self.shared_dir]
        return args

    def head_args(self) -> list[str]:
        """The head node's arguments: every node's, then the autostop settings when the project sets them."""
        args = self.args()
        if self.autostop_minutes is not None:
            args += ["--autostop-minutes", str(self.autostop_minutes), "--autostop-action", self.autostop_action]
            if self.autostop_action == "down" and self.autostop_down_role_arn:
                args += ["--autostop-down-role-arn", self.autostop_down_role_arn]
        return args


def default_runtime(project: Project) -> str:
    """A node installs a container runtime only when the job runs in a container: the one the project asks for,
    else its OS's (cluster_tools.model.nodes.container_runtimes; the project was checked at load, so this one can
    run there)."""
    if not project.job.container:
        return "none"
    spec = project.parallelcluster
    os_name = spec.os if spec is not None else ClusterSpec.model_fields["os"].default
    return project.bootstrap.container_runtime or runtime_default_of(os_name) or "none"


def node_bootstrap_for(
    project: Project, cluster_name: str, prefix: str, *, runtime: str | None = None
) -> NodeBootstrap:
    """The project's bootstrap settings for one cluster. With runtime ``none`` no image is pulled."""
    runtime = runtime or default_runtime(project)
    settings = project.bootstrap
    return NodeBootstrap(
        project=project.name,
        cluster=cluster_name,
        prefix=prefix,
        runtime=runtime,
        miniforge_url=settings.miniforge_url,
        miniforge_sha256=settings.miniforge_sha256,
        env_file_key=settings.env_file_key,
        image=project.job.image_to_pull if runtime != "none" else None,
        apptainer_version=settings.apptainer_version,
        apptainer_sha256=settings.apptainer_sha256,
        shared_dir=shared_dir_of(project),
        **autostop_of(project.parallelcluster),
    )


def shared_dir_of(project: Project) -> str | None:
    """Where the cluster's shared storage is mounted (Miniforge, environments and images go there, and
    bootstrap.env that the run wrapper reads); None: the script's default."""
    spec = project.parallelcluster
    return spec.shared_storage.mount_dir if spec is not None and spec.shared_storage is not None else None


def autostop_of(spec: ClusterSpec | None) -> dict[str, Any]:
    """The head node's autostop settings from ``parallelcluster:`` (none: autostop is not installed)."""
    if spec is None or spec.autostop_minutes is None:
        return {}
    return {
        "autostop_minutes": spec.autostop_minutes,
        "autostop_action": spec.autostop_action,
        "autostop_down_role_arn": spec.autostop_down_role_arn,
    }

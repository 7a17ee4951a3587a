"""`clustertools bootstrap refresh`: the node bootstrap run again on a running cluster's head node (issue 17, item 3).

The same script and Args the cluster was made with (bootstrap/on-node-configured.sh, its OnNodeConfigured in the
rendered config), after bootstrap/ and the project's environment file are uploaded again. Its steps are keyed by
their inputs, so only what changed runs: a new environment file is solved into a directory of its own
(envs/PROJECT-SHA12) and a new image reference pulled into a file of its own, then bootstrap.env names them. A task
that is running keeps what it started with (the wrapper reads bootstrap.env once, at its start, and the old
directory and file stay); the next tasks use the new ones, and each record says which environment and image ran.

The sandbox: the same run as `clustertools sandbox bootstrap`. ParallelCluster: over SSH as the login user, with
`sudo -n` (ParallelCluster's default users may: the cookbook's sudoers for the cluster admin user), as cloud-init ran
it at the head node's first boot; the output goes to the log the first run wrote beside it.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import yaml

from cluster_tools.errors import ClusterToolsError, ConfigError
from cluster_tools.model.clusters.cluster_record import ClusterRecord
from cluster_tools.model.nodes.bootstrap_log import Bootstrap, parse_bootstrap
from cluster_tools.model.progress import Progress
from cluster_tools.model.project.project_config import Project
from cluster_tools.store.state_dir import StateDir
from cluster_tools.transport.remote_shell import ShellFactory

# Where a real head node keeps the refresh's copy of the script and its output (cloud-init's first run logs to
# /var/log/clustertools-bootstrap.log, the script's own --log default).
REFRESH_SCRIPT = "/var/tmp/clustertools-on-node-configured.sh"
REFRESH_OUTPUT = "/var/log/clustertools-bootstrap-refresh.log"


@dataclass
class RefreshResult:
    cluster: str
    uploads: list = field(default_factory=list)  # bootstrap_upload.BootstrapFile
    command: str = ""
    exit_code: int | None = None  # None on a dry run
    outcome: Bootstrap | None = None
    notes: list[str] = field(default_factory=list)


def refresh_bootstrap(
    state: StateDir,
    project: Project | None,
    record: ClusterRecord,
    *,
    project_dir: Path | None,
    connect: ShellFactory,
    stdout: IO[bytes] | None = None,
    dry_run: bool = False,
    progress: Progress = lambda _: None,
    s3_client: Any = None,
) -> RefreshResult:
    """Upload bootstrap/ and the environment file again, then run the head node's bootstrap; a failed run is
    returned (exit code, parsed outcome), not raised: the caller words it."""
    if project is None:
        raise ConfigError(
            "no clustertools.yaml here or above: the bootstrap is the project's",
            "run it in the project's directory, or pass --project FILE",
        )
    if record.sandbox:
        from cluster_tools.services.sandbox.sandbox_bootstrap import sandbox_bootstrap

        ran = sandbox_bootstrap(
            state, project, project_dir=project_dir, dry_run=dry_run, stdout=stdout, progress=progress
        )
        return RefreshResult(record.name, ran.uploads, ran.command, ran.exit_code, ran.outcome, ran.notes)
    if record.provider != "parallelcluster":
        raise ConfigError(
            f"{record.name} was registered, not made by clustertools: its nodes are its admins'",
            "the bootstrap runs on clusters made by `clustertools up` and on the sandbox",
        )
    return _refresh_parallelcluster(
        project,
        record,
        project_dir=project_dir,
        connect=connect,
        stdout=stdout,
        dry_run=dry_run,
        progress=progress,
        s3_client=s3_client,
    )


def head_node_script(project: Project) -> tuple[str, list[str]]:
    """The head node's OnNodeConfigured Script and Args as the project renders them now."""
    from cluster_tools.services.aws.cluster_config import render_project_cluster

    rendered = render_project_cluster(project, allowed_ip="0.0.0.0/32")  # ingress plays no part in the script
    action = (((yaml.safe_load(rendered.yaml_text) or {}).get("HeadNode") or {}).get("CustomActions") or {}).get(
        "OnNodeConfigured"
    ) or {}
    if not action.get("Script"):
        raise ConfigError(f"the project's cluster {rendered.cluster_name} runs no node bootstrap", "nothing to refresh")
    return str(action["Script"]), [str(arg) for arg in action.get("Args") or ()]


def refresh_command(script_url: str, args: list[str]) -> str:
    """The one line the head node runs as root: fetch the script, run it with its Args, keep the output."""
    body = (
        "set -o pipefail; url=$1 script=$2 out=$3; shift 3; "
        'aws s3 cp --only-show-errors "$url" "$script" 2>&1 | tee -a "$out" || exit 1; '
        'bash "$script" "$@" 2>&1 | tee -a "$out"'
    )
    return shlex.join(
        ["sudo", "-n", "bash", "-c", body, "bootstrap-refresh", script_url, REFRESH_SCRIPT, REFRESH_OUTPUT, *args]
    )


def _refresh_parallelcluster(
    project: Project,
    record: ClusterRecord,
    *,
    project_dir: Path | None,
    connect: ShellFactory,
    stdout: IO[bytes] | None,
    dry_run: bool,
    progress: Progress,
    s3_client: Any,
) -> RefreshResult:
    from cluster_tools.render.pcluster_config import bootstrap_prefix
    from cluster_tools.services.aws.bootstrap_upload import sync_project_bootstrap
    from cluster_tools.services.sandbox.sandbox_bootstrap import settings_for
    from cluster_tools.store.shipped_files import bootstrap_dir

    script_url, args = head_node_script(project)
    _, local_env = settings_for(
        project, miniforge_url=None, miniforge_sha256=None, env_file=None, project_dir=project_dir
    )
    bucket = project.storage.output.bucket
    prefix = bootstrap_prefix(bucket, record.name).removeprefix(f"s3://{bucket}/")
    root = bootstrap_dir()
    files = sorted(p for p in root.rglob("*") if p.is_file())
    if s3_client is None:
        from cluster_tools.services.aws.preflight import make_clients

        s3_client = make_clients(record.region or "us-east-1").s3
    result = RefreshResult(record.name, command=refresh_command(script_url, args))
    result.uploads = sync_project_bootstrap(
        s3_client, bucket, prefix, root, files, local_env, upload=not dry_run, progress=progress
    )
    if not dry_run:
        _run_on_head(record, result, connect=connect, stdout=stdout, progress=progress)
    return result


def _run_on_head(
    record: ClusterRecord,
    result: RefreshResult,
    *,
    connect: ShellFactory,
    stdout: IO[bytes] | None,
    progress: Progress,
) -> None:
    """``result.command`` on the head node over SSH, its output copied to ``stdout``; its exit code and parsed
    outcome go to ``result``. A login user without passwordless sudo is an error."""
    progress(f"running the node bootstrap again on the head node of {record.name} (output: {REFRESH_OUTPUT})")
    with connect(record) as conn:
        ran = conn.run(result.command, timeout=7200)
    if stdout is not None:
        stdout.write(ran.stdout)
    said = ran.stderr.decode("utf-8", "replace")
    if ran.exit_code != 0 and "sudo:" in said and "password" in said:
        raise ClusterToolsError(
            f"the login user {record.user} of {record.name} may not run sudo without a password",
            "ParallelCluster's default users may; ask the cluster's admin to run the bootstrap",
        )
    result.exit_code = ran.exit_code
    result.outcome = parse_bootstrap(ran.text, "output")

"""``clustertools sandbox bootstrap``: the real node bootstrap, run on the sandbox's node as ParallelCluster
runs it on a head node.

bootstrap/ (and the environment file) go to the sandbox's S3 endpoint exactly as ``up`` sends them to AWS
(``s3://<output bucket>/clustertools/sandbox/bootstrap/``, sha256 as object metadata). Then the head node
(entered from this machine with nsenter, as root: cloud-init is not an SSH session) fetches
``on-node-configured.sh`` from there with ``aws s3 cp`` and runs it with the Args a rendered
ParallelCluster config would give it, plus what keeps it inside the sandbox's directory: ``--shared-dir``,
``--log``, ``CT_STATE_DIR`` (its step markers) and ``CT_CFNCONFIG`` (the node role).
Nothing is written to /var or /etc. Its output is streamed and kept, as cloud-init keeps a real node's,
in the sandbox's ``log/cloud-init-output.log``; ``clustertools triage -c sandbox`` reads both logs.

It runs as root in the head node's namespace, as cloud-init runs it on a real node (the login user,
ec2-user, could not install anything). The runtime is podman, which the sandbox's nodes have, when there is an
image to pull (the project's job.container, or --image), else none: neither installs a package on this machine.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING

from pydantic import ValidationError

from cluster_tools.errors import ConfigError, SandboxError
from cluster_tools.model.nodes.bootstrap_log import Bootstrap, parse_bootstrap
from cluster_tools.model.progress import Progress
from cluster_tools.model.project.bootstrap_settings import BootstrapSettings
from cluster_tools.model.project.project_config import Project
from cluster_tools.model.runs.job_spec import JobSpec
from cluster_tools.render.node_bootstrap import RUNTIMES, NodeBootstrap
from cluster_tools.render.pcluster_config import bootstrap_prefix
from cluster_tools.render.sandbox_layout import SandboxPaths
from cluster_tools.store.state_dir import StateDir

if TYPE_CHECKING:
    from cluster_tools.services.sandbox.sandbox_lifecycle import SandboxStatus

SCRIPT = "on-node-configured.sh"
# --shared-dir: Miniforge, environments, images, bootstrap.env. /home, which every node mounts (ParallelCluster
# exports it from the head node), as the script's own default on a cluster without /shared. A node path: the
# login user's tasks read it there, whatever the permissions of the sandbox's directory on this machine.
SHARED_ON_NODE = "/home"


@dataclass(frozen=True)
class SandboxNodeFiles:
    """Where the sandbox's node keeps what a real node keeps in /var, /etc and shared storage."""

    paths: SandboxPaths

    @property
    def root(self) -> Path:
        return self.paths.root / "bootstrap"

    @property
    def script(self) -> Path:
        return self.root / "script" / SCRIPT

    @property
    def state(self) -> Path:  # CT_STATE_DIR: step markers, downloads in progress
        return self.root / "state"

    @property
    def cfnconfig(self) -> Path:  # CT_CFNCONFIG: says "HeadNode", as /etc/parallelcluster/cfnconfig would
        return self.root / "cfnconfig"

    @property
    def shared(self) -> Path:
        """Where SHARED_ON_NODE is on this machine: the head node's /home layer (services/sandbox_namespace)."""
        return self.paths.node_fs / "home"

    @property
    def log(self) -> Path:  # --log (a real node: /var/log/clustertools-bootstrap.log)
        return self.paths.log / "clustertools-bootstrap.log"

    @property
    def output(self) -> Path:  # what cloud-init would keep: the script's whole stdout and stderr
        return self.paths.log / "cloud-init-output.log"


@dataclass
class SandboxBootstrapResult:
    bootstrap: NodeBootstrap
    bucket: str
    uploads: list = field(default_factory=list)  # bootstrap_upload.BootstrapFile
    command: str = ""
    exit_code: int | None = None  # None on a dry run
    outcome: Bootstrap | None = None
    notes: list[str] = field(default_factory=list)


def settings_for(
    project: Project | None,
    *,
    miniforge_url: str | None,
    miniforge_sha256: str | None,
    env_file: Path | None,
    project_dir: Path | None,
) -> tuple[BootstrapSettings, Path | None]:
    """The project's bootstrap section with the command line's values over it, checked by the same model;
    and the local environment file to upload."""
    base = project.bootstrap if project else BootstrapSettings()
    local_env = env_file
    if local_env is None and base.env_file and project_dir is not None:
        local_env = project_dir / base.env_file
    values = {
        "miniforge_url": miniforge_url if miniforge_url is not None else base.miniforge_url,
        "miniforge_sha256": miniforge_sha256 if miniforge_sha256 is not None else base.miniforge_sha256,
        "env_file": local_env.name if local_env is not None else None,
    }
    try:
        settings = BootstrapSettings.model_validate(values)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = "--" + str(err["loc"][0]).replace("_", "-") if err["loc"] else "the bootstrap settings"
        raise ConfigError(
            f"{where}: {err['msg'].removeprefix('Value error, ')}", "see `clustertools sandbox bootstrap --help`"
        ) from None
    if local_env is not None and not local_env.is_file():
        raise ConfigError(
            f"the environment file {local_env} does not exist", "bootstrap.env_file is relative to the project dir"
        )
    return settings, local_env


def image_for(project: Project | None, image: str | None, runtime: str, notes: list[str]) -> str | None:
    if image is not None:
        try:
            JobSpec(container=image)
        except ValidationError as exc:
            raise ConfigError(f"--image: {exc.errors()[0]['msg'].removeprefix('Value error, ')}") from None
        if runtime == "none":
            raise ConfigError(f"--image {image} needs a container runtime", "leave --runtime out (podman), or pass one")
        return image
    wanted = project.job.image_to_pull if project else None
    if wanted and runtime == "none":
        notes.append(
            f"job.container {wanted} is not pulled with --runtime none (leave --runtime out to pull it with "
            "podman, the sandbox's runtime)"
        )
        return None
    return wanted


def remote_command(
    files: SandboxNodeFiles, script_url: str, endpoint_url: str, args: list[str], *, user: str = "ec2-user"
) -> str:
    """The one shell line the sandbox's node runs: fetch the script from S3, run it, keep its output.
    Its cfnconfig says what a head node's says: the node type, and the cluster's login user."""
    script = (
        "set -o pipefail; url=$1 script=$2 cfn=$3 state=$4 out=$5 endpoint=$6 user=$7; shift 7; "
        'mkdir -p "$(dirname "$script")" "$state" "$(dirname "$out")" || exit 1; '
        'printf \'cfn_node_type=HeadNode\\ncfn_cluster_user=%s\\n\' "$user" > "$cfn" || exit 1; '
        'if ! AWS_ENDPOINT_URL="$endpoint" aws s3 cp --only-show-errors "$url" "$script" 2>&1 | tee -a "$out"; then '
        'echo "cannot fetch $url" | tee -a "$out"; exit 1; fi; '
        'AWS_ENDPOINT_URL="$endpoint" CT_STATE_DIR="$state" CT_CFNCONFIG="$cfn" '
        'bash "$script" "$@" 2>&1 | tee -a "$out"'
    )
    argv = [
        "bash",
        "-c",
        script,
        "sandbox-bootstrap",
        script_url,
        str(files.script),
        str(files.cfnconfig),
        str(files.state),
        str(files.output),
        endpoint_url,
        user,
        *args,
    ]
    return shlex.join(argv)


def sandbox_bootstrap(
    state: StateDir,
    project: Project | None,
    *,
    project_dir: Path | None = None,
    miniforge_url: str | None = None,
    miniforge_sha256: str | None = None,
    env_file: Path | None = None,
    image: str | None = None,
    runtime: str | None = None,
    dry_run: bool = False,
    stdout: IO[bytes] | None = None,
    progress: Progress = lambda _: None,
    bootstrap_dir: Path | None = None,
) -> SandboxBootstrapResult:
    """Upload bootstrap/ to the sandbox's S3 endpoint and run the script on its node, streaming the output to
    ``stdout``. A failed run is returned (exit code and parsed outcome), not raised: the caller words it."""
    from cluster_tools.services.sandbox import sandbox_files
    from cluster_tools.services.sandbox.sandbox_lifecycle import SANDBOX_CLUSTER
    from cluster_tools.services.sandbox.sandbox_options import DEFAULT_BUCKET

    runtime = _runtime(project, image, runtime)
    status = _running_sandbox(state)
    notes: list[str] = []
    settings, local_env = settings_for(
        project,
        miniforge_url=miniforge_url,
        miniforge_sha256=miniforge_sha256,
        env_file=env_file,
        project_dir=project_dir,
    )
    files = SandboxNodeFiles(sandbox_files.sandbox_paths(state.sandbox))
    bucket = project.storage.output.bucket if project else DEFAULT_BUCKET
    prefix = bootstrap_prefix(bucket, SANDBOX_CLUSTER)
    node = _node_bootstrap(project, settings, prefix, runtime, image_for(project, image, runtime, notes))
    args = [*node.args(), "--shared-dir", SHARED_ON_NODE, "--log", str(files.log)]
    result = SandboxBootstrapResult(
        bootstrap=node,
        bucket=bucket,
        notes=notes,
        command=remote_command(files, prefix + SCRIPT, status.s3_endpoint_url, args, user=status.ssh.split("@", 1)[0]),
    )
    result.uploads = _upload(
        status.s3_endpoint_url, prefix, bucket, local_env, bootstrap_dir, dry_run=dry_run, progress=progress
    )
    if not dry_run:
        _run_on_head(status, result, files.log, stdout, progress)
    return result


def _running_sandbox(state: StateDir) -> SandboxStatus:
    from cluster_tools.services.sandbox.sandbox_lifecycle import sandbox_status

    status = sandbox_status(state)
    if not status.running:
        raise SandboxError("the sandbox is not running", "start it: clustertools sandbox up")
    return status


def _run_on_head(
    status: SandboxStatus, result: SandboxBootstrapResult, log: Path, stdout: IO[bytes] | None, progress: Progress
) -> None:
    """The script on the sandbox's head node as root, its output streamed to ``stdout``; its exit code and
    parsed outcome go to ``result``."""
    progress(f"running {SCRIPT} on the sandbox's head node as root (log: {log})")
    holder = next(c.pid for c in status.components if c.name == "head")
    tee = _Tee(stdout)
    result.exit_code = run_as_node_root(holder, result.command, tee)
    result.outcome = parse_bootstrap(tee.text(), "output")


def _upload(
    endpoint_url: str,
    prefix: str,
    bucket: str,
    local_env: Path | None,
    bootstrap_dir: Path | None,
    *,
    dry_run: bool,
    progress: Progress,
) -> list:
    """bootstrap/ and the environment file to the sandbox's S3 endpoint, under ``prefix``: the same upload as
    ``up``'s (a file whose object already carries its sha256 is not sent again). A dry run only lists them."""
    from cluster_tools.services.aws.bootstrap_upload import sync_project_bootstrap
    from cluster_tools.services.sandbox.sandbox_lifecycle import SANDBOX_REGION
    from cluster_tools.transport.s3 import S3Target, ensure_bucket, make_s3_client

    root, scripts = _bootstrap_files(bootstrap_dir)
    s3 = make_s3_client(S3Target(region=SANDBOX_REGION, endpoint_url=endpoint_url, sandbox=True))
    if not dry_run:
        ensure_bucket(s3, bucket, SANDBOX_REGION)
    key_prefix = prefix.removeprefix(f"s3://{bucket}/")
    return sync_project_bootstrap(
        s3, bucket, key_prefix, root, scripts, local_env, upload=not dry_run, progress=progress
    )


def _node_bootstrap(
    project: Project | None, settings: BootstrapSettings, prefix: str, runtime: str, image: str | None
) -> NodeBootstrap:
    """The script's arguments on the sandbox's node, as ``up`` gives them to every node of a real cluster."""
    from cluster_tools.services.sandbox.sandbox_files import SANDBOX_CLUSTER

    return NodeBootstrap(
        project=project.name if project else "sandbox",
        cluster=SANDBOX_CLUSTER,
        prefix=prefix,
        runtime=runtime,
        miniforge_url=settings.miniforge_url,
        miniforge_sha256=settings.miniforge_sha256,
        env_file_key=settings.env_file_key,
        image=image,
        apptainer_version=project.bootstrap.apptainer_version if project else None,
        apptainer_sha256=project.bootstrap.apptainer_sha256 if project else None,
    )


def _runtime(project: Project | None, image: str | None, runtime: str | None) -> str:
    """--runtime, else podman when there is an image to pull, else none."""
    if runtime is None:
        runtime = "podman" if image or (project and project.job.image_to_pull) else "none"
    if runtime not in RUNTIMES:
        raise ConfigError(f"--runtime must be one of {', '.join(RUNTIMES)}, not {runtime!r}")
    return runtime


def _bootstrap_files(root: Path | None) -> tuple[Path, list[Path]]:
    """bootstrap/ (the checkout's, or the copy an installed clustertools ships) and its files."""
    if root is None:
        from cluster_tools.store.shipped_files import bootstrap_dir

        root = bootstrap_dir()
    scripts = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else []
    if not any(p.name == SCRIPT and p.parent == root for p in scripts):
        raise ConfigError(f"{root} has no {SCRIPT}")
    return root, scripts


def run_as_node_root(namespace_pid: int | None, command: str, out: _Tee, timeout: float = 3600) -> int:
    """``command`` as root in the head node's namespace, as ParallelCluster runs OnNodeConfigured (cloud-init,
    root, the instance role's credentials: here the sandbox's S3 endpoint's), its output streamed to ``out``."""
    from cluster_tools.transport.local_commands import stream_local
    from cluster_tools.transport.s3 import SANDBOX_CREDENTIALS

    if namespace_pid is None:
        raise SandboxError("the sandbox's head node is not running", "clustertools sandbox up")
    key, secret = SANDBOX_CREDENTIALS
    env = {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": "/root",
        "LANG": "C.UTF-8",
        "AWS_ACCESS_KEY_ID": key,
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    argv = ["nsenter", f"--target={namespace_pid}", "--mount", "--", "bash", "-c", command]
    return stream_local(argv, env=env, write=out.write, timeout=timeout)


class _Tee:
    """Copies the streamed output to ``out`` and keeps it for parsing."""

    def __init__(self, out: IO[bytes] | None) -> None:
        self.out = out
        self.parts: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.parts.append(data)
        if self.out is not None:
            self.out.write(data)

    def flush(self) -> None:
        if self.out is not None:
            self.out.flush()

    def text(self) -> str:
        return b"".join(self.parts).decode("utf-8", "replace")

"""``up`` and ``describe`` for AWS ParallelCluster: render, validate offline, pre-flight, upload bootstrap/,
create through our pcluster transport, wait, record the head node and pin its host key.

Every AWS call of ParallelCluster goes through cluster_tools.transport.pcluster (called as ``pc.<name>``
so a test can replace that module's functions, the only boundary with fakes). Pre-flight and the
bootstrap upload use plain boto3 clients from ``make_clients``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cluster_tools.errors import ClusterToolsError, ConfigError, HostKeyMismatch
from cluster_tools.model.clusters.cluster_record import ClusterRecord
from cluster_tools.model.progress import Progress
from cluster_tools.model.project.project_config import Project
from cluster_tools.services.aws.bootstrap_upload import BootstrapFile, sync_project_bootstrap
from cluster_tools.services.aws.head_console import ConsoleWait, read_console_host_keys
from cluster_tools.services.aws.preflight import AwsClients, Finding, Level
from cluster_tools.services.aws.stack_progress import wait_for_create
from cluster_tools.store.cluster_store import forget_cluster, save_cluster
from cluster_tools.store.state_dir import StateDir
from cluster_tools.transport import pcluster as pc

if TYPE_CHECKING:
    from cluster_tools.model.aws.cluster_spec import ClusterSpec
    from cluster_tools.model.aws.console_host_keys import ConsoleHostKeys
    from cluster_tools.services.aws.cluster_config import RenderedCluster

BOOTSTRAP_SCRIPT = "on-node-configured.sh"


class UpBlocked(ClusterToolsError):
    """Offline validation or pre-flight found errors: nothing was uploaded or created. ``findings`` holds all."""

    def __init__(self, message: str, hint: str | None, findings: Sequence[Finding]) -> None:
        super().__init__(message, hint)
        self.findings = list(findings)


@dataclass
class UpResult:
    cluster_name: str
    region: str
    outcome: str  # "dry-run", "exists", "created"
    findings: list[Finding]
    config_yaml: str
    bootstrap: list[BootstrapFile] = field(default_factory=list)
    cluster: pc.ClusterDescription | None = None
    record: ClusterRecord | None = None
    host_key: str | None = None  # "ssh-ed25519 SHA256:..." pinned now
    host_key_source: str | None = None  # "console output", "console fingerprints" or "first use"
    notes: list[str] = field(default_factory=list)


def ssh_user_for(os_name: str) -> str:
    """The login user ParallelCluster gives ``os_name`` (its OS_MAPPING: ec2-user, ubuntu, rocky), the one the
    cluster record keeps for ssh, submit and status."""
    from cluster_tools.model.aws.pcluster_support import login_user

    try:
        return login_user(os_name)
    except ValueError as exc:
        raise ConfigError(f"parallelcluster.os: {exc}", "`clustertools validate` lists the OSes that work") from None


def default_identity_file(key_name: str | None, home: Path) -> Path | None:
    path = home / ".ssh" / f"{key_name}.pem" if key_name else None
    return path if path is not None and path.is_file() else None


@dataclass(frozen=True)
class UpRequest:
    """What ``up`` is asked to do: the project, the command line's options and the hooks it reports through.
    ``suppress_validators`` applies to dry runs only: a real create is never weakened. ``on_progress`` gets a
    line when ``up`` waits for the head node's console to show its host keys."""

    project: Project | None
    state: StateDir
    allowed_ip: str | None = None
    region: str | None = None
    profile: str | None = None
    dry_run: bool = False
    identity_file: Path | None = None
    autostop_minutes: int | None = None
    project_text: str | None = None
    project_dir: Path | None = None
    endpoint_url: str | None = None
    suppress_validators: Sequence[str] = ()
    bootstrap_dir: Path | None = None
    home: Path | None = None
    poll_seconds: float = 30.0
    timeout_seconds: float = 3600.0
    on_status: Callable[[pc.ClusterDescription], None] | None = None
    on_event: Callable[[pc.StackEvent], None] | None = None
    on_new_host_key: Callable[[str, str], None] | None = None
    on_progress: Progress | None = None
    sleep: Callable[[float], None] = time.sleep


@dataclass(frozen=True)
class _Checked:
    """What the offline checks found: the project (with --region and --autostop applied), its rendered config,
    the findings so far and the bootstrap files to send."""

    project: Project
    spec: ClusterSpec
    rendered: RenderedCluster
    findings: list[Finding]
    bootstrap_dir: Path
    files: list[Path]
    env_file: Path | None

    @property
    def bucket(self) -> str:
        return self.project.storage.output.bucket

    @property
    def prefix(self) -> str:
        from cluster_tools.render.pcluster_config import bootstrap_prefix

        return bootstrap_prefix(self.bucket, self.rendered.cluster_name).removeprefix(f"s3://{self.bucket}/")


def up(request: UpRequest) -> UpResult:
    """Bring the project's cluster up (or, with ``dry_run``, check everything up to ParallelCluster's own
    dry-run validation): offline checks, pre-flight, then the dry run or the create.
    Raises UpBlocked (findings with errors), ConfigError, PclusterError, ClusterToolsError (create failed)."""
    from cluster_tools.services.aws.preflight import make_clients

    checked = _check_offline(request)
    with pc.profile_environment(request.profile):
        clients = make_clients(checked.rendered.region, profile=request.profile, endpoint_url=request.endpoint_url)
        _preflight(request, checked, clients)
        rendered = checked.rendered
        result = UpResult(rendered.cluster_name, rendered.region, "dry-run", checked.findings, rendered.yaml_text)
        if request.dry_run:
            return _dry_run(request, checked, clients, result)
        return _create(request, checked, clients, result)


def _check_offline(request: UpRequest) -> _Checked:
    """Render and validate the project's cluster and find the bootstrap files; UpBlocked on any problem."""
    from cluster_tools.services.aws.cluster_config import (
        cluster_spec_of,
        validate_project_cluster,
        with_autostop,
        with_region,
    )

    project = with_autostop(with_region(request.project, request.region), request.autostop_minutes)
    spec = cluster_spec_of(project)
    assert project is not None  # cluster_spec_of raised otherwise
    if request.allowed_ip is None and spec.allowed_ips is None:
        raise ConfigError(
            "your public address cannot be learned here: clustertools does not look it up over the "
            "network, and never opens SSH to the world (0.0.0.0/0) instead",
            "pass --allowed-ip YOUR.IP/32 (e.g. from https://checkip.amazonaws.com), or set "
            "parallelcluster.allowed_ips",
        )
    rendered, problems = validate_project_cluster(project, allowed_ip=request.allowed_ip)
    findings = [Finding("error", "validate", line) for line in problems]
    if not findings:
        findings.append(Finding("ok", "validate", "ParallelCluster's schema and clustertools' checks pass"))
    findings += [Finding("warning", "validate", line) for line in rendered.notes]  # checks that could not be made
    root = request.bootstrap_dir or _shipped_bootstrap_dir()
    files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else []
    env_file = _env_file(project, request.project_dir, findings)
    if not any(p.relative_to(root).as_posix() == BOOTSTRAP_SCRIPT for p in files):
        findings.append(
            Finding(
                "warning" if request.dry_run else "error",
                "bootstrap",
                f"{root} has no {BOOTSTRAP_SCRIPT}: every node would fail OnNodeConfigured",
                "clustertools ships it in its bootstrap/ folder: reinstall clustertools before a real `up`",
            )
        )
    if problems:
        raise UpBlocked(
            f"{len(problems)} problem(s) in the ParallelCluster config of {rendered.cluster_name}",
            "fix them in clustertools.yaml (parallelcluster:)",
            findings,
        )
    return _Checked(project, spec, rendered, findings, root, files, env_file)


def _shipped_bootstrap_dir() -> Path:
    from cluster_tools.store.shipped_files import bootstrap_dir

    return bootstrap_dir()


def _preflight(request: UpRequest, checked: _Checked, clients: AwsClients) -> None:
    """Pre-flight against AWS, its findings added to ``checked.findings``; UpBlocked when any is an error."""
    from cluster_tools.services.aws.preflight import preflight_project

    checked.findings.extend(
        preflight_project(clients, checked.project, checked.rendered, project_text=request.project_text)
    )
    errors = [f for f in checked.findings if f.level == "error"]
    if errors:
        raise UpBlocked(
            f"pre-flight: {len(errors)} error(s); nothing was uploaded or created",
            "fix each `error` line above, then run `clustertools up` again",
            checked.findings,
        )


def _sync(checked: _Checked, clients: AwsClients, *, upload: bool) -> list[BootstrapFile]:
    return sync_project_bootstrap(
        clients.s3,
        checked.bucket,
        checked.prefix,
        checked.bootstrap_dir,
        checked.files,
        checked.env_file,
        upload=upload,
    )


def _dry_run(request: UpRequest, checked: _Checked, clients: AwsClients, result: UpResult) -> UpResult:
    """Plan the bootstrap upload and run ParallelCluster's dry run: nothing is uploaded or created."""
    result.bootstrap = _sync(checked, clients, upload=False)
    rendered = checked.rendered
    try:
        created = pc.create_cluster(
            rendered.cluster_name,
            rendered.yaml_text,
            region=rendered.region,
            dry_run=True,
            suppress_validators=request.suppress_validators,
        )
    except pc.PclusterClusterExists:
        result.notes.append(f"cluster {rendered.cluster_name} already exists: `up` would report it")
        return result
    result.findings += _validation_findings(created.validation_messages)
    return result


def _create(request: UpRequest, checked: _Checked, clients: AwsClients, result: UpResult) -> UpResult:
    """Upload bootstrap/ and create the cluster, wait for it and record it; a cluster that exists is reported
    (and recorded when it is complete and not recorded yet)."""
    rendered = checked.rendered
    existing = _existing(rendered.cluster_name, rendered.region)
    if existing is None:
        result.bootstrap = _sync(checked, clients, upload=True)
        try:
            created = pc.create_cluster(rendered.cluster_name, rendered.yaml_text, region=rendered.region)
            result.findings += _validation_findings(created.validation_messages)
        except pc.PclusterClusterExists:  # made between our describe and our create
            existing = _existing(rendered.cluster_name, rendered.region)
    if existing is not None:
        result.outcome, result.cluster = "exists", existing
        if existing.status == "CREATE_COMPLETE" and not request.state.cluster_file(existing.name).exists():
            _record_from(request, checked, clients, result, fresh=False)
        return result
    result.outcome = "created"
    result.cluster = wait_for_create(
        rendered.cluster_name,
        rendered.region,
        poll_seconds=request.poll_seconds,
        timeout_seconds=request.timeout_seconds,
        on_status=request.on_status,
        on_event=request.on_event,
        sleep=request.sleep,
    )
    _record_from(request, checked, clients, result, fresh=True)
    return result


def _record_from(request: UpRequest, checked: _Checked, clients: AwsClients, result: UpResult, *, fresh: bool) -> None:
    _record(
        result,
        request.state,
        checked.spec,
        request.identity_file,
        request.home,
        request.on_new_host_key,
        fresh=fresh,
        ec2=clients.ec2,
        console_wait=ConsoleWait(sleep=request.sleep, on_progress=request.on_progress),
    )


def _env_file(project: Project | None, project_dir: Path | None, findings: list[Finding]) -> Path | None:
    """The project's conda environment file (bootstrap.env_file), uploaded beside bootstrap/ as env/NAME:
    the head node solves it once into shared storage."""
    settings = project.bootstrap if project is not None else None
    if settings is None or settings.env_file is None:
        return None
    path = (project_dir or Path.cwd()) / settings.env_file
    if not path.is_file():
        findings.append(
            Finding(
                "error",
                "bootstrap",
                f"bootstrap.env_file {path} does not exist",
                "write the conda environment file there, or drop bootstrap.env_file",
            )
        )
        return None
    return path


def _record(
    result: UpResult,
    state: StateDir,
    spec: Any,
    identity_file: Path | None,
    home: Path | None,
    on_new_host_key: Callable[[str, str], None] | None,
    *,
    fresh: bool,
    ec2: Any = None,
    console_wait: ConsoleWait | None = None,
) -> None:
    """Record the head node and pin its host key: from the keys its console printed at boot when there are
    any (no trust needed), else checked against the console's fingerprints, else trusted on first use."""
    described = result.cluster
    assert described is not None
    host = described.head_node_public_ip or described.head_node_private_ip
    if host is None:
        result.notes.append("the head node has no address yet: run `clustertools up` again to record it")
        return
    if fresh:  # a new cluster under an old name has a new host key: the old pin must not be trusted
        forget_cluster(state, described.name)
    record = ClusterRecord(
        name=described.name,
        provider="parallelcluster",
        host=host,
        user=ssh_user_for(spec.os),
        identity_file=identity_file or default_identity_file(spec.key_name, home or Path.home()),
        known_hosts=state.known_hosts(described.name),
        region=described.region or result.region,
    )
    save_cluster(state, record)
    result.record = record
    console = read_console_host_keys(ec2, described.head_node_instance_id, result.notes, console_wait or ConsoleWait())
    _pin_host_key(result, record, console, on_new_host_key)


def _pin_host_key(
    result: UpResult,
    record: ClusterRecord,
    console: ConsoleHostKeys,
    on_new_host_key: Callable[[str, str], None] | None,
) -> None:
    """Pin the keys the console printed, then log in once: a key learned at that key exchange is pinned when it
    matches the console's fingerprints (or, with none, on first use)."""
    from cluster_tools.services.remote.cluster_shell import connect
    from cluster_tools.transport.known_hosts import pin_host_keys

    expected: frozenset[str] = frozenset()
    if console.keys:
        pin_host_keys(record.known_hosts, record.host, record.port, console.keys)
        result.host_key = ", ".join(f"{k.key_type} {k.fingerprint}" for k in console.keys)
        result.host_key_source = "console output"
    elif console.fingerprints:
        expected = console.fingerprints

    def pinned(hostname: str, key: str) -> None:
        result.host_key = key
        result.host_key_source = "console fingerprints" if console.fingerprints else "first use"
        if on_new_host_key and not console.fingerprints:
            on_new_host_key(hostname, key)

    try:
        with connect(record, on_new_host_key=pinned, expected_fingerprints=expected) as conn:
            result.record = record.model_copy(update={"host_key": conn.server_key or None})  # as connect saved it
    except HostKeyMismatch:
        raise  # the console's keys and the address disagree: never connect, never pin
    except ClusterToolsError as exc:  # the key is pinned at key exchange, before authentication can fail
        if result.host_key is None:
            result.notes.append(f"host key not pinned yet ({exc.message}); the first `clustertools ssh` pins it")
        elif result.host_key_source != "console output":
            result.notes.append(f"host key pinned, but login failed: {exc.one_line()}")
        else:
            result.notes.append(f"login failed for now: {exc.one_line()}")


def _existing(name: str, region: str) -> pc.ClusterDescription | None:
    try:
        return pc.describe_cluster(name, region=region)
    except pc.PclusterNotFound:
        return None


def _validation_findings(messages: Sequence[pc.ValidationMessage]) -> list[Finding]:
    level: dict[str, Level] = {"ERROR": "error", "WARNING": "warning"}
    return [Finding(level.get(m.level, "ok"), f"pcluster:{m.type}", " ".join(m.message.split())) for m in messages]

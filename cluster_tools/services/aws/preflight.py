"""Pre-flight checks before ``up`` creates a cluster: each a Finding (error, warning or ok) a user can act on.

Pure orchestration over boto3 clients passed in (``make_clients`` builds them from region, profile and
endpoint). Read-only calls only: STS GetCallerIdentity, S3 GetBucketLocation, EC2 Describe*, Secrets
Manager DescribeSecret, IAM GetPolicy/GetPolicyVersion. A secret's value is never read, and a value that looks like a
secret is never echoed. The checks of AWS resources (region, buckets, key pair, subnets, instance types) are in
preflight_resources.py, those of secrets in preflight_secrets.py.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from cluster_tools.errors import ConfigError, TransportError
from cluster_tools.model.aws.cluster_checks import (
    ALLOWED_IPS_PLACEHOLDER,
    SECRET_SHAPES,  # one list of shapes for both checks
)
from cluster_tools.model.aws.cluster_spec import ClusterSpec, is_open_to_world

if TYPE_CHECKING:
    from cluster_tools.model.project.project_config import Project
    from cluster_tools.services.aws.cluster_config import RenderedCluster

Level = Literal["error", "warning", "ok"]
_CREDENTIAL_HINT = "configure AWS credentials: `aws configure`, `aws sso login`, AWS_PROFILE or --profile"
_NETWORK_HINT = "check your network, and the endpoint if you set one"
# An AWS secret key has no fixed prefix: the 40-character shape only suggests one, hence a warning.
_HEURISTIC_SHAPES = ("an AWS secret access key",)
_SECRET_KEY_LINE = re.compile(
    r"^\s*#?\s*-?\s*([A-Za-z0-9_.-]*(password|passwd|secret|token|credential|api_?key)"
    r"[A-Za-z0-9_.-]*)\s*:\s*(\S.*)$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Finding:
    level: Level
    check: str  # credentials, region, buckets, key-pair, subnets, instance-types, allowed-ips, secrets, secret-values
    message: str
    hint: str | None = None


@dataclass(frozen=True)
class AwsClients:
    region: str
    sts: Any
    s3: Any
    ec2: Any
    secretsmanager: Any
    iam: Any = None
    endpoint_url: str | None = None


def make_clients(
    region: str,
    *,
    profile: str | None = None,
    endpoint_url: str | None = None,
    static_credentials: tuple[str, str] | None = None,
) -> AwsClients:
    """Clients in ``region`` from the boto3 chain (``profile`` like awscli's --profile, else AWS_PROFILE);
    ``static_credentials`` (key id, secret) only for a test endpoint. Short timeouts: a pre-flight that
    cannot reach AWS should say so in seconds, not minutes."""
    from cluster_tools.transport.aws_session import aws_client, aws_session

    try:
        session = aws_session(profile=profile, region=region, static_credentials=static_credentials)
    except ConfigError as exc:
        raise TransportError(f"pre-flight: {exc.message}", exc.hint) from None

    def client(service: str) -> Any:
        return aws_client(session, service, region, endpoint_url=endpoint_url, connect_timeout=5, read_timeout=20)

    return AwsClients(
        region=region,
        sts=client("sts"),
        s3=client("s3"),
        ec2=client("ec2"),
        secretsmanager=client("secretsmanager"),
        iam=client("iam"),
        endpoint_url=endpoint_url,
    )


def run_preflight(
    clients: AwsClients,
    spec: ClusterSpec,
    *,
    output_bucket: str,
    input_buckets: Sequence[str] = (),
    allowed_ips: str,
    open_ssh_ok: bool = False,
    secret_ids: Sequence[str] = (),
    project_text: str | None = None,
    project_source: str = "clustertools.yaml",
) -> list[Finding]:
    """Every finding, in the order a user fixes them. When AWS cannot be reached or the credentials fail,
    that one error stands for all the AWS checks (they would fail the same way); the offline ones still run.
    ``input_buckets`` adds to the spec's (e.g. storage.input's bucket). ``secret_ids``: Secrets Manager names
    or ARNs of third-party input credentials; the database password's ARN is added from the spec."""
    ssh = check_allowed_ips(allowed_ips, open_ssh_ok)
    values = check_secret_values(project_text, project_source) if project_text is not None else []
    identity = check_credentials(clients)
    if identity.level == "error":
        return [identity, ssh, *values]
    secrets = [*secret_ids, *([spec.database.password_secret_arn] if spec.database else [])]
    from cluster_tools.services.aws.preflight_resources import (
        check_buckets,
        check_instance_types,
        check_key_pair,
        check_region,
        check_subnets,
    )
    from cluster_tools.services.aws.preflight_secrets import check_secret_access, check_secrets

    types = [spec.head_node_instance_type, *(t for q in spec.queues for t in q.instance_types)]
    return [
        identity,
        check_region(clients),
        *check_buckets(clients, output_bucket=output_bucket, input_buckets=[*spec.input_buckets, *input_buckets]),
        check_key_pair(clients, spec.key_name),
        check_subnets(clients, [spec.subnet_id, *(spec.compute_subnet_ids or [])]),
        *check_instance_types(clients, types),
        ssh,
        *check_secrets(clients, list(dict.fromkeys(secrets))),
        *check_secret_access(clients, list(dict.fromkeys(secret_ids)), spec.additional_iam_policies),
        *values,
    ]


def preflight_project(
    clients: AwsClients,
    project: Project,
    rendered: RenderedCluster,
    *,
    secret_ids: Sequence[str] = (),
    project_text: str | None = None,
) -> list[Finding]:
    """``run_preflight`` for a loaded project and the config rendered from it (what ``up`` would send)."""
    from cluster_tools.services.aws.cluster_config import cluster_spec_of

    storage = project.storage
    secret_ids = [*secret_ids, *([storage.input_credentials] if storage.input_credentials else [])]
    return run_preflight(
        clients,
        cluster_spec_of(project),
        output_bucket=storage.output.bucket,
        input_buckets=[storage.input.bucket] if storage.input else [],
        allowed_ips=rendered.allowed_ips,
        open_ssh_ok=rendered.open_ssh_ok,
        secret_ids=secret_ids,
        project_text=project_text,
    )


def check_credentials(clients: AwsClients) -> Finding:
    try:
        me = clients.sts.get_caller_identity()
    except Exception as exc:
        return aws_failure("credentials", "cannot check your AWS identity", exc, clients, fatal=True)
    return Finding("ok", "credentials", f"AWS account {me.get('Account')} as {me.get('Arn')}")


def check_allowed_ips(allowed_ips: str, open_ssh_ok: bool = False) -> Finding:
    if allowed_ips == ALLOWED_IPS_PLACEHOLDER:
        return Finding(
            "error",
            "allowed-ips",
            "who may SSH to the head node is unknown (your public address was not found)",
            "pass --allowed-ip YOUR.IP/32, or set parallelcluster.allowed_ips",
        )
    if is_open_to_world(allowed_ips):
        if open_ssh_ok:
            return Finding(
                "warning",
                "allowed-ips",
                "SSH to the head node is open to the world (0.0.0.0/0), as clustertools.yaml asks",
                "narrow parallelcluster.allowed_ips to your address /32",
            )
        return Finding(
            "error",
            "allowed-ips",
            "SSH to the head node would be open to the world (0.0.0.0/0)",
            "give your address: --allowed-ip YOUR.IP/32 (set allowed_ips: 0.0.0.0/0 to mean it)",
        )
    try:
        wide = not allowed_ips.startswith("pl-") and ipaddress.ip_network(allowed_ips, strict=False).prefixlen < 16
    except ValueError:
        return Finding(
            "error",
            "allowed-ips",
            f"{allowed_ips!r} is neither an IPv4 CIDR nor a prefix list id",
            "give your address: --allowed-ip YOUR.IP/32",
        )
    if wide:
        return Finding(
            "warning",
            "allowed-ips",
            f"SSH to the head node from {allowed_ips}: a very wide range",
            "narrow it to your address /32 or your site's range",
        )
    return Finding("ok", "allowed-ips", f"SSH to the head node from {allowed_ips} only")


def check_secret_values(text: str, source: str = "clustertools.yaml") -> list[Finding]:
    """Lines of the project file (comments included: they end up in git too) that look like a secret.
    Each finding names the line, never the value."""
    findings = []
    for number, line in enumerate(text.splitlines(), start=1):
        label = next((label for pattern, label in SECRET_SHAPES if pattern.search(line)), None)
        keyed = _SECRET_KEY_LINE.match(line)
        if label is None and keyed and not keyed.group(3).strip("'\"").startswith(("arn:", "#")):
            label = f"a secret (the key {keyed.group(1)} names one, and its value is not an ARN)"
        if label is None:
            continue
        # Shapes with a fixed prefix (AKIA..., a PEM header, ghp_...) are certain; the others only suggest one.
        level: Level = "warning" if label in _HEURISTIC_SHAPES or label.startswith("a secret (") else "error"
        findings.append(
            Finding(
                level,
                "secret-values",
                f"{source}:{number}: looks like {label}",
                "remove it (and rotate it if it was real: git keeps old versions); store it in "
                "Secrets Manager and reference the secret's name or ARN",
            )
        )
    return findings or [Finding("ok", "secret-values", f"nothing in {source} looks like a secret")]


def aws_failure(check: str, what: str, exc: Exception, clients: AwsClients, *, fatal: bool = False) -> Finding:
    """An AWS call that failed for a reason other than the answer checked for: one line and a hint."""
    from cluster_tools.transport.aws_session import aws_failure_of

    failure = aws_failure_of(exc)
    if failure is not None and failure.kind == "credentials":
        return Finding("error", check, f"{what}: no usable AWS credentials ({failure.message})", _CREDENTIAL_HINT)
    if failure is not None and failure.kind == "unreachable":
        where = clients.endpoint_url or f"AWS in {clients.region}"
        return Finding("error", check, f"{what}: cannot reach {where}", _NETWORK_HINT)
    if failure is not None and failure.kind == "answered":
        code = failure.code or "?"
        if failure.refused_credentials:
            return Finding("error", check, f"{what}: AWS refused the credentials ({code})", _CREDENTIAL_HINT)
        level: Level = "error" if fatal else "warning"
        return Finding(
            level,
            check,
            f"{what}: {code}: {failure.message}".rstrip(": "),
            "your AWS identity may lack this read permission; the check was skipped" if not fatal else None,
        )
    return Finding(
        "error" if fatal else "warning",
        check,
        f"{what}: {type(exc).__name__}: {' '.join(str(exc).split())}",
        _NETWORK_HINT,
    )

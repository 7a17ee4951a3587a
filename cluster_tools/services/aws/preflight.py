"""Pre-flight checks before ``up`` creates a cluster: each a Finding (error, warning or ok) a user can act on.

Pure orchestration over boto3 clients passed in (``make_clients`` builds them from region, profile and
endpoint). Read-only calls only: STS GetCallerIdentity, S3 GetBucketLocation, EC2 Describe*, Secrets
Manager DescribeSecret, IAM GetPolicy/GetPolicyVersion. A secret's value is never read, and a value that looks like a
secret is never echoed.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
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


def check_region(clients: AwsClients) -> Finding:
    region = clients.region
    try:
        listed = {
            r["RegionName"]: r.get("OptInStatus") for r in clients.ec2.describe_regions(AllRegions=True)["Regions"]
        }
    except Exception as exc:
        return aws_failure("region", f"cannot list the regions from {region}", exc, clients)
    if region not in listed:
        return Finding(
            "error", "region", f"{region} is not an AWS region", "set parallelcluster.region, e.g. us-east-1"
        )
    if listed[region] == "not-opted-in":
        return Finding(
            "error",
            "region",
            f"{region} is not enabled for your account",
            "enable it (AWS console > Account > Regions), or choose another region",
        )
    return Finding("ok", "region", f"{region} is available")


def check_buckets(clients: AwsClients, *, output_bucket: str, input_buckets: Iterable[str]) -> list[Finding]:
    """Each bucket exists and sits in the cluster's region: cross-region reads and writes are billed per GB."""
    roles = {b: "input" for b in input_buckets}
    roles[output_bucket] = "output"  # a bucket used both ways is checked once, as the output
    return [_check_bucket(clients, bucket, role) for bucket, role in roles.items()]


def _check_bucket(clients: AwsClients, bucket: str, role: str) -> Finding:
    from cluster_tools.transport.aws_session import error_code

    region, what = clients.region, f"{role} bucket {bucket}"
    try:
        location = clients.s3.get_bucket_location(Bucket=bucket).get("LocationConstraint")
    except Exception as exc:
        code = error_code(exc)
        if code is None:  # AWS did not answer: no credentials, no network
            return aws_failure("buckets", f"cannot check {what}", exc, clients)
        if code == "NoSuchBucket":
            hint = (
                ("create it in " + region)
                if role == "output"
                else "check the bucket name (storage.input, input_buckets)"
            )
            return Finding("error", "buckets", f"{what} does not exist", hint)
        # A third party often denies GetBucketLocation; HEAD still tells the region in a header.
        location = _region_from_head(clients, bucket)
        if location is None:
            return Finding(
                "warning",
                "buckets",
                f"cannot tell where {what} is ({code})",
                "make sure it is in " + region + ": a cross-region read is billed per GB",
            )
    # GetBucketLocation says None for us-east-1 and EU for the oldest eu-west-1 buckets.
    location = {None: "us-east-1", "": "us-east-1", "EU": "eu-west-1"}.get(location, location)
    if location == region:
        return Finding("ok", "buckets", f"{what} is in {region}, like the cluster")
    if role == "input":
        return Finding(
            "warning",
            "buckets",
            f"{what} is in {location}, the cluster in {region}: every read crosses regions, billed per GB and slower",
            f"create the cluster in {location} (parallelcluster.region), or copy the inputs to {region}",
        )
    return Finding(
        "warning",
        "buckets",
        f"{what} is in {location}, the cluster in {region}: every output crosses regions, billed per GB",
        f"use an output bucket in {region} (storage.output), or create the cluster in {location}",
    )


def _region_from_head(clients: AwsClients, bucket: str) -> str | None:
    from cluster_tools.transport.aws_session import error_response

    try:
        response = clients.s3.head_bucket(Bucket=bucket)
    except Exception as exc:
        response = error_response(exc)  # a refused HEAD still says the region in a header
        if response is None:
            return None
    return (response.get("ResponseMetadata", {}).get("HTTPHeaders") or {}).get("x-amz-bucket-region")


def check_key_pair(clients: AwsClients, key_name: str | None) -> Finding:
    if key_name is None:
        return Finding(
            "warning",
            "key-pair",
            "no key pair: nobody will be able to SSH to the head node",
            "set parallelcluster.key_name to an EC2 key pair of " + clients.region,
        )
    try:
        found = clients.ec2.describe_key_pairs(Filters=[{"Name": "key-name", "Values": [key_name]}])["KeyPairs"]
    except Exception as exc:
        return aws_failure("key-pair", f"cannot check key pair {key_name}", exc, clients)
    if not found:
        return Finding(
            "error",
            "key-pair",
            f"key pair {key_name} does not exist in {clients.region}",
            f"import your public key: aws ec2 import-key-pair --region {clients.region} "
            f"--key-name {key_name} --public-key-material fileb://~/.ssh/id_ed25519.pub",
        )
    return Finding("ok", "key-pair", f"key pair {key_name} exists")


def check_subnets(clients: AwsClients, subnet_ids: Sequence[str]) -> Finding:
    wanted = list(dict.fromkeys(subnet_ids))
    try:
        found = clients.ec2.describe_subnets(Filters=[{"Name": "subnet-id", "Values": wanted}])["Subnets"]
    except Exception as exc:
        return aws_failure("subnets", "cannot check the subnets", exc, clients)
    vpcs = {s["SubnetId"]: s.get("VpcId") for s in found}
    missing = [s for s in wanted if s not in vpcs]
    if missing:
        return Finding(
            "error",
            "subnets",
            f"no subnet {', '.join(missing)} in {clients.region}",
            "set parallelcluster.subnet_id (and compute_subnet_ids) to subnets of your VPC there",
        )
    if len(set(vpcs.values())) > 1:
        return Finding(
            "error",
            "subnets",
            f"the subnets sit in different VPCs ({', '.join(sorted(set(vpcs.values())))})",
            "ParallelCluster puts the head node and every queue in one VPC: choose subnets of one",
        )
    return Finding("ok", "subnets", f"{', '.join(wanted)} in {next(iter(vpcs.values()))}")


def check_instance_types(clients: AwsClients, instance_types: Sequence[str]) -> list[Finding]:
    """Each type is offered in the region (EC2's own list, not a copy of ours); a type EC2 does not know at
    all is told apart from one it sells elsewhere."""
    wanted = list(dict.fromkeys(instance_types))
    try:
        offered: set[str] = set()
        pages = clients.ec2.get_paginator("describe_instance_type_offerings").paginate(
            LocationType="region", Filters=[{"Name": "instance-type", "Values": wanted}]
        )
        for page in pages:
            offered.update(o["InstanceType"] for o in page["InstanceTypeOfferings"])
    except Exception as exc:
        return [aws_failure("instance-types", "cannot list the instance types", exc, clients)]
    findings = [_missing_type(clients, t) for t in wanted if t not in offered]
    if not findings:
        findings.append(Finding("ok", "instance-types", f"{', '.join(wanted)} offered in {clients.region}"))
    return findings


def _missing_type(clients: AwsClients, instance_type: str) -> Finding:
    from cluster_tools.transport.aws_session import error_code

    try:
        clients.ec2.describe_instance_types(InstanceTypes=[instance_type])
    except Exception as exc:  # any other failure: the offering answer is enough to say it cannot be used here
        if error_code(exc) == "InvalidInstanceType":
            return Finding(
                "error",
                "instance-types",
                f"{instance_type} is not an EC2 instance type",
                "check the spelling in parallelcluster.queues (e.g. c6i.xlarge)",
            )
    return Finding(
        "error",
        "instance-types",
        f"{instance_type} is not offered in {clients.region}",
        "choose another type, or another region (aws ec2 describe-instance-type-offerings)",
    )


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

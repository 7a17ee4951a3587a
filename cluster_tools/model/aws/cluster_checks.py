"""clustertools' own checks of a ParallelCluster config (a dict, as loaded from YAML): the defaults
that hurt users, and what ParallelCluster's schema lets through offline. Pure; one line per problem,
named by its path like ParallelCluster's schema errors (``HeadNode.Ssh.AllowedIps: ...``).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator, Mapping
from typing import Any

from cluster_tools.model.aws.pcluster_support import strategy_misfit
from cluster_tools.model.names import QUEUE_NAME

# Stands in for the caller's address when it is unknown offline (render uses it). It is not a CIDR, so
# ParallelCluster refuses it: a config carrying it can never be created, and it opens SSH to no one.
ALLOWED_IPS_PLACEHOLDER = "YOUR-PUBLIC-IP/32"
_ACCOUNTING_NAME_MAX = 40  # ParallelCluster's limit on cluster names when Slurm accounting is on

# Shapes of secrets that must never sit in a config (it is stored by CloudFormation and in S3).
SECRET_SHAPES = (
    (re.compile(r"\b(AKIA|ASIA)[A-Z0-9]{16}\b"), "an AWS access key id"),
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"), "a private key"),
    (re.compile(r"\b(ghp|gho|github_pat|glpat|xox[abp])[-_][A-Za-z0-9_-]{10,}"), "an access token"),
    # 40 characters of base64 mixing cases and digits: the shape of an AWS secret access key
    (
        re.compile(
            r"(?<![A-Za-z0-9/+=])(?=[A-Za-z0-9/+]*[a-z])(?=[A-Za-z0-9/+]*[A-Z])(?=[A-Za-z0-9/+]*[0-9])"
            r"[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])"
        ),
        "an AWS secret access key",
    ),
)
_SECRET_KEY_NAMES = re.compile(r"(password|passwd|secret|token|credential|apikey|api_key)", re.IGNORECASE)


def find_problems(
    config: dict[str, Any],
    cluster_name: str,
    *,
    open_ssh_ok: bool = False,
    known_instance_types: Collection[str] | None = None,
    allocation_strategies: Mapping[str, Collection[str]] | None = None,
) -> list[str]:
    """Every problem found, in config order. ``open_ssh_ok``: the project itself asked for 0.0.0.0/0.
    ``known_instance_types``: EC2's list of types, to catch a made-up one (None skips that check).
    ``allocation_strategies``: capacity type -> the strategies ParallelCluster takes for it, which its schema
    does not check offline (cluster_tools.model.aws.pcluster_support; None skips that check)."""
    problems: list[str] = []
    problems += _ssh_problems(config, open_ssh_ok)
    problems += _imds_problems(config)
    problems += _volume_problems(config)
    problems += _queue_problems(config, known_instance_types, allocation_strategies)
    problems += _storage_problems(config)
    problems += _secret_problems(config)
    if _get(config, "Scheduling", "SlurmSettings", "Database") and len(cluster_name) > _ACCOUNTING_NAME_MAX:
        problems.append(
            f"Scheduling.SlurmSettings.Database: with Slurm accounting the cluster name may have at most "
            f"{_ACCOUNTING_NAME_MAX} characters; {cluster_name!r} has {len(cluster_name)}"
        )
    return problems


def _get(node: Any, *path: str | int) -> Any:
    for part in path:
        if isinstance(part, int):
            node = node[part] if isinstance(node, list) and part < len(node) else None
        else:
            node = node.get(part) if isinstance(node, dict) else None
    return node


def _items(node: Any) -> list[tuple[int, Any]]:
    return list(enumerate(node)) if isinstance(node, list) else []


def _ssh_problems(config: dict[str, Any], open_ssh_ok: bool) -> list[str]:
    where = "HeadNode.Ssh.AllowedIps"
    allowed = _get(config, "HeadNode", "Ssh", "AllowedIps")
    if allowed is None:
        return [
            f"{where}: not set, so ParallelCluster would open SSH to the world (0.0.0.0/0); "
            "set your address, e.g. --allowed-ip 203.0.113.7/32"
        ]
    if allowed == ALLOWED_IPS_PLACEHOLDER:
        return [
            f"{where}: your public address is unknown offline: pass --allowed-ip YOUR.IP/32 "
            "(e.g. from `curl -s https://checkip.amazonaws.com`) or set parallelcluster.allowed_ips"
        ]
    if str(allowed).strip() == "0.0.0.0/0" and not open_ssh_ok:
        return [
            f"{where}: 0.0.0.0/0 opens SSH to the head node to the whole internet; give your address "
            "/32 (set parallelcluster.allowed_ips: 0.0.0.0/0 only if you truly mean it)"
        ]
    return []


def _imds_problems(config: dict[str, Any]) -> list[str]:
    problems = []
    if _get(config, "Imds", "ImdsSupport") != "v2.0":
        problems.append(
            "Imds.ImdsSupport: must be v2.0; IMDSv1 lets any request forgery on a node read its credentials"
        )
    if _get(config, "HeadNode", "Imds", "Secured") is False:
        problems.append(
            "HeadNode.Imds.Secured: must not be false; it keeps IMDS (and the head node's role) from non-root users"
        )
    return problems


def _volume_problems(config: dict[str, Any]) -> list[str]:
    volumes = [("HeadNode.LocalStorage.RootVolume", _get(config, "HeadNode", "LocalStorage", "RootVolume"))]
    for i, queue in _items(_get(config, "Scheduling", "SlurmQueues")):
        volumes.append(
            (
                f"Scheduling.SlurmQueues[{i}].ComputeSettings.LocalStorage.RootVolume",
                _get(queue, "ComputeSettings", "LocalStorage", "RootVolume"),
            )
        )
    return [
        f"{where}.Encrypted: must be true (root volumes hold inputs, outputs and container images)"
        for where, volume in volumes
        if _get(volume, "Encrypted") is not True
    ]


def _queue_problems(
    config: dict[str, Any], known: Collection[str] | None, strategies: Mapping[str, Collection[str]] | None
) -> list[str]:
    problems = []
    head_type = _get(config, "HeadNode", "InstanceType")
    if known is not None and isinstance(head_type, str) and head_type not in known:
        problems.append(_unknown_type("HeadNode.InstanceType", head_type))
    seen_queues: set[str] = set()
    for i, queue in _items(_get(config, "Scheduling", "SlurmQueues")):
        where = f"Scheduling.SlurmQueues[{i}]"
        problems += _name_problems(f"{where}.Name", _get(queue, "Name"), seen_queues, "queue")
        capacity, strategy = _get(queue, "CapacityType") or "ONDEMAND", _get(queue, "AllocationStrategy")
        allowed = strategy_misfit(strategies or {}, capacity, strategy)
        if allowed is not None:
            problems.append(
                f"{where}.AllocationStrategy: {strategy} does not apply to {capacity} queues; "
                f"use one of {', '.join(allowed)}"
            )
        seen_resources: set[str] = set()
        for j, resource in _items(_get(queue, "ComputeResources")):
            at = f"{where}.ComputeResources[{j}]"
            problems += _name_problems(f"{at}.Name", _get(resource, "Name"), seen_resources, "compute resource")
            types = [(f"{at}.InstanceType", _get(resource, "InstanceType"))]
            types += [
                (f"{at}.Instances[{k}].InstanceType", _get(item, "InstanceType"))
                for k, item in _items(_get(resource, "Instances"))
            ]
            problems += [
                _unknown_type(path, value)
                for path, value in types
                if known is not None and isinstance(value, str) and value not in known
            ]
    return problems


def _name_problems(where: str, name: Any, seen: set[str], what: str) -> list[str]:
    if not isinstance(name, str):
        return []  # the schema reports a missing or non-text name
    if not QUEUE_NAME.is_valid(name):  # ParallelCluster's NameValidator, for compute resources too
        return [
            f"{where}: {name!r} is not a valid {what} name: lowercase letters, digits and '-', "
            "starting with a letter, at most 25, not 'default'"
        ]
    if name in seen:
        return [f"{where}: {what} name {name!r} is used twice"]
    seen.add(name)
    return []


def _unknown_type(where: str, value: str) -> str:
    return (
        f"{where}: {value!r} is not an EC2 instance type (checked against the list bundled with botocore; "
        "`up` asks EC2 in the cluster's region)"
    )


def _storage_problems(config: dict[str, Any]) -> list[str]:
    problems = []
    settings_keys = {
        "Ebs": ("EbsSettings", "VolumeId"),
        "Efs": ("EfsSettings", "FileSystemId"),
        "FsxLustre": ("FsxLustreSettings", "FileSystemId"),
    }
    for i, storage in _items(_get(config, "SharedStorage")):
        kind = _get(storage, "StorageType")
        if kind not in settings_keys:
            continue  # other kinds (FSx ONTAP/OpenZFS, File Cache) mount existing storage only
        key, existing_key = settings_keys[kind]
        settings = _get(storage, key) or {}
        if _get(settings, existing_key):
            continue  # storage made elsewhere: ParallelCluster never deletes it
        where = f"SharedStorage[{i}].{key}"
        policy = _get(settings, "DeletionPolicy")
        if policy not in ("Retain", "Snapshot" if kind == "Ebs" else "Retain"):
            problems.append(
                f"{where}.DeletionPolicy: must be Retain (it is {policy or 'Delete by default'}): "
                "`down` would destroy the data"
            )
        if kind in ("Ebs", "Efs") and _get(settings, "Encrypted") is not True:
            problems.append(f"{where}.Encrypted: must be true")
    return problems


def _walk(node: Any, path: str = "") -> Iterator[tuple[str, Any, Any]]:
    """(path, key, scalar) for every scalar under ``node``."""
    if isinstance(node, dict):
        for key, value in node.items():
            sub = f"{path}.{key}" if path else str(key)
            if isinstance(value, (dict, list)):
                yield from _walk(value, sub)
            else:
                yield sub, key, value
    elif isinstance(node, list):
        for index, value in enumerate(node):
            if isinstance(value, (dict, list)):
                yield from _walk(value, f"{path}[{index}]")
            else:
                yield f"{path}[{index}]", None, value


def _secret_problems(config: dict[str, Any]) -> list[str]:
    problems = []
    for path, key, value in _walk(config):
        text = str(value)
        shape = next((label for pattern, label in SECRET_SHAPES if pattern.search(text)), None)
        if (
            shape is None
            and isinstance(key, str)
            and _SECRET_KEY_NAMES.search(key)
            and value is not None
            and not isinstance(value, bool)
            and not text.startswith("arn:")
        ):
            shape = "a secret (its key names one, and it is not an ARN)"
        if shape:
            # never echo the value: this line may end up in a terminal log or CI output
            problems.append(f"{path}: looks like {shape}; keep secrets in Secrets Manager and reference their ARN")
    return problems

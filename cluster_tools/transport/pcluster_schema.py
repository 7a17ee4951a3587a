"""Offline validation of a ParallelCluster config: ParallelCluster's own schema, then clustertools'
checks (cluster_tools.cluster_checks). No AWS call is made.

The only module that imports ``pcluster.schemas``; the calls to ``pcluster.lib`` (create, describe,
delete, ...) live in their own transport module.
"""

from __future__ import annotations

import functools
import os
import threading
from contextlib import contextmanager
from typing import Any, Iterator

import yaml

from cluster_tools.cluster_checks import ALLOWED_IPS_PLACEHOLDER, find_problems
from cluster_tools.pcluster_support import allocation_strategies

# pcluster reads (and sets) the region through os.environ: every call that touches it holds this lock.
ENV_LOCK = threading.Lock()


def validate_cluster_config(yaml_text: str, cluster_name: str, region: str, *, open_ssh_ok: bool = False,
                            check_instance_types: bool = True) -> list[str]:
    """One line per problem (empty when the config is good): ParallelCluster's schema errors as
    ``Scheduling.SlurmQueues[0].ComputeResources[0].MaxCount: Not a valid integer.``, then ours."""
    try:
        config = yaml.safe_load(yaml_text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        return [f"line {mark.line + 1 if mark else '?'}: not valid YAML: {getattr(exc, 'problem', None) or exc}"]
    if not isinstance(config, dict):
        return ["(top level): a ParallelCluster config is a mapping (Region, Image, HeadNode, Scheduling, ...)"]
    ours = find_problems(config, cluster_name, open_ssh_ok=open_ssh_ok,
                         known_instance_types=known_instance_types() if check_instance_types else None,
                         allocation_strategies=allocation_strategies())
    schema = schema_problems(config, cluster_name, region)
    if _get_allowed_ips(config) == ALLOWED_IPS_PLACEHOLDER:
        # ours says what to do about the placeholder; the schema's "not a valid CIDR" would repeat it
        schema = [line for line in schema if not line.startswith("HeadNode.Ssh.AllowedIps:")]
    return schema + ours


def schema_problems(config: dict[str, Any], cluster_name: str, region: str) -> list[str]:
    """ParallelCluster's ``ClusterSchema(cluster_name=...).load(config)``, its errors flattened to lines."""
    from marshmallow import ValidationError
    from pcluster.aws.common import AWSClientError
    from pcluster.schemas.cluster_schema import ClusterSchema

    try:
        with _region_for_pcluster(region):
            ClusterSchema(cluster_name=cluster_name).load(config)
    except ValidationError as exc:
        return flatten_errors(exc.messages)
    except AWSClientError as exc:  # would mean pcluster wanted AWS after all: say so, do not crash
        return [f"(top level): ParallelCluster's schema needed AWS ({exc}); this check is meant to be offline"]
    except (TypeError, ValueError, AttributeError, KeyError) as exc:
        # pcluster builds its config objects inside load(); odd-but-schema-valid input can break them
        return [f"(top level): ParallelCluster could not load this config: {type(exc).__name__}: {exc}"]
    return []


def flatten_errors(messages: Any, path: str = "") -> list[str]:
    """marshmallow's nested error dict -> ``Path.To[0].Key: message`` lines, in its order."""
    if isinstance(messages, dict):
        lines: list[str] = []
        for key, value in messages.items():
            if key == "_schema":
                sub = path  # an error of the object itself, not of one of its keys
            elif isinstance(key, int):
                sub = f"{path}[{key}]"
            else:
                sub = f"{path}.{key}" if path else str(key)
            lines += flatten_errors(value, sub)
        return lines
    if isinstance(messages, (list, tuple)):
        return [line for item in messages for line in flatten_errors(item, path)]
    return [f"{path or '(top level)'}: {' '.join(str(messages).split())}"]


@functools.lru_cache(maxsize=1)  # immutable data read from botocore's package; nothing to reset
def known_instance_types() -> frozenset[str]:
    """EC2 instance types as listed by the installed botocore (its bundled service model; no network).
    A type newer than that botocore is missing: the pre-flight check of ``up`` asks EC2 itself."""
    import botocore.session

    model = botocore.session.Session().get_service_model("ec2")
    return frozenset(model.shape_for("InstanceType").enum)


@contextmanager
def _region_for_pcluster(region: str) -> Iterator[None]:
    # ParallelCluster reads the region only through boto3.session.Session().region_name
    # (pcluster.aws.common.get_region, imported by name into its config classes), so no argument can
    # carry it: we set AWS_DEFAULT_REGION for the call and restore the environment after. The profile
    # files are hidden meanwhile so a broken or missing AWS profile cannot fail an offline check.
    # The lock keeps two of our threads from interleaving their changes.
    setting = {"AWS_DEFAULT_REGION": region, "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull}
    hidden = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_REGION")
    with ENV_LOCK:
        saved = {name: os.environ.get(name) for name in (*setting, *hidden)}
        try:
            os.environ.update(setting)
            for name in hidden:
                os.environ.pop(name, None)
            yield
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def _get_allowed_ips(config: dict[str, Any]) -> Any:
    head = config.get("HeadNode")
    ssh = head.get("Ssh") if isinstance(head, dict) else None
    return ssh.get("AllowedIps") if isinstance(ssh, dict) else None

"""Offline validation of a ParallelCluster config: ParallelCluster's own schema, then clustertools'
checks (cluster_tools.model.aws.cluster_checks); and ParallelCluster's own update check of a changed config
(``preview_update``). No AWS call is made.

The only module that imports ``pcluster.schemas`` and ``pcluster.config``; the calls to ``pcluster.lib``
(create, describe, update, delete, ...) live in their own transport module.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import yaml

from cluster_tools.model.aws.cluster_checks import ALLOWED_IPS_PLACEHOLDER, find_problems
from cluster_tools.model.aws.pcluster_support import allocation_strategies

# pcluster reads (and sets) the region through os.environ: every call that touches it holds this lock.
ENV_LOCK = threading.Lock()


def validate_cluster_config(
    yaml_text: str, cluster_name: str, region: str, *, open_ssh_ok: bool = False, check_instance_types: bool = True
) -> list[str]:
    """One line per problem (empty when the config is good): ParallelCluster's schema errors as
    ``Scheduling.SlurmQueues[0].ComputeResources[0].MaxCount: Not a valid integer.``, then ours."""
    try:
        config = yaml.safe_load(yaml_text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        return [f"line {mark.line + 1 if mark else '?'}: not valid YAML: {getattr(exc, 'problem', None) or exc}"]
    if not isinstance(config, dict):
        return ["(top level): a ParallelCluster config is a mapping (Region, Image, HeadNode, Scheduling, ...)"]
    ours = find_problems(
        config,
        cluster_name,
        open_ssh_ok=open_ssh_ok,
        known_instance_types=known_instance_types() if check_instance_types else None,
        allocation_strategies=allocation_strategies(),
    )
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


@dataclass(frozen=True)
class ClusterFacts:
    """What ParallelCluster's update policies ask of the live cluster (pcluster/models/cluster.py
    has_running_capacity: the compute fleet's status is not STOPPED; has_running_login_nodes;
    head_node_instance.state), read by the caller from describe instead of by pcluster from AWS."""

    name: str
    compute_running: bool
    head_node_state: str = "running"
    login_nodes_running: bool = False

    # The interface pcluster.config.update_policy calls on ``patch.cluster``:
    def has_running_capacity(self, updated_value: bool = False) -> bool:
        return self.compute_running

    def has_running_login_nodes(self, pool_name: str | None = None) -> bool:
        return self.login_nodes_running

    @property
    def head_node_instance(self) -> Any:
        return _HeadNodeState(self.head_node_state)

    @property
    def stack_name(self) -> str:
        return self.name


@dataclass(frozen=True)
class _HeadNodeState:
    state: str


@dataclass(frozen=True)
class ConfigChange:
    """One changed parameter as ParallelCluster's update judges it (a row of ConfigPatch.check())."""

    parameter: str  # YAML path as pcluster prints it: Scheduling.SlurmQueues[spot].ComputeResources[c5].MaxCount
    current: str
    requested: str
    check: str  # SUCCEEDED, ACTION NEEDED or FAILED
    policy: str  # the parameter's UpdatePolicy: SUPPORTED, COMPUTE_FLEET_STOP, UNSUPPORTED, ...
    reason: str | None = None  # why it cannot be applied now
    action_needed: str | None = None  # what would let it

    @property
    def allowed(self) -> bool:
        return self.check == "SUCCEEDED"


def preview_update(base_yaml: str, target_yaml: str, facts: ClusterFacts, region: str) -> tuple[ConfigChange, ...]:
    """ParallelCluster's own update check, offline: the config the cluster runs (``base_yaml``) against the new
    one, through the same ``ConfigPatch(cluster, base, target).check()`` that pcluster's update-cluster runs
    (pcluster/models/cluster.py ``_validate_patch``), with the live facts it needs given. Only the changes
    pcluster prints are returned (IGNORED ones, e.g. QueueUpdateStrategy, are not)."""
    from pcluster.config.config_patch import ConfigPatch

    base, target = yaml.safe_load(base_yaml), yaml.safe_load(target_yaml)
    with _region_for_pcluster(region):
        _, rows = ConfigPatch(cluster=facts, base_config=base, target_config=target).check()
    header, *changes = rows
    index = {key: position for position, key in enumerate(header)}
    return tuple(
        ConfigChange(
            parameter=ConfigPatch.build_config_param_path(row[index["param_path"]], row[index["parameter"]]),
            current=_shown(row[index["old value"]]),
            requested=_shown(row[index["new value"]]),
            check=str(row[index["check"]]),
            policy=str(row[index["update_policy"]]),
            reason=_text(row[index["reason"]]),
            action_needed=_text(row[index["action_needed"]]),
        )
        for row in changes
    )


def _shown(value: Any) -> str:
    # "-" for none, as pcluster's API shows a change (controllers/cluster_operations_controller.py _analyze_changes);
    # a list item (a queue, an instance type) as its keys, not as Python's repr of a dict
    if value is None:
        return "-"
    if isinstance(value, dict):
        return ", ".join(f"{key}: {_shown(item)}" for key, item in value.items())
    return str(value)


def _text(value: Any) -> str | None:
    return " ".join(str(value).split()) if value not in (None, "", "-") else None


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

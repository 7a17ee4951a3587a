"""The ``parallelcluster:`` section of clustertools.yaml: what ``up`` builds on AWS, typed and checked.

Names follow ParallelCluster's own rules, so a bad value is refused here, with its line in the
project file, instead of minutes later by CloudFormation. The section renders through a template in
``cluster-config/`` (see ``cluster_tools.render.pcluster_config``); nothing here talks to AWS.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cluster_tools.model.aws.cluster_storage_spec import DatabaseSpec, SharedStorageSpec
from cluster_tools.model.clusters.cluster_record import check_cluster_name
from cluster_tools.model.names import BUCKET_NAME, QUEUE_NAME

_REGION_RE = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]$")
_SUBNET_RE = re.compile(r"^subnet-([0-9a-f]{8}|[0-9a-f]{17})$")
_PREFIX_LIST_RE = re.compile(r"^pl-([0-9a-f]{8}|[0-9a-f]{17})$")
# The shape of an EC2 type (family.size); whether it exists is checked against EC2's list later.
_INSTANCE_TYPE_RE = re.compile(r"^[a-z][a-z0-9-]*\.[a-z0-9-]+$")
_KEY_NAME_RE = re.compile(r"^[A-Za-z0-9 ._+=@-]{1,255}$")
_AMI_RE = re.compile(r"^ami-([0-9a-f]{8}|[0-9a-f]{17})$")
# AWS tag rules (letters, digits, spaces and + - = . _ : / @), minus what we render ourselves.
_TAG_KEY_RE = re.compile(r"^[A-Za-z0-9 +=._:/@-]{1,128}$")
_TAG_VALUE_RE = re.compile(r"^[A-Za-z0-9 +=._:/@-]{0,256}$")
_RESERVED_TAGS = ("project", "owner", "clustertools")
_POLICY_ARN_RE = re.compile(r"^arn:aws[a-z-]*:iam::(aws|[0-9]{12}):policy/[A-Za-z0-9+=,.@_/-]{1,512}$")
_ROLE_ARN_RE = re.compile(r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}$")

# The shapes of an OS's and a strategy's name, so no hostile text gets further; which ones exist (and which
# strategy fits which capacity) `validate` asks the installed ParallelCluster
# (cluster_tools.model.aws.pcluster_support), whose lists change between releases.
_OS_NAME_RE = re.compile(r"^[a-z][a-z0-9]{0,31}$")
_STRATEGY_RE = re.compile(r"^[a-z][a-z-]{0,63}$")


def check_allowed_ips(value: str) -> str:
    """One IPv4 CIDR or a managed prefix list, as ParallelCluster's AllowedIps takes; a bare IP is /32."""
    value = str(value).strip(" ")  # blanks only: a newline must be refused, never silently dropped
    if _PREFIX_LIST_RE.fullmatch(value):
        return value
    try:
        network = ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise ValueError(f"{value!r} is neither an IPv4 CIDR (203.0.113.7/32) nor a prefix list id (pl-...)") from None
    if network.version != 4:
        raise ValueError("ParallelCluster's AllowedIps takes IPv4 only: give an IPv4 CIDR or a prefix list id")
    return str(network)


def is_open_to_world(allowed_ips: str | None) -> bool:
    return allowed_ips == "0.0.0.0/0"


def _check_bucket(name: str) -> str:
    if not BUCKET_NAME.is_valid(name):
        raise ValueError(f"{name!r} is not an S3 bucket name (give the name alone, without s3://)")
    return name


class QueueSpec(BaseModel):
    """One Slurm queue: one compute resource over a pool of instance types, scaling from ``min_count``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    capacity_type: Literal["SPOT", "ONDEMAND"] | None = Field(default=None, description="default: the template's")
    allocation_strategy: str | None = Field(
        default=None, description="default: price-capacity-optimized on SPOT, lowest-price on ONDEMAND"
    )
    instance_types: list[str] = Field(min_length=1, max_length=50)
    min_count: int = Field(default=0, ge=0)
    max_count: int = Field(default=10, ge=1, le=10000)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not QUEUE_NAME.is_valid(value):
            raise ValueError(
                "queue names take lowercase letters, digits and '-', start with a letter, "
                "at most 25, not 'default' (ParallelCluster's rule)"
            )
        return value

    @field_validator("allocation_strategy")
    @classmethod
    def _strategy(cls, value: str | None) -> str | None:
        if value is not None and not _STRATEGY_RE.fullmatch(value):
            raise ValueError("an allocation strategy like price-capacity-optimized or lowest-price")
        return value

    @field_validator("instance_types")
    @classmethod
    def _types(cls, value: list[str]) -> list[str]:
        for item in value:
            if not isinstance(item, str) or not _INSTANCE_TYPE_RE.fullmatch(item):
                raise ValueError(f"{item!r} is not an EC2 instance type like c6i.4xlarge")
        if len(set(value)) != len(value):
            raise ValueError("an instance type is listed twice")
        return value

    @model_validator(mode="after")
    def _counts(self) -> QueueSpec:
        if self.min_count > self.max_count:
            raise ValueError(f"min_count {self.min_count} is above max_count {self.max_count}")
        return self


class SlurmLimits(BaseModel):
    """Raised on purpose: ParallelCluster keeps Slurm's MaxArraySize 1001, MaxJobCount 10000, MinJobAge 300."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_array_size: int = Field(default=10001, ge=2, le=4000001)  # Slurm's ceiling
    max_job_count: int = Field(default=200000, ge=1000, le=10000000)
    min_job_age: int = Field(default=600, ge=0, le=86400)

    @model_validator(mode="after")
    def _array_fits(self) -> SlurmLimits:
        # every task of a pending array counts against MaxJobCount (slurm.conf(5))
        if self.max_array_size > self.max_job_count:
            raise ValueError("max_array_size must not exceed max_job_count")
        return self


class ClusterSpec(BaseModel):
    """The ``parallelcluster:`` section: one AWS ParallelCluster that ``up`` creates for the project."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = Field(default=None, description="the cluster's name; default: from the project's name")
    region: str
    template: str = Field(default="spot-cpu", description="a template of cluster-config/, without .yaml.j2")
    os: str = Field(
        default="alinux2023",
        description="a ParallelCluster OS; `validate` checks it against the "
        "installed ParallelCluster and the node bootstrap",
    )
    custom_ami: str | None = Field(
        default=None,
        description="Image.CustomAmi: an AMI built with `pcluster build-image`; "
        "required for OSes ParallelCluster has no AMI for (rocky)",
    )
    head_node_instance_type: str = "t3.medium"
    head_node_root_volume_gb: int = Field(default=50, ge=40, le=16384)  # ParallelCluster's AMIs need ~40 GB
    # At most CloudFormation's 12 h for a wait condition; under 10 minutes even a bare head node rolls back.
    head_node_bootstrap_timeout: int | None = Field(
        default=None,
        ge=600,
        le=43200,
        description="seconds the head node's bootstrap (image pull, conda environment) may take before "
        "ParallelCluster rolls the cluster back (DevSettings.Timeouts.HeadNodeBootstrapTimeout); "
        "default: ParallelCluster's, plus time for the project's image and environment",
    )
    key_name: str | None = None
    subnet_id: str
    compute_subnet_ids: list[str] | None = Field(default=None, min_length=1, description="default: [subnet_id]")
    allowed_ips: str | None = Field(default=None, description="SSH to the head node; default: your address /32")
    root_volume_gb: int = Field(default=100, ge=40, le=16384, description="compute nodes' root: images land here")
    scaledown_idletime: int = Field(default=10, ge=1, le=1440, description="minutes before an idle node stops")
    queues: list[QueueSpec] = Field(min_length=1, max_length=50)
    input_buckets: list[str] = Field(default_factory=list, description="read-only S3 access from every node")
    additional_iam_policies: list[str] = Field(
        default_factory=list,
        max_length=10,
        description="IAM policy ARNs every node gets, e.g. one allowing secretsmanager:GetSecretValue on "
        "storage.input_credentials",
    )
    shared_storage: SharedStorageSpec | None = None
    database: DatabaseSpec | None = None
    slurm: SlurmLimits = Field(default_factory=SlurmLimits)
    owner: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    autostop_minutes: int | None = Field(
        default=None,
        ge=1,
        le=10080,
        description="the head node stops the cluster after this many minutes with no job, no interactive SSH "
        "session and no output upload (bootstrap/autostop.sh); default: never",
    )
    autostop_action: Literal["stop", "down"] = Field(
        default="stop",
        description="stop: the compute fleet, then the head node (EBS kept); down: the fleet, then "
        "delete the cluster (needs the two ARNs below)",
    )
    autostop_down_policy_arn: str | None = Field(
        default=None,
        description="a managed policy for the head node only: cloudformation:DeleteStack on this "
        "cluster's stack and iam:PassRole on autostop_down_role_arn",
    )
    autostop_down_role_arn: str | None = Field(
        default=None,
        description="the CloudFormation service role that deletes the stack (the head node's own role "
        "cannot: it is deleted with the stack)",
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        return None if value is None else check_cluster_name(value)

    @field_validator("region")
    @classmethod
    def _region(cls, value: str) -> str:
        if not _REGION_RE.fullmatch(value):
            raise ValueError("an AWS region like us-east-1")
        return value

    @field_validator("template")
    @classmethod
    def _template(cls, value: str) -> str:
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,63}", value):
            raise ValueError("a template name of cluster-config/ like spot-cpu or ondemand-gpu")
        return value

    @field_validator("os")
    @classmethod
    def _os(cls, value: str) -> str:
        if not _OS_NAME_RE.fullmatch(value):
            raise ValueError("a ParallelCluster OS like alinux2023 or ubuntu2404 (`validate` lists those that work)")
        return value

    @field_validator("custom_ami")
    @classmethod
    def _custom_ami(cls, value: str | None) -> str | None:
        if value is not None and not _AMI_RE.fullmatch(value):
            raise ValueError("an AMI id like ami-0123456789abcdef0 (built with `pcluster build-image`)")
        return value

    @field_validator("head_node_instance_type")
    @classmethod
    def _head_type(cls, value: str) -> str:
        if not _INSTANCE_TYPE_RE.fullmatch(value):
            raise ValueError(f"{value!r} is not an EC2 instance type like t3.medium")
        return value

    @field_validator("key_name")
    @classmethod
    def _key_name(cls, value: str | None) -> str | None:
        if value is not None and not _KEY_NAME_RE.fullmatch(value):
            raise ValueError("an EC2 key pair name: letters, digits, spaces and . _ + = @ -")
        return value

    @field_validator("subnet_id")
    @classmethod
    def _subnet(cls, value: str) -> str:
        if not _SUBNET_RE.fullmatch(value):
            raise ValueError("a subnet id like subnet-0123456789abcdef0")
        return value

    @field_validator("compute_subnet_ids")
    @classmethod
    def _subnets(cls, value: list[str] | None) -> list[str] | None:
        for item in value or ():
            if not isinstance(item, str) or not _SUBNET_RE.fullmatch(item):
                raise ValueError(f"{item!r} is not a subnet id like subnet-0123456789abcdef0")
        return value

    @field_validator("allowed_ips")
    @classmethod
    def _allowed_ips(cls, value: str | None) -> str | None:
        return None if value is None else check_allowed_ips(value)

    @field_validator("additional_iam_policies")
    @classmethod
    def _policies(cls, value: list[str]) -> list[str]:
        for item in value:
            if not isinstance(item, str) or not _POLICY_ARN_RE.fullmatch(item):
                raise ValueError(f"{item!r} is not an IAM policy ARN like arn:aws:iam::123456789012:policy/NAME")
        if len(set(value)) != len(value):
            raise ValueError("a policy is listed twice")
        return value

    @field_validator("input_buckets")
    @classmethod
    def _buckets(cls, value: list[str]) -> list[str]:
        return [_check_bucket(item) for item in value]

    @field_validator("owner")
    @classmethod
    def _owner(cls, value: str | None) -> str | None:
        if value is not None and not (_TAG_VALUE_RE.fullmatch(value) and value):
            raise ValueError("letters, digits, spaces and + - = . _ : / @ only (it becomes a tag)")
        return value

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: dict[str, str]) -> dict[str, str]:
        for key, item in value.items():
            if not _TAG_KEY_RE.fullmatch(key) or key.lower().startswith(("aws:", "parallelcluster:")):
                raise ValueError(
                    f"tag key {key!r}: letters, digits, spaces and + - = . _ : / @, "
                    "not starting with aws: or parallelcluster:"
                )
            if key in _RESERVED_TAGS:
                raise ValueError(f"tag {key!r} is set by clustertools (use `owner:` for the owner)")
            if not isinstance(item, str) or not _TAG_VALUE_RE.fullmatch(item):
                raise ValueError(f"tag {key!r}: the value takes letters, digits, spaces and + - = . _ : / @")
        return value

    @field_validator("autostop_down_policy_arn")
    @classmethod
    def _down_policy(cls, value: str | None) -> str | None:
        if value is not None and not _POLICY_ARN_RE.fullmatch(value):
            raise ValueError("an IAM policy ARN like arn:aws:iam::123456789012:policy/clustertools-autostop-down")
        return value

    @field_validator("autostop_down_role_arn")
    @classmethod
    def _down_role(cls, value: str | None) -> str | None:
        if value is not None and not _ROLE_ARN_RE.fullmatch(value):
            raise ValueError("an IAM role ARN like arn:aws:iam::123456789012:role/clustertools-autostop-down")
        return value

    @model_validator(mode="after")
    def _autostop_down(self) -> ClusterSpec:
        if self.autostop_action == "down" and not (self.autostop_down_policy_arn and self.autostop_down_role_arn):
            raise ValueError(
                "autostop_action: down deletes the cluster from its head node, whose own role cannot: "
                "set autostop_down_policy_arn and autostop_down_role_arn (see bootstrap/README.md)"
            )
        return self

    @model_validator(mode="after")
    def _unique_queues(self) -> ClusterSpec:
        names = [q.name for q in self.queues]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"queue names must differ: {', '.join(duplicates)} given twice")
        return self


def cluster_name_for(spec: ClusterSpec, project_name: str) -> str:
    """The name ``up`` gives the cluster: ``name`` when set, else the project's name made valid for AWS."""
    if spec.name:
        return spec.name
    name = re.sub(r"[^A-Za-z0-9-]+", "-", project_name).strip("-")
    if not name[:1].isalpha():
        name = f"ct-{name}"
    return check_cluster_name(name[:60].rstrip("-"))

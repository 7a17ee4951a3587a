"""Storage and accounting of the ``parallelcluster:`` section: the shared file system every node mounts
and the Slurm accounting database. Both outlive the cluster, so they are checked as carefully as the rest
(cluster_tools.model.aws.cluster_spec holds the section itself).
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_MOUNT_DIR_RE = re.compile(r"^/[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$")
_STORAGE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,29}$")
_STORAGE_ID_RE = {
    "ebs": re.compile(r"^vol-([0-9a-f]{8}|[0-9a-f]{17})$"),
    "efs": re.compile(r"^fs-([0-9a-f]{8}|[0-9a-f]{17})$"),
    "fsx-lustre": re.compile(r"^fs-[0-9a-f]{17}$"),
}
_SECRET_ARN_RE = re.compile(r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]+$")
_DB_URI_RE = re.compile(r"^[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?$")
_DB_USER_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_DB_NAME_RE = re.compile(r"^[0-9a-z_]{1,64}$")


class SharedStorageSpec(BaseModel):
    """One shared file system mounted on every node; kept when the cluster is deleted (DeletionPolicy Retain)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["ebs", "efs", "fsx-lustre"]
    name: str = "shared"
    mount_dir: str = "/shared"
    size_gb: int | None = Field(default=None, ge=1, le=524288, description="EBS GiB or FSx capacity; not for EFS")
    existing_id: str | None = Field(
        default=None, description="mount this volume or file system instead of creating one"
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _STORAGE_NAME_RE.fullmatch(value):
            raise ValueError("letters, digits and '-', at most 30")
        return value

    @field_validator("mount_dir")
    @classmethod
    def _mount_dir(cls, value: str) -> str:
        if not _MOUNT_DIR_RE.fullmatch(value) or "/.." in value or value in ("/home", "/opt/parallelcluster"):
            raise ValueError("an absolute path like /shared (letters, digits, '.', '_', '-'); not /home")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> SharedStorageSpec:
        if self.existing_id is not None:
            if not _STORAGE_ID_RE[self.type].fullmatch(self.existing_id):
                raise ValueError(f"existing_id {self.existing_id!r} is not a {self.type} id")
            if self.size_gb is not None:
                raise ValueError("size_gb applies only to storage clustertools creates; drop it with existing_id")
        elif self.type == "efs" and self.size_gb is not None:
            raise ValueError("EFS grows by itself: drop size_gb")
        elif self.type == "fsx-lustre" and self.size_gb is not None and self.size_gb != 1200 and self.size_gb % 2400:
            raise ValueError("FSx for Lustre (SCRATCH_2) takes 1200 or a multiple of 2400 GiB")
        return self


class DatabaseSpec(BaseModel):
    """Slurm accounting (sacct); the password stays in Secrets Manager and only its ARN is written here."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    uri: str
    user_name: str
    password_secret_arn: str
    database_name: str | None = None

    @field_validator("uri")
    @classmethod
    def _uri(cls, value: str) -> str:
        if not _DB_URI_RE.fullmatch(value):
            raise ValueError("host[:port] of the MySQL-compatible database, e.g. acct.abc.rds.amazonaws.com:3306")
        return value

    @field_validator("user_name")
    @classmethod
    def _user(cls, value: str) -> str:
        if not _DB_USER_RE.fullmatch(value):
            raise ValueError("letters, digits, '_', '.', '-' only")
        return value

    @field_validator("password_secret_arn")
    @classmethod
    def _arn(cls, value: str) -> str:
        if not _SECRET_ARN_RE.fullmatch(value):
            raise ValueError("the ARN of a Secrets Manager secret (arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME)")
        return value

    @field_validator("database_name")
    @classmethod
    def _db_name(cls, value: str | None) -> str | None:
        if value is not None and not _DB_NAME_RE.fullmatch(value):
            raise ValueError("lowercase letters, digits and '_', at most 64")
        return value


def check_secret_arn(value: str) -> str:
    """A Secrets Manager secret's ARN (the value itself never goes into a project file or a config)."""
    if not isinstance(value, str) or not _SECRET_ARN_RE.fullmatch(value):
        raise ValueError("the ARN of a Secrets Manager secret (arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME)")
    return value

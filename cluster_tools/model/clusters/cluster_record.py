"""Known clusters: the named record of how to reach a cluster's head node (kept by store/cluster_store.py).

Every cluster, whatever made it (the sandbox, ``register`` for an existing Slurm cluster, or
``up`` on AWS), is reached the same way: SSH to a head node whose host key is pinned.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from cluster_tools.model.names import CLUSTER_NAME


def check_cluster_name(name: str) -> str:
    """``name`` when it is a valid cluster name, else InvalidName (a ConfigError and a ValueError)."""
    return CLUSTER_NAME.check(name)


class ClusterRecord(BaseModel):
    """How to reach one cluster. Holds no secret: the key stays in the file it names."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    provider: Literal["ssh", "parallelcluster"] = "ssh"
    host: str
    port: int = Field(default=22, ge=1, le=65535)
    user: str
    identity_file: Path | None = None
    known_hosts: Path
    sandbox: bool = False
    s3_endpoint_url: str | None = None
    region: str | None = None
    # The head node's key once pinned (``type SHA256:...``): from then on a known_hosts without it is a lost
    # pin, refused, never a first contact.
    host_key: str | None = None
    created_at: str = Field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        return check_cluster_name(value)

    @property
    def address(self) -> str:
        return f"{self.user}@{self.host}:{self.port}"

    @property
    def repin_hint(self) -> str:
        """How to pin this cluster's host key again, the way it was pinned the first time."""
        if self.sandbox:
            return "`clustertools sandbox up` pins the sandbox's own key again"
        if self.provider == "parallelcluster":
            return (
                f"if the head node was really replaced: `clustertools forget {self.name}`, then `clustertools up` "
                "pins the key its console output lists"
            )
        return (
            f"if the server's key really changed (ask its admin for the new fingerprint): `clustertools register "
            f"{self.name} {self.address} --force` pins the key it offers then"
        )

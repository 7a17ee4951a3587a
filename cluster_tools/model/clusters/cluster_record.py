"""Known clusters: named records of how to reach a cluster's head node, kept in the state dir.

Every cluster, whatever made it (the sandbox, ``register`` for an existing Slurm cluster, or
``up`` on AWS), is reached the same way: SSH to a head node whose host key is pinned.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from cluster_tools.errors import ClusterNotFound, ConfigError
from cluster_tools.model.names import CLUSTER_NAME
from cluster_tools.store.state_dir import StateDir, write_private_json

CLUSTER_NAME_RE = CLUSTER_NAME.pattern  # always fullmatched


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


def remember_pinned_key(state: StateDir, record: ClusterRecord, key: str) -> ClusterRecord:
    """The record, saved with ``host_key`` set (when it is a saved record of this state dir)."""
    updated = record.model_copy(update={"host_key": key})
    if key and record.host_key != key and state.cluster_file(record.name).is_file():
        save_cluster(state, updated)
    return updated


def save_cluster(state: StateDir, record: ClusterRecord) -> None:
    write_private_json(state.cluster_file(record.name), record.model_dump(mode="json"))


def load_cluster(state: StateDir, name: str) -> ClusterRecord:
    path = state.cluster_file(name)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        known = ", ".join(r.name for r in list_clusters(state)) or "none"
        raise ClusterNotFound(
            f"no cluster named {name!r} (known: {known})",
            "start the local one with `clustertools sandbox up` or add yours with `clustertools register`",
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        why = (
            f"not UTF-8 text (byte {exc.object[exc.start]:#04x})"
            if isinstance(exc, UnicodeDecodeError)
            else (f"not valid JSON: {exc}" if isinstance(exc, json.JSONDecodeError) else "nested too deeply")
        )
        raise ConfigError(f"{path} is {why}", f"remove it with `clustertools forget {name}`") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        return ClusterRecord.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{path} is not a valid cluster record: {exc.errors()[0]['msg']}") from None


def list_clusters(state: StateDir, *, warn: Callable[[str], None] = lambda _: None) -> list[ClusterRecord]:
    """The valid cluster records; ``warn`` is told of each damaged one, which hides no other."""
    if not state.clusters.is_dir():
        return []
    records = []
    for path in sorted(state.clusters.glob("*.json")):
        try:
            records.append(ClusterRecord.model_validate_json(path.read_text(encoding="utf-8")))
        except (ValueError, OSError) as exc:  # ValidationError and UnicodeDecodeError are ValueErrors
            what = "not UTF-8 text" if isinstance(exc, UnicodeDecodeError) else "damaged"
            warn(f"warning: skipping the cluster record {path}: {what} (`clustertools forget {path.stem}` removes it)")
    return records


def forget_cluster(state: StateDir, name: str) -> bool:
    """Remove the record and its pinned host keys. Returns whether anything was removed."""
    removed = False
    for path in (state.cluster_file(name), state.known_hosts(name)):
        if path.exists():
            path.unlink()
            removed = True
    return removed


def resolve_cluster_name(state: StateDir, explicit: str | None, project_default: str | None) -> str:
    """-c NAME, else the project's cluster, else the only known cluster; otherwise a clear error."""
    if explicit is not None:
        return check_cluster_name(explicit)
    if project_default:
        return check_cluster_name(project_default)
    known = list_clusters(state)
    if len(known) == 1:
        return known[0].name
    if not known:
        raise ClusterNotFound(
            "no cluster is known yet",
            "start the local one with `clustertools sandbox up`, or add yours with `clustertools register`",
        )
    names = ", ".join(r.name for r in known)
    raise ClusterNotFound(f"several clusters are known ({names}) and none was chosen", "pass -c NAME")

"""Known clusters kept in the state dir: one private JSON file per cluster, read back as a ClusterRecord.

The record itself (what it holds, its name rule) is pure: cluster_tools/model/clusters/cluster_record.py."""

from __future__ import annotations

import json
from collections.abc import Callable

from pydantic import ValidationError

from cluster_tools.errors import ClusterNotFound, ConfigError
from cluster_tools.model.clusters.cluster_record import ClusterRecord, check_cluster_name
from cluster_tools.store.state_dir import StateDir, write_private_json


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

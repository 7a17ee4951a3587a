"""Add an existing Slurm cluster reached over SSH (a university cluster, a login node you own).

The destination may be an alias from ~/.ssh/config: HostName, User, Port and IdentityFile are read
from it by OpenSSH's rules (transport.ssh.ssh_config_lookup), so what works for ``ssh ALIAS`` works here.
"""

from __future__ import annotations

import getpass
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cluster_tools.errors import ClusterToolsError, ConfigError
from cluster_tools.model.clusters.cluster_record import ClusterRecord, check_cluster_name
from cluster_tools.store.cluster_store import forget_cluster, load_cluster, save_cluster
from cluster_tools.store.state_dir import StateDir

_DESTINATION = re.compile(r"^(?:(?P<user>[^@\s]+)@)?(?P<host>\[[0-9a-fA-F:]+\]|[^:@\s]+)(?::(?P<port>\d+))?$")


@dataclass(frozen=True)
class Destination:
    host: str
    port: int
    user: str
    identity_file: Path | None


def resolve_destination(
    destination: str,
    *,
    port: int | None,
    user: str | None,
    identity_file: Path | None,
    ssh_config_text: str | None,
) -> Destination:
    """``[user@]host[:port]`` or an ~/.ssh/config alias -> what to connect to; explicit options win."""
    match = _DESTINATION.fullmatch(destination)
    if not match:
        raise ConfigError(f"{destination!r} is not [user@]host[:port]", "e.g. alice@login.hpc.example.edu")
    host = match["host"].strip("[]")
    found: dict[str, object] = {}
    if ssh_config_text:
        from cluster_tools.transport.ssh import ssh_config_lookup

        found = ssh_config_lookup(ssh_config_text, host)
    identity = identity_file
    if identity is None and found.get("identityfile"):
        identity = Path(str(found["identityfile"][0])).expanduser()  # type: ignore[index]
    return Destination(
        host=str(found.get("hostname", host)),
        port=port or int(match["port"] or found.get("port", 22)),  # type: ignore[arg-type]
        user=user or match["user"] or str(found.get("user") or getpass.getuser()),
        identity_file=identity,
    )


def register_cluster(
    state: StateDir,
    name: str,
    destination: Destination,
    *,
    s3_endpoint_url: str | None,
    region: str | None,
    force: bool,
    check: bool,
    on_new_host_key: Callable[[str, str], None],
) -> ClusterRecord:
    """Record the cluster and, with ``check``, make first contact now: pin its host key, see Slurm answer."""
    try:
        check_cluster_name(name)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if state.cluster_file(name).exists() and not force:
        existing = load_cluster(state, name)
        raise ConfigError(
            f"a cluster named {name!r} is already known ({existing.address})",
            "pass --force to replace it, or choose another name",
        )
    if destination.identity_file and not destination.identity_file.is_file():
        raise ConfigError(f"identity file {destination.identity_file} does not exist", "pass --identity-file PATH")
    forget_cluster(state, name)  # a replaced cluster's old host key must not be trusted for the new one
    record = ClusterRecord(
        name=name,
        provider="ssh",
        host=destination.host,
        port=destination.port,
        user=destination.user,
        identity_file=destination.identity_file,
        known_hosts=state.known_hosts(name),
        s3_endpoint_url=s3_endpoint_url,
        region=region,
    )
    if check:
        try:
            record = _first_contact(record, on_new_host_key)
        except ClusterToolsError:
            forget_cluster(state, name)  # no half-registered cluster, no key pinned for nothing
            raise
    save_cluster(state, record)
    return record


def _first_contact(record: ClusterRecord, on_new_host_key: Callable[[str, str], None]) -> ClusterRecord:
    """The record with the host key SSH pinned, once `sinfo` answered there."""
    from cluster_tools.services.remote.cluster_shell import connect

    with connect(record, on_new_host_key=on_new_host_key) as conn:
        result = conn.run(["sinfo", "--version"], timeout=30)
        record = record.model_copy(update={"host_key": conn.server_key or None})
    if result.exit_code != 0:
        raise ClusterToolsError(
            f"{record.address} answers over SSH but `sinfo` does not run there",
            "is it a Slurm login/head node? pass --no-check to add it anyway",
        )
    return record

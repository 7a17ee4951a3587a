"""Pinning host keys learned out of band (an EC2 console's cloud-init block) into a cluster's known_hosts,
before the first connection: paramiko's HostKeys writes the standard OpenSSH format, so OpenSSH's own
client (ssh-config) reads the same file."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import paramiko

from cluster_tools.model.aws.console_host_keys import HostKey


def host_entry(host: str, port: int) -> str:
    """The name known_hosts files key on: ``host``, or ``[host]:port`` off port 22 (as OpenSSH writes it)."""
    return host if port == 22 else f"[{host}]:{port}"


def pin_host_keys(path: Path, host: str, port: int, keys: Sequence[HostKey]) -> None:
    """Replace ``host``'s pinned keys in ``path`` with ``keys`` (file mode 0600, its folder 0700)."""
    entries = paramiko.HostKeys()
    if path.exists():
        entries.load(str(path))
    name = host_entry(host, port)
    entries.pop(name, None)
    for key in keys:
        entries.add(name, key.key_type, paramiko.PKey.from_type_string(key.key_type, _blob(key)))
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.touch(mode=0o600, exist_ok=True)
    entries.save(str(path))


def carry_pin(path: Path, port: int, old_host: str, new_host: str) -> bool:
    """Pin ``old_host``'s keys for ``new_host`` too (replacing what ``new_host`` had): the same machine at a new
    address keeps its host keys. False when ``old_host`` has nothing pinned in ``path``."""
    entries = paramiko.HostKeys()
    if path.exists():
        entries.load(str(path))
    old = entries.lookup(host_entry(old_host, port))
    if not old:
        return False
    new = host_entry(new_host, port)
    entries.pop(new, None)
    for key_type, key in old.items():
        entries.add(new, key_type, key)
    entries.save(str(path))
    return True


def _blob(key: HostKey) -> bytes:
    import base64

    return base64.b64decode(key.base64)

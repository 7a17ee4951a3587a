"""An OpenSSH ``Host`` block for a cluster, and its place in a user's ~/.ssh/config: pure text.

Every value is checked or quoted for OpenSSH's config syntax: spaces are double-quoted, ``%`` is
doubled where OpenSSH expands tokens, and what OpenSSH cannot carry safely (quotes, backslashes,
control characters, ``${``) is refused rather than written wrong.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from cluster_tools.errors import ConfigError
from cluster_tools.model.names import NODE_NAME
from cluster_tools.render.templates import render_template

_ALIAS = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,59}$")
_HOST = re.compile(r"^[A-Za-z0-9_.:-]{1,253}$")  # a DNS name or an IPv4/IPv6 address
_USER = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}\$?$")
_NODE = NODE_NAME.pattern  # the one rule of node names


@dataclass(frozen=True)
class SSHConfigSpec:
    """What the block says: the head node as ``alias``, and compute nodes as ``NODE.alias``."""

    alias: str
    host: str
    port: int
    user: str
    known_hosts: Path
    identity_file: Path | None = None
    nodes: tuple[str, ...] = ()
    node_port: int = 22


def config_path(path: Path) -> str:
    """A file path as an OpenSSH config value (IdentityFile, UserKnownHostsFile expand % and ${})."""
    text = str(path)
    if not path.is_absolute():
        raise ConfigError(f"{text!r} is not an absolute path")
    bad = next((c for c in text if c in '"\\' or ord(c) < 0x20 or ord(c) == 0x7F), None)
    if bad is not None or "${" in text:
        shown = repr(bad) if bad is not None else "'${'"
        raise ConfigError(
            f"the path {text!r} holds {shown}, which an OpenSSH config cannot carry", "move the file to a plainer path"
        )
    text = text.replace("%", "%%")
    return f'"{text}"' if any(c in text for c in " \t#'") else text


def _checked(kind: str, value: str, pattern: re.Pattern[str]) -> str:
    if not pattern.fullmatch(value):
        raise ConfigError(f"{value!r} is not a {kind} an OpenSSH config can name safely")
    return value


def render_ssh_config(spec: SSHConfigSpec) -> str:
    """The Host block(s) for one cluster."""
    return render_template(
        "ssh/config.j2",
        alias=_checked("host alias", spec.alias, _ALIAS),
        host=_checked("host name", spec.host, _HOST).replace("%", "%%"),
        port=int(spec.port),
        user=_checked("user name", spec.user, _USER),
        identity_file=config_path(spec.identity_file) if spec.identity_file else "",
        known_hosts=config_path(spec.known_hosts),
        nodes=[_checked("node name", n, _NODE) for n in spec.nodes],
        node_port=int(spec.node_port),
    )


def markers(alias: str) -> tuple[str, str]:
    return (
        f"# >>> clustertools {alias} >>> (written by `clustertools ssh-config --write`: edits inside are lost)",
        f"# <<< clustertools {alias} <<<",
    )


def merge_into_config(existing: str, alias: str, block: str) -> str:
    """``existing`` with the cluster's block between its markers: replaced where it is, else put first.

    First, because OpenSSH takes the first value it finds for an option: a ``Host *`` of the user's
    further down cannot then override the pinned host key. The block ends with ``Host *`` so that
    global lines which follow it keep applying to every host, as before.
    """
    start, end = markers(alias)
    wrapped = f"{start}\n{block.rstrip()}\nHost *\n{end}\n"
    lines = existing.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if line.startswith(start.split(" (")[0])]
    ends = [i for i, line in enumerate(lines) if line.rstrip("\n") == end]
    if not starts and not ends:
        return wrapped + ("\n" + existing if existing else "")
    if len(starts) != 1 or len(ends) != 1 or ends[0] < starts[0]:
        raise ConfigError(
            f"the clustertools markers of {alias} in the SSH config are damaged",
            f"remove the lines between `{start.split(' (')[0]}` and `{end}` by hand, then run again",
        )
    return "".join(lines[: starts[0]]) + wrapped + "".join(lines[ends[0] + 1 :])

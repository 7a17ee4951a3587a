"""The SSH host keys an EC2 instance prints on its serial console at first boot (cloud-init), read from
`ec2 get-console-output`: the one channel to a new head node that does not go through the network path
an attacker could sit on. With them, the head node's key is pinned BEFORE the first connection instead
of trusted on first use.

cloud-init writes two blocks (the fingerprint lines carry an ``ec2: `` prefix on Amazon Linux)::

    -----BEGIN SSH HOST KEY FINGERPRINTS-----
    ec2: 256 SHA256:0r3l... root@ip-10-0-1-25 (ED25519)
    -----END SSH HOST KEY FINGERPRINTS-----
    -----BEGIN SSH HOST KEY KEYS-----
    ssh-ed25519 AAAAC3Nza... root@ip-10-0-1-25
    -----END SSH HOST KEY KEYS-----

Pure: text in, typed keys out. Every key is checked (its base64 decodes to an SSH blob of its own type);
when both blocks are there, only keys whose fingerprint the other block lists are kept.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import struct
from dataclasses import dataclass

KEY_TYPES = frozenset({"ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "ssh-rsa"})
_FINGERPRINTS = ("-----BEGIN SSH HOST KEY FINGERPRINTS-----", "-----END SSH HOST KEY FINGERPRINTS-----")
_KEYS = ("-----BEGIN SSH HOST KEY KEYS-----", "-----END SSH HOST KEY KEYS-----")
_FINGERPRINT = re.compile(r"\b(SHA256:[A-Za-z0-9+/]{43})\b")


@dataclass(frozen=True)
class HostKey:
    key_type: str
    base64: str

    @property
    def fingerprint(self) -> str:
        """OpenSSH's ``SHA256:...`` form, as ssh-keygen -l prints it."""
        return sha256_fingerprint(base64.b64decode(self.base64))


@dataclass(frozen=True)
class ConsoleHostKeys:
    keys: tuple[HostKey, ...] = ()
    fingerprints: frozenset[str] = frozenset()

    @property
    def found(self) -> bool:
        return bool(self.keys or self.fingerprints)


def sha256_fingerprint(blob: bytes) -> str:
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def parse_console_host_keys(text: str) -> ConsoleHostKeys:
    """The host keys and fingerprints of the LAST boot in the console text (a rebooted instance prints
    them again; the latest are the ones sshd serves). Nothing found: an empty ConsoleHostKeys."""
    lines = [line.strip() for line in text.replace("\r", "").split("\n")]
    fingerprints = frozenset(
        m.group(1) for line in _last_block(lines, *_FINGERPRINTS) if (m := _FINGERPRINT.search(line))
    )
    keys = []
    for line in _last_block(lines, *_KEYS):
        key = _host_key(line)
        if key is not None and (not fingerprints or key.fingerprint in fingerprints) and key not in keys:
            keys.append(key)
    return ConsoleHostKeys(keys=tuple(keys), fingerprints=fingerprints)


def keys_block_unfinished(text: str) -> bool:
    """cloud-init has begun printing its keys block but the console does not hold its end yet."""
    lines = [line.strip() for line in text.replace("\r", "").split("\n")]
    starts = [i for i, line in enumerate(lines) if line.endswith(_KEYS[0])]
    return bool(starts) and not any(line.endswith(_KEYS[1]) for line in lines[starts[-1] + 1 :])


def _last_block(lines: list[str], begin: str, end: str) -> list[str]:
    starts = [i for i, line in enumerate(lines) if line.endswith(begin)]
    if not starts:
        return []
    block: list[str] = []
    for line in lines[starts[-1] + 1 :]:
        if line.endswith(end):
            return block
        block.append(line)
    return []  # cut off before its end marker (the console keeps only the last 64 KB): trust none of it


def _host_key(line: str) -> HostKey | None:
    words = line.split()
    # a prefix ("ec2:", or syslog's "<14>May  1 12:03:43 cloud-init:") comes before the key type
    start = next((i for i, word in enumerate(words) if word in KEY_TYPES), None)
    if start is None or len(words) < start + 2:
        return None
    words = words[start:]
    try:
        blob = base64.b64decode(words[1], validate=True)
        (length,) = struct.unpack(">I", blob[:4])
    except (binascii.Error, struct.error, ValueError):
        return None
    if blob[4 : 4 + length] != words[0].encode():
        return None  # the blob must say it is a key of the type the line names
    return HostKey(words[0], words[1])

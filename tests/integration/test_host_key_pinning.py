"""Pinning a head node's host key from its console output, against the sandbox's REAL OpenSSH sshd.

moto's get-console-output always answers with a fixed kernel log without SSH keys (that path, trust on
first use with a note, is covered in tests/integration/test_up_service.py against a real moto server). The
console texts here are built the way cloud-init prints them, from the sandbox sshd's own host key.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from cluster_tools.errors import HostKeyMismatch
from cluster_tools.model.aws.console_host_keys import parse_console_host_keys
from cluster_tools.services.remote.cluster_shell import ssh_target
from cluster_tools.services.sandbox.sandbox_files import sandbox_paths
from cluster_tools.store.state_dir import StateDir
from cluster_tools.transport.known_hosts import pin_host_keys
from cluster_tools.transport.ssh import SSHConnection

OTHER_ED25519 = "AAAAC3NzaC1lZDI1NTE5AAAAIOPD4Yk9kH6ZenE3ylg+DnSxQa/uY6K1Kn2lM/2ZoZU+"


def console_with(public_key_line: str, fingerprint: str | None = None) -> str:
    text = "[   10.1] cloud-init[1642]: Cloud-init v. 22.2.2 running 'modules:config'\n"
    if fingerprint:
        text += (
            "-----BEGIN SSH HOST KEY FINGERPRINTS-----\n"
            f"ec2: 256 {fingerprint} root@head (ED25519)\n-----END SSH HOST KEY FINGERPRINTS-----\n"
        )
    if public_key_line:
        text += f"-----BEGIN SSH HOST KEY KEYS-----\n{public_key_line}\n-----END SSH HOST KEY KEYS-----\n"
    return text


@pytest.fixture
def head(sandbox, tmp_path):
    """The sandbox's SSH target with an empty known_hosts of its own, and its real public host key."""
    public = sandbox_paths(StateDir(sandbox.state).sandbox).ssh_host_key.with_suffix(".pub").read_text().strip()
    target = replace(ssh_target(sandbox.record), known_hosts=tmp_path / "pinned" / "known_hosts", pinned_key="")
    return target, public


def test_keys_from_the_console_are_pinned_before_connecting(head):
    target, public = head
    keys = parse_console_host_keys(console_with(public)).keys
    pin_host_keys(target.known_hosts, target.host, target.port, keys)
    assert oct(target.known_hosts.stat().st_mode & 0o777) == "0o600"
    first_use = []
    with SSHConnection(target, on_new_host_key=lambda h, k: first_use.append(k)) as conn:
        assert conn.run(["echo", "ok"]).check().text == "ok\n"
    assert first_use == []  # nothing was trusted on first use: the key was already pinned


def test_a_console_key_the_server_does_not_have_is_refused(head):
    target, _ = head
    pin_host_keys(
        target.known_hosts,
        target.host,
        target.port,
        parse_console_host_keys(console_with(f"ssh-ed25519 {OTHER_ED25519} root@head")).keys,
    )
    with pytest.raises(HostKeyMismatch, match="has changed"):
        SSHConnection(target)


def test_console_fingerprints_alone_check_the_key_at_first_contact(head):
    import base64

    from cluster_tools.model.aws.console_host_keys import sha256_fingerprint

    target, public = head
    real = sha256_fingerprint(base64.b64decode(public.split()[1]))
    found = parse_console_host_keys(console_with("", fingerprint=real))
    with SSHConnection(replace(target, expected_fingerprints=found.fingerprints)):
        pass
    assert target.known_hosts.read_text().split()[1:3] == public.split()[:2]  # now pinned


def test_a_fingerprint_mismatch_pins_nothing(head):
    target, _ = head
    wrong = frozenset({"SHA256:SYgp49+NizLgAKsy0GXJihpcjuTW2/Ed9EDBSpb/K9A"})
    with pytest.raises(HostKeyMismatch, match="not one its console output lists"):
        SSHConnection(replace(target, expected_fingerprints=wrong))
    assert not target.known_hosts.exists()

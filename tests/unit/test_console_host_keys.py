"""Host keys from an EC2 console output (cloud-init's blocks), parsed purely. The literal consoles in
tests/golden/console/ follow what cloud-init prints on Amazon Linux 2023 (fingerprints through syslog,
keys raw) and on Ubuntu (an ``ec2:`` prefix, CRLF line ends); the keys are real keys made for the test."""

from __future__ import annotations

from pathlib import Path

import pytest

from cluster_tools.model.aws.console_host_keys import HostKey, keys_block_unfinished, parse_console_host_keys

CONSOLE = Path(__file__).parents[1] / "golden" / "console"
ED25519 = "AAAAC3NzaC1lZDI1NTE5AAAAIOPD4Yk9kH6ZenE3ylg+DnSxQa/uY6K1Kn2lM/2ZoZU+"
ED25519_FP = "SHA256:SYgp49+NizLgAKsy0GXJihpcjuTW2/Ed9EDBSpb/K9A"
ECDSA_FP = "SHA256:PWfctBL2M74AuTzt73+9N8gXRfcrlMvvGeWaSyUx7W0"


def test_amazon_linux_console_gives_both_keys_with_their_fingerprints():
    found = parse_console_host_keys((CONSOLE / "al2023.txt").read_text())
    assert [k.key_type for k in found.keys] == ["ecdsa-sha2-nistp256", "ssh-ed25519"]
    assert {k.fingerprint for k in found.keys} == found.fingerprints == {ED25519_FP, ECDSA_FP}
    assert found.keys[1] == HostKey("ssh-ed25519", ED25519)


def test_fingerprints_alone_with_crlf_and_a_prefix():
    found = parse_console_host_keys((CONSOLE / "ubuntu-fingerprints-only.txt").read_text())
    assert found.keys == () and found.fingerprints == {ED25519_FP} and found.found


def test_the_last_boot_wins():
    first = (CONSOLE / "al2023.txt").read_text()
    second = f"-----BEGIN SSH HOST KEY KEYS-----\nssh-ed25519 {ED25519} root@new\n-----END SSH HOST KEY KEYS-----\n"
    found = parse_console_host_keys(first + second)
    assert found.keys == (HostKey("ssh-ed25519", ED25519),)


@pytest.mark.parametrize(
    "text",
    [
        "",  # nothing printed yet (the console lags the boot by minutes)
        "\ufeffLinux version 6.1\n",  # a BOM and no blocks at all
        # cut off before its end marker: none of it is trusted
        f"-----BEGIN SSH HOST KEY KEYS-----\nssh-ed25519 {ED25519} root@x\n",
        # a key whose blob is not of the type its line names
        f"-----BEGIN SSH HOST KEY KEYS-----\necdsa-sha2-nistp256 {ED25519} x\n-----END SSH HOST KEY KEYS-----\n",
        # not base64, an unknown type, a shell injection attempt
        "-----BEGIN SSH HOST KEY KEYS-----\nssh-ed25519 not*base64 x\nssh-dss AAAAB3NzaC1kc3M= x\n"
        "ssh-ed25519 $(reboot) ;rm -rf /\n-----END SSH HOST KEY KEYS-----\n",
    ],
)
def test_nothing_usable_gives_no_keys(text):
    found = parse_console_host_keys(text)
    assert found.keys == ()


def test_a_key_the_fingerprint_block_does_not_list_is_dropped():
    text = (
        f"-----BEGIN SSH HOST KEY FINGERPRINTS-----\n256 {ECDSA_FP} root@x (ECDSA)\n"
        f"-----END SSH HOST KEY FINGERPRINTS-----\n"
        f"-----BEGIN SSH HOST KEY KEYS-----\nssh-ed25519 {ED25519} root@x\n-----END SSH HOST KEY KEYS-----\n"
    )
    found = parse_console_host_keys(text)
    assert found.keys == () and found.fingerprints == {ECDSA_FP}


@pytest.mark.parametrize(
    "text, unfinished",
    [
        ("", False),  # nothing printed yet
        ((CONSOLE / "al2023.txt").read_text(), False),
        ((CONSOLE / "ubuntu-fingerprints-only.txt").read_text(), False),  # no keys block at all
        (f"-----BEGIN SSH HOST KEY KEYS-----\r\nssh-ed25519 {ED25519} root@x\r\n", True),  # still printing
        # an earlier boot's block is complete, the latest one is not
        (
            "-----BEGIN SSH HOST KEY KEYS-----\n-----END SSH HOST KEY KEYS-----\n-----BEGIN SSH HOST KEY KEYS-----\n",
            True,
        ),
    ],
)
def test_a_keys_block_begun_but_not_ended_is_unfinished(text, unfinished):
    assert keys_block_unfinished(text) is unfinished

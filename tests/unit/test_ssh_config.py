"""The OpenSSH block of a cluster: golden file, hostile values quoted or refused, markers idempotent."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from cluster_tools.errors import ConfigError
from cluster_tools.render.ssh_host_block import SSHConfigSpec, config_path, merge_into_config, render_ssh_config
from cluster_tools.services.remote.ssh_config_file import write_ssh_config
from tests.helpers import assert_golden


def spec(**changes) -> SSHConfigSpec:
    values = dict(
        alias="my-study",
        host="203.0.113.7",
        port=22,
        user="ec2-user",
        known_hosts=Path("/home/a/.local/state/clustertools/clusters/my-study.known_hosts"),
        identity_file=Path("/home/a/.ssh/id_ed25519"),
        nodes=("spot-dy-c6ixlarge-1", "spot-dy-c6ixlarge-2"),
        node_port=22,
    )
    return SSHConfigSpec(**{**values, **changes})


def test_block_matches_golden():
    assert_golden("ssh_config", render_ssh_config(spec()))


def test_without_nodes_or_key_only_the_head_node():
    text = render_ssh_config(spec(nodes=(), identity_file=None))
    assert "ProxyJump" not in text and "IdentityFile" not in text
    assert "StrictHostKeyChecking yes" in text


def test_paths_with_spaces_are_quoted_and_percent_is_doubled():
    assert config_path(Path("/home/a b/My Keys/id")) == '"/home/a b/My Keys/id"'
    assert config_path(Path("/home/a/100%/id")) == "/home/a/100%%/id"
    assert config_path(Path("/home/a/#x/it's")) == '"/home/a/#x/it\'s"'
    text = render_ssh_config(spec(known_hosts=Path("/st ate/k h"), identity_file=Path("/k;$(id)/`id`")))
    assert '  UserKnownHostsFile "/st ate/k h"\n' in text and "  IdentityFile /k;$(id)/`id`\n" in text


@pytest.mark.parametrize("path", ['/a"b', "/a\nHost *", "/a\\b", "/a/${HOME}", "/a\tb\x7f", "relative/key"])
def test_paths_an_openssh_config_cannot_carry_are_refused(path):
    with pytest.raises(ConfigError):
        config_path(Path(path))


@pytest.mark.parametrize(
    "changes",
    [
        {"user": "bob\n  ProxyCommand sh"},
        {"user": "a b"},
        {"user": "%u"},
        {"host": "h;id"},
        {"host": "a b"},
        {"host": "h\nHost *"},
        {"alias": "*"},
        {"alias": "a b"},
        {"nodes": ("n1", "n 2")},
        {"nodes": ("-oProxyCommand=x",)},
        {"nodes": ("n*",)},
        {"identity_file": Path('/k"ey')},
    ],
)
def test_hostile_values_are_refused(changes):
    with pytest.raises(ConfigError):
        render_ssh_config(spec(**changes))


BLOCK = "Host a\n  HostName 10.0.0.1\n"


def test_merge_puts_the_block_first_and_resets_to_every_host_after_it():
    user = "ServerAliveInterval 30\nHost *\n  StrictHostKeyChecking no\n"
    merged = merge_into_config(user, "a", BLOCK)
    assert merged.startswith("# >>> clustertools a >>>") and merged.endswith(user)
    assert "Host a\n  HostName 10.0.0.1\nHost *\n# <<< clustertools a <<<\n" in merged


def test_merge_is_idempotent_and_replaces_in_place():
    once = merge_into_config("Host x\n  User y\n", "a", BLOCK)
    assert merge_into_config(once, "a", BLOCK) == once
    changed = merge_into_config(once, "a", BLOCK.replace("10.0.0.1", "10.0.0.2"))
    assert "10.0.0.2" in changed and "10.0.0.1" not in changed and changed.count(">>> clustertools a") == 1
    both = merge_into_config(changed, "b", "Host b\n")
    assert both.count("clustertools a <<<") == 1 and both.count("clustertools b <<<") == 1
    assert merge_into_config("", "a", BLOCK).endswith("<<< clustertools a <<<\n")


def test_damaged_markers_are_refused():
    once = merge_into_config("", "a", BLOCK)
    with pytest.raises(ConfigError, match="damaged"):
        merge_into_config(once.replace("# <<< clustertools a <<<\n", ""), "a", BLOCK)


def test_write_creates_a_private_file_and_says_when_nothing_changed(tmp_path):
    path = tmp_path / "home" / ".ssh" / "config"
    assert write_ssh_config(path, "a", BLOCK) is True
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert write_ssh_config(path, "a", BLOCK) is False


def test_write_goes_through_a_symlink_and_keeps_the_mode(tmp_path):
    real = tmp_path / "dotfiles" / "ssh_config"
    real.parent.mkdir()
    real.write_text("Host x\n")
    real.chmod(0o640)
    link = tmp_path / "config"
    link.symlink_to(real)
    assert write_ssh_config(link, "a", BLOCK) is True
    assert link.is_symlink() and "Host a" in real.read_text() and stat.S_IMODE(real.stat().st_mode) == 0o640

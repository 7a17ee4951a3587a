"""A cluster whose host key clustertools pinned remembers it: a known_hosts file emptied or deleted
afterwards is refused (one Error line that says how to pin again), never trusted on first use again.
Against the sandbox's REAL OpenSSH sshd."""

from __future__ import annotations

import json

from cluster_tools.services.sandbox.sandbox_files import sandbox_paths
from cluster_tools.store.cluster_store import load_cluster
from cluster_tools.store.state_dir import StateDir
from tests.helpers import err, out


def one_error_line(result) -> str:
    lines = err(result).strip().splitlines()
    assert result.returncode != 0 and len(lines) == 1 and lines[0].startswith("Error: "), err(result)
    return lines[0]


def test_the_sandbox_refuses_a_lost_pin_until_sandbox_up_pins_its_key_again(sandbox):
    record = load_cluster(StateDir(sandbox.state), "sandbox")
    assert record.host_key and record.host_key.startswith("ssh-ed25519 SHA256:")
    try:
        for damage in (lambda p: p.write_text(""), lambda p: p.unlink()):
            damage(record.known_hosts)
            line = one_error_line(sandbox.cli("ssh", "--", "true"))
            assert (
                f"the host key pinned for {record.address} ({record.host_key}) is gone from {record.known_hosts}"
                in line
            )
            assert "no new key trusted (hint: `clustertools sandbox up` pins the sandbox's own key again)" in line
            assert not record.known_hosts.exists() or record.known_hosts.read_text() == ""  # nothing learned
    finally:
        assert sandbox.cli("sandbox", "up").returncode == 0
    assert sandbox.cli("ssh", "--", "true").returncode == 0


def test_a_registered_cluster_remembers_its_pin_and_register_force_pins_again(sandbox):
    key = sandbox_paths(StateDir(sandbox.state).sandbox).user_key
    where = ("-p", str(sandbox.record.port), "-u", sandbox.record.user, "-i", str(key))
    try:
        for check in ([], ["--no-check"]):  # pinned by register, or at first use
            added = sandbox.cli("register", "pinned", "127.0.0.1", *where, *check, "--force")
            assert added.returncode == 0, err(added)
            assert sandbox.cli("ssh", "-c", "pinned", "--", "true").returncode == 0
            record = load_cluster(StateDir(sandbox.state), "pinned")
            assert record.host_key == load_cluster(StateDir(sandbox.state), "sandbox").host_key
            record.known_hosts.write_text("")
            line = one_error_line(sandbox.cli("ssh", "-c", "pinned", "--", "true"))
            assert (
                "is gone from" in line
                and (f"`clustertools register pinned {record.address} --force` pins the key it offers then") in line
            )
            listed = json.loads(out(sandbox.cli("list", "--json")))
            assert {"name": "pinned", "host_key": record.host_key}.items() <= next(
                c for c in listed if c["name"] == "pinned"
            ).items()
        repinned = sandbox.cli("register", "pinned", "127.0.0.1", *where, "--force")
        assert repinned.returncode == 0, err(repinned)
        assert sandbox.cli("ssh", "-c", "pinned", "--", "true").returncode == 0
    finally:
        sandbox.cli("forget", "pinned")

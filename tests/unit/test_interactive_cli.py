"""The interactive commands' CLI promises: help with examples, grouped in --help, light start-up,
one-line errors before any connection is tried."""

from __future__ import annotations

import pytest

from tests.helpers import err, out, run_cli

NEW_COMMANDS = ("ssh-config", "debug", "put", "get")


@pytest.mark.parametrize("command", NEW_COMMANDS)
def test_every_new_command_has_help_with_examples(state_dir, command):
    result = run_cli(command, "--help", state=state_dir)
    assert result.returncode == 0 and "Examples:" in out(result)


def test_they_are_listed_in_their_sections(state_dir):
    text = out(run_cli("--help", state=state_dir))
    clusters, runs = text.split("Clusters:")[1].split("Runs:")
    assert all(f"  {c} " in clusters for c in ("ssh-config", "put", "get"))
    assert "  debug " in runs.split("Results:")[0]


def test_debug_of_an_unknown_run_is_one_line(state_dir):
    result = run_cli("debug", "--run", "nope-1", "sub-01", state=state_dir)
    lines = err(result).strip().splitlines()
    assert result.returncode == 1 and len(lines) == 1 and lines[0].startswith("Error: no run 'nope-1'")


def test_ssh_to_a_bad_node_name_is_refused_before_connecting(state_dir):
    from cluster_tools.model.clusters.cluster_record import ClusterRecord
    from cluster_tools.store.cluster_store import save_cluster
    from cluster_tools.store.state_dir import StateDir

    save_cluster(
        StateDir(state_dir),
        ClusterRecord(name="far", host="192.0.2.1", user="u", known_hosts=state_dir / "far.known_hosts"),
    )
    result = run_cli("ssh", "-c", "far", "--node", "-oProxyCommand=x", state=state_dir)
    assert result.returncode == 1 and "is not a node name" in err(result)

"""Parsing Slurm's own output, captured literally from the sandbox (Slurm 22.05.8)."""

from __future__ import annotations

from cluster_tools.slurm.node_info import parse_sinfo_node_states


def test_sinfo_node_states():
    # `sinfo -h -N -o '%N|%T'` while the node registers, then when ready
    assert parse_sinfo_node_states("localhost|unknown*\n") == {"localhost": "unknown*"}
    assert parse_sinfo_node_states("localhost|idle\nnode-2|down*\n\n") == {"localhost": "idle", "node-2": "down*"}

"""Parsing Slurm's own output, captured literally from the sandbox (Slurm 22.05.8)."""

from __future__ import annotations

from cluster_tools.slurm.node_info import parse_key_values, parse_sinfo_node_states


def test_sinfo_node_states():
    # `sinfo -h -N -o '%N|%T'` while the node registers, then when ready
    assert parse_sinfo_node_states("localhost|unknown*\n") == {"localhost": "unknown*"}
    assert parse_sinfo_node_states("localhost|idle\nnode-2|down*\n\n") == {"localhost": "idle", "node-2": "down*"}


def test_key_values_later_keys_win_and_bare_words_are_ignored():
    assert parse_key_values("A=1 junk B=x=y A=2") == {"A": "2", "B": "x=y"}

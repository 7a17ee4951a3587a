"""Parsing Slurm's own output, captured literally from the sandbox (Slurm 22.05.8)."""

from __future__ import annotations

import pytest

from cluster_tools.slurm.node_info import NodeHardware, parse_key_values, parse_sinfo_node_states, parse_slurmd_c

# `slurmd -C` on the sandbox machine
SLURMD_C = """NodeName=vm CPUs=2 Boards=1 SocketsPerBoard=1 CoresPerSocket=2 ThreadsPerCore=1 RealMemory=24105
UpTime=0-00:06:18
"""


def test_slurmd_c():
    assert parse_slurmd_c(SLURMD_C) == NodeHardware(cpus=2, real_memory_mb=24105)


@pytest.mark.parametrize("text", ["", "garbage\n", "NodeName=vm CPUs=two RealMemory=1\n"])
def test_slurmd_c_unexpected_output_is_a_value_error(text):
    with pytest.raises(ValueError, match="slurmd -C"):
        parse_slurmd_c(text)


def test_sinfo_node_states():
    # `sinfo -h -N -o '%N|%T'` while the node registers, then when ready
    assert parse_sinfo_node_states("localhost|unknown*\n") == {"localhost": "unknown*"}
    assert parse_sinfo_node_states("localhost|idle\nnode-2|down*\n\n") == {"localhost": "idle", "node-2": "down*"}


def test_key_values_later_keys_win_and_bare_words_are_ignored():
    assert parse_key_values("A=1 junk B=x=y A=2") == {"A": "2", "B": "x=y"}

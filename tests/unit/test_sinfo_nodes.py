"""Nodes and their power states, from sinfo output captured on the ParallelCluster-like sandbox."""

from __future__ import annotations

from cluster_tools.slurm.node_info import parse_sinfo_nodes

# sinfo -h -N -o '%N|%T|%c|%m|%P|%E' on the sandbox: one static node busy, one dynamic booting, one
# powered down, one taken away by `sandbox interrupt`.
CAPTURED = """compute-dy-compute-1|allocated#|8|3891|compute*|none
compute-dy-compute-2|idle~|8|3891|compute*|none
compute-dy-compute-3|down~|8|3891|compute*|spot interruption (clustertools sandbox interrupt)
compute-st-compute-1|mixed|8|3891|compute*|none
"""


def test_power_states_are_read_from_the_suffixes() -> None:
    nodes = {n.name: n for n in parse_sinfo_nodes(CAPTURED)}
    assert nodes["compute-dy-compute-1"].label == "allocated (powering up)"
    assert nodes["compute-dy-compute-2"].label == "idle (powered down)"
    assert (
        nodes["compute-dy-compute-3"].label == "down (powered down): spot interruption (clustertools sandbox interrupt)"
    )
    assert nodes["compute-st-compute-1"].state == "mixed" and nodes["compute-st-compute-1"].flags == ()
    assert {n.partition for n in nodes.values()} == {"compute"} and nodes["compute-st-compute-1"].cpus == 8


def test_lines_of_another_shape_are_skipped() -> None:
    assert parse_sinfo_nodes("garbage\n|idle|1|1|p|none\n") == []

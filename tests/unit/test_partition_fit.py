"""Whether a task can ever run on a partition, from `sinfo -h -e -o '%P|%c|%m|%G'` as the sandbox printed it
(tests/golden/slurm/sinfo_partitions_fit.txt: a project with queues cpu (c5.xlarge) and gpu (g4dn.xlarge),
memory scaled to this machine)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cluster_tools.slurm.partition_fit import NodeConfig, Partitions, memory_mb, parse_partitions, request_problem

CAPTURED = (Path(__file__).parents[1] / "golden" / "slurm" / "sinfo_partitions_fit.txt").read_text()


def test_the_sandbox_listing_parses_with_its_default_partition() -> None:
    parsed = parse_partitions(CAPTURED)
    assert parsed.default == "cpu"
    assert parsed.nodes == {"cpu": [NodeConfig(4, 3214)], "gpu": [NodeConfig(4, 6428)]}


def test_a_request_no_node_holds_is_named_with_the_largest_that_fits() -> None:
    parsed = parse_partitions(CAPTURED)
    assert request_problem(parsed, None, cpus=4, mem="3G") is None
    assert request_problem(parsed, None, cpus=16, mem="1G") == (
        "no node of partition cpu can hold a task asking 16 CPUs: its largest node has 4 CPUs, 3214 MB; "
        "the most a task can ask there is --cpus 4 --mem 3214M"
    )
    assert "asking --mem 62G (63488 MB)" in request_problem(parsed, "cpu", cpus=1, mem="62G")
    assert "--mem 3214M" in request_problem(parsed, "cpu", cpus=1, mem="62G")
    assert request_problem(parsed, "gpu", cpus=1, mem="6G") is None
    assert (
        request_problem(parsed, "nope", cpus=1, mem="1G")
        == "partition nope does not exist on this cluster (its partitions: cpu, gpu)"
    )


def test_gpus_come_from_gres_and_count() -> None:
    parsed = parse_partitions("gpu*|8|62000|gpu:4\ngpu*|4|15000|gpu:tesla:1(S:0),shard:8\ncpu|2|3000|(null)\n")
    assert parsed.nodes["gpu"] == [NodeConfig(8, 62000, 4), NodeConfig(4, 15000, 1)]
    assert request_problem(parsed, None, cpus=1, mem="1G", gpus=4) is None
    assert "asking 5 GPU(s): its largest node has 8 CPUs, 62000 MB, 4 GPU(s)" in request_problem(
        parsed, None, cpus=1, mem="1G", gpus=5
    )
    assert (
        request_problem(parsed, "cpu", cpus=1, mem="1G", gpus=1)
        == "no node of partition cpu has a GPU: name a partition whose nodes have them (--partition)"
    )


@pytest.mark.parametrize(("text", "mb"), [("4G", 4096), ("512M", 512), ("2000", 2000), ("1T", 1048576), ("1536K", 2)])
def test_memory_sizes_in_mb(text: str, mb: int) -> None:
    assert memory_mb(text) == mb


def test_a_cluster_without_a_default_partition_asks_for_one() -> None:
    assert "no default partition" in request_problem(Partitions({"a": [NodeConfig(1, 1)]}, None), None, cpus=1, mem="1")


def test_an_inactive_partition_is_a_stopped_cluster() -> None:
    """With %a, which the sandbox's sinfo (22.05) prints as `inactive` once its autostop fired."""
    parsed = parse_partitions("compute*|4|3214|(null)|inactive\nspot|2|1000|(null)|up\n")
    assert parsed.inactive == frozenset({"compute"}) and parsed.default == "compute"
    assert parsed.stopped(None) and parsed.stopped("compute") and not parsed.stopped("spot")
    assert not parse_partitions(CAPTURED).stopped(None), "the four-field listing: nothing known stopped"

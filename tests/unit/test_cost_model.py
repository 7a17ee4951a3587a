"""The cost model (pure): packing, waves, node-hours, and the same run costed from its records."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from cluster_tools.errors import ConfigError
from cluster_tools.model.cost.cost_model import (
    NodeShape,
    Prices,
    TaskShape,
    TaskSpan,
    cost_from_records,
    estimate_run,
    slurm_mem_gib,
    slurm_minutes,
    tasks_per_node,
)

C6I_4XL = NodeShape("c6i.4xlarge", vcpus=16, memory_gib=32, max_nodes=10, capacity="spot")
PRICES = Prices(compute_ondemand=0.68, compute_spot=0.272, head_ondemand=0.0416, source="price table of 2026-11-22")


def test_tasks_are_packed_by_cpus_and_by_memory():
    assert tasks_per_node(C6I_4XL, TaskShape(cpus=1, mem_gib=None, minutes=8)) == 16
    assert tasks_per_node(C6I_4XL, TaskShape(cpus=4, mem_gib=1, minutes=8)) == 4
    assert tasks_per_node(C6I_4XL, TaskShape(cpus=1, mem_gib=7, minutes=8)) == 4  # 32 GiB x 0.95 / 7
    with pytest.raises(ConfigError, match=re.escape("does not fit on a c6i.4xlarge")):
        tasks_per_node(C6I_4XL, TaskShape(cpus=32, mem_gib=None, minutes=8))


def test_thirty_gib_tasks_on_an_eight_vcpu_sixty_four_gib_type_pack_two_and_say_why():
    """As the rendered Slurm packs them (EnableMemoryBasedScheduling: CR_CPU_Memory, RealMemory 0.95 x 64 GiB)."""
    r6i = NodeShape("r6i.2xlarge", vcpus=8, memory_gib=64, max_nodes=10, capacity="spot")
    est = estimate_run(100, TaskShape(cpus=1, mem_gib=slurm_mem_gib("30G"), minutes=10), r6i, PRICES)
    assert est.tasks_per_node == 2
    assert est.packing == "by memory: 30 GiB each of the 60.8 GiB Slurm schedules on a node; its 8 vCPUs would take 8"
    assert estimate_run(10, TaskShape(cpus=2, mem_gib=1, minutes=10), r6i, PRICES).packing == "by CPUs: 2 each of 8"


def test_a_thousand_subjects_of_eight_minutes_on_ten_spot_nodes():
    est = estimate_run(1000, TaskShape(cpus=1, mem_gib=None, minutes=8), C6I_4XL, PRICES)
    # 160 slots: 7 waves (6 full, the last of 40 tasks on 3 nodes); every node boots 6 and idles 10 minutes
    assert (est.tasks_per_node, est.nodes, est.waves) == (16, 10, 7)
    assert est.wall_minutes == 6 + 7 * 8
    assert est.compute_node_hours == pytest.approx((10 * 16 + (6 * 10 + 3) * 8) / 60)
    assert est.head_hours == pytest.approx((62 + 10) / 60)
    assert est.dollars["spot"] == pytest.approx(est.compute_node_hours * 0.272 + est.head_hours * 0.0416)
    assert est.dollars["ondemand"] > est.dollars["spot"] and est.total == est.dollars["spot"]
    assert est.per_subject() == pytest.approx(est.total / 1000)


def test_throttle_limits_the_nodes_and_lengthens_the_run():
    est = estimate_run(1000, TaskShape(cpus=1, mem_gib=None, minutes=8, throttle=32), C6I_4XL, PRICES)
    assert (est.nodes, est.waves) == (2, 32) and est.notes == ["throttled to 32 tasks at a time"]


def test_no_subjects_cost_nothing_and_bad_minutes_are_refused():
    assert estimate_run(0, TaskShape(1, None, 8), C6I_4XL, PRICES).total == 0
    with pytest.raises(ConfigError, match="minutes per subject"):
        estimate_run(10, TaskShape(1, None, 0), C6I_4XL, PRICES)


def test_records_of_a_run_that_went_as_estimated_cost_what_was_estimated():
    t0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    spans = []
    for i in range(1000):  # 160 slots on 10 nodes, waves of 8 minutes, as the estimate assumes
        wave, slot = divmod(i, 160)
        start = t0 + timedelta(minutes=8 * wave)
        spans.append(TaskSpan(f"sub-{i:04d}", f"spot-dy-c6i4xl-{slot // 16 + 1}", start, start + timedelta(minutes=8)))
    task = TaskShape(cpus=1, mem_gib=None, minutes=8)
    cost = cost_from_records(spans, C6I_4XL, task, compute_hourly=0.272, head_hourly=0.0416)
    est = estimate_run(1000, task, C6I_4XL, PRICES)
    assert cost.total == pytest.approx(est.total, rel=0.02)
    assert cost.per_subject["sub-0000"] == pytest.approx(8 / 60 * 0.272 / 16)
    assert cost.overhead_dollars == pytest.approx(cost.total - sum(cost.per_subject.values()))


@pytest.mark.parametrize(
    "text, minutes",
    [("30", 30), ("30:30", 30.5), ("01:30:00", 90), ("1-00", 1440), ("1-02:30", 1590), ("2-00:00:30", 2880.5)],
)
def test_slurm_times(text, minutes):
    assert slurm_minutes(text) == pytest.approx(minutes)


@pytest.mark.parametrize("text, gib", [("4G", 4), ("512M", 0.5), ("2048", 2), ("1T", 1024), ("1048576K", 1)])
def test_slurm_memory(text, gib):
    assert slurm_mem_gib(text) == pytest.approx(gib)


def test_gpu_tasks_pack_by_gpus():
    p3 = NodeShape("p3.8xlarge", vcpus=32, memory_gib=244, max_nodes=4, capacity="ondemand", gpus=4)
    est = estimate_run(16, TaskShape(cpus=4, mem_gib=16, minutes=30, gpus=1), p3, PRICES)
    assert est.tasks_per_node == 4 and est.packing.startswith("by GPUs: 1 each of 4")
    with pytest.raises(ConfigError, match="2 GPU"):
        tasks_per_node(NodeShape("c5.xlarge", 4, 8, 1, "spot"), TaskShape(cpus=1, mem_gib=1, minutes=1, gpus=2))

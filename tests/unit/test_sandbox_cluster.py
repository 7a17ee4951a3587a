"""The sandbox's Slurm cluster laid out as ParallelCluster lays out its queues (pure)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from cluster_tools.render.sandbox_cluster import (
    ClusterFiles,
    QueueShape,
    cgroup_conf,
    plan_nodes,
    project_queue_shapes,
    render_resume_program,
    render_slurm_conf,
    render_suspend_program,
    with_ports,
)
from tests.helpers import assert_golden


def test_nodes_are_named_as_parallelcluster_names_them() -> None:
    nodes, notes = plan_nodes([QueueShape("q1", "c6i.4xlarge", 16, 32768, min_count=1, max_count=3)], 1_000_000)
    assert [(n.name, n.dynamic) for n in nodes] == [("q1-st-q1-1", False), ("q1-dy-q1-1", True), ("q1-dy-q1-2", True)]
    assert nodes[0].real_memory_mb == 31129 and notes == []  # RealMemory: 0.95 of the instance's


def test_counts_and_memory_are_capped_to_this_machine_and_said() -> None:
    nodes, notes = plan_nodes([QueueShape("big", "c6i.32xlarge", 128, 262144, 0, 100)], 24_000)
    assert len(nodes) == 8 and all(n.cpus == 128 for n in nodes)
    assert sum(n.real_memory_mb for n in nodes) <= 24_000 * 0.8
    assert any("8 of MaxCount 100" in note for note in notes) and any("memory scaled" in note for note in notes)


def _files(memory_scheduling: bool) -> ClusterFiles:
    nodes, _ = plan_nodes(
        [QueueShape("q1", "c6i.xlarge", 4, 8192, 1, 3), QueueShape("compute", "sandbox.2xlarge", 8, 4096, 0, 4)], 64_000
    )
    return ClusterFiles(
        tuple(with_ports(nodes, list(range(7001, 7001 + len(nodes))))),
        6817,
        "/run/ct/munge.socket",
        "/sb/state",
        "/var/spool/slurmd",
        "/run/ct",
        "/sb/log",
        "/opt/slurm/etc/resume.sh",
        "/opt/slurm/etc/suspend.sh",
        memory_scheduling=memory_scheduling,
    )


def test_slurm_conf_golden() -> None:
    assert_golden("sandbox_cluster_slurm.conf", render_slurm_conf(_files(memory_scheduling=True)))


def test_memory_scheduling_switches_select_type_and_the_ram_limit() -> None:
    assert "SelectTypeParameters=CR_CPU\n" in render_slurm_conf(_files(False))
    assert "SelectTypeParameters=CR_CPU_Memory\n" in render_slurm_conf(_files(True))
    assert "ConstrainRAMSpace" not in cgroup_conf(False) and "ConstrainRAMSpace=yes" in cgroup_conf(True)
    assert "ConstrainCores=yes" in cgroup_conf(False)


@pytest.mark.parametrize("script", ["resume", "suspend"])
def test_power_programs_pass_shellcheck(script: str, tmp_path) -> None:
    text = (
        render_resume_program(
            marker_env="CLUSTERTOOLS_SANDBOX",
            marker="/s b/'x",
            boot_delay=1.5,
            log_dir="/s b/log",
            scontrol="/opt/slurm/bin/scontrol",
            node_script="/p/node-namespace.sh",
            cgroups="/s b/bin/cgroups",
            spools="/t/ct-0 x/spool",
            slurmd="/usr/sbin/slurmd",
            slurm_conf="/s b/slurm.conf",
        )
        if script == "resume"
        else render_suspend_program(
            log_dir="/s b/log",
            scontrol="/opt/slurm/bin/scontrol",
            pids_dir="/sys/fs/cgroup/pids/clustertools-abc",
            cgroup_dirs=["/sys/fs/cgroup/memory/x y/clustertools-abc"],
        )
    )
    path = tmp_path / f"{script}.sh"
    path.write_text(text)
    assert shutil.which("shellcheck")
    result = subprocess.run(["shellcheck", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
    assert "'/s b/log'" in text
    if script == "resume":  # a boot 1.5 s after the request could be taken as before it: 2 s at least
        assert "boot_delay=2\n" in text, text


def test_project_queues_take_the_smallest_type_of_a_compute_resource_and_note_unknown_types() -> None:
    from cluster_tools.model.aws.cluster_spec import QueueSpec

    sizes = {"c6i.2xlarge": (8, 16.0), "c5.xlarge": (4, 8.0)}
    shapes, notes = project_queue_shapes(
        [
            QueueSpec(name="cpu", instance_types=["c6i.2xlarge", "c5.xlarge"], min_count=1, max_count=3),
            QueueSpec(name="odd", instance_types=["x9z.huge"]),
        ],
        sizes.get,
    )
    assert shapes[0] == QueueShape("cpu", "c6i.2xlarge", 4, 8192, 1, 3)
    assert shapes[1].cpus == 8 and shapes[1].max_count == 10
    assert notes == ["queue odd: the size of x9z.huge is not known here: 8 CPUs and 4096 MB per node"]


def test_the_project_shapes_the_sandbox_unless_its_queue_is_given() -> None:
    from cluster_tools.model.aws.cluster_spec import ClusterSpec
    from cluster_tools.services.sandbox.sandbox_nodes import node_options

    spec = ClusterSpec.model_validate(
        {
            "region": "us-east-1",
            "subnet_id": "subnet-0123456789abcdef0",
            "scaledown_idletime": 3,
            "queues": [{"name": "spot", "instance_types": ["c5.xlarge"], "max_count": 2}],
        }
    )
    from_project = node_options(spec, nodes=None, static_nodes=None, cpus_per_node=None, boot_delay=2, idle_time=None)
    shapes, _ = from_project.shapes()
    assert [s.name for s in shapes] == ["spot"] and shapes[0].cpus == 4 and from_project.idle_time == 180
    given = node_options(spec, nodes=None, static_nodes=1, cpus_per_node=None, boot_delay=2, idle_time=30)
    shapes, _ = given.shapes()
    assert shapes == [QueueShape("compute", "sandbox.2xlarge", 8, 4096, 1, 4)] and given.idle_time == 30
    alone = node_options(None, nodes=2, static_nodes=5, cpus_per_node=3, boot_delay=2, idle_time=None)
    assert alone.shapes()[0][0].max_count == 2 and alone.shapes()[0][0].min_count == 2 and alone.idle_time == 600


def test_sandbox_up_plays_the_projects_cluster_and_options_given_win() -> None:
    from cluster_tools.model.project.project_config import parse_project
    from cluster_tools.services.project.project_init import render_project_file
    from cluster_tools.services.sandbox.sandbox_options import sandbox_options

    text = render_project_file("study", "sandbox", "s3://study-out/runs").replace(
        "  template: spot-cpu", "  template: spot-cpu\n  os: ubuntu2204\n  slurm: {min_job_age: 120}"
    )
    project = parse_project(text)
    played = sandbox_options(project)
    assert (played.os_name, played.min_job_age, played.max_array_size) == ("ubuntu2204", 120, 10001)
    assert played.buckets == ("clustertools-sandbox", "study-out") and played.nodes.project_queues
    assert played.memory_scheduling and not sandbox_options(project, memory_scheduling=False).memory_scheduling
    given = sandbox_options(project, os_name="rocky9", min_job_age=5, node_count=2, buckets=("extra",))
    assert (given.os_name, given.min_job_age, given.nodes.nodes) == ("rocky9", 5, 2) and not given.nodes.project_queues
    assert given.buckets == ("clustertools-sandbox", "study-out", "extra")
    alone = sandbox_options(None)
    assert not alone.memory_scheduling
    assert (alone.os_name, alone.min_job_age, alone.max_array_size, alone.nodes.nodes) == ("alinux2023", 300, 1001, 4)

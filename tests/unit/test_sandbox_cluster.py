"""The sandbox's Slurm cluster laid out as ParallelCluster lays out its queues (pure)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from cluster_tools.render.sandbox_cluster import (
    ClusterFiles, QueueShape, cgroup_conf, default_queues, plan_nodes, render_resume_program, render_slurm_conf,
    render_suspend_program, with_ports,
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
    nodes, _ = plan_nodes([QueueShape("q1", "c6i.xlarge", 4, 8192, 1, 3), *default_queues()], 64_000)
    return ClusterFiles(tuple(with_ports(nodes, list(range(7001, 7001 + len(nodes))))), 6817, "/run/ct/munge.socket",
                        "/sb/state", "/var/spool/slurmd", "/run/ct", "/sb/log", "/opt/slurm/etc/resume.sh",
                        "/opt/slurm/etc/suspend.sh", memory_scheduling=memory_scheduling)


def test_slurm_conf_golden() -> None:
    assert_golden("sandbox_cluster_slurm.conf", render_slurm_conf(_files(memory_scheduling=True)))


def test_memory_scheduling_switches_select_type_and_the_ram_limit() -> None:
    assert "SelectTypeParameters=CR_CPU\n" in render_slurm_conf(_files(False))
    assert "SelectTypeParameters=CR_CPU_Memory\n" in render_slurm_conf(_files(True))
    assert "ConstrainRAMSpace" not in cgroup_conf(False) and "ConstrainRAMSpace=yes" in cgroup_conf(True)
    assert "ConstrainCores=yes" in cgroup_conf(False)


@pytest.mark.parametrize("script", ["resume", "suspend"])
def test_power_programs_pass_shellcheck(script: str, tmp_path) -> None:
    text = (render_resume_program(marker_env="CLUSTERTOOLS_SANDBOX", marker="/s b/'x", boot_delay=1.5, log_dir="/s b/log",
                                  scontrol="/opt/slurm/bin/scontrol", node_script="/p/node-namespace.sh",
                                  cgroups="/s b/bin/cgroups", spools="/t/ct-0 x/spool", slurmd="/usr/sbin/slurmd", slurm_conf="/s b/slurm.conf")
            if script == "resume" else
            render_suspend_program(log_dir="/s b/log", scontrol="/opt/slurm/bin/scontrol",
                                   pids_dir="/sys/fs/cgroup/pids/clustertools-abc",
                                   cgroup_dirs=["/sys/fs/cgroup/memory/x y/clustertools-abc"]))
    path = tmp_path / f"{script}.sh"
    path.write_text(text)
    assert shutil.which("shellcheck")
    result = subprocess.run(["shellcheck", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
    assert "'/s b/log'" in text

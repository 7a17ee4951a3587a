"""The sandbox as a ParallelCluster cluster: the OS's login user and its shell (on Ubuntu, Slurm is on PATH
only in a login shell), and dynamic nodes that Slurm's power saving boots when work arrives and powers
down after the idle time."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from tests.conftest import start_sandbox, stop_sandbox
from tests.helpers import err, out
from tests.integration.run_helpers import make_project, submit, wait_for_run, write_subjects


def test_ubuntu_head_node_finds_slurm_only_in_a_login_shell(tmp_path: Path) -> None:
    box = start_sandbox(tmp_path / "state", "--os", "ubuntu2204", "--nodes", "1")
    try:
        assert box.record.user == "ubuntu" and box.status["os"] == "ubuntu2204"
        tool = box.cli("ssh", "--", "sbatch", "--version")  # the tool sends it through a login shell
        assert tool.returncode == 0 and out(tool).startswith("slurm"), err(tool)
        assert out(box.cli("ssh", "--", "id", "-un")).strip() == "ubuntu"
        config = tmp_path / "ssh_config"
        config.write_text(out(box.cli("ssh-config", "--no-nodes")))
        plain = subprocess.run(["ssh", "-F", str(config), "-o", "BatchMode=yes", "sandbox", "sbatch", "--version"],
                               capture_output=True, text=True, timeout=30)
        assert plain.returncode == 127 and "sbatch: command not found" in plain.stderr, plain
        where = subprocess.run(["ssh", "-F", str(config), "-o", "BatchMode=yes", "sandbox",
                                "bash --login -c 'command -v sbatch'; cat /etc/parallelcluster/cfnconfig"],
                               capture_output=True, text=True, timeout=30)
        assert where.stdout.splitlines()[0] == "/opt/slurm/bin/sbatch" and "cfn_cluster_user=ubuntu" in where.stdout
    finally:
        stop_sandbox(box)


def test_dynamic_nodes_boot_for_work_spread_it_and_power_down_when_idle(tmp_path: Path) -> None:
    box = start_sandbox(tmp_path / "state", "--nodes", "4", "--cpus-per-node", "2", "--idle-time", "10",
                        "--boot-delay", "1")
    try:
        assert [n["flags"] for n in _nodes(box)] == [["powered down"]] * 4
        project = make_project(box, tmp_path, "elastic")
        subjects = write_subjects(project, [f"s-{i:02d}" for i in range(40)])
        run = submit(box, project, str(subjects), "--command", "sleep 2; hostname > \"$OUTPUT_DIR/host.txt\"",
                     "--cpus", "1")["run"]
        final = wait_for_run(box, project, run, timeout=300)
        assert final["counts"]["SUCCEEDED"] == 40, final["counts"]
        hosts = {s["node"] for s in final["subjects"]}
        assert hosts == {f"compute-dy-compute-{i}" for i in range(1, 5)}, hosts  # 8 CPUs in all: every node worked
        report = box.cli("report", run, "--text", cwd=project)
        assert report.returncode == 0 and "4 node(s)" in out(report), out(report) + err(report)
        assert _wait(lambda: all({"powering down", "powered down"} & set(n["flags"]) for n in _nodes(box)), 150), \
            _nodes(box)
    finally:
        stop_sandbox(box)


def _nodes(box) -> list[dict]:
    return json.loads(out(box.cli("sandbox", "status", "--json")))["nodes"]


def _wait(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(2)
    return False

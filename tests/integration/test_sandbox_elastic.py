"""The sandbox as a ParallelCluster cluster: the OS's login user and its shell (on Ubuntu, Slurm is on PATH
only in a login shell), and dynamic nodes that Slurm's power saving boots when work arrives and powers
down after the idle time."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from cluster_tools.store.cluster_store import load_cluster
from cluster_tools.store.state_dir import StateDir
from tests.conftest import Sandbox, start_sandbox, stop_sandbox
from tests.helpers import err, out, run_cli, sandbox_admin
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
        plain = subprocess.run(
            ["ssh", "-F", str(config), "-o", "BatchMode=yes", "sandbox", "sbatch", "--version"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert plain.returncode == 127 and "sbatch: command not found" in plain.stderr, plain
        where = subprocess.run(
            [
                "ssh",
                "-F",
                str(config),
                "-o",
                "BatchMode=yes",
                "sandbox",
                "bash --login -c 'command -v sbatch'; cat /etc/parallelcluster/cfnconfig",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert where.stdout.splitlines()[0] == "/opt/slurm/bin/sbatch" and "cfn_cluster_user=ubuntu" in where.stdout
    finally:
        stop_sandbox(box)


def test_dynamic_nodes_boot_for_work_spread_it_and_power_down_when_idle(tmp_path: Path) -> None:
    box = start_sandbox(
        tmp_path / "state", "--nodes", "4", "--cpus-per-node", "2", "--idle-time", "10", "--boot-delay", "2"
    )
    try:
        assert [n["flags"] for n in _nodes(box)] == [["powered down"]] * 4
        project = make_project(box, tmp_path, "elastic")
        subjects = write_subjects(project, [f"s-{i:02d}" for i in range(40)])
        run = submit(
            box, project, str(subjects), "--command", 'sleep 2; hostname > "$OUTPUT_DIR/host.txt"', "--cpus", "1"
        )["run"]
        final = wait_for_run(box, project, run, timeout=300)
        assert final["counts"]["SUCCEEDED"] == 40, final["counts"]
        hosts = {s["node"] for s in final["subjects"]}
        # The work spreads over several of the dynamic nodes (issue 12: "the records name several hosts"). Not
        # necessarily all four: on a loaded machine the first nodes up have run every task before the last boot
        # (a CI run saw 2 of 4), and 40 two-second tasks on 2-CPU nodes need no more.
        assert len(hosts) >= 2 and hosts <= {f"compute-dy-compute-{i}" for i in range(1, 5)}, hosts
        report = box.cli("report", run, "--text", cwd=project)
        assert report.returncode == 0 and f"{len(hosts)} node(s)" in out(report), out(report) + err(report)
        assert _wait(lambda: all({"powering down", "powered down"} & set(n["flags"]) for n in _nodes(box)), 150), (
            _nodes(box)
        )
    finally:
        stop_sandbox(box)


def _describe(box, project: Path) -> dict:
    result = box.cli("describe", "-c", "sandbox", "--json", cwd=project)
    assert result.returncode == 0, err(result)
    return json.loads(out(result))


def _nodes(box) -> list[dict]:
    return json.loads(out(box.cli("sandbox", "status", "--json")))["nodes"]


def _wait(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(2)
    return False


def test_queues_come_from_the_projects_parallelcluster_section(tmp_path: Path) -> None:
    """`sandbox up` in a project plays its queues: names, MinCount (static) and MaxCount (capped), each
    instance type's CPUs (the smallest of a compute resource's types), as ParallelCluster names its nodes;
    a long queue name still fits (each node's slurmd spool is its own /var/spool/slurmd)."""
    import yaml

    state = tmp_path / "state"
    project = tmp_path / "study"
    assert run_cli("init", str(project), state=state).returncode == 0
    config = yaml.safe_load((project / "clustertools.yaml").read_text())
    long = "analysis-long-queue-name"  # 24 characters, ParallelCluster allows 25
    config["parallelcluster"]["queues"] = [
        {"name": long, "instance_types": ["c6i.2xlarge", "c5.xlarge"], "min_count": 1, "max_count": 2},
        {"name": "gpu", "instance_types": ["g4dn.xlarge"], "max_count": 12},
    ]
    (project / "clustertools.yaml").write_text(yaml.safe_dump(config))
    started = run_cli(
        "sandbox", "up", "--json", "--idle-time", "10", "--boot-delay", "2", state=state, cwd=project, timeout=180
    )
    assert started.returncode == 0, err(started)
    box = Sandbox(state=state, record=load_cluster(StateDir(state), "sandbox"), status=json.loads(out(started)))
    try:
        assert "queue gpu: 8 of MaxCount 12 nodes" in err(started)
        names = sorted(n["name"] for n in _nodes(box))
        assert names == sorted(
            [f"{long}-st-{long}-1", f"{long}-dy-{long}-1", *(f"gpu-dy-gpu-{i}" for i in range(1, 9))]
        )
        partitions = out(box.cli("ssh", "--", "sinfo", "-h", "-o", "%P %D")).split()
        assert partitions == [f"{long}*", "2", "gpu", "8"], partitions
        shown = sandbox_admin(state, "scontrol", "show", "node", f"{long}-st-{long}-1").stdout
        assert "CPUTot=4 " in shown and f"AvailableFeatures=static,c6i.2xlarge,{long}" in shown, shown
        # A task no node can hold is refused in one line naming what fits; nothing is sent or recorded.
        subjects = str(write_subjects(project, ["sub-01"]))
        for ask, named in ((("--cpus", "16"), "16 CPUs"), (("--mem", "62G"), "--mem 62G (63488 MB)")):
            refused = box.cli("submit", subjects, *ask, cwd=project)
            lines = err(refused).strip().splitlines()
            assert refused.returncode == 1 and len(lines) == 1, err(refused)
            assert f"no node of partition {long} can hold a task asking {named}" in lines[0], lines
            assert "the most a task can ask there is --cpus 4 --mem " in lines[0], lines
        assert "no runs yet" in out(box.cli("runs", cwd=project)) + err(box.cli("runs", cwd=project))
        run = submit(box, project, subjects, "--command", 'hostname > "$OUTPUT_DIR/h"', "--partition", "gpu")
        final = wait_for_run(box, project, run["run"], timeout=120)
        assert final["counts"]["SUCCEEDED"] == 1 and final["subjects"][0]["node"] == "gpu-dy-gpu-1", final

        # describe sees the gpu node that booted for the run, and what it would bill on AWS; then sees it go.
        info = _describe(box, project)
        assert {n["name"] for n in info["nodes"] if n["up"]} == {f"{long}-st-{long}-1", "gpu-dy-gpu-1"}, info["nodes"]
        lines = "\n".join(info["cost"]["lines"])
        assert "t3.medium" in lines and "c6i.2xlarge" in lines and "g4dn.xlarge" in lines, lines
        assert "2 compute node(s) up now" in info["cost_note"] and "no cloud cost" in info["cost_note"]
        assert _wait(lambda: "g4dn.xlarge" not in "\n".join(_describe(box, project)["cost"]["lines"]), 90)
        text = out(box.cli("describe", "-c", "sandbox", cwd=project))
        assert "compute nodes" in text and "idle (powered down)" in text and "cost per hour now" in text, text
        # cost adds up what each node would have billed on AWS, from its boot to its power-down.
        cost = box.cli("cost", "cluster", "-c", "sandbox", "--json", cwd=project)
        assert cost.returncode == 0, err(cost)
        so_far = json.loads(out(cost))
        billed = {n["node"]: n for n in so_far["nodes"]}
        assert set(billed) == {f"{long}-st-{long}-1", "gpu-dy-gpu-1"} and billed["gpu-dy-gpu-1"]["dollars"] > 0, billed
        assert so_far["running_now"] == [{"instance": f"{long}-st-{long}-1", "type": "c6i.2xlarge"}], so_far
    finally:
        stop_sandbox(box)


def test_an_unknown_or_hostile_os_is_one_error_line_and_starts_nothing(tmp_path: Path) -> None:
    for name in ("windows", "ubuntu2204\n; touch /tmp/pwned", "../alinux2023"):
        result = run_cli("sandbox", "up", "--os", name, state=tmp_path / "state")
        assert result.returncode == 1, err(result)
        lines = err(result).strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: --os: ") and "alinux2023" in lines[0], lines
        status = run_cli("sandbox", "status", "--json", state=tmp_path / "state")
        assert status.returncode == 3 and not json.loads(out(status))["running"]

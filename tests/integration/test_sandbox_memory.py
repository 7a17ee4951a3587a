"""Memory-based scheduling on the sandbox, as ParallelCluster renders it: a task that uses more than its
--mem is killed by its cgroup and recorded OOM (out of memory); a task that fits succeeds. The
sandbox's nodes have cgroups of their own, removed by `sandbox down`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from cluster_tools.services.sandbox.sandbox_files import sandbox_paths
from tests.conftest import start_sandbox, stop_sandbox
from tests.helpers import err, out
from tests.integration.run_helpers import make_project, states, submit, wait_for_run

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the node's own cgroups need root, as the sandbox does")
COMMAND = 'python3 -c "import time; x = bytearray($MB * 1024 * 1024); time.sleep(1)"'


def test_a_task_over_its_memory_is_killed_and_recorded_out_of_memory(tmp_path: Path) -> None:
    state = tmp_path / "state"
    box = start_sandbox(state, "--memory-scheduling", "--nodes", "1", "--static-nodes", "1")
    try:
        conf = out(box.cli("ssh", "--", "scontrol", "show", "config"))
        assert "SelectTypeParameters    = CR_CPU_MEMORY" in conf and "task/cgroup" in conf
        project = make_project(box, tmp_path, "mem")
        (project / "subjects.csv").write_text("subject,MB\nfits,40\ngreedy,400\n")
        run = submit(box, project, str(project / "subjects.csv"), "--command", COMMAND, "--mem", "200M")
        final = states(wait_for_run(box, project, run["run"]))
        assert final["fits"] == ("SUCCEEDED", 0, 1)
        assert final["greedy"][0] == "OOM" and final["greedy"][1] != 0
        shown = box.cli("status", run["run"], "--json", cwd=project)
        greedy = next(s for s in json.loads(out(shown))["subjects"] if s["subject"] == "greedy")
        assert "out of memory" in greedy["error"] and "--mem 200M" in greedy["error"], greedy
        # Rerun differently: only the OOM subject, with more memory (its own array script asks Slurm for it).
        again = box.cli("resubmit", run["run"], "--failed", "--state", "OOM", "--mem", "800M", "--json", cwd=project)
        assert again.returncode == 0 and json.loads(out(again))["subjects"] == ["greedy"], err(again)
        final = states(wait_for_run(box, project, run["run"]))
        assert final == {"fits": ("SUCCEEDED", 0, 1), "greedy": ("SUCCEEDED", 0, 2)}, final
        # provenance.json beside the outputs: asked and used (the peak of the task's cgroup), the node
        got = box.cli("results", "get", run["run"], "-o", str(tmp_path / "got"), cwd=project)
        assert got.returncode == 0, err(got)
        greedy = json.loads((tmp_path / "got" / "greedy" / "provenance.json").read_text())
        assert greedy["attempt"] == 2 and greedy["asked"]["mem"] == "800M", greedy
        assert 400 <= greedy["used"]["peak_memory_mb"] < 800 and greedy["node"]["name"].startswith("compute-"), greedy
        report = out(box.cli("report", run["run"], "--text", cwd=project))
        assert "memory: asked " in report and "peak median" in report, report
    finally:
        stop_sandbox(box)
    saved = json.loads(sandbox_paths(state / "sandbox").state_file.read_text())
    left = [d for d in saved["cgroups"].values() if Path(d).exists()]
    assert left == [], "sandbox down leaves no cgroup behind"

"""Helpers for run tests against the sandbox: a project, a subject file, waiting for a run to end."""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.helpers import err, out


def make_project(sandbox, tmp_path: Path, name: str) -> Path:
    project = tmp_path / name
    result = sandbox.cli("init", str(project), "--name", name)
    assert result.returncode == 0, err(result)
    return project


def write_subjects(project: Path, ids, name: str = "subjects.txt") -> Path:
    path = project / name
    path.write_text("".join(f"{i}\n" for i in ids))
    return path


def submit(sandbox, project: Path, *args: str) -> dict:
    result = sandbox.cli("submit", *args, "--json", cwd=project)
    assert result.returncode == 0, err(result)
    return json.loads(out(result))


def status(sandbox, project: Path, run_id: str) -> dict:
    result = sandbox.cli("status", run_id, "--json", cwd=project)
    assert result.returncode == 0, err(result)
    return json.loads(out(result))


def wait_for_run(sandbox, project: Path, run_id: str, timeout: float = 240) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        current = status(sandbox, project, run_id)
        if current["counts"]["PENDING"] == 0 and current["counts"]["RUNNING"] == 0:
            return current
        time.sleep(1)
    raise AssertionError(f"run {run_id} did not finish in {timeout} s: {current['counts']}")


def wait_until_squeue_forgets(sandbox, run_id: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        queue = sandbox.cli("ssh", "-c", "sandbox", "--", "squeue", "-h", "-t", "all", f"--name=ct-{run_id}")
        if queue.returncode == 0 and not out(queue).strip():
            return
        time.sleep(1)
    raise AssertionError("squeue still lists the run")


def states(current: dict) -> dict[str, tuple[str, int | None, int]]:
    return {s["subject"]: (s["state"], s["exit_code"], s["attempt"]) for s in current["subjects"]}

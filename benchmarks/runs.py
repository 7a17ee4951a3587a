"""Runs on the sandbox for the benchmark: a project, a real submit, synthetic task records."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from benchmarks.harness import Sandbox, say

if TYPE_CHECKING:
    from cluster_tools.model.runs.run_record import RunRecord

# Runs ONCE on the head node (one SSH exec): writes one final record per subject, exactly as the
# wrapper's record_json() prints it (every field), to records/new/<subject>.<attempt>.SUCCEEDED.json.
_WRITE_RECORDS = r"""
import json, os, sys
spec = json.loads(sys.stdin.readline())
directory = os.path.join(spec["remote_dir"], "records", "new")
os.makedirs(directory, exist_ok=True)
line = ('{"subject":"%s","attempt":%d,"state":"%s","exit_code":%s,"error":"%s","start":"%s","end":"%s","node":"%s",'
        '"job_id":"%s","kept":"","restarts":0,"image":"","peak_mem_mb":%d,"cpu_s":%.1f,"env":"envs/bench-0123456789ab"}\n')
for subject, job_id in spec["records"]:
    text = line % (subject, 1, "SUCCEEDED", "0", "", "2024-05-01T10:00:00Z", "2024-05-01T10:08:00Z",
                   "compute-dy-compute-1", job_id, 812, 431.7)
    tmp = os.path.join(directory, ".%s.1.SUCCEEDED.tmp" % subject)
    with open(tmp, "w") as handle:
        handle.write(text)
    os.rename(tmp, os.path.join(directory, "%s.1.SUCCEEDED.json" % subject))
print(len(spec["records"]))
"""


@dataclass
class SubmittedRun:
    project_dir: Path
    run: RunRecord  # as saved after the submit
    arrays: int
    tasks: int
    seconds: float  # prepare_run + submit_attempt, connection included


def make_project(box: Sandbox, name: str) -> Path:
    directory = box.work / name
    result = box.cli("init", str(directory), "--name", name)
    if result.returncode != 0:
        raise RuntimeError(f"clustertools init failed: {result.stderr.strip()}")
    return directory


def subject_ids(count: int, prefix: str = "sub") -> tuple[str, ...]:
    return tuple(f"{prefix}-{i:06d}" for i in range(count))


def partition_down(box: Sandbox) -> None:
    """Nothing may run: 10,000 tiny tasks on 2 cores would take hours. Pending tasks stay PENDING.
    An admin command: run on this machine as root, as the sandbox's login user (ec2-user) may not."""
    import subprocess

    from cluster_tools.services.sandbox.sandbox_files import sandbox_paths

    env = {"SLURM_CONF": str(sandbox_paths(box.state / "sandbox").slurm_conf), "PATH": "/usr/bin:/bin"}
    subprocess.run(["scontrol", "update", "PartitionName=compute", "State=DOWN"], env=env, check=True, timeout=60)
    with box.connect() as conn:
        state = conn.run(["sinfo", "-h", "-p", "compute", "-o", "%a"], timeout=60).check().text.strip()
    if state != "down":
        raise RuntimeError(f"the partition is {state!r}, not down")


def submit_run(box: Sandbox, name: str, count: int) -> SubmittedRun:
    """``count`` subjects through the real service (prepare_run + submit_attempt), timed."""
    from cluster_tools.model.project.project_config import load_project
    from cluster_tools.model.runs.subjects import SubjectList
    from cluster_tools.services.remote.cluster_shell import connect
    from cluster_tools.services.runs.run_prepare import job_spec, prepare_run
    from cluster_tools.services.runs.submit import submit_attempt
    from cluster_tools.store.state_dir import StateDir

    project_dir = make_project(box, name)
    state = StateDir(box.state)
    subjects = SubjectList(ids=subject_ids(count))
    start = time.perf_counter()
    project = load_project(project_dir / "clustertools.yaml")
    run, _ = prepare_run(state, project, box.record, subjects, job_spec(project, {"command": "true"}), None)
    result = submit_attempt(state, run, box.record, progress=lambda _: None, connect=connect)
    seconds = time.perf_counter() - start
    box.remote_dirs.append(result.run.remote_dir)
    tasks = sum(a[2] for a in result.arrays)
    if tasks != count or not all(a[1] for a in result.arrays):
        raise RuntimeError(f"submit of {count} subjects gave {tasks} tasks in {len(result.arrays)} arrays")
    say(f"  submitted {count} subjects as {len(result.arrays)} arrays in {seconds:.2f} s (run {result.run.run_id})")
    return SubmittedRun(project_dir, result.run, len(result.arrays), tasks, seconds)


def write_final_records(box: Sandbox, submitted: SubmittedRun, every: int = 2) -> int:
    """A SUCCEEDED record for every ``every``-th subject, written on the head node by ONE command."""
    run = submitted.run
    attempt = run.attempts[-1]
    records = []
    for chunk in attempt.chunks:
        for task in range(chunk.count):
            index = chunk.offset + task
            if index % every == 0:
                records.append((attempt.subjects[index], f"{chunk.job_id}_{task}"))
    spec = json.dumps({"remote_dir": run.remote_dir, "records": records}) + "\n"
    start = time.perf_counter()
    with box.connect() as conn:
        result = conn.run(["python3", "-c", _WRITE_RECORDS], stdin=spec.encode(), timeout=600).check()
    written = int(result.text.strip())
    say(f"  wrote {written} task records on the head node in {time.perf_counter() - start:.2f} s (one command)")
    return written


def running_record_lines(submitted: SubmittedRun, *, per_batch: int, batches: int) -> list[bytes]:
    """``batches`` batches of RUNNING records, each for ``per_batch`` subjects without a final record (the odd
    ones: write_final_records wrote the even ones), as the wrapper's record_json() prints them."""
    attempt = submitted.run.attempts[-1]
    pending = [
        (attempt.subjects[c.offset + t], f"{c.job_id}_{t}")
        for c in attempt.chunks
        for t in range(c.count)
        if (c.offset + t) % 2 == 1
    ]
    line = (
        '{"subject":"%s","attempt":1,"state":"RUNNING","exit_code":null,"error":"","start":"2024-05-01T10:00:00Z",'
        '"end":"","node":"compute-dy-compute-1","job_id":"%s","kept":"","restarts":0,"image":"","peak_mem_mb":null,'
        '"cpu_s":null,"env":"envs/bench-0123456789ab"}\n'
    )
    return [
        "".join(line % pair for pair in pending[i * per_batch : (i + 1) * per_batch]).encode() for i in range(batches)
    ]

"""`sandbox down` cancels what is still queued, says so, and leaves a CANCELLED record behind.

A task cancelled while pending never runs its wrapper, so nothing would record it and status would
call it MISSING. Before the scancel, each pending task of a known run gets the same CANCELLED record
that `clustertools cancel` writes (a running task's wrapper records itself when Slurm stops it).
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from cluster_tools.errors import ClusterToolsError, TransportError
from cluster_tools.model.progress import Progress
from cluster_tools.model.runs.run_status import task_subjects
from cluster_tools.render.sandbox_layout import SandboxPaths
from cluster_tools.services.runs.run_cancel import cancel_record
from cluster_tools.services.sandbox.sandbox_files import SANDBOX_CLUSTER, node_path
from cluster_tools.slurm.queue import SQUEUE_FORMAT, QueuedTask, parse_squeue
from cluster_tools.store.run_store import load_run
from cluster_tools.store.state_dir import StateDir
from cluster_tools.transport.local_commands import run_local


def cancel_all_jobs(state: StateDir, paths: SandboxPaths, user: str, progress: Progress) -> None:
    """Record, announce and cancel every job in the sandbox's queue; wait (10 s at most) until it is empty."""
    env = {"SLURM_CONF": str(paths.slurm_conf), "PATH": "/usr/bin:/bin:/usr/sbin:/sbin"}
    try:
        listing = run_local(["squeue", "-h", "-r", "-o", SQUEUE_FORMAT], env=env, timeout=10)
        lines = listing.stdout.splitlines() if listing.ok else []
        if not lines:
            return
        progress(describe_cancellation(lines, parse_squeue("\n".join(lines))))
        record_pending_as_cancelled(
            state, parse_squeue("\n".join(lines)), progress, host_path=lambda remote: node_path(paths, remote)
        )
        run_local(["scancel", "-u", user], env=env, timeout=10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            out = run_local(["squeue", "-h", "-o", "%i"], env=env, timeout=10)
            if out.ok and not out.stdout.strip():
                return
            time.sleep(0.2)
    except TransportError:
        pass  # stopping the daemons and the sweep of leftover processes still end every process


def describe_cancellation(lines: list[str], tasks: list[QueuedTask]) -> str:
    """One line for a person: how many tasks of which runs (and other jobs) are cancelled."""
    per_run = Counter(task.run_id for task in tasks)
    runs = ", ".join(f"{count} of run {run_id}" for run_id, count in sorted(per_run.items()))
    others = len(lines) - len(tasks)
    parts = [p for p in (runs, f"{others} other job(s)" if others else "") if p]
    return (
        f"cancelling {len(lines)} queued or running task(s): {'; '.join(parts)} "
        "(`clustertools status` shows them CANCELLED)"
    )


def record_pending_as_cancelled(
    state: StateDir, tasks: list[QueuedTask], progress: Progress, host_path: Callable[[str], Path] = Path
) -> int:
    """Write a CANCELLED record for each pending task of a run known here; returns how many. ``host_path``
    says where a run's directory on the head node is on this machine; records belong to the dir's owner."""
    written = 0
    for run_id in sorted({t.run_id for t in tasks if t.state == "PENDING"}):
        try:
            run = load_run(state, run_id)
        except ClusterToolsError:
            continue  # a run of another state dir: its tasks are cancelled all the same
        if run.cluster != SANDBOX_CLUSTER:
            continue
        subject_of = task_subjects(run)
        run_dir = host_path(run.remote_dir)
        if not run_dir.is_dir():
            continue  # not this sandbox's run (or its directory is gone)
        directory = run_dir / "records" / "new"
        owner = run_dir.stat()
        for task in tasks:
            subject = subject_of(task) if task.state == "PENDING" else None
            if subject is None:
                continue
            try:
                directory.mkdir(parents=True, exist_ok=True)
                record = directory / f"{subject}.{task.attempt}.CANCELLED.json"
                record.write_bytes(cancel_record(subject, task.attempt))
                record.chmod(0o644)
                os.chown(record, owner.st_uid, owner.st_gid)
            except OSError as exc:
                progress(f"could not record {subject} of run {run_id} as CANCELLED: {exc.strerror}")
                break
            written += 1
    return written

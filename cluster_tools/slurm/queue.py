"""The queue of a run: ``squeue -h -r -t all --name=JOB -o '%F|%K|%T|%r|%k'`` parsed into typed records.

``-t all``: a task Slurm ended stays listed for MinJobAge (300 s on ParallelCluster) in its final state, which
names how a task ended that could write no record of its own (NODE_FAIL: its node was lost). status.sh drops
the COMPLETED ones on the head node: they have their records."""

from __future__ import annotations

import re
from typing import NamedTuple

SQUEUE_FORMAT = "%F|%K|%T|%r|%k"  # array job, task, state, Slurm's reason (pending), our comment
_COMMENT = re.compile(r"^ct:(?P<run>[^:]+):a(?P<attempt>\d+):c(?P<chunk>\d+)$")

# Slurm's job states as our subject states; anything not listed counts as still queued.
_RUNNING = {"RUNNING", "COMPLETING", "CONFIGURING", "SIGNALING", "STAGE_OUT", "RESIZING"}
ENDED = {"COMPLETED": "SUCCEEDED", "FAILED": "FAILED", "TIMEOUT": "TIMEOUT", "DEADLINE": "TIMEOUT",
         "OUT_OF_MEMORY": "OOM", "NODE_FAIL": "NODE_FAIL", "BOOT_FAIL": "NODE_FAIL", "CANCELLED": "CANCELLED",
         "PREEMPTED": "CANCELLED", "REVOKED": "CANCELLED"}
# Pending reasons (man squeue, JOB REASON CODES) that no amount of waiting ends: the request or the
# partition must change. What each means, for `status --watch`.
NEVER_STARTS = {
    "PartitionConfig": "the request exceeds what the partition allows (CPUs, memory, GPUs or nodes)",
    "PartitionNodeLimit": "the request needs more nodes than the partition allows",
    "PartitionTimeLimit": "the time limit is above the partition's MaxTime",
    "BadConstraints": "no node has what the request asks for",
    "InvalidAccount": "the account is not valid", "InvalidQOS": "the QOS is not valid",
    "DependencyNeverSatisfied": "it depends on a job that failed",
    "JobHeldAdmin": "held by an administrator (scontrol release)", "JobHeldUser": "held (scontrol release)",
    "launch failed requeued held": "its launch failed and Slurm held it (scontrol release, or cancel)",
}


class QueuedTask(NamedTuple):  # a NamedTuple: 10,000 of them per refresh, built at C speed
    array_job_id: str
    task_id: int
    slurm_state: str
    run_id: str
    attempt: int
    chunk: int
    reason: str = ""  # why a pending task waits (Resources, Priority, JobArrayTaskLimit...); "" when running

    @property
    def state(self) -> str:
        """PENDING or RUNNING while queued; once Slurm ended it, the subject state that says how (ENDED)."""
        if self.slurm_state in _RUNNING:
            return "RUNNING"
        return ENDED.get(self.slurm_state, "PENDING")


def comment_prefix(run_id: str) -> str:
    return f"ct:{run_id}:"


def job_name(run_id: str) -> str:
    return f"ct-{run_id}"


def parse_squeue(text: str) -> list[QueuedTask]:
    """Lines of ``%F|%K|%T|%r|%k``; lines of other jobs or without our comment are skipped. The comment is
    ours and the last field, so a reason is whatever lies between the state and it."""
    tasks = []
    comments: dict[str, tuple[str, int, int] | None] = {}  # one array's tasks share one comment
    for line in text.splitlines():
        parts = line.split("|", 3)
        if len(parts) != 4 or not parts[1].isdigit():
            continue  # e.g. a pending range `[5-9]` never appears with -r; be strict anyway
        reason, sep, comment = parts[3].rpartition("|")
        if not sep:
            continue
        if comment not in comments:
            match = _COMMENT.match(comment)
            comments[comment] = (match["run"], int(match["attempt"]), int(match["chunk"])) if match else None
        parsed = comments[comment]
        if parsed:
            waiting = "" if reason in ("None", "") or parts[2] != "PENDING" else reason
            tasks.append(QueuedTask(parts[0], int(parts[1]), parts[2], *parsed, waiting))
    return tasks

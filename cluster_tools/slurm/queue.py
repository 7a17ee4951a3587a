"""The queue of a run: ``squeue -h -t all --name=JOB -o '%F|%K|%T|%r|%k'`` parsed into typed records.

``-t all``: a task Slurm ended stays listed for MinJobAge (300 s on ParallelCluster) in its final state, which
names how a task ended that could write no record of its own (NODE_FAIL: its node was lost). status.sh drops
the COMPLETED ones on the head node: they have their records."""

from __future__ import annotations

import re
from itertools import repeat

import msgspec

SQUEUE_FORMAT = "%F|%K|%T|%r|%k"  # array job, task, state, Slurm's reason (pending), our comment
_COMMENT = re.compile(r"^ct:(?P<run>[^:]+):a(?P<attempt>\d+):c(?P<chunk>\d+)$")
# A line of squeue -o SQUEUE_FORMAT with our comment: the reason is whatever lies between the state and it. The
# task is one id, or (without -r) the pending tasks of an array in one line: ids and ranges, a step, a throttle
# (`4-999%16`, `1,3,5-9`, `0-98:2`), as Slurm prints them (squeue's %K, src/common/bitstring.c's bit_fmt).
_LINE = re.compile(r"^(\d+)\|([0-9][0-9,:%-]*)\|([A-Z_]+)\|([^\n]*)\|ct:([^:\n|]+):a(\d+):c(\d+)$", re.M | re.A)
_RANGE = re.compile(r"(\d+)(?:-(\d+)(?::(\d+))?)?\Z", re.A)
_ONE_RUN = re.compile(r"\d+\|\d+(?:-\d+)?(?:%\d+)?\|", re.A)  # %K as one id or one range: ascending, no gaps
MAX_TASK_ID = 4_000_000  # above any MaxArraySize Slurm allows: a range beyond it is not squeue's

# Slurm's job states as our subject states; anything not listed counts as still queued.
_RUNNING = {"RUNNING", "COMPLETING", "CONFIGURING", "SIGNALING", "STAGE_OUT", "RESIZING"}
ENDED = {
    "COMPLETED": "SUCCEEDED",
    "FAILED": "FAILED",
    "TIMEOUT": "TIMEOUT",
    "DEADLINE": "TIMEOUT",
    "OUT_OF_MEMORY": "OOM",
    "NODE_FAIL": "NODE_FAIL",
    "BOOT_FAIL": "NODE_FAIL",
    "CANCELLED": "CANCELLED",
    "PREEMPTED": "CANCELLED",
    "REVOKED": "CANCELLED",
}
# Pending reasons (man squeue, JOB REASON CODES) that no amount of waiting ends: the request or the
# partition must change. What each means, for `status --watch`.
NEVER_STARTS = {
    "PartitionConfig": "the request exceeds what the partition allows (CPUs, memory, GPUs or nodes)",
    "PartitionNodeLimit": "the request needs more nodes than the partition allows",
    "PartitionTimeLimit": "the time limit is above the partition's MaxTime",
    "BadConstraints": "no node has what the request asks for",
    "InvalidAccount": "the account is not valid",
    "InvalidQOS": "the QOS is not valid",
    "DependencyNeverSatisfied": "it depends on a job that failed",
    "JobHeldAdmin": "held by an administrator (scontrol release)",
    "JobHeldUser": "held (scontrol release)",
    "launch failed requeued held": "its launch failed and Slurm held it (scontrol release, or cancel)",
}


class QueuedTask(msgspec.Struct, frozen=True, gc=False):
    """One task of an array in squeue. A msgspec Struct: 10,000 of them per refresh, built at C speed; gc=False: it
    holds only strings and numbers, so the cycle collector never walks it (issue 16)."""

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
    # One regular expression over the whole text (C speed); a line of another job, or without our comment, does
    # not match. Without -r the pending tasks of an array are one line: a 10,000-task array is a few lines.
    tasks = []
    for job, ids, state, reason, run, attempt, chunk in _LINE.findall(text):
        waiting = "" if state != "PENDING" or reason in ("None", "") else reason
        if ids.isdigit():
            tasks.append(QueuedTask(job, int(ids), state, run, int(attempt), int(chunk), waiting))
        else:  # an array's pending tasks: thousands, built at C speed (no Python call per task)
            same = (
                repeat(job),
                task_ids(ids),
                repeat(state),
                repeat(run),
                repeat(int(attempt)),
                repeat(int(chunk)),
                repeat(waiting),
            )
            tasks.extend(map(QueuedTask, *same))
    return tasks


def one_run_of_ids(line: str) -> bool:
    """Whether a squeue line's tasks are one run of ids, ascending and without a gap (`4-999%16`, or one id): then
    they are the subjects of one slice of their array (model/runs/status_merger.py)."""
    return _ONE_RUN.match(line) is not None


def task_ids(text: str) -> list[int]:
    """The ids of squeue's %K for an array's pending tasks: `4-999%16`, `1,3,5-9`, `0-98:2`; [] for anything else."""
    ids: list[int] = []
    for part in text.partition("%")[0].split(","):
        match = _RANGE.match(part)
        if not match:
            return []
        first, last, step = int(match[1]), int(match[2] or match[1]), int(match[3] or 1)
        if last > MAX_TASK_ID or last < first or step < 1:
            return []
        ids.extend(range(first, last + 1, step))
    return ids

"""The live queue of a run: ``squeue -h -r --name=JOB -o '%F|%K|%T|%k'`` parsed into typed records."""

from __future__ import annotations

import re
from typing import NamedTuple

SQUEUE_FORMAT = "%F|%K|%T|%k"
_COMMENT = re.compile(r"^ct:(?P<run>[^:]+):a(?P<attempt>\d+):c(?P<chunk>\d+)$")

# Slurm's job states as our subject states; anything not listed counts as still queued.
_RUNNING = {"RUNNING", "COMPLETING", "CONFIGURING", "SIGNALING", "STAGE_OUT", "RESIZING"}


class QueuedTask(NamedTuple):  # a NamedTuple: 10,000 of them per refresh, built at C speed
    array_job_id: str
    task_id: int
    slurm_state: str
    run_id: str
    attempt: int
    chunk: int

    @property
    def state(self) -> str:
        return "RUNNING" if self.slurm_state in _RUNNING else "PENDING"


def comment_prefix(run_id: str) -> str:
    return f"ct:{run_id}:"


def job_name(run_id: str) -> str:
    return f"ct-{run_id}"


def parse_squeue(text: str) -> list[QueuedTask]:
    """Lines of ``%F|%K|%T|%k``; lines of other jobs or without our comment are skipped."""
    tasks = []
    comments: dict[str, tuple[str, int, int] | None] = {}  # one array's tasks share one comment
    for line in text.splitlines():
        parts = line.split("|", 3)
        if len(parts) != 4 or not parts[1].isdigit():
            continue  # e.g. a pending range `[5-9]` never appears with -r; be strict anyway
        if parts[3] not in comments:
            match = _COMMENT.match(parts[3])
            comments[parts[3]] = (match["run"], int(match["attempt"]), int(match["chunk"])) if match else None
        parsed = comments[parts[3]]
        if parsed:
            tasks.append(QueuedTask(parts[0], int(parts[1]), parts[2], *parsed))
    return tasks

"""A small literal run for report tests: two attempts, three nodes, every state a report draws."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from cluster_tools.model.cost.cost_model import RunCost
from cluster_tools.model.runs.run_record import Attempt, Chunk, RunRecord
from cluster_tools.model.runs.run_status import RunStatus
from tests.unit.run_fixtures import make_run, parse_status

SUBJECTS = ("sub-01", "sub-02", "sub-03", "sub-04", "sub-05", "sub-06")
AS_OF = datetime(2026, 11, 22, 12, 8, 0, tzinfo=UTC)
COSTS = {"sub-01": 0.0123, "sub-02": 0.05, "sub-03": 0.07, "sub-04": 0.031}  # USD; sub-05/06 have none yet
# The run's own cost as cost_model.cost_from_records gives it: those shares plus boot, idle and the head node.
RUN_COST = RunCost(
    node_hours=0.5,
    head_hours=0.15,
    compute_dollars=0.2,
    head_dollars=0.0062,
    per_subject=COSTS,
    overhead_dollars=0.2 + 0.0062 - sum(COSTS.values()),
)


def rec(
    subject: str, state: str, code, start: str, end: str = "", node: str = "node-1", attempt: int = 1, error: str = ""
) -> str:
    """One line of records/all.jsonl as the wrapper writes it (times are HH:MM:SS on 2026-11-22)."""

    def stamp(t: str) -> str:
        return f"2026-11-22T{t}Z" if t else ""

    return json.dumps(
        {
            "subject": subject,
            "attempt": attempt,
            "state": state,
            "exit_code": code,
            "error": error,
            "start": stamp(start),
            "end": stamp(end),
            "node": node,
            "job_id": f"12_{subject[-1]}",
        }
    )


RECORDS = [
    rec("sub-01", "RUNNING", None, "12:00:00"),
    rec("sub-01", "SUCCEEDED", 0, "12:00:00", "12:02:00"),
    rec("sub-02", "SUCCEEDED", 0, "12:00:05", "12:05:05", node="node-2"),
    rec("sub-03", "RUNNING", None, "12:00:10"),
    rec("sub-03", "FAILED", 3, "12:00:10", "12:01:10", error="boom"),
    rec("sub-03", "FAILED", 3, "12:00:10", "12:01:10", error="boom"),  # folded twice: a duplicate line
    rec("sub-04", "FAILED", 137, "12:02:05", "12:03:35", error="out of memory"),
    rec("sub-05", "RUNNING", None, "12:06:00", node="node-10"),
    rec("sub-03", "SUCCEEDED", 0, "12:05:30", "12:07:30", node="node-2", attempt=2),
]
# squeue as status.sh prints it: sub-05 (task 4) runs, sub-06 (task 5) waits.
QUEUE = "12|4|RUNNING|None|ct:demo-1:a1:c0\n12|5|PENDING|Priority|ct:demo-1:a1:c0\n@@clustertools-squeue-exit 0\n"


def small_run() -> RunRecord:
    run = make_run(SUBJECTS, chunks=[Chunk(index=0, offset=0, count=6, job_id="12")])
    rerun = Attempt(number=2, subjects=["sub-03"], chunks=[Chunk(index=0, offset=0, count=1, job_id="14")])
    return run.model_copy(update={"attempts": [*run.attempts, rerun]})


def status_text() -> str:
    return QUEUE + "\n".join(RECORDS) + "\n"


def small_status() -> RunStatus:
    return parse_status(small_run(), status_text())

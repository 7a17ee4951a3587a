"""A run's per-subject status: durable task records merged with the live queue. Pure.

Records survive squeue forgetting a job (MinJobAge) and need no accounting (sacct); the queue tells
what has not started yet. Precedence per subject, for its latest attempt: a final record, else the
queue, else a RUNNING record with no queue entry (the task died without writing its end: FAILED),
else nothing at all (MISSING: never submitted, or cancelled while pending).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass

from cluster_tools.runs import FINAL_STATES, RunRecord
from cluster_tools.slurm.queue import QueuedTask, parse_squeue

SQUEUE_EXIT_MARK = "@@clustertools-squeue-exit"
STATE_ORDER = ("PENDING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED", "MISSING")


@dataclass(frozen=True)
class TaskRecord:
    subject: str
    attempt: int
    state: str
    exit_code: int | None = None
    error: str = ""
    start: str = ""
    end: str = ""
    node: str = ""
    job_id: str = ""


@dataclass(frozen=True)
class SubjectStatus:
    subject: str
    state: str
    exit_code: int | None
    attempt: int
    node: str = ""
    start: str = ""
    end: str = ""
    error: str = ""
    job_id: str = ""


@dataclass(frozen=True)
class RunStatus:
    run_id: str
    subjects: tuple[SubjectStatus, ...]
    queue_readable: bool = True
    source: str = "head node"  # or "s3": the records tasks copied there, when the head node is gone

    @property
    def counts(self) -> dict[str, int]:
        tally = Counter(s.state for s in self.subjects)
        return {state: tally.get(state, 0) for state in STATE_ORDER}

    @property
    def done(self) -> bool:
        return not any(s.state in ("PENDING", "RUNNING") for s in self.subjects)

    def to_json(self) -> dict[str, object]:
        return {
            "run": self.run_id,
            "counts": self.counts,
            "total": len(self.subjects),
            "queue_readable": self.queue_readable,
            "source": self.source,
            "subjects": [asdict(s) for s in self.subjects],
        }


def parse_records(text: str) -> list[TaskRecord]:
    """JSON lines written by the wrapper; a damaged line (a crash mid-write) is skipped."""
    records = []
    fields = set(TaskRecord.__dataclass_fields__)
    for line in text.splitlines():
        if not line.startswith("{"):
            continue
        try:
            data = json.loads(line)
            records.append(TaskRecord(**{k: v for k, v in data.items() if k in fields}))
        except (ValueError, TypeError):
            continue
    return records


def split_status_output(text: str) -> tuple[str, bool, str]:
    """status.sh's output -> (squeue text, whether squeue answered, records text)."""
    queue, mark, rest = text.partition(SQUEUE_EXIT_MARK)
    if not mark:
        return "", False, text
    code, _, records = rest.partition("\n")
    return queue, code.strip() == "0", records


def merge_status(run: RunRecord, records: list[TaskRecord], queued: list[QueuedTask], *,
                 queue_readable: bool = True, source: str = "head node") -> RunStatus:
    latest = run.current_attempt_of()
    final: dict[tuple[str, int], TaskRecord] = {}
    started: dict[tuple[str, int], TaskRecord] = {}
    for record in records:  # later lines win: a requeued task's last word is its latest
        key = (record.subject, record.attempt)
        (final if record.state in FINAL_STATES else started)[key] = record
    in_queue: dict[tuple[str, int], QueuedTask] = {}
    attempts = {a.number: a for a in run.attempts}
    for task in queued:
        attempt = attempts.get(task.attempt)
        chunk = next((c for c in attempt.chunks if c.index == task.chunk), None) if attempt else None
        index = chunk.offset + task.task_id if chunk else -1
        if attempt and 0 <= index < len(attempt.subjects):
            in_queue[(attempt.subjects[index], task.attempt)] = task
    submitted = _submitted_lookup(run)
    statuses = []
    for subject in run.subjects:
        number = latest[subject]
        key = (subject, number)
        if key in final:
            statuses.append(_from_record(final[key]))
        elif key in in_queue:
            begun = started.get(key)
            statuses.append(SubjectStatus(subject, in_queue[key].state, None, number,
                                          node=begun.node if begun else "", start=begun.start if begun else "",
                                          job_id=f"{in_queue[key].array_job_id}_{in_queue[key].task_id}"))
        elif key in started and queue_readable:
            statuses.append(SubjectStatus(**{**asdict(_from_record(started[key])), "state": "FAILED",
                                             "error": "the task ended without a final record (killed, out of memory, or its node was lost)"}))
        elif key in started:
            statuses.append(_from_record(started[key]))
        elif not submitted(number, subject):
            statuses.append(SubjectStatus(subject, "MISSING", None, number,
                                          error="not submitted: run the same `clustertools submit` again to finish"))
        else:  # submitted, yet neither queued nor recorded: cancelled while pending (or the queue is unreadable)
            statuses.append(SubjectStatus(subject, "MISSING" if queue_readable else "PENDING", None, number))
    return RunStatus(run.run_id, tuple(statuses), queue_readable, source)


def parse_status(run: RunRecord, text: str) -> RunStatus:
    queue_text, queue_ok, records_text = split_status_output(text)
    return merge_status(run, parse_records(records_text), parse_squeue(queue_text), queue_readable=queue_ok)


def _from_record(record: TaskRecord) -> SubjectStatus:
    return SubjectStatus(record.subject, record.state, record.exit_code, record.attempt, record.node,
                         record.start, record.end, record.error, record.job_id)


def _submitted_lookup(run: RunRecord):
    """(attempt, subject) -> whether the array holding that task was submitted; O(1) per question."""
    positions = {a.number: {s: i for i, s in enumerate(a.subjects)} for a in run.attempts}
    chunks = {a.number: [c for c in a.chunks if c.job_id] for a in run.attempts}

    def submitted(number: int, subject: str) -> bool:
        index = positions[number][subject]
        return any(c.offset <= index < c.offset + c.count for c in chunks[number])

    return submitted

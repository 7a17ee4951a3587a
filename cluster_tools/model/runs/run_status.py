"""A run's per-subject status: durable task records merged with the live queue. Pure.

Records survive squeue forgetting a job (MinJobAge) and need no accounting (sacct); the queue tells
what has not started yet. Precedence per subject, for its latest attempt: a final record, else the
queue, else a RUNNING record with no queue entry (the task died without writing its end: FAILED),
else nothing at all (MISSING: never submitted, or cancelled while pending). Reading status.sh's reply and
the records it carries (``split_status_reply``, ``parse_records``) is status_reply.py.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

import msgspec
from msgspec import Meta

from cluster_tools.model.runs.run_record import FINAL_STATES, RunRecord
from cluster_tools.slurm.queue import NEVER_STARTS, QueuedTask

STATE_ORDER = ("PENDING", "RUNNING", "SUCCEEDED", "FAILED", "TIMEOUT", "OOM", "NODE_FAIL", "CANCELLED", "MISSING")


_INT = Annotated[int, Meta(ge=-(2**63), le=2**63 - 1)]  # beyond: the field-by-field path, which reads as orjson does
_COUNT = Annotated[int, Meta(ge=0, le=2**63 - 1)]
_MEASURED = _COUNT | Annotated[float, Meta(ge=0)] | None


class TaskRecord(msgspec.Struct, frozen=True, gc=False):
    """One line the wrapper writes. A msgspec Struct: a first read of a 10,000-task run decodes thousands of them, each
    type-checked, at C speed (issue 16); gc=False: it holds no other object, so the cycle collector never walks it."""

    subject: str
    attempt: _INT
    state: str
    exit_code: _INT | None = None
    error: str = ""
    start: str = ""
    end: str = ""
    node: str = ""
    job_id: str = ""
    kept: str = ""  # where the outputs wait on the head node after a failed upload (`results push`)
    restarts: _COUNT = 0  # SLURM_RESTART_COUNT: how often Slurm requeued the task (a node lost, a spot reclaim)
    image: str = ""  # the container image it ran, with its digest (REF@sha256:...)
    peak_mem_mb: _MEASURED = None  # used: the task's cgroup's peak memory (None: not measured)
    cpu_s: _MEASURED = None  # used: CPU seconds of the command and its children
    env: str = ""  # the conda environment it ran in (envs/PROJECT-SHA12: which environment file), "" for none


class SubjectStatus(msgspec.Struct, gc=False):
    """One subject's state in its latest attempt. A msgspec Struct: a status builds one per subject (10,000 at a first
    read, issue 16), four times faster than a dataclass; gc=False: it holds only strings and numbers."""

    subject: str
    state: str
    exit_code: int | None
    attempt: int
    node: str = ""
    start: str = ""
    end: str = ""
    error: str = ""
    job_id: str = ""
    kept: str = ""
    restarts: int = 0
    reason: str = ""  # Slurm's, while it is pending: Resources, Priority, JobArrayTaskLimit, PartitionConfig...
    image: str = ""  # the container image the attempt ran, with its digest
    peak_mem_mb: float | None = None
    cpu_s: float | None = None
    env: str = ""  # the conda environment the attempt ran in

    def to_json(self) -> dict[str, object]:
        return {
            "subject": self.subject,
            "state": self.state,
            "exit_code": self.exit_code,
            "attempt": self.attempt,
            "node": self.node,
            "start": self.start,
            "end": self.end,
            "error": self.error,
            "job_id": self.job_id,
            "kept": self.kept,
            "restarts": self.restarts,
            "reason": self.reason,
            "image": self.image,
            "peak_mem_mb": self.peak_mem_mb,
            "cpu_s": self.cpu_s,
            "env": self.env,
        }

    @property
    def note(self) -> str:
        """Why it waits, the error, and whether Slurm requeued the task (its node was lost) before this outcome."""
        waiting = f"pending ({self.reason})" if self.reason and self.state == "PENDING" else ""
        requeued = f"requeued {self.restarts}x" if self.restarts else ""  # Slurm requeues when a node is lost
        return "; ".join(part for part in (waiting, requeued, self.error) if part)


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

    @property
    def all_succeeded(self) -> bool:
        """Every subject SUCCEEDED: what `status --watch` and ``Run.wait`` exit 0 (or return) on."""
        return all(s.state == "SUCCEEDED" for s in self.subjects)

    @property
    def waiting(self) -> dict[str, int]:
        """Pending subjects by Slurm's reason (Resources, Priority, JobArrayTaskLimit...), most first."""
        return dict(Counter(s.reason for s in self.subjects if s.state == "PENDING" and s.reason).most_common())

    @property
    def blocked(self) -> list[str]:
        """A line per reason that no waiting ends (the request or the partition must change)."""
        return [
            f"{count} subject(s) cannot start: Slurm says {reason}: {NEVER_STARTS[reason]}"
            for reason, count in self.waiting.items()
            if reason in NEVER_STARTS
        ]

    def counts_text(self) -> str:
        """``pending 30 (Resources 28, JobArrayTaskLimit 2), running 10``."""
        waiting = ", ".join(f"{reason} {count}" for reason, count in self.waiting.items())
        return ", ".join(
            f"{state.lower()} {count}" + (f" ({waiting})" if state == "PENDING" and waiting else "")
            for state, count in self.counts.items()
            if count
        )

    def to_json(self) -> dict[str, object]:
        return {**self._summary(), "subjects": [s.to_json() for s in self.subjects]}

    def to_json_bytes(self) -> bytes:
        """to_json() as compact JSON; the subjects are encoded by msgspec straight from their Structs (10,000 in
        1.5 ms, where building their dicts and encoding those takes 10: `status --json`, issue 16)."""
        return msgspec.json.encode({**self._summary(), "subjects": self.subjects})

    def _summary(self) -> dict[str, object]:
        return {
            "run": self.run_id,
            "counts": self.counts,
            "total": len(self.subjects),
            "waiting": self.waiting,
            "queue_readable": self.queue_readable,
            "source": self.source,
        }


def merge_status(
    run: RunRecord,
    records: list[TaskRecord],
    queued: list[QueuedTask],
    *,
    queue_readable: bool = True,
    source: str = "head node",
) -> RunStatus:
    latest = run.current_attempt_of()
    final: dict[str, TaskRecord] = {}
    started: dict[str, TaskRecord] = {}
    for record in records:  # later lines win: a requeued task's last word is its latest
        if latest.get(record.subject) == record.attempt:
            (final if record.state in FINAL_STATES else started)[record.subject] = record
    in_queue: dict[str, QueuedTask] = {}
    ended: dict[str, QueuedTask] = {}  # Slurm ended them (listed until MinJobAge)
    subject_of = task_subjects(run)
    for task in queued:
        subject = subject_of(task)
        if subject is not None and latest[subject] == task.attempt:
            (in_queue if task.state in ("PENDING", "RUNNING") else ended)[subject] = task
    inputs = MergeInputs(final, started, in_queue, ended, submitted_lookup(run), queue_readable)
    return RunStatus(
        run.run_id,
        tuple(subject_status(subject, latest[subject], inputs) for subject in run.subjects),
        queue_readable,
        source,
    )


@dataclass
class MergeInputs:
    """What a subject's status is made of, by subject: the records and the queued task of its latest attempt, the
    only one its status looks at. Keyed by the subject's name alone, the dicts hold no object the cycle collector
    walks (a first read of 10,000 tasks made 25,000 key tuples, and walking them cost 3 ms: issue 16)."""

    final: dict[str, TaskRecord]
    started: dict[str, TaskRecord]
    in_queue: dict[str, QueuedTask]  # pending or running
    ended: dict[str, QueuedTask]  # Slurm ended them (listed until MinJobAge)
    submitted: Callable[[int, str], bool]
    queue_readable: bool


def subject_status(subject: str, number: int, inputs: MergeInputs) -> SubjectStatus:
    """One subject's state in its latest attempt ``number``: its final record, else its task in the queue, else
    how it was lost (a record that began and never ended), else why nothing is known."""
    record = inputs.final.get(subject)
    if record is not None:
        return status_of_record(record)
    task = inputs.in_queue.get(subject)
    if task is not None:
        begun = inputs.started.get(subject)
        state = task.state
        if begun is None:
            return SubjectStatus(
                subject, state, None, number, "", "", "", "", f"{task.array_job_id}_{task.task_id}", "", 0, task.reason
            )
        return SubjectStatus(
            subject,
            state,
            None,
            number,
            begun.node,
            begun.start,
            "",
            "",
            f"{task.array_job_id}_{task.task_id}",
            "",
            begun.restarts + (state == "PENDING"),
            task.reason,
        )
    begun = inputs.started.get(subject)
    if begun is not None:
        return _lost(begun, inputs.ended.get(subject)) if inputs.queue_readable else status_of_record(begun)
    return _unrecorded(subject, number, inputs)


def _unrecorded(subject: str, number: int, inputs: MergeInputs) -> SubjectStatus:
    """A subject with no record and no task pending or running in its latest attempt: why nothing is known."""
    if not inputs.submitted(number, subject):
        return SubjectStatus(
            subject,
            "MISSING",
            None,
            number,
            error="not known to be submitted (its sbatch was not run, or gave no answer): "
            "run the same `clustertools submit` again to finish",
        )
    ended = inputs.ended.get(subject)
    if ended is not None and ended.state != "SUCCEEDED":  # ended before its wrapper ran (BOOT_FAIL...)
        return SubjectStatus(
            subject,
            ended.state,
            None,
            number,
            job_id=f"{ended.array_job_id}_{ended.task_id}",
            error=f"Slurm ended it before it started ({ended.slurm_state})",
        )
    # submitted, yet neither queued nor recorded: cancelled while pending (or the queue is unreadable)
    return SubjectStatus(subject, "MISSING" if inputs.queue_readable else "PENDING", None, number)


LOST = "the task ended without a final record (killed, out of memory, or its node was lost)"
_ENDED_WHY = {
    "NODE_FAIL": "its node was lost",
    "TIMEOUT": "killed at its time limit",
    "OOM": "killed for memory",
    "CANCELLED": "cancelled",
    "FAILED": "failed",
}


def _lost(record: TaskRecord, task: QueuedTask | None) -> SubjectStatus:
    """A task that began and wrote no final record: how Slurm says it ended while it still lists it, else FAILED."""
    lost = status_of_record(record)
    if task is None or task.state == "SUCCEEDED":
        lost.state, lost.error = "FAILED", LOST
    else:
        lost.state = task.state
        lost.error = (
            f"{_ENDED_WHY.get(task.state, task.state)} before it could write its record (Slurm: {task.slurm_state})"
        )
    return lost


def task_subjects(run: RunRecord) -> Callable[[QueuedTask], str | None]:
    """A lookup: queued task -> its subject in ``run`` (None when the task is not one of the run's)."""
    chunks = chunk_subjects(run)

    def subject_of(task: QueuedTask) -> str | None:
        subjects = chunks.get((task.run_id, task.attempt, task.chunk), ())
        return subjects[task.task_id] if 0 <= task.task_id < len(subjects) else None

    return subject_of


def chunk_subjects(run: RunRecord) -> dict[tuple[str, int, int], list[str]]:
    """(run id, attempt, array index) as a task's comment names them -> that array's subjects: task ``i`` of it is
    the ``i``-th. A task id beyond the array's count is of no subject (not of the next array's)."""
    return {
        (run.run_id, a.number, c.index): a.subjects[c.offset : c.offset + c.count]
        for a in run.attempts
        for c in a.chunks
    }


def status_of_record(record: TaskRecord) -> SubjectStatus:
    r = record
    return SubjectStatus(
        r.subject,
        r.state,
        r.exit_code,
        r.attempt,
        r.node,
        r.start,
        r.end,
        r.error,
        r.job_id,
        r.kept,
        r.restarts,
        "",
        r.image,
        r.peak_mem_mb,
        r.cpu_s,
        r.env,
    )


def submitted_lookup(run: RunRecord) -> Callable[[int, str], bool]:
    """(attempt, subject) -> whether the array holding that task was submitted; O(1) per question."""
    positions = {a.number: {s: i for i, s in enumerate(a.subjects)} for a in run.attempts}
    flags: dict[int, bytearray] = {}  # per attempt, 1 at each position an array with a job id holds
    for attempt in run.attempts:
        held = flags[attempt.number] = bytearray(len(attempt.subjects))
        for chunk in attempt.chunks:
            end = min(chunk.offset + chunk.count, len(held))
            if chunk.job_id and end > chunk.offset:
                held[chunk.offset : end] = b"\1" * (end - chunk.offset)

    def submitted(number: int, subject: str) -> bool:
        return bool(flags[number][positions[number][subject]])

    return submitted


def record_time(text: str) -> datetime | None:
    """A record's start/end (``2026-11-22T07:43:09Z``) as an aware datetime; None when empty or odd."""
    try:
        when = datetime.fromisoformat(str(text).strip()) if text else None
    except ValueError:
        return None
    return when if when is None or when.tzinfo else when.replace(tzinfo=UTC)

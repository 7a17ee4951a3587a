"""merge_status kept between refreshes of one run (issue 16): only the subjects something changed for are merged again.

A subject's status depends on its own records and its own task in the queue alone (run_status.subject_status). So a
refresh takes the records appended since the last (the records cache only grows) and the squeue lines that differ
from the last refresh's (a line gone, a line new: an array's pending range that shrank, a task that started), and
merges again just the subjects those name. Anything else that could change every subject (the queue readable or not,
the records read again from the start, another attempt of the run) starts over with a full merge. Pure: the test
holds it equal to a full merge over random sequences of refreshes.
"""

from __future__ import annotations

from collections.abc import Iterable

from cluster_tools.model.runs.run_record import FINAL_STATES, RunRecord
from cluster_tools.model.runs.run_status import (
    MergeInputs,
    RunStatus,
    SubjectStatus,
    TaskRecord,
    chunk_subjects,
    status_of_record,
    subject_status,
    submitted_lookup,
)
from cluster_tools.slurm.queue import QueuedTask, one_run_of_ids, parse_squeue

ChunkShape = tuple[int, int, int, str | None]  # an array's index, offset, count and job id
RunShape = tuple[str, tuple[tuple[int, int, tuple[ChunkShape, ...]], ...]]  # run id; attempt, its subjects, arrays
Placed = tuple[list[str], list[QueuedTask]]  # a squeue line's tasks of the run, and each one's subject


def run_shape(run: RunRecord) -> RunShape:
    """What the merge takes from the run record: its attempts, their subjects and arrays."""
    return (
        run.run_id,
        tuple(
            (a.number, len(a.subjects), tuple((c.index, c.offset, c.count, c.job_id) for c in a.chunks))
            for a in run.attempts
        ),
    )


class StatusMerger:
    def __init__(self, run: RunRecord) -> None:
        self.shape = run_shape(run)
        self._run = run
        self._latest = run.current_attempt_of()
        self._last_attempt = run.attempts[-1].number if run.attempts else 0
        self._chunks = chunk_subjects(run)
        self._inputs = MergeInputs({}, {}, {}, {}, submitted_lookup(run), True)
        self._records: list[TaskRecord] | None = None  # the list merged last: it may only have grown since
        self._records_seen = 0
        self._lines: dict[str, Placed] = {}  # squeue line -> the run's tasks on it, and their subjects
        self._statuses: dict[str, SubjectStatus] = {}
        self._merged = False  # every subject has its status: a merge may merge just what changed

    def prepare(self, records: list[TaskRecord]) -> None:
        """Before the queue is known (services/runs/run_follow.py: while the head node answers, as records arrive),
        the statuses a final record decides, which the queue cannot change. Only ahead of a merge of every subject: a
        later merge of what changed takes its new records itself. Each call takes only the records added since."""
        if self._merged and records is self._records and len(records) >= self._records_seen:
            return
        if records is not self._records or len(records) < self._records_seen:
            self._start_over(self._inputs.queue_readable)
            self._records = records
        self._take_records(records, collect=False, decide=True)

    def merge(
        self, records: list[TaskRecord], queue_text: str, *, queue_readable: bool, source: str = "head node"
    ) -> RunStatus:
        """The run's status from every record so far and squeue's whole text, as merge_status would give it."""
        if (
            records is not self._records
            or len(records) < self._records_seen
            or queue_readable != self._inputs.queue_readable
            or not (self._merged or self._statuses)
        ):
            self._start_over(queue_readable)
            self._records = records
        full, statuses = not self._merged, self._statuses  # full: every subject (which changed need not be known)
        # A merge of every subject settles those a final record decides as prepare() does, with the records it has
        # not taken yet; the others follow from the queue. A merge of what changed merges those subjects again.
        fresh = self._take_records(records, collect=not full, decide=full)
        changed = fresh | self._take_queue(queue_text, collect=not full)
        todo: Iterable[str] = changed
        if full:
            todo = [s for s in self._run.subjects if s not in statuses] if statuses else self._run.subjects
        latest, inputs = self._latest, self._inputs
        final, queued, started, from_record = inputs.final.get, inputs.in_queue.get, inputs.started, status_of_record
        for subject in todo:
            number = latest.get(subject)
            if number is None:
                continue
            # Inline, subject_status's two common cases (all 10,000 subjects of a first read): a final record, and a
            # task still pending that never began. The test holds this equal to merge_status.
            record = final(subject)
            if record is not None:
                statuses[subject] = from_record(record)
                continue
            task = queued(subject)
            if task is not None and task.slurm_state == "PENDING" and subject not in started:
                statuses[subject] = SubjectStatus(
                    subject,
                    "PENDING",
                    None,
                    number,
                    "",
                    "",
                    "",
                    "",
                    f"{task.array_job_id}_{task.task_id}",
                    "",
                    0,
                    task.reason,
                )
            else:
                statuses[subject] = subject_status(subject, number, inputs)
        self._merged = True
        return RunStatus(self._run.run_id, tuple(map(statuses.__getitem__, self._run.subjects)), queue_readable, source)

    def _start_over(self, queue_readable: bool) -> None:
        self._inputs = MergeInputs({}, {}, {}, {}, self._inputs.submitted, queue_readable)
        self._records_seen, self._lines, self._statuses, self._merged = 0, {}, {}, False

    def _take_records(self, records: list[TaskRecord], collect: bool, decide: bool = False) -> set[str]:
        """The records not taken yet; with ``collect``, their subjects; with ``decide``, the status of each subject
        one of them finals (its latest final record's, whatever the queue says)."""
        fresh = records[self._records_seen :]
        final, started, latest = self._inputs.final, self._inputs.started, self._latest.get
        statuses, from_record = self._statuses, status_of_record
        for record in fresh:  # later lines win, as in merge_status; only a subject's latest attempt counts
            if latest(record.subject) != record.attempt:
                continue
            if record.state not in FINAL_STATES:
                started[record.subject] = record
            else:
                final[record.subject] = record
                if decide:
                    statuses[record.subject] = from_record(record)
        self._records_seen = len(records)
        return {record.subject for record in fresh} if collect else set()

    def _take_queue(self, queue_text: str, collect: bool) -> set[str]:
        lines = {line for line in queue_text.splitlines() if line}
        gone, new = self._lines.keys() - lines, lines - self._lines.keys()
        changed = set()
        for line in gone:  # every removal first: a task may move from a gone line to a new one
            subjects, tasks = self._lines.pop(line)
            for subject, task in zip(subjects, tasks, strict=True):
                for where in (self._inputs.in_queue, self._inputs.ended):
                    if where.get(subject) is task:
                        del where[subject]
            changed.update(subjects)
        for line in new:
            self._lines[line] = placed = self._place(parse_squeue(line + "\n"), one_run_of_ids(line))
            if collect:
                changed.update(placed[0])
        return changed

    def _place(self, tasks: list[QueuedTask], one_run: bool) -> Placed:
        """One squeue line's tasks (one array's: one run, attempt and array index), by their subjects: those whose
        latest attempt it is. ``one_run``: the line's ids are one run, ascending and without a gap."""
        if not tasks:
            return [], []
        first = tasks[0]
        subjects = self._chunks.get((first.run_id, first.attempt, first.chunk))
        if subjects is None:
            return [], []
        if one_run:  # a pending range (thousands): its subjects are one slice
            names = subjects[first.task_id : tasks[-1].task_id + 1]
            tasks = tasks[: len(names)]  # the slice ends at the array's last subject: so do the tasks taken
        else:
            tasks = [task for task in tasks if task.task_id < len(subjects)]
            names = [subjects[task.task_id] for task in tasks]
        if first.attempt != self._last_attempt:  # some of its subjects may have been submitted again since
            latest = self._latest.get
            kept = [i for i, name in enumerate(names) if latest(name) == first.attempt]
            names, tasks = [names[i] for i in kept], [tasks[i] for i in kept]
        where = self._inputs.in_queue if first.state in ("PENDING", "RUNNING") else self._inputs.ended
        where.update(zip(names, tasks, strict=True))
        return names, tasks

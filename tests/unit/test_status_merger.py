"""The incremental merge (issue 16) is never wrong: over random sequences of refreshes (records appended, squeue's
lines changing, ranges shrinking, the queue unreadable, the records read again from the start, a resubmitted
attempt, statuses prepared from the records before the queue is known and records appended after that) it gives
exactly what a full merge_status gives."""

from __future__ import annotations

import random

import pytest

from cluster_tools.model.runs.run_record import Attempt, Chunk
from cluster_tools.model.runs.run_status import TaskRecord, merge_status
from cluster_tools.model.runs.status_merger import StatusMerger
from cluster_tools.slurm.queue import parse_squeue
from tests.unit.run_fixtures import make_run

SUBJECTS = tuple(f"s{i}" for i in range(12))
STATES = ("SUCCEEDED", "FAILED", "RUNNING", "CANCELLED", "TIMEOUT", "OOM")
SLURM = ("PENDING", "RUNNING", "COMPLETED", "FAILED", "NODE_FAIL", "CANCELLED", "TIMEOUT", "CONFIGURING")


def the_run(resubmitted: bool):
    run = make_run(
        SUBJECTS,
        chunks=[Chunk(index=0, offset=0, count=8, job_id="12"), Chunk(index=1, offset=8, count=4, job_id="13")],
    )
    if resubmitted:
        again = Attempt(
            number=2, subjects=["s1", "s5", "s9"], rows=[], chunks=[Chunk(index=0, offset=0, count=3, job_id="20")]
        )
        run = run.model_copy(update={"attempts": [*run.attempts, again]})
    return run


def a_record(rng: random.Random, attempts: int) -> TaskRecord:
    return TaskRecord(
        rng.choice(SUBJECTS),
        rng.randint(1, attempts),
        rng.choice(STATES),
        rng.choice((0, 1, None)),
        rng.choice(("", "boom")),
        "2026-11-30T05:00:00Z",
        "",
        rng.choice(("n1", "n2")),
        "12_0",
        "",
        rng.randint(0, 1),
        "",
        None,
        None,
    )


def a_queue(rng: random.Random, attempts: int) -> str:
    arrays = [("12", 1, 0, 8), ("13", 1, 1, 4)] + ([("20", 2, 0, 3)] if attempts > 1 else [])
    lines = []
    for job, attempt, chunk, count in arrays:
        tail = f"ct:demo-1:a{attempt}:c{chunk}"
        ids = [i for i in range(count) if rng.random() < 0.6]
        first = rng.randint(0, count)  # the array's still-pending tasks, one line as squeue prints them without -r
        if first < count and rng.random() < 0.7:
            # beyond the array's count (never so from Slurm): tasks of no subject, which are skipped
            last = count - 1 + (rng.random() < 0.2) * rng.randint(1, 3)
            ids_text = rng.choice(  # as squeue prints them (one run, with or without a throttle), or as it could
                (
                    f"{first}-{last}%2",
                    f"{first}-{last}",
                    f"{first}-{last}:2",
                    ",".join(map(str, range(first, last + 1))),
                )
            )
            lines.append(f"{job}|{ids_text}|PENDING|{rng.choice(('Priority', 'Resources'))}|{tail}")
            ids = [i for i in ids if i < first]
        lines += [f"{job}|{i}|{rng.choice(SLURM)}|None|{tail}" for i in ids]
        if rng.random() < 0.2:
            lines.append(f"99|{rng.randint(0, 3)}|RUNNING|None|someone else's")
    rng.shuffle(lines)
    return "".join(f"{line}\n" for line in lines)


@pytest.mark.parametrize("seed", range(300))
def test_every_refresh_equals_a_full_merge(seed):
    rng = random.Random(seed)
    run = the_run(resubmitted=seed % 3 == 0)
    attempts = len(run.attempts)
    merger, records = StatusMerger(run), []
    if rng.random() < 0.5:  # a merger made anew in each process: prepared from the cached records, then merged
        records = [a_record(rng, attempts) for _ in range(rng.randint(0, 8))]
        for _ in range(rng.randint(1, 3)):  # as the records arrive, a stretch at a time
            merger.prepare(records)
            records.extend(a_record(rng, attempts) for _ in range(rng.randint(0, 3)))
    queue = a_queue(rng, attempts)
    for _ in range(10):
        roll = rng.random()
        if roll < 0.1:
            records = [a_record(rng, attempts) for _ in range(rng.randint(0, 5))]  # read again from the start
        else:
            records.extend(a_record(rng, attempts) for _ in range(rng.randint(0, 3)))
        for _ in range(rng.choice((0, 0, 1, 2))):  # what a status does while the head node answers, as records arrive
            merger.prepare(records)
            records.extend(a_record(rng, attempts) for _ in range(rng.randint(0, 2)))
        if rng.random() < 0.6:
            queue = a_queue(rng, attempts)
        readable = rng.random() > 0.1
        got = merger.merge(records, queue, queue_readable=readable)
        full = merge_status(run, records, parse_squeue(queue), queue_readable=readable)
        assert got.to_json() == full.to_json()

"""Cancel a run, or some of its subjects: scancel, and a CANCELLED record for each subject cancelled while pending
(no wrapper ran to write one).

A whole run is cancelled on the head node in one round trip (templates/run/cancel_run.py, sent on stdin): it reads
the queue, cancels, and writes the records there, so 100,000 pending tasks cost one scancel and no upload (issue
16). Some subjects, or a head node without python3, are cancelled from the run's status read here.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

import orjson

from cluster_tools.errors import ConfigError, TransportError
from cluster_tools.model.clusters.cluster_record import ClusterRecord
from cluster_tools.model.runs.run_record import RunRecord, now_iso
from cluster_tools.render.run_scripts import cancel_script
from cluster_tools.services.runs.run_follow import RunFilesMissing, read_status, records_cache
from cluster_tools.slurm.queue import job_name
from cluster_tools.store.state_dir import StateDir
from cluster_tools.transport.remote_shell import RemoteShell, ShellFactory

NO_PYTHON = 127  # the shell's "command not found"
_GROUP_HEADER = re.compile(r"^@[^\n]*\n?", re.M)  # cancel_run.py's @PENDING / @RUNNING lines
# cancel_run.py's exit codes, and what they mean to the user.
_REFUSED = {
    3: ("squeue did not answer on the head node: nothing was cancelled", "try again in a minute"),
    4: (
        "scancel failed on the head node: some tasks may be cancelled",
        "`clustertools status` shows each subject's state; cancel again to finish",
    ),
    5: (
        "the tasks were cancelled, but their CANCELLED records could not be written on the head node",
        "is its disk full? Subjects cancelled while pending show as MISSING in `clustertools status`",
    ),
    75: ("a submit of this run is still running: nothing was cancelled", "cancel again when the submit has ended"),
}


@dataclass(frozen=True)
class CancelResult:
    cancelled: tuple[str, ...]  # subjects
    whole_run: bool


def cancel(
    state: StateDir, run: RunRecord, cluster: ClusterRecord, connect: ShellFactory, subjects: Iterable[str]
) -> CancelResult:
    """scancel the run (or some subjects); subjects cancelled while pending get a CANCELLED record."""
    wanted = list(dict.fromkeys(subjects))
    if wanted:  # (a whole run's cancel needs no lookup of its 100,000 subjects)
        known = run.current_attempt_of()
        unknown = [s for s in wanted if s not in known]
        if unknown:
            raise ConfigError(
                f"not subjects of run {run.run_id}: {', '.join(unknown[:10])}", "`clustertools status` lists them"
            )
    with connect(cluster) as conn:
        if not wanted:
            cancelled = cancel_on_head_node(conn, run)
            if cancelled is not None:
                return CancelResult(cancelled, True)
        status = read_status(conn, run, records_cache(state, run))
        by_subject = {s.subject: s for s in status.subjects}
        targets = [
            s
            for s in ([by_subject[s] for s in wanted] if wanted else status.subjects)
            if s.state in ("PENDING", "RUNNING")
        ]
        if not targets:
            return CancelResult((), not wanted)
        if wanted:
            conn.run(["scancel", *[t.job_id for t in targets]], timeout=60).check()
        else:
            conn.run(["scancel", f"--name={job_name(run.run_id)}"], timeout=60).check()
        pending = [t for t in targets if t.state == "PENDING"]
        if pending:  # one file of JSON lines, which status.sh folds as it folds a task's own: one write, not N
            name = f"{run.remote_dir}/records/new/cancelled-{uuid.uuid4().hex}.json"
            conn.put_files({name: (cancel_records([(t.subject, t.attempt) for t in pending]), 0o644)})
    return CancelResult(tuple(t.subject for t in targets), not wanted)


def cancel_on_head_node(conn: RemoteShell, run: RunRecord) -> tuple[str, ...] | None:
    """The whole run cancelled by cancel_run.py on the head node: the subjects it cancelled; None when the head node
    has no python3 (the caller cancels from the status instead)."""
    stamp = now_iso().replace("+00:00", "Z")
    # -I -S: the head node's python3 alone, without the user's PYTHON* variables or site-packages (-S: 6 ms less)
    result = conn.run(
        ["python3", "-I", "-S", "-", run.remote_dir, job_name(run.run_id), stamp],
        stdin=cancel_script().encode(),
        timeout=180,
    )
    if result.exit_code == NO_PYTHON:
        return None
    if result.exit_code == 44:
        raise RunFilesMissing(
            f"run {run.run_id} has no files on {run.cluster} ({run.remote_dir})",
            "was it submitted to this cluster? `clustertools runs` shows where each run went",
        )
    if result.exit_code != 0:
        message, hint = _REFUSED.get(
            result.exit_code,
            (
                f"cancelling run {run.run_id} on the head node failed (exit {result.exit_code})",
                "run again with --debug",
            ),
        )
        said = result.stderr.decode("utf-8", "replace").strip().splitlines()
        raise TransportError(message if result.exit_code in _REFUSED or not said else f"{message}: {said[-1]}", hint)
    return tuple(filter(None, _GROUP_HEADER.sub("", result.text).split("\n")))  # 100,000 lines: at C speed


def cancel_record(subject: str, attempt: int, stamp: str | None = None) -> bytes:
    """A CANCELLED record as the wrapper's record_json() would write it; ``stamp``: when (default: now)."""
    return cancel_records([(subject, attempt)], stamp)


def cancel_records(tasks: list[tuple[str, int]], stamp: str | None = None) -> bytes:
    """CANCELLED records of (subject, attempt) pairs, one line each, all with the same ``stamp`` (default: now).
    orjson writes each subject as a JSON string: 100,000 of them in milliseconds (issue 16)."""
    stamp = stamp or now_iso().replace("+00:00", "Z")
    tail = (
        b',"state":"CANCELLED","exit_code":null,"error":"cancelled while pending","start":"","end":'
        + orjson.dumps(stamp)
        + b',"node":"","job_id":""}\n'
    )
    return b"".join(
        b'{"subject":%b,"attempt":%d%b' % (orjson.dumps(subject), int(attempt), tail) for subject, attempt in tasks
    )

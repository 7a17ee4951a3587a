"""Follow and steer a submitted run: status, logs, resubmit (cancel: run_cancel.py). One SSH round trip per read."""

from __future__ import annotations

import io
import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import IO

from cluster_tools.errors import ClusterToolsError, ConfigError, HostKeyMismatch, TransportError
from cluster_tools.model.clusters.cluster_record import ClusterRecord
from cluster_tools.model.runs.job_spec import JobSpec
from cluster_tools.model.runs.run_record import UNSUCCESSFUL, Attempt, RunRecord, now_iso
from cluster_tools.model.runs.run_status import RunStatus, merge_status
from cluster_tools.model.runs.status_reply import parse_records
from cluster_tools.services.runs.records_cache import RecordsCache, cycle_collector_paused
from cluster_tools.services.runs.status_stream import StatusStream
from cluster_tools.store.run_store import save_run
from cluster_tools.store.state_dir import StateDir
from cluster_tools.transport.remote_shell import RemoteShell, ShellFactory


class RunFilesMissing(ClusterToolsError):
    """The head node has no files of the run (the cluster was re-created, or the run went elsewhere)."""


def read_status(conn: RemoteShell, run: RunRecord, cache: RecordsCache | None = None) -> RunStatus:
    """One round trip: status.sh prints the records ``cache`` lacks, the queue, and the records folded while squeue
    answered; merged here. A cache that the head node's file does not continue (truncated, replaced, another
    cluster's) costs a second, full read."""
    cache = cache if cache is not None else RecordsCache(None)
    for whole in (False, True):
        if whole:
            cache.forget()
        with cycle_collector_paused():
            code, stdout = _status_sh(conn, run, cache)
            if code == 44 or (code != 0 and not stdout.tell()):
                raise RunFilesMissing(
                    f"run {run.run_id} has no files on {run.cluster} ({run.remote_dir})",
                    "was it submitted to this cluster? `clustertools runs` shows where each run went",
                )
            reply = stdout.reply()
            taken = (
                cache.extend(reply.start, reply.records)
                if stdout.continued
                else cache.absorb(reply.start, reply.records, reply.first)
            )
            if taken is not None:
                return cache.merge(run, reply.queue, reply.queue_ok)
    raise TransportError(
        f"status.sh of run {run.run_id} did not answer from the first byte of its records",
        "is the run's status.sh its own? `clustertools runs` shows where each run went",
    )


def _status_sh(conn: RemoteShell, run: RunRecord, cache: RecordsCache) -> tuple[int, StatusStream]:
    """status.sh's exit code and reply from where the cache ends. The records
    are read while the head node works: the cached ones (in a thread, as the reply is awaited), then those status.sh
    sends before squeue's answer (as they arrive). Each part is parsed, and the statuses their final records
    decide are made, before the queue is known: a first read of 10,000 tasks spends ~10 ms so, hidden by squeue's."""
    mark, start = secrets.token_hex(8), cache.start()
    argv = ["bash", f"{run.remote_dir}/status.sh", str(start), mark]
    with ThreadPoolExecutor(max_workers=1) as pool:
        parsing = pool.submit(cache.prepare, run)

        def take_records(at: int, chunk: bytes, first: bytes | None) -> bool:
            parsing.result()
            taken = cache.absorb(at, chunk, first, save=False) if first is not None else cache.extend(at, chunk)
            if taken is not None:
                cache.prepare(run)
            return taken is not None

        stdout = StatusStream(mark, take_records, least=cache.size - start)
        code = conn.stream(argv, stdout=stdout, stderr=io.BytesIO(), timeout=120)
        parsing.result()
    return code, stdout


def records_cache(state: StateDir, run: RunRecord) -> RecordsCache:
    """This client's copy of the run's records (see records_cache.py)."""
    return RecordsCache(state.records_cache(run.run_id))


def remember_counts(state: StateDir, run: RunRecord, status: RunStatus) -> None:
    save_run(state, run.model_copy(update={"last_counts": status.counts, "last_status_at": now_iso()}))


def status_once(
    state: StateDir,
    run: RunRecord,
    cluster: ClusterRecord | None,
    connect: ShellFactory,
    note: Callable[[str], None] = lambda _: None,
    cache: RecordsCache | None = None,
) -> RunStatus:
    """The head node's view; when the head node is gone or lost the run's files, the records in S3.
    ``cache``: what was read of the run's records before (default: this client's, in the state dir)."""
    try:
        if cluster is None:
            raise RunFilesMissing(f"cluster {run.cluster} is not known any more")
        with connect(cluster) as conn:
            status = read_status(conn, run, cache if cache is not None else records_cache(state, run))
    except (RunFilesMissing, TransportError) as exc:
        if isinstance(exc, HostKeyMismatch):
            raise  # never paper over a changed host key
        note(f"{exc.message}: reading the run's records from S3 instead (finished subjects only)")
        status = status_from_s3(run)
    remember_counts(state, run, status)
    return status


def status_from_s3(run: RunRecord) -> RunStatus:
    """Status from the final records each task copied to S3: what survives the cluster itself."""
    from cluster_tools.services.runs.results import client_for_run
    from cluster_tools.transport.s3 import iter_object_pages, read_object

    client = client_for_run(run)
    bucket = run.output_location.bucket
    keys = [o["Key"] for page in iter_object_pages(client, bucket, run.records_prefix) for o in page]
    with ThreadPoolExecutor(max_workers=32) as pool:
        bodies = pool.map(lambda key: read_object(client, bucket, key) or b"", keys)
        text = "\n".join(body.decode("utf-8", "replace").strip() for body in bodies)
    return merge_status(run, parse_records(text), [], queue_readable=True, source="s3")


def watch(
    state: StateDir,
    run: RunRecord,
    cluster: ClusterRecord,
    connect: ShellFactory,
    *,
    interval: float,
    on_status: Callable[[RunStatus], None],
    sleep: Callable[[float], None],
) -> RunStatus:
    """Refresh over one open connection until no subject is pending or running."""
    cache = records_cache(state, run)
    with connect(cluster) as conn:
        while True:
            status = read_status(conn, run, cache)
            on_status(status)
            if status.done:
                break
            sleep(interval)
    remember_counts(state, run, status)
    return status


def log_path(run: RunRecord, subject: str, attempt: int | None, stream: str) -> str:
    number = attempt or run.current_attempt_of().get(subject)
    if number is None:
        raise ConfigError(f"{subject!r} is not a subject of run {run.run_id}", "`clustertools status` lists them")
    return f"{run.remote_dir}/logs/{subject}.{number}.{stream}"


# `logs --follow`: tail the log until the task's final record exists (in records/new, or folded into
# records/all.jsonl by status.sh), then give tail a second to print the last lines and stop. Subject names are
# letters, digits, '.', '_' and '-' (names.py): plain text in a glob and in grep -F.
FOLLOW_SCRIPT = r"""log=$1 records=$2 subject=$3 attempt=$4
tail -n +1 -F "$log" 2>/dev/null &
tailer=$!
trap 'kill "$tailer" 2>/dev/null' EXIT
ended() {
  local found
  found=$(compgen -G "$records/new/$subject.$attempt.[!R]*.json") && { echo "${found##*."$attempt".}"; return 0; }
  found=$(grep -F "\"subject\":\"$subject\",\"attempt\":$attempt,\"state\":\"" "$records/all.jsonl" 2>/dev/null |
    grep -v '"state":"RUNNING"' | tail -n 1) || return 1
  [[ -n $found ]] && { found=${found#*\"state\":\"}; echo "${found%%\"*}"; }
}
until state=$(ended); do
  kill -0 "$tailer" 2>/dev/null || exit 1
  sleep 2
done
sleep 1
echo "clustertools: $subject (attempt $attempt) ended: ${state%.json}" >&2
"""


def stream_log(
    run: RunRecord,
    cluster: ClusterRecord,
    connect: ShellFactory,
    *,
    subject: str,
    attempt: int | None,
    stream: str,
    follow: bool,
    stdout: IO[bytes],
    stderr: IO[bytes],
    with_stderr: bool = False,
) -> int:
    """The log to ``stdout``; with ``with_stderr`` (stdout's log, not followed), the command's stderr too,
    when it has any, to ``stderr`` under a header: a person sees both, a pipe gets stdout alone. ``follow``
    prints the log as it grows, and ends when the task has ended."""
    path = log_path(run, subject, attempt, stream)
    number = attempt or run.current_attempt_of()[subject]
    command = (
        ["bash", "-c", FOLLOW_SCRIPT, "follow", path, f"{run.remote_dir}/records", subject, str(number)]
        if follow
        else ["cat", path]
    )
    with connect(cluster) as conn:
        if not follow:
            result = conn.run(command, timeout=300)
            if result.exit_code != 0:
                raise ClusterToolsError(
                    f"no {stream} log yet for {subject} ({path})", "has the task started? `clustertools status` tells"
                )
            stdout.write(result.stdout)
            errors = (
                conn.run(["cat", log_path(run, subject, attempt, "err")], timeout=300)
                if with_stderr and stream == "out"
                else None
            )
            if errors is not None and errors.exit_code == 0 and errors.stdout.strip():
                stdout.flush()
                stderr.write(f"==> stderr of {subject} <==\n".encode() + errors.stdout)
            return 0
        return conn.stream(command, stdout=stdout, stderr=stderr)


def subjects_to_rerun(
    status: RunStatus, *, failed: bool, without_output: set[str] | None, states: frozenset[str] = frozenset()
) -> list[str]:
    """``--failed``: every unsuccessful state (FAILED, TIMEOUT, OOM, NODE_FAIL, CANCELLED), or only ``states``
    when given (``--state TIMEOUT``). ``--missing`` (``without_output`` given): every subject that has no
    success record or no output in S3. Never one still pending or running."""
    rerun = []
    wanted = states or frozenset(UNSUCCESSFUL)
    for s in status.subjects:
        if s.state in ("PENDING", "RUNNING"):
            continue
        no_output = without_output is not None and (s.state != "SUCCEEDED" or s.subject in without_output)
        if (failed and s.state in wanted) or no_output:
            rerun.append(s.subject)
    return rerun


def next_attempt(run: RunRecord, rerun: list[str], job: JobSpec | None = None) -> RunRecord:
    """The run with a new attempt holding only ``rerun`` (CSV values carried over), run with ``job``'s resources
    when given (else the run's)."""
    if not rerun:
        raise ConfigError("nothing to resubmit: no subject matches", "`clustertools status` shows each subject's state")
    first = run.attempts[0]
    rows = {s: first.rows[i] for i, s in enumerate(first.subjects)} if first.rows else {}
    attempt = Attempt(
        number=run.attempts[-1].number + 1,
        subjects=rerun,
        rows=[rows[s] for s in rerun] if rows else [],
        job=job if job is not None and job != run.job else None,
    )
    return run.model_copy(update={"attempts": [*run.attempts, attempt]})

"""Submit a run (or a new attempt of one) over ONE SSH connection, idempotently.

The local record is written before anything is sent, the chunk plan is fixed once, and the head
node's submit.sh submits each array at most once: running the same submit again after a dropped
connection finishes the job and never duplicates a task. Making the run record (the job spec, the run's
identity, a resumed run, the dry run's files) is run_prepare.py.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from cluster_tools.errors import ClusterStopped, ClusterToolsError
from cluster_tools.model.clusters.cluster_record import ClusterRecord
from cluster_tools.model.progress import Progress
from cluster_tools.model.runs.job_spec import JobSpec
from cluster_tools.model.runs.run_record import (
    REMOTE_RUNS_DIR,
    Attempt,
    Chunk,
    RunRecord,
    now_iso,
)
from cluster_tools.render import run_scripts
from cluster_tools.services.runs.output_check import check_output_location
from cluster_tools.slurm.limits import ChunkPlan, SlurmLimits, parse_scontrol_config, plan_chunks
from cluster_tools.slurm.partition_fit import (
    SINFO_FIT_FORMAT,
    Partitions,
    parse_partitions,
    partition_problem,
    request_problem,
)
from cluster_tools.store.run_store import save_run
from cluster_tools.store.state_dir import StateDir
from cluster_tools.transport.remote_shell import RemoteShell, ShellFactory

_SUBMITTED = re.compile(r"^chunk (\d+) (\d+)(?:;\S+)? (submitted|already)$")
_UNKNOWN = re.compile(r"^chunk (\d+) unknown$")  # sbatch gave no answer and Slurm does not show the array
_REFUSED = re.compile(r"^chunk (\d+) refused$")  # sbatch answered no
_PROBE_MARK = "@@clustertools-probe"


@dataclass(frozen=True)
class SubmitResult:
    run: RunRecord
    attempt: int
    arrays: tuple[tuple[int, str, int, bool], ...]  # (chunk, job id, tasks, newly submitted)
    resumed: bool


def submit_attempt(
    state: StateDir,
    run: RunRecord,
    cluster: ClusterRecord,
    *,
    progress: Progress,
    resumed: bool = False,
    connect: ShellFactory,
    workdir: bytes | None = None,
) -> SubmitResult:
    """Upload the run's files and submit its latest attempt's arrays that are not submitted yet."""
    attempt = run.attempts[-1]
    save_run(state, run)  # before anything is sent: a retry must find this run
    with connect(cluster) as conn:
        home, limits, queued_now, partitions = _probe(conn)
        _check_request_fits(run.job_of(attempt.number), partitions, cluster.name)
        run = run.model_copy(update={"remote_dir": f"{home}/{REMOTE_RUNS_DIR}/{run.run_id}"})
        check_output_location(conn, run)  # a missing bucket found now, not after every task computed
        if not attempt.chunks:
            pending = len(attempt.subjects)
            if queued_now + pending > limits.max_job_count:
                raise ClusterToolsError(
                    f"the cluster holds {queued_now} jobs and MaxJobCount is {limits.max_job_count}: "
                    f"{pending} more tasks do not fit, and sbatch would hang instead of failing",
                    "wait for jobs to finish (and MinJobAge to pass), or raise MaxJobCount in slurm.conf",
                )
            plan = plan_chunks(pending, limits.max_array_size)
            attempt = attempt.model_copy(
                update={"chunks": [Chunk(index=c.index, offset=c.offset, count=c.count) for c in plan]}
            )
            run = _with_attempt(run, attempt)
        save_run(state, run)
        progress(f"uploading run {run.run_id} ({len(attempt.subjects)} subjects, {len(attempt.chunks)} array(s))")
        _upload(conn, run, attempt)
        if workdir is not None:
            _unpack_workdir(conn, run, workdir)
        progress("submitting")
        run, attempt, fresh = _submit_arrays(state, conn, run, attempt)
    arrays = tuple((c.index, c.job_id or "", c.count, c.index in fresh) for c in attempt.chunks)
    return SubmitResult(run=run, attempt=attempt.number, arrays=arrays, resumed=resumed)


def _submit_arrays(
    state: StateDir, conn: RemoteShell, run: RunRecord, attempt: Attempt
) -> tuple[RunRecord, Attempt, set[int]]:
    """Run submit.sh; the record keeps every job id it reports. Raises when it stopped half-way."""
    from cluster_tools.errors import TransportError

    # From here Slurm may accept arrays: the record says so before the request leaves (see RunRecord.sent).
    sent_before = attempt.submitted_at
    attempt = attempt.model_copy(update={"submitted_at": sent_before or now_iso()})
    run = _with_attempt(run, attempt)
    save_run(state, run)
    try:
        result = conn.run(
            f"cd {shlex.quote(run.remote_dir)} && setsid -w bash submit.sh {attempt.number} "
            f">attempts/{attempt.number}/submit.log 2>&1 </dev/null; rc=$?; "
            f"cat attempts/{attempt.number}/submit.log; exit $rc",
            timeout=600,
        )
    except TransportError as exc:  # submit.sh goes on, detached: what it sent is not known here
        raise TransportError(
            f"lost sight of the submission of run {run.run_id} ({exc.message}): which of its arrays Slurm "
            "accepted is unknown",
            "running the same command again is safe: it waits for a submit still running "
            "on the head node, then submits only the arrays Slurm does not hold",
            command=exc.command,
            exit_code=exc.remote_exit_code,
            stderr=exc.stderr,
        ) from exc
    job_ids, fresh, unknown = _parse_submitted(result.text)
    chunks = [c.model_copy(update={"job_id": job_ids.get(c.index, c.job_id)}) for c in attempt.chunks]
    # Refused outright (sbatch said no, squeue did not answer): nothing reached Slurm, the run stays unsent.
    nothing_sent = result.exit_code != 0 and not unknown and not any(c.job_id for c in chunks)
    attempt = attempt.model_copy(
        update={"chunks": chunks, "submitted_at": sent_before if nothing_sent else attempt.submitted_at}
    )
    run = _with_attempt(run, attempt)
    save_run(state, run)
    if result.exit_code != 0:
        raise _stopped(run, attempt, unknown, result)
    return run, attempt, fresh


def _check_request_fits(job: JobSpec, partitions: Partitions, cluster: str) -> None:
    """A task no node of its partition can hold would wait for ever with a blank reason: refuse it now. So would
    one sent to a stopped cluster (sbatch's raw "Required partition not available (inactive or drain)")."""
    if partitions.stopped(job.partition):
        raise ClusterStopped(
            f"nothing was submitted: cluster {cluster} is stopped (its partition "
            f"{job.partition or partitions.default} is INACTIVE, as autostop leaves an idle cluster)",
            f"start it: clustertools start -c {cluster}, then submit again",
        )
    missing = partition_problem(partitions, job.partition)
    if missing:
        raise ClusterToolsError(
            f"nothing was submitted: {missing}",
            "name one of them with --partition (or job.partition in clustertools.yaml)",
        )
    problem = request_problem(partitions, job.partition, cpus=job.cpus, mem=job.mem, gpus=job.gpus)
    if problem:
        raise ClusterToolsError(
            f"nothing was submitted: {problem}",
            "ask for less (--cpus/--mem, or job: in clustertools.yaml), or use a partition with "
            "larger nodes (--partition)",
        )


def _probe(conn: RemoteShell) -> tuple[str, SlurmLimits, int, Partitions]:
    """One round trip: the login's $HOME, the cluster's limits, how many jobs it holds now, and what
    each partition's nodes have.

    Every Slurm command must answer: a missing or failing scontrol or squeue is an error naming it,
    never a silent fall back to Slurm's defaults (a plan made for limits the cluster does not have).
    """
    result = conn.run(
        f'set -o pipefail; echo "$HOME"; scontrol show config || exit $?; echo {_PROBE_MARK}; '
        f"squeue -h -r -t all -o %i | wc -l || exit $?; echo {_PROBE_MARK}; sinfo -h -e -o '{SINFO_FIT_FORMAT}'",
        timeout=60,
    )
    stderr = result.stderr.decode(errors="replace").strip()
    if result.exit_code != 0 or _PROBE_MARK not in result.text:
        from cluster_tools.transport.ssh import missing_command

        missing = missing_command(stderr) if result.exit_code == 127 else None
        last = stderr.splitlines()[-1] if stderr else "no output"
        raise ClusterToolsError(
            f"cannot read the cluster's Slurm configuration (exit {result.exit_code}): {last}",
            f"`{missing}` is not on the head node's PATH, even in a login shell: is Slurm installed there?"
            if missing
            else "is Slurm running? try `clustertools ssh -- sinfo`",
        )
    head, _, rest = result.text.partition(_PROBE_MARK)
    count, _, nodes = rest.partition(_PROBE_MARK)
    home, _, config = head.partition("\n")
    if "MaxArraySize" not in config or not count.strip().isdigit():
        raise ClusterToolsError(
            "scontrol show config or squeue printed something unexpected: the cluster's "
            "limits are unknown, so nothing was submitted",
            "try `clustertools ssh -- scontrol show config`",
        )
    return home.strip(), parse_scontrol_config(config), int(count.strip()), parse_partitions(nodes)


def _upload(conn: RemoteShell, run: RunRecord, attempt: Attempt) -> None:
    root = run.remote_dir
    directory = f"{root}/attempts/{attempt.number}"
    conn.run(["mkdir", "-p", directory, f"{root}/logs", f"{root}/records/new"], timeout=60).check()
    chunks = [ChunkPlan(c.index, c.offset, c.count) for c in attempt.chunks]
    conn.put_files(
        {
            f"{root}/array.sbatch": (run_scripts.render_array_script(run).encode(), 0o644),
            f"{root}/wrapper.sh": (run_scripts.render_wrapper(run).encode(), 0o755),
            f"{root}/submit.sh": (run_scripts.render_submit_script(run).encode(), 0o755),
            f"{root}/status.sh": (run_scripts.render_status_script(run).encode(), 0o755),
            f"{root}/dataset_description.json": (run_scripts.render_dataset_description(run).encode(), 0o644),
            f"{directory}/manifest": (run_scripts.render_manifest(run.columns, attempt).encode(), 0o644),
            f"{directory}/chunks": (run_scripts.render_chunk_list(chunks).encode(), 0o644),
            # A resubmitted attempt with resources of its own: submit.sh sends this array script instead.
            **(
                {
                    f"{directory}/array.sbatch": (run_scripts.render_array_script(run, attempt.job).encode(), 0o644),
                    f"{directory}/resources": (run_scripts.render_attempt_resources(attempt.job).encode(), 0o644),
                }
                if attempt.job is not None
                else {}
            ),
        }
    )


def _unpack_workdir(conn: RemoteShell, run: RunRecord, data: bytes) -> None:
    """job.workdir beside the run's scripts, unpacked once per run (a resumed submit unpacks the same bytes)."""
    root = shlex.quote(run.remote_dir)
    conn.put_files({f"{run.remote_dir}/workdir.tar.gz": (data, 0o644)})
    conn.run(
        f"cd {root} && rm -rf workdir.new && mkdir workdir.new && tar -xzf workdir.tar.gz -C workdir.new "
        "--no-same-owner && rm -rf workdir && mv workdir.new workdir && rm -f workdir.tar.gz",
        timeout=300,
    ).check()


def _parse_submitted(text: str) -> tuple[dict[int, str], set[int], list[int]]:
    """submit.sh's answer: job id per chunk, the chunks submitted now, and those whose fate is unknown."""
    job_ids, fresh, unknown = {}, set(), []
    for line in text.splitlines():
        match = _SUBMITTED.match(line.strip())
        if match:
            job_ids[int(match[1])] = match[2]
            if match[3] == "submitted":
                fresh.add(int(match[1]))
        elif match := _UNKNOWN.match(line.strip()):
            unknown.append(int(match[1]))
    return job_ids, fresh, unknown


def _stopped(run: RunRecord, attempt: Attempt, unknown: list[int], result) -> ClusterToolsError:
    """Why submit.sh stopped, saying only what is known: an sbatch without an answer is never "nothing"."""
    known = sum(1 for c in attempt.chunks if c.job_id)
    if unknown:
        return ClusterToolsError(
            f"{known} of {len(attempt.chunks)} arrays of run {run.run_id} are known to be submitted; whether array "
            f"{unknown[0]} was accepted is unknown: sbatch did not answer in time and Slurm does not show it (yet)",
            "running the same command again is safe: it submits that array only if neither squeue (any state) "
            f"nor the job-id marker its tasks write when they start shows it; `clustertools status {run.run_id}` "
            "shows its subjects once Slurm answers",
        )
    lines = (result.text + result.stderr.decode(errors="replace")).strip().splitlines()
    refused = [int(m[1]) for m in map(_REFUSED.match, lines) if m]
    if refused:
        why = next((line for line in reversed(lines) if "error" in line.lower()), "no reason given")
        return ClusterToolsError(
            f"Slurm refused array {refused[0]} of run {run.run_id} ({known} of "
            f"{len(attempt.chunks)} arrays submitted): {why}",
            "fix the cause, then run the same command again: what was submitted is kept",
        )
    return ClusterToolsError(
        f"submission stopped after {known} of {len(attempt.chunks)} arrays: {' '.join(lines[-2:])}",
        "fix the cause, then run the same command again: what was submitted is kept",
    )


def _with_attempt(run: RunRecord, attempt: Attempt) -> RunRecord:
    attempts = [attempt if a.number == attempt.number else a for a in run.attempts]
    return run.model_copy(update={"attempts": attempts})

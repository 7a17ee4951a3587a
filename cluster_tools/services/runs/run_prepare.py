"""Making a run's record before anything is sent: the job spec with the command line's values on top
(``job_spec``), a new run or the unfinished one with the same inputs (``prepare_run``), and the files a dry run
shows (``dry_run``). Sending it is submit.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError

from cluster_tools.errors import ClusterToolsError, ConfigError
from cluster_tools.model.clusters.cluster_record import ClusterRecord
from cluster_tools.model.project.project_config import Project
from cluster_tools.model.runs.input_urls import check_input_urls
from cluster_tools.model.runs.job_spec import JobSpec
from cluster_tools.model.runs.run_record import REMOTE_RUNS_DIR, Attempt, RunRecord, new_run_id, now_iso, spec_hash
from cluster_tools.model.runs.subjects import TASK_VARIABLES, SubjectList, unknown_variables
from cluster_tools.render import run_scripts
from cluster_tools.store.run_store import list_runs
from cluster_tools.store.state_dir import StateDir


@dataclass(frozen=True)
class DryRun:
    run: RunRecord
    files: dict[str, str]


def job_spec(project: Project, overrides: dict[str, object]) -> JobSpec:
    """The project's job spec with the command line's values on top, validated again."""
    merged = {**project.job.model_dump(), **{k: v for k, v in overrides.items() if v is not None}}
    if overrides.get("command") is not None:  # a command given now runs instead of the image's entrypoint
        merged["container_args"] = None
    try:
        job = JobSpec.model_validate(merged)
    except ValidationError as exc:
        problems = "; ".join(
            f"--{e['loc'][0] if e['loc'] else 'job'}: {e['msg'].removeprefix('Value error, ')}" for e in exc.errors()
        )
        raise ConfigError(f"invalid job option: {problems}") from None
    if job.command and job.container_args is not None:
        raise ConfigError(
            "job.command and job.container_args are both set: a task runs one of them",
            "keep command (run in the image's shell) or container_args (the image's entrypoint)",
        )
    if not job.command and job.container_args is None:
        raise ConfigError(
            "no command to run", "pass --command 'CMD' or set job.command (or job.container_args) in clustertools.yaml"
        )
    return job


def prepare_run(
    state: StateDir,
    project: Project,
    cluster: ClusterRecord,
    subjects: SubjectList,
    job: JobSpec,
    name: str | None,
    *,
    new_run: bool = False,
    workdir_sha256: str | None = None,
) -> tuple[RunRecord, bool]:
    """A new run record, or the unfinished one with exactly the same inputs (resumed). Not saved.

    When the latest run with exactly the same inputs was submitted whole, that is an error (submitting
    it again would run every subject twice) unless ``new_run``.
    """
    unknown = unknown_variables(job.container_args or [], subjects.columns)
    if unknown:
        raise ConfigError(
            f"job.container_args name {', '.join('${' + n + '}' for n in unknown)}, which this run does not have",
            f"the variables: {', '.join(TASK_VARIABLES + tuple(subjects.columns))}",
        )
    payload = _spec_payload(project, cluster, subjects, job, name, workdir_sha256)
    check_input_urls(project, subjects)
    digest = spec_hash(list(subjects.ids), payload)
    same = [
        r for r in list_runs(state, project.name) if r.spec_hash == digest and r.cluster == cluster.name and r.attempts
    ]  # oldest first
    if same and not same[-1].attempts[0].complete:
        return same[-1], True
    if same and not new_run:
        raise _already_submitted(same[-1])
    run_id = new_run_id(name or project.name, digest)
    if any(r.run_id == run_id for r in same):  # --new-run within the same second
        run_id = new_run_id(name or project.name, f"{digest}-{len(same) + 1}")
    return _new_run(state, project, cluster, subjects, job, run_id, digest, workdir_sha256), False


def _spec_payload(
    project: Project,
    cluster: ClusterRecord,
    subjects: SubjectList,
    job: JobSpec,
    name: str | None,
    workdir_sha256: str | None,
) -> dict[str, object]:
    """What makes a run this run, as its spec hash sees it: a field added since runs were first hashed counts
    only when set."""
    payload: dict[str, object] = {
        "job": _job_fields(job),
        "columns": subjects.columns,
        "rows": subjects.rows,
        "output": str(project.storage.output),
        "input": str(project.storage.input or ""),
        "cluster": cluster.name,
        "name": name or project.name,
    }
    if project.storage.input_credentials:  # only when set: the hashes of runs without one stay as they were
        payload["input_credentials"] = project.storage.input_credentials
    if project.storage.input_credentials_to_task:
        payload["input_credentials_to_task"] = True
    if workdir_sha256:  # changed code is another run
        payload["workdir_sha256"] = workdir_sha256
    if project.storage.shared_inputs:
        payload["shared_inputs"] = project.storage.shared_inputs
    if project.storage.input_include or project.storage.input_exclude:
        payload["input_filters"] = [project.storage.input_include, project.storage.input_exclude]
    return payload


def _new_run(
    state: StateDir,
    project: Project,
    cluster: ClusterRecord,
    subjects: SubjectList,
    job: JobSpec,
    run_id: str,
    digest: str,
    workdir_sha256: str | None,
) -> RunRecord:
    """The record of a run never submitted: its first attempt holds every subject."""
    return RunRecord(
        run_id=run_id,
        project=project.name,
        cluster=cluster.name,
        created_at=now_iso(),
        spec_hash=digest,
        remote_dir=f"~/{REMOTE_RUNS_DIR}/{run_id}",
        output=str(project.storage.output),
        region=cluster.region,
        s3_endpoint_url=cluster.s3_endpoint_url,
        sandbox_s3=cluster.sandbox,
        job=job,
        input=str(project.storage.input) if project.storage.input else None,
        columns=list(subjects.columns),
        input_credentials=project.storage.input_credentials,
        input_credentials_to_task=project.storage.input_credentials_to_task,
        input_include=project.storage.input_include,
        input_exclude=project.storage.input_exclude,
        shared_inputs=project.storage.shared_inputs,
        shared_dirs=bootstrap_shared_dirs(state, project, cluster),
        workdir_sha256=workdir_sha256,
        attempts=[Attempt(number=1, subjects=list(subjects.ids), rows=[list(r) for r in subjects.rows])],
    )


def _job_fields(job: JobSpec) -> dict:
    """The job as the spec hash sees it: fields added since runs were first hashed count only when set, so a
    rerun of an older run is still found."""
    fields = job.model_dump()
    for name in ("gpus", "container_args", "workdir"):
        if not fields[name]:
            del fields[name]
    return fields


def _already_submitted(run: RunRecord) -> ClusterToolsError:
    when = run.attempts[0].submitted_at or run.created_at
    return ClusterToolsError(
        f"run {run.run_id} with exactly these subjects and this spec was submitted at {when} on {run.cluster}",
        f"see `clustertools status {run.run_id}`; pass --new-run to start another run of it",
    )


def bootstrap_shared_dirs(state: StateDir, project: Project, cluster: ClusterRecord) -> list[str]:
    """Where the node bootstrap puts bootstrap.env on this cluster: the sandbox's own shared dir; on a
    ParallelCluster cluster the project's shared storage, else the script's defaults (/shared, /home)."""
    if cluster.sandbox:
        from cluster_tools.services.sandbox.sandbox_bootstrap import SHARED_ON_NODE

        return [SHARED_ON_NODE]
    if cluster.provider != "parallelcluster":
        return []
    from cluster_tools.render.node_bootstrap import shared_dir_of

    configured = shared_dir_of(project)
    return list(dict.fromkeys([*([configured] if configured else []), "/shared", "/home"]))


def dry_run(run: RunRecord) -> DryRun:
    """Exactly the files submit would upload for the run's latest attempt; nothing is sent."""
    attempt = run.attempts[-1]
    return DryRun(
        run,
        {
            "array.sbatch": run_scripts.render_array_script(run),
            "wrapper.sh": run_scripts.render_wrapper(run),
            f"attempts/{attempt.number}/manifest": run_scripts.render_manifest(run.columns, attempt),
        },
    )

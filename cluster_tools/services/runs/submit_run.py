"""One submit, whole: the job spec with its overrides, the run record (or the unfinished one it resumes),
the cost guard, then the upload and sbatch; or, as a dry run, the files it would send. The CLI's `submit`
and the API's ``Cluster.submit`` are this function."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from cluster_tools.model.clusters.cluster_record import ClusterRecord
from cluster_tools.model.progress import Progress
from cluster_tools.model.project.project_config import Project
from cluster_tools.model.runs.job_spec import JobSpec
from cluster_tools.model.runs.run_record import RunRecord
from cluster_tools.model.runs.subjects import SubjectList
from cluster_tools.model.runs.workdir import PackedWorkdir, pack_workdir
from cluster_tools.services.runs.submit import SubmitResult
from cluster_tools.store.state_dir import StateDir
from cluster_tools.transport.remote_shell import ShellFactory


@dataclass(frozen=True)
class Submitted:
    run: RunRecord
    resumed: bool  # an interrupted submit of the same inputs was finished
    result: SubmitResult | None = None  # None for a dry run: nothing was sent
    files: dict[str, str] | None = None  # a dry run's scripts and manifest, by remote path


def submit_run(
    state: StateDir,
    project: Project,
    cluster: ClusterRecord,
    subjects: SubjectList,
    overrides: Mapping[str, object],
    *,
    name: str | None = None,
    new_run: bool = False,
    minutes_per_subject: float | None = None,
    yes: bool = False,
    approve: Callable[[str], bool] | None = None,
    dry_run: bool = False,
    progress: Progress = lambda _: None,
    environ: Mapping[str, str],
    connect: ShellFactory,
    start: bool = False,
) -> Submitted:
    """``start``: start the cluster first when it is stopped (clustertools start), else a stopped cluster refuses
    the submit in one line (ClusterStopped)."""
    from cluster_tools.services.runs.cost_guard import check_cost, enforce
    from cluster_tools.services.runs.run_prepare import dry_run as render_dry_run
    from cluster_tools.services.runs.run_prepare import job_spec, prepare_run
    from cluster_tools.services.runs.submit import submit_attempt

    job = job_spec(project, dict(overrides))
    packed = _packed_workdir(project, job, progress)
    run, resumed = prepare_run(
        state, project, cluster, subjects, job, name, new_run=new_run, workdir_sha256=packed.sha256 if packed else None
    )
    check = check_cost(project, job, len(subjects.ids), cluster, minutes_per_subject, environ)
    for line in check.lines:
        progress(line)
    enforce(check, yes=yes or dry_run or resumed, approve=approve)
    if dry_run:
        return Submitted(run, resumed, files=render_dry_run(run).files)
    if start:
        cluster = _started(state, project, cluster, connect, environ, progress)
    if resumed:
        progress(f"resuming run {run.run_id}: not all its arrays were submitted yet (interrupted, or refused)")
    result = submit_attempt(
        state,
        run,
        cluster,
        progress=progress,
        resumed=resumed,
        connect=connect,
        workdir=packed.data if packed else None,
    )
    return Submitted(result.run, resumed, result=result)


def _packed_workdir(project: Project, job: JobSpec, progress: Progress) -> PackedWorkdir | None:
    """job.workdir packed to be sent with the run (None without one); its size said to ``progress``."""
    packed = pack_workdir(project.directory, job.workdir) if job.workdir else None
    if packed is not None:
        progress(f"job.workdir {job.workdir}: {packed.files} file(s), {packed.size / 2**20:.1f} MiB, sent with the run")
    return packed


def _started(
    state: StateDir,
    project: Project,
    cluster: ClusterRecord,
    connect: ShellFactory,
    environ: Mapping[str, str],
    progress: Progress,
) -> ClusterRecord:
    """The cluster, started when it was stopped; its record read again (a started head node has a new address)."""
    from cluster_tools.services.clusters.lifecycle_start import start_cluster
    from cluster_tools.store.cluster_store import load_cluster

    result = start_cluster(state, cluster, project, connect, environ=environ, progress=progress)
    if result.started:
        progress(f"started {cluster.name}: {', '.join(result.started)}")
    return load_cluster(state, cluster.name)

"""`clustertools resubmit`: rerun only the failed or missing subjects, as a new attempt of the run."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import ValidationError

from cluster_tools.errors import ConfigError
from cluster_tools.model.clusters.cluster_record import ClusterRecord
from cluster_tools.model.progress import Progress
from cluster_tools.model.runs.job_spec import JobSpec
from cluster_tools.model.runs.run_record import RunRecord
from cluster_tools.services.runs import run_follow as run_service
from cluster_tools.services.runs.submit import SubmitResult, submit_attempt
from cluster_tools.store.state_dir import StateDir
from cluster_tools.transport.remote_shell import ShellFactory


def resubmit(
    state: StateDir,
    run: RunRecord,
    cluster: ClusterRecord,
    connect: ShellFactory,
    *,
    failed: bool,
    missing: bool,
    dry_run: bool,
    progress: Progress,
    recompute_kept: bool = False,
    states: frozenset[str] = frozenset(),
    resources: Mapping[str, object] | None = None,
) -> tuple[SubmitResult | None, list[str]]:
    """Pick the subjects from a fresh status (and S3 for ``missing``), then submit them as attempt N+1.

    ``states``: with ``failed``, only subjects in these (TIMEOUT, OOM...). ``resources``: mem, cpus, time,
    partition, gpus for the new attempt, over the last attempt's (so a second resubmit keeps them).
    An unfinished resubmission (interrupted before all its arrays were sent) is finished instead.
    Subjects that computed but could not upload keep their outputs on the head node: they are left to
    `results push` unless ``recompute_kept``.
    """
    job = attempt_job(run, resources or {})
    last = run.attempts[-1]
    if len(run.attempts) > 1 and not last.complete:
        progress(f"finishing attempt {last.number}, which was interrupted before all its arrays were submitted")
        return (
            None if dry_run else submit_attempt(state, run, cluster, progress=progress, resumed=True, connect=connect)
        ), list(last.subjects)
    status = run_service.status_once(state, run, cluster, connect)
    without_output = subjects_without_output(run) if missing else None
    rerun = run_service.subjects_to_rerun(status, failed=failed, without_output=without_output, states=states)
    if not recompute_kept:
        rerun = _leave_kept_outputs_to_push(run, status, rerun, progress)
    updated = run_service.next_attempt(run, rerun, job)
    if dry_run:
        return None, rerun
    return submit_attempt(state, updated, cluster, progress=progress, connect=connect), rerun


RESOURCES = ("mem", "cpus", "time", "partition", "gpus")


def attempt_job(run: RunRecord, resources: Mapping[str, object]) -> JobSpec:
    """The last attempt's job with ``resources`` over it, checked by the project's own rules."""
    unknown = set(resources) - set(RESOURCES)
    if unknown:
        raise ConfigError(f"cannot change {', '.join(sorted(unknown))} on resubmit", f"change: {', '.join(RESOURCES)}")
    base = run.job_of(run.attempts[-1].number)
    changes = {k: v for k, v in resources.items() if v is not None}
    try:
        return JobSpec.model_validate({**base.model_dump(), **changes})
    except ValidationError as exc:
        problems = "; ".join(f"--{e['loc'][0]}: {e['msg'].removeprefix('Value error, ')}" for e in exc.errors())
        raise ConfigError(f"invalid resubmit option: {problems}") from None


def _leave_kept_outputs_to_push(run: RunRecord, status, rerun: list[str], progress: Progress) -> list[str]:
    from cluster_tools.services.runs.results_push import kept_subjects

    kept = {s.subject for s in kept_subjects(status)} & set(rerun)
    if not kept:
        return rerun
    push = f"clustertools results push {run.run_id}"
    if kept == set(rerun):
        raise ConfigError(
            f"nothing to resubmit: the {len(kept)} subject(s) computed, and keep their outputs on the "
            f"head node after their upload failed",
            f"upload them without recomputing: {push}",
        )
    progress(
        f"not rerunning {len(kept)} subject(s) whose outputs are kept on the head node after a failed upload: "
        f"{push} uploads them (--recompute-kept reruns them instead)"
    )
    return [s for s in rerun if s not in kept]


def subjects_without_output(run: RunRecord) -> set[str]:
    """Subjects of the run with no object under ``<output>/<run-id>/<subject>/`` in S3."""
    from cluster_tools.services.runs.results import client_for_run, subjects_with_output

    present = subjects_with_output(client_for_run(run), run)
    return {s for s in run.subjects if s not in present}

"""`clustertools debug`: an interactive shell on a compute node, as a task of a run had it.

With a subject, the run's own wrapper (rendered from the run's record, as submit renders it) runs
in ``--debug`` mode under ``srun --pty``: same manifest line, environment, staged input and container
as the task, then a shell instead of the command. The job is the shell: leaving it frees the node.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypedDict

from pydantic import ValidationError

from cluster_tools.errors import ConfigError
from cluster_tools.model.clusters.cluster_record import ClusterRecord
from cluster_tools.model.runs.job_spec import JobSpec
from cluster_tools.model.runs.run_record import RunRecord
from cluster_tools.slurm.interactive import srun_argv
from cluster_tools.transport.remote_shell import ShellFactory

DEBUG_SCRIPT = "debug.sh"  # beside the run's wrapper.sh: the same wrapper, rendered now, with --debug


@dataclass(frozen=True)
class DebugPlan:
    """What `debug` sends: the remote command line, and the files it uploads first."""

    command: str
    files: dict[str, str]
    job_name: str
    subject: str | None = None
    attempt: int | None = None


def debug_resources(base: JobSpec | None, overrides: dict[str, object]) -> JobSpec:
    """The run's (or project's) resources with the command line's on top, validated as for submit."""
    merged = {**(base or JobSpec()).model_dump(), **{k: v for k, v in overrides.items() if v is not None}}
    try:
        return JobSpec.model_validate(merged)
    except ValidationError as exc:
        problems = "; ".join(f"--{e['loc'][0]}: {e['msg'].removeprefix('Value error, ')}" for e in exc.errors())
        raise ConfigError(f"invalid option: {problems}") from None


def task_of(run: RunRecord, subject: str) -> tuple[int, int]:
    """(attempt, index in that attempt's manifest) of the subject's latest attempt."""
    for attempt in reversed(run.attempts):
        if subject in attempt.subjects:
            return attempt.number, attempt.subjects.index(subject)
    raise ConfigError(f"{subject!r} is not a subject of run {run.run_id}", "`clustertools status RUN --all` lists them")


class _SrunResources(TypedDict):
    """srun_argv's resource keywords, as a job spec gives them."""

    partition: str | None
    cpus: int
    mem: str
    time: str
    gpus: int


def plan_debug(run: RunRecord | None, subject: str | None, resources: JobSpec, *, pty: bool) -> DebugPlan:
    """The remote command (and files) for a shell with ``resources``; with ``subject``, as its task had it."""
    from cluster_tools.render.run_scripts import render_wrapper

    slurm: _SrunResources = {
        "partition": resources.partition,
        "cpus": resources.cpus,
        "mem": resources.mem,
        "time": resources.time,
        "gpus": resources.gpus,
    }
    if subject is None:
        name = f"ctdebug-{run.run_id}" if run else "ctdebug"
        return DebugPlan(
            command="exec " + shlex.join(srun_argv(["bash", "-i"], job_name=name, pty=pty, **slurm)),
            files={},
            job_name=name,
        )
    if run is None:
        raise ConfigError("a subject needs its run", "pass --run RUN (`clustertools runs` lists them)")
    attempt, index = task_of(run, subject)
    name = f"ctdebug-{run.run_id}"
    argv = srun_argv(["bash", DEBUG_SCRIPT, "--debug", str(attempt), str(index)], job_name=name, pty=pty, **slurm)
    return DebugPlan(
        command=f"cd {shlex.quote(run.remote_dir)} && exec {shlex.join(argv)}",
        files={f"{run.remote_dir}/{DEBUG_SCRIPT}": render_wrapper(run)},
        job_name=name,
        subject=subject,
        attempt=attempt,
    )


def run_debug(
    record: ClusterRecord,
    plan: DebugPlan,
    terminal,
    *,
    pty: bool,
    connect: ShellFactory,
    on_new_host_key: Callable[[str, str], None] | None = None,
) -> int:
    """Upload the plan's files, then run its srun wired to ``terminal``; returns the shell's exit status."""
    from cluster_tools.errors import ClusterToolsError, TransportError

    with connect(record, on_new_host_key=on_new_host_key) as conn:
        if plan.files:
            directory = next(iter(plan.files)).rsplit("/", 1)[0]
            if conn.run(["test", "-f", f"{directory}/wrapper.sh"], timeout=60).exit_code != 0:
                raise ClusterToolsError(
                    f"the run has no files on {record.name} ({directory})",
                    "was it submitted to this cluster? `clustertools runs` shows where each run went",
                )
            try:
                conn.put_files({path: (text.encode(), 0o755) for path, text in plan.files.items()})
            except TransportError as exc:
                raise ClusterToolsError(f"cannot write {DEBUG_SCRIPT} beside the run's files: {exc.message}") from None
        return conn.session(plan.command, terminal, pty=pty)

"""A run as the Python API and the CLI hold it (``cluster_tools.Run``): status, wait, logs, cancel, resubmit and
its outputs, each one call of a service. The CLI's run commands are these methods and a print.

A run is found by its id (any unique start) in a state dir, without the project file; its cluster is looked up
when a method needs the head node. How it reaches the head node (``connect``) is given when the Run is made
(``Run.open``'s default: SSH, ``cluster_shell.connect``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from cluster_tools.errors import ClusterToolsError, ConfigError
from cluster_tools.model.clusters.cluster_record import ClusterRecord
from cluster_tools.model.progress import Progress
from cluster_tools.model.runs.run_record import RunRecord
from cluster_tools.model.runs.run_status import RunStatus
from cluster_tools.services.remote import cluster_shell
from cluster_tools.store.state_dir import StateDir
from cluster_tools.transport.remote_shell import ShellFactory


class RunFailed(ClusterToolsError):
    """The run ended and not every subject succeeded; ``status`` says which and how."""

    def __init__(self, status: RunStatus) -> None:
        counts = ", ".join(f"{state.lower()} {n}" for state, n in status.counts.items() if n)
        super().__init__(
            f"run {status.run_id} ended with subjects not succeeded: {counts}",
            f"clustertools status {status.run_id} lists them; resubmit reruns them",
        )
        self.status = status


@dataclass(frozen=True)
class Resubmission:
    """What ``Run.rerun`` did, or would do on a dry run."""

    run: Run  # with its new attempt; as it was on a dry run
    subjects: list[str]  # those rerun (or that would be)
    attempt: int | None  # the new attempt's number; None on a dry run
    arrays: int  # the Slurm arrays it was sent as

    def to_json(self) -> dict:
        return {"run": self.run.id, "subjects": self.subjects, "attempt": self.attempt, "dry_run": self.attempt is None}


@dataclass(frozen=True)
class Run:
    state: StateDir
    record: RunRecord
    connect: ShellFactory  # how to reach the head node

    @classmethod
    def open(
        cls,
        state: StateDir,
        run_id: str | None = None,
        project_name: str | None = None,
        *,
        connect: ShellFactory = cluster_shell.connect,
        warn: Progress | None = None,
    ) -> Run:
        """A run by id, any unique start of it (default: ``project_name``'s latest run); ``connect``: how its methods
        reach the head node (default: SSH)."""
        from cluster_tools.store.run_store import resolve_run

        return cls(state, resolve_run(state, run_id, project_name, warn=warn or (lambda _: None)), connect)

    @property
    def id(self) -> str:
        return self.record.run_id

    @property
    def subjects(self) -> list[str]:
        return list(self.record.subjects)

    def cluster_record(self) -> ClusterRecord | None:
        """The cluster the run was sent to, as recorded here; None when it is not known here any more."""
        from cluster_tools.errors import ClusterNotFound

        try:
            return self._cluster()
        except ClusterNotFound:
            return None  # status still reads the records the tasks left in S3

    def _cluster(self) -> ClusterRecord:
        """The run's cluster; ClusterNotFound when it is not known here."""
        from cluster_tools.store.cluster_store import load_cluster

        return load_cluster(self.state, self.record.cluster)

    def status(self, progress: Progress | None = None) -> RunStatus:
        """Every subject's state now (one SSH round trip; the records in S3 when the cluster is gone)."""
        from cluster_tools.services.runs.run_follow import status_once

        return status_once(
            self.state, self.record, self.cluster_record(), self.connect, note=progress or (lambda _: None)
        )

    def wait(
        self,
        *,
        interval: float = 5.0,
        timeout: float | None = None,
        check: bool = True,
        on_status: Callable[[RunStatus], None] | None = None,
    ) -> RunStatus:
        """Refresh until no subject is pending or running (over one connection); then, with ``check``,
        raise RunFailed unless every subject succeeded. ``timeout`` seconds: a TimeoutError after it."""
        from cluster_tools.services.runs.run_follow import watch

        cluster = self._cluster()
        deadline = None if timeout is None else time.monotonic() + timeout

        def sleep(seconds: float) -> None:
            if deadline is not None and time.monotonic() + seconds > deadline:
                raise TimeoutError(f"run {self.id} still had subjects pending or running after {timeout:g} s")
            time.sleep(seconds)

        status = watch(
            self.state,
            self.record,
            cluster,
            self.connect,
            interval=interval,
            on_status=on_status or (lambda _: None),
            sleep=sleep,
        )
        if check and not status.all_succeeded:
            raise RunFailed(status)
        return status

    def logs(self, subject: str, *, stderr: bool = False, attempt: int | None = None) -> str:
        """A subject's stdout (its stderr with ``stderr=True``) from the head node; ``attempt``: an earlier one."""
        import io

        out = io.BytesIO()
        self.write_logs(subject, out, io.BytesIO(), stderr=stderr, attempt=attempt)
        return out.getvalue().decode("utf-8", "replace")

    def write_logs(
        self,
        subject: str,
        out: IO[bytes],
        err: IO[bytes],
        *,
        stderr: bool = False,
        attempt: int | None = None,
        follow: bool = False,
        both: bool = False,
    ) -> int:
        """A subject's log into ``out`` as it arrives; ``follow`` until its task ends. ``both``: stdout's log, then
        the command's stderr (when it has any) into ``err`` under a header. The exit status of the tail."""
        from cluster_tools.services.runs.run_follow import stream_log

        return stream_log(
            self.record,
            self._cluster(),
            self.connect,
            subject=subject,
            attempt=attempt,
            stream="err" if stderr else "out",
            follow=follow,
            stdout=out,
            stderr=err,
            with_stderr=both,
        )

    def cancel(self, subjects: Sequence[str] = ()):
        """scancel the run's pending and running tasks, or only ``subjects``'; a ``CancelResult``."""
        from cluster_tools.services.runs.run_cancel import cancel

        return cancel(self.state, self.record, self._cluster(), self.connect, subjects)

    def resubmit(
        self,
        *,
        failed: bool = True,
        missing: bool = False,
        states: Sequence[str] = (),
        mem: str | None = None,
        cpus: int | None = None,
        time: str | None = None,
        partition: str | None = None,
        gpus: int | None = None,
        progress: Progress | None = None,
    ) -> Run:
        """Rerun the unsuccessful subjects (``failed``: FAILED, TIMEOUT, OOM, NODE_FAIL, CANCELLED, or only
        ``states``) and/or those without a success record or output in S3 (``missing``), as the run's next
        attempt, with other resources when given (``mem="16G"`` for OOM, ``time=`` for TIMEOUT, ``partition=``
        an on-demand queue for NODE_FAIL); SUCCEEDED subjects with outputs never rerun. The run, updated."""
        return self.rerun(
            failed=failed,
            missing=missing,
            states=states,
            mem=mem,
            cpus=cpus,
            time=time,
            partition=partition,
            gpus=gpus,
            progress=progress,
        ).run

    def rerun(
        self,
        *,
        failed: bool = True,
        missing: bool = False,
        states: Sequence[str] = (),
        mem: str | None = None,
        cpus: int | None = None,
        time: str | None = None,
        partition: str | None = None,
        gpus: int | None = None,
        dry_run: bool = False,
        recompute_kept: bool = False,
        progress: Progress | None = None,
    ) -> Resubmission:
        """resubmit, saying what it did: a ``Resubmission``. ``dry_run``: only which subjects would rerun.
        ``recompute_kept``: also those whose outputs wait on the head node (default: left to ``results push``)."""
        from cluster_tools.services.runs.resubmit import resubmit

        if not (failed or missing):
            raise ConfigError(
                "say which subjects to rerun", "pass --failed or --missing (in Python: failed=True, missing=True)"
            )
        if states and not failed:
            raise ConfigError(
                "--state chooses among the unsuccessful subjects",
                "pass it with --failed (in Python: states= with failed=True)",
            )
        result, subjects = resubmit(
            self.state,
            self.record,
            self._cluster(),
            self.connect,
            failed=failed,
            missing=missing,
            dry_run=dry_run,
            progress=progress or (lambda _: None),
            recompute_kept=recompute_kept,
            states=unsuccessful_states(states),
            resources={"mem": mem, "cpus": cpus, "time": time, "partition": partition, "gpus": gpus},
        )
        if result is None:
            return Resubmission(self, subjects, None, 0)
        return Resubmission(Run(self.state, result.run, self.connect), subjects, result.attempt, len(result.arrays))

    def cost(self, project=None, *, aws=None, progress: Progress | None = None):
        """What the run cost, from its records (``RecordedCost``: ``.cost.total`` dollars, each subject's share),
        priced as ``project``'s (a ``config.Project``) cluster bills; ``aws``: price lookups beyond the table."""
        from cluster_tools.services.runs.run_cost import cost_of_run

        return cost_of_run(project, self.record.job, self.status(progress).subjects, aws=aws)

    def report(self, project=None, *, aws=None, progress: Progress | None = None):
        """The run's report (``RunReport``: states, runtimes, failures, cost when ``project``'s cluster can be
        priced), from one status read; what `clustertools report` renders."""
        from cluster_tools.services.runs.report import run_report
        from cluster_tools.services.runs.run_cost import run_costs

        return run_report(
            self.state,
            self.record,
            self.cluster_record(),
            self.connect,
            note=progress or (lambda _: None),
            costs_from_status=run_costs(project, self.record.job, aws=aws),
        )

    def results(self, subjects: Sequence[str] | None = None) -> list:
        """The run's output objects in S3 (``ResultObject``: subject, key relative to the run, size, time)."""
        from cluster_tools.services.runs.results import check_sandbox_outputs, client_for_run, list_results

        check_sandbox_outputs(self.state, self.record)
        return list_results(
            client_for_run(self.record), self.record.output_location.bucket, self.record.run_prefix, subjects
        ).objects

    def download(self, dest: str | os.PathLike[str], subjects: Sequence[str] | None = None, *, jobs: int = 32):
        """Download the outputs into ``dest/<subject>/<path>`` (files already there with their size are
        skipped); a ``DownloadReport`` (``.ok``, ``.failed``)."""
        from cluster_tools.services.runs.results import check_sandbox_outputs, client_for_run, download_results

        check_sandbox_outputs(self.state, self.record)
        return download_results(
            client_for_run(self.record, max_pool_connections=jobs),
            self.record.output_location.bucket,
            self.record.run_prefix,
            Path(dest),
            subjects,
            jobs=jobs,
        )

    def collect(self, name: str, *, jobs: int = 32) -> list[dict]:
        """One file of every subject (JSON, JSON lines, CSV or TSV) as rows, each with its ``subject``."""
        from cluster_tools.services.runs.results import check_sandbox_outputs, client_for_run
        from cluster_tools.services.runs.results_collect import collect_table

        check_sandbox_outputs(self.state, self.record)
        table = collect_table(
            client_for_run(self.record, max_pool_connections=jobs),
            self.record.output_location.bucket,
            self.record.run_prefix,
            self.subjects,
            name,
            jobs=jobs,
        )
        return table.rows


def unsuccessful_states(names: Sequence[str]) -> frozenset[str]:
    """``states`` of resubmit: each an unsuccessful state, case-insensitive."""
    from cluster_tools.model.runs.run_record import UNSUCCESSFUL

    chosen = frozenset(name.upper() for name in names)
    unknown = chosen - set(UNSUCCESSFUL)
    if unknown:
        raise ConfigError(
            f"not a state a subject is rerun from: {', '.join(sorted(unknown))}", f"one of: {', '.join(UNSUCCESSFUL)}"
        )
    return chosen

"""The Python API of clustertools: the same services the CLI calls, as objects a script can hold.

    from cluster_tools import Project

    project = Project.load()                         # the nearest clustertools.yaml
    run = project.cluster().submit(["sub-01", "sub-02"], command='my-tool "$SUBJECT"', mem="4G")
    status = run.wait()                              # raises RunFailed unless every subject succeeded
    print(status.counts, run.logs("sub-01"))

Shaped like submitit's Executor/Job: a cluster submits, a run is waited on; every result is a typed object
(``RunStatus``, ``SubjectStatus``) whose ``to_json()`` is what the CLI's ``--json`` prints, and every error is
a ``ClusterToolsError``. The cost guard is part of ``submit``: above ``cost.confirm_above_usd`` (or with a
cost nobody could find) nothing is sent unless ``yes=True`` or ``approve(question)`` returns True.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Union

from cluster_tools.api.run_api import Progress, Resubmission, Run, RunFailed
from cluster_tools.errors import ConfigError
from cluster_tools.model.clusters.cluster_record import ClusterRecord
from cluster_tools.model.project.project_config import Project as ProjectModel
from cluster_tools.model.runs.subjects import SubjectList
from cluster_tools.services.remote import cluster_shell
from cluster_tools.store.state_dir import StateDir, default_state_dir
from cluster_tools.transport.remote_shell import ShellFactory

__all__ = ["Cluster", "Progress", "Project", "Resubmission", "Run", "RunFailed", "Subjects", "subject_list"]
Subjects = Union[Sequence[str], Sequence[Mapping[str, str]], str, "os.PathLike[str]"]


@dataclass(frozen=True)
class Project:
    """A project (clustertools.yaml), the state dir its runs and clusters are recorded in, and how its clusters'
    head nodes are reached (``connect``: SSH unless given); its clusters and runs use that same ``connect``."""

    model: ProjectModel
    state: StateDir
    environ: Mapping[str, str]
    connect: ShellFactory = cluster_shell.connect

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str] | None = None,
        *,
        state_dir: str | os.PathLike[str] | None = None,
        environ: Mapping[str, str] | None = None,
        connect: ShellFactory = cluster_shell.connect,
    ) -> Project:
        """``path``: a clustertools.yaml (default: the nearest one from the working directory up);
        ``state_dir``: where runs are recorded (default: as the CLI, $CLUSTERTOOLS_STATE_DIR or the user's);
        ``connect``: how head nodes are reached (default: SSH)."""
        from cluster_tools.model.project.project_config import load_project
        from cluster_tools.model.project.project_file import find_project_file

        env = dict(os.environ if environ is None else environ)
        file = Path(path) if path is not None else find_project_file(Path.cwd())
        if file is None or not file.is_file():
            raise ConfigError(
                f"no project file {file or 'clustertools.yaml here or above'}", "create one with `clustertools init`"
            )
        root = Path(state_dir) if state_dir is not None else default_state_dir(env)
        return cls(load_project(file), StateDir(root), env, connect)

    @property
    def name(self) -> str:
        return self.model.name

    def cluster(self, name: str | None = None) -> Cluster:
        """``name``, else the project's cluster, else the only one known (as the CLI's ``-c``)."""
        from cluster_tools.store.cluster_store import load_cluster, resolve_cluster_name

        record = load_cluster(self.state, resolve_cluster_name(self.state, name, self.model.cluster))
        return Cluster(self, record)

    def runs(self) -> list[Run]:
        """The project's runs recorded here, oldest first."""
        from cluster_tools.store.run_store import list_runs

        return [Run(self.state, record, self.connect) for record in list_runs(self.state, self.name)]

    def run(self, run_id: str | None = None) -> Run:
        """A run by id (default: the project's latest)."""
        return Run.open(self.state, run_id, self.name, connect=self.connect)


@dataclass(frozen=True)
class Cluster:
    project: Project
    record: ClusterRecord

    @property
    def name(self) -> str:
        return self.record.name

    def s3(self):
        """A boto3 S3 client for the storage this cluster's tasks read and write: AWS in the cluster's region, or
        the sandbox's endpoint. For a script's own inputs (one config per job) and outputs."""
        from cluster_tools.services.runs.results import client_for_cluster

        return client_for_cluster(self.record)

    def estimate(
        self,
        subjects: int | Subjects,
        *,
        minutes_per_subject: float | None = None,
        cpus: int | None = None,
        gpus: int | None = None,
        mem: str | None = None,
        time: str | None = None,
        partition: str | None = None,
    ):
        """What a run of ``subjects`` (a count, or as for submit) would cost on AWS, exactly as submit shows it:
        an ``Estimate`` (``.run.total`` dollars, ``.run.wall_minutes``, ``.run.nodes``), a ``CostUnknown``
        (``.reason``) when no price was found, or None where nothing is billed (the sandbox, a cluster over SSH)."""
        from cluster_tools.services.aws.price_lookup import aws_for
        from cluster_tools.services.runs.run_cost import submit_estimate
        from cluster_tools.services.runs.run_prepare import job_spec

        count = subjects if isinstance(subjects, int) else len(subject_list(subjects).ids)
        job = job_spec(
            self.project.model,
            {
                "command": self.project.model.job.command or "true",
                "cpus": cpus,
                "gpus": gpus,
                "mem": mem,
                "time": time,
                "partition": partition,
            },
        )
        return submit_estimate(
            self.project.model, job, count, self.record.provider, minutes_per_subject, aws=aws_for(self.project.environ)
        )

    def subjects_in(self, url: str, pattern: str | None = None) -> list[str]:
        """The subject IDs right under ``url`` in the cluster's S3 (``sub-*`` with ``pattern="sub-*"``)."""
        from cluster_tools.services.project.subjects_from_s3 import subjects_in

        return list(subjects_in(self.s3(), url, pattern).subjects)

    def submit(
        self,
        subjects: Subjects,
        *,
        command: str | None = None,
        container: str | None = None,
        workdir: str | None = None,
        cpus: int | None = None,
        gpus: int | None = None,
        mem: str | None = None,
        time: str | None = None,
        partition: str | None = None,
        throttle: int | None = None,
        name: str | None = None,
        new_run: bool = False,
        minutes_per_subject: float | None = None,
        yes: bool = False,
        approve: Callable[[str], bool] | None = None,
        progress: Progress | None = None,
        start: bool = False,
    ) -> Run:
        """One Slurm array task per subject: ids, rows (dicts: their keys become each task's environment
        variables, with a ``subject`` key), or a subjects file. Keyword arguments override the project's job.
        Submitting the same again finishes an interrupted submit; a run submitted whole is refused unless
        ``new_run``. The cost guard (see the module) runs first. A stopped cluster (autostop) raises
        ``ClusterStopped`` unless ``start``: then it is started first."""
        from cluster_tools.services.runs.submit_run import submit_run

        done = submit_run(
            self.project.state,
            self.project.model,
            self.record,
            subject_list(subjects),
            {
                "command": command,
                "container": container,
                "workdir": workdir,
                "cpus": cpus,
                "gpus": gpus,
                "mem": mem,
                "time": time,
                "partition": partition,
                "throttle": throttle,
            },
            name=name,
            new_run=new_run,
            minutes_per_subject=minutes_per_subject,
            yes=yes,
            approve=approve,
            progress=progress or (lambda _: None),
            environ=self.project.environ,
            connect=self.project.connect,
            start=start,
        )
        return Run(self.project.state, done.run, self.project.connect)


def subject_list(subjects: Subjects) -> SubjectList:
    """Ids, rows (dicts with a ``subject`` key; every key becomes an environment variable of its task, checked
    as a CSV column is) or a path to a subjects file, as one SubjectList."""
    from cluster_tools.model.runs.subjects import parse_subject_list, read_subject_file

    if isinstance(subjects, (str, os.PathLike)):
        return read_subject_file(Path(subjects))
    items = list(subjects)
    rows = [item for item in items if isinstance(item, Mapping)]
    if items and len(rows) == len(items):
        return parse_subject_list(_rows_as_csv(rows), "rows", as_csv=True)
    if all(isinstance(item, str) for item in items):
        return parse_subject_list("".join(f"{item}\n" for item in items), "subjects", as_csv=False)
    raise ConfigError("subjects: give ids (strings), rows (dicts with a 'subject' key) or a subjects file")


def _rows_as_csv(rows: Iterable[Mapping[str, str]]) -> str:
    import csv
    import io

    rows = list(rows)
    columns = list(dict.fromkeys(key for row in rows for key in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows({key: str(value) for key, value in row.items()} for row in rows)
    return buffer.getvalue()

"""Runs: one subject list + one job spec, submitted as one or more attempts of Slurm arrays.

The local record of a run (kept in the state dir by store/run_store.py, never in the repo) holds what is needed to
read its status and results later without asking the cluster what it was: the subjects of each attempt in
task order, the arrays submitted, where outputs go.

Layouts (the single source of truth for every module that builds a path):
- head node: ``<remote_dir>/`` = ``~/.clustertools/runs/<run-id>/`` (home is shared with compute nodes)
- S3: outputs at ``<output>/<run-id>/<subject>/``, records at ``<output>/<run-id>/.clustertools/records/``
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from cluster_tools.model.names import CLUSTER_NAME, PROJECT_NAME, RUN_ID, RUN_NAME, NameRule
from cluster_tools.model.runs.job_spec import JobSpec, S3Location

REMOTE_RUNS_DIR = ".clustertools/runs"  # relative to the login user's home on the head node
META_PREFIX = ".clustertools"  # under <output>/<run-id>/: cannot clash with a subject (they start alnum)

# How a task ends without success, each its own state: FAILED (its command exited non-zero), TIMEOUT (Slurm's time
# limit), OOM (the kernel killed it for memory), NODE_FAIL (its node was lost), CANCELLED (scancel).
UNSUCCESSFUL = ("FAILED", "TIMEOUT", "OOM", "NODE_FAIL", "CANCELLED")
FINAL_STATES = ("SUCCEEDED", *UNSUCCESSFUL)
FAILURES = ("FAILED", "TIMEOUT", "OOM", "NODE_FAIL")  # what a report counts as failed (a cancel is the user's)


class Chunk(BaseModel):
    """One Slurm array: tasks 0..count-1 are the attempt's subjects offset..offset+count-1."""

    model_config = ConfigDict(extra="forbid")

    index: int
    offset: int
    count: int
    job_id: str | None = None


class Attempt(BaseModel):
    model_config = ConfigDict(extra="forbid")

    number: int = Field(ge=1)
    subjects: list[str]
    rows: list[list[str]] = Field(default_factory=list)  # CSV runs: the values of RunRecord.columns
    chunks: list[Chunk] = Field(default_factory=list)
    # Set (and saved) just before submit.sh may reach sbatch; cleared again when Slurm refused every array.
    submitted_at: str | None = None
    # The attempt's own resources when it was resubmitted with others (--mem, --time...); None: the run's.
    job: JobSpec | None = None

    @property
    def complete(self) -> bool:
        return bool(self.chunks) and all(c.job_id for c in self.chunks)

    @property
    def sent(self) -> bool:
        """Slurm may hold some of its arrays: a submission was attempted and not refused outright."""
        return self.submitted_at is not None or any(c.job_id for c in self.chunks)


class RunRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    run_id: str
    project: str
    cluster: str
    created_at: str
    spec_hash: str
    remote_dir: str
    output: str  # s3://bucket/prefix
    region: str | None = None
    s3_endpoint_url: str | None = None
    sandbox_s3: bool = False
    job: JobSpec
    input: str | None = None
    input_credentials: str | None = None  # a Secrets Manager ARN; the value is never stored anywhere
    input_credentials_to_task: bool = False  # storage.input_credentials_to_task: the command gets them too
    input_include: list[str] = Field(default_factory=list)  # storage.input_include/exclude: what is staged
    input_exclude: list[str] = Field(default_factory=list)
    shared_inputs: list[str] = Field(default_factory=list)  # storage.shared_inputs: fetched once per node
    columns: list[str] = Field(default_factory=list)
    # Where the node bootstrap may have left bootstrap.env (runtime, image file, conda env): the wrapper
    # reads the first it finds. Empty for clusters clustertools did not bootstrap.
    shared_dirs: list[str] = Field(default_factory=list)
    workdir_sha256: str | None = None  # job.workdir as sent with the run (workdir.py): the tasks' code
    attempts: list[Attempt] = Field(default_factory=list)
    last_counts: dict[str, int] = Field(default_factory=dict)
    last_status_at: str | None = None

    # A record read back is checked as a new one is: its names become paths, shell words and S3 keys.
    @field_validator("run_id", "project", "cluster")
    @classmethod
    def _names(cls, value: str, info: ValidationInfo) -> str:
        rules: dict[str | None, NameRule] = {"run_id": RUN_ID, "project": PROJECT_NAME, "cluster": CLUSTER_NAME}
        return rules[info.field_name].check(value)

    @property
    def output_location(self) -> S3Location:
        return S3Location.parse(self.output)

    @property
    def run_prefix(self) -> str:
        """``<prefix>/<run-id>`` inside the output bucket (no trailing slash)."""
        prefix = self.output_location.prefix
        return f"{prefix}/{self.run_id}" if prefix else self.run_id

    @property
    def records_prefix(self) -> str:
        return f"{self.run_prefix}/{META_PREFIX}/records/"

    @property
    def sent(self) -> bool:
        """False for a record saved before a submit that was then refused (a probe, MaxJobCount, sbatch):
        it is kept so the same submit resumes it, but it is not a run to list."""
        return any(a.sent for a in self.attempts)

    @property
    def subjects(self) -> list[str]:
        """Every subject of the run, in first-submitted order."""
        return self.attempts[0].subjects if self.attempts else []

    def job_of(self, number: int) -> JobSpec:
        """What attempt ``number`` runs with: its own resources, else the run's."""
        attempt = next((a for a in self.attempts if a.number == number), None)
        return attempt.job if attempt is not None and attempt.job is not None else self.job

    def current_attempt_of(self) -> dict[str, int]:
        """subject -> the latest attempt that includes it."""
        latest: dict[str, int] = {}
        for attempt in self.attempts:
            for subject in attempt.subjects:
                latest[subject] = attempt.number
        return latest


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def spec_hash(subjects: list[str], payload: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps([subjects, payload], sort_keys=True, default=str).encode())
    return digest.hexdigest()[:6]


def new_run_id(name: str, hash6: str, when: datetime | None = None) -> str:
    """Readable and unique enough: ``name-YYYYmmdd-HHMMSS-hash6``; ``name`` must be a valid run name."""
    when = when or datetime.now(UTC)
    return RUN_ID.check(f"{RUN_NAME.check(name)}-{when:%Y%m%d-%H%M%S}-{hash6}")

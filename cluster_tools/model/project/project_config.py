"""The project file, ``clustertools.yaml``: a typed, validated model.

Errors name the file, the line and the key (``clustertools.yaml:7: job.cpus: ...``): the YAML is
composed once to learn where each key sits, then validated by pydantic.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from cluster_tools.errors import ConfigError
from cluster_tools.model.aws.cluster_spec import ClusterSpec
from cluster_tools.model.aws.cluster_storage_spec import check_secret_arn
from cluster_tools.model.clusters.cluster_record import check_cluster_name
from cluster_tools.model.names import PROJECT_NAME
from cluster_tools.model.nodes.container_runtimes import resolve_runtime
from cluster_tools.model.project.bootstrap_settings import BootstrapSettings
from cluster_tools.model.project.project_file import PROJECT_FILE
from cluster_tools.model.project.project_yaml import (
    ProjectLoader,
    ProjectSource,
    RefusedYAML,
    dotted,
    first_duplicate_key,
    line_of,
    node_at,
    unquoted_hint,
)
from cluster_tools.model.runs.job_spec import JobSpec, S3Location

_FILTER_RE = re.compile(r"[^\x00-\x1f\x7f-][^\x00-\x1f\x7f]{0,255}")


class Storage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    output: S3Location = Field(description="where each run's outputs go: <output>/<run-id>/<subject>/")
    input: S3Location | None = Field(default=None, description="where subjects' inputs are read from")
    input_credentials: str | None = Field(
        default=None,
        description="the ARN of a Secrets Manager secret holding the input bucket's own credentials "
        "(e.g. HCP's key pair): each task reads it through its node's role when it stages "
        "the input; the value is never written to a file, a config or a log",
    )
    input_credentials_to_task: bool = Field(
        default=False,
        description="also give those credentials to the command, for a task that fetches more of the "
        "input itself (aws s3, boto3, datalad): AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY "
        "(and AWS_SESSION_TOKEN) in its environment alone, never in a file or a command "
        "line; clustertools still uploads the outputs with the node's own role",
    )

    input_include: list[str] = Field(
        default_factory=list,
        max_length=64,
        description="stage only the input files matching these patterns (aws s3 --include), e.g. anat/*_T1w.nii.gz",
    )
    input_exclude: list[str] = Field(
        default_factory=list, max_length=64, description="and never these (aws s3 --exclude), e.g. '*/func/*'"
    )

    shared_inputs: list[str] = Field(
        default_factory=list,
        max_length=32,
        description="S3 objects (or prefixes ending in /) every task reads, e.g. a model: fetched once per node for "
        "the run, and given to each task as $SHARED_DIR/<name>",
    )

    @field_validator("shared_inputs")
    @classmethod
    def _shared_inputs(cls, value: list[str]) -> list[str]:
        names = set()
        for url in value:
            S3Location.parse(url)
            name = url.rstrip("/").rsplit("/", 1)[-1]
            if "/" not in url[len("s3://") :].rstrip("/") or name in names:
                raise ValueError(
                    f"{url}: an object or prefix inside a bucket, each with a last name of its own "
                    "(it is $SHARED_DIR/<that name>)"
                )
            names.add(name)
        return value

    @field_validator("input_include", "input_exclude")
    @classmethod
    def _patterns(cls, value: list[str]) -> list[str]:
        for pattern in value:
            if not _FILTER_RE.fullmatch(pattern):
                raise ValueError(
                    f"{pattern!r}: a pattern of aws s3's --include/--exclude: at most 256 characters, "
                    "no control characters, not starting with '-'"
                )
        return value

    @field_validator("output", "input", mode="before")
    @classmethod
    def _parse(cls, value: Any) -> Any:
        return S3Location.parse(value) if isinstance(value, str) else value

    @field_validator("input_credentials")
    @classmethod
    def _credentials(cls, value: str | None) -> str | None:
        return None if value is None else check_secret_arn(value)

    @model_validator(mode="after")
    def _credentials_need_input(self) -> Storage:
        if self.input_credentials and self.input is None:
            raise ValueError("input_credentials is for storage.input: set input too")
        if self.input_credentials_to_task and not self.input_credentials:
            raise ValueError("input_credentials_to_task gives the task storage.input_credentials: set that too")
        return self


class CostSettings(BaseModel):
    """What `submit` says about money before it sends a run to a ParallelCluster cluster."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    minutes_per_subject: float | None = Field(
        default=None, gt=0, le=100_000, description="a measured figure; default: job.time, an upper bound"
    )
    confirm_above_usd: float = Field(default=25.0, ge=0, description="ask (or need --yes) above this estimate")


class Project(BaseModel):
    """The whole project file."""

    model_config = ConfigDict(extra="forbid")

    name: str
    cluster: str | None = Field(default=None, description="the default cluster for -c")
    storage: Storage
    job: JobSpec = Field(default_factory=JobSpec)
    bootstrap: BootstrapSettings = Field(
        default_factory=BootstrapSettings, description="what the node bootstrap installs (Miniforge, conda environment)"
    )
    parallelcluster: ClusterSpec | None = Field(default=None, description="what `up` builds on AWS (optional)")
    cost: CostSettings = Field(default_factory=CostSettings, description="estimates before submit")
    _source: ProjectSource = PrivateAttr(default_factory=lambda: ProjectSource(PROJECT_FILE))

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return PROJECT_NAME.check(value)

    @field_validator("cluster")
    @classmethod
    def _cluster(cls, value: str | None) -> str | None:
        return None if value is None else check_cluster_name(value)

    @property
    def directory(self) -> Path:
        """The directory of its clustertools.yaml (the working directory for a project built in code)."""
        return Path(self._source.name).parent

    def where(self, *loc: str | int) -> str:
        """A key named as every project message names it: ``clustertools.yaml:7: parallelcluster.os``."""
        return self._source.where(loc)


MAX_PROJECT_FILE_BYTES = 1 << 20


def load_project(path: Path) -> Project:
    """Read and validate a project file; every problem is reported with its line and key."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_PROJECT_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    if len(data) > MAX_PROJECT_FILE_BYTES:
        raise ConfigError(
            f"{path} is larger than a project file may be ({MAX_PROJECT_FILE_BYTES >> 20} MiB)",
            "is it the right file? `clustertools init` writes a commented example",
        )
    return parse_project(_decode_project(data, path), str(path))


def _decode_project(data: bytes, path: Path) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ConfigError(f"{path} is UTF-16 text", "save it as UTF-8 (e.g. `iconv -f UTF-16 -t UTF-8`)")
    try:
        return data.decode("utf-8-sig")  # tolerate a BOM
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(
            f"{path}:{line}: not UTF-8 text (byte {data[exc.start]:#04x})",
            "save it as UTF-8 (e.g. `iconv -f LATIN1 -t UTF-8`)",
        ) from None


def parse_project(text: str, source: str = PROJECT_FILE) -> Project:
    try:
        root = yaml.compose(text, Loader=ProjectLoader)
        data = yaml.load(text, Loader=ProjectLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        problem = getattr(exc, "problem", None) or str(exc)
        if isinstance(exc, RefusedYAML):
            raise ConfigError(f"{where}: {problem}", exc.note) from None
        raise ConfigError(f"{where}: not valid YAML: {problem}", "check indentation and quoting") from None
    if not isinstance(data, dict):
        raise ConfigError(
            f"{source}: expected a mapping of keys (name, cluster, storage, job)",
            "run `clustertools init` for a commented example",
        )
    duplicate = first_duplicate_key(root, ())
    if duplicate:
        loc, line = duplicate
        raise ConfigError(f"{source}:{line}: {dotted(loc)}: key given twice", "keep one of them")
    try:
        project = Project.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            line = line_of(root, loc)
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = "unknown key"
            elif err["type"] == "string_type":
                msg = unquoted_hint(node_at(root, loc)) or msg
            problems.append(f"{source}:{line}: {dotted(loc)}: {msg}")
        raise ConfigError("; ".join(problems), "see the commented example from `clustertools init`") from None
    project._source = ProjectSource(source, root)
    runtime = _runtime_problem(project)
    if runtime:
        loc, message = runtime
        raise ConfigError(
            f"{source}:{line_of(root, loc)}: {dotted(loc)}: {message}",
            "README.md, 'Containers on a cluster', tells which runtime each OS can have",
        )
    return project


def _runtime_problem(project: Project) -> tuple[tuple[str, ...], str] | None:
    """A container runtime the cluster's OS cannot have (cluster_tools.model.nodes.container_runtimes): where it
    is asked, and why."""
    spec, asked = project.parallelcluster, project.bootstrap.container_runtime
    if spec is None or not (project.job.container or asked):
        return None
    try:
        runtime = resolve_runtime(spec.os, asked)
    except ValueError as exc:
        return (("bootstrap", "container_runtime") if asked else ("parallelcluster", "os")), str(exc)
    if runtime == "enroot" and project.job.container_args is not None:
        return ("job", "container_args"), (
            "enroot (the runtime here) runs job.command in the image, not the image's "
            "entrypoint: use job.command, or container_runtime docker or podman"
        )
    return None

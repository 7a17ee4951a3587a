"""The project file, ``clustertools.yaml``: a typed, validated model.

Errors name the file, the line and the key (``clustertools.yaml:7: job.cpus: ...``): the YAML is
composed once to learn where each key sits, then validated by pydantic.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from cluster_tools.cluster_spec import ClusterSpec
from cluster_tools.clusters import check_cluster_name
from cluster_tools.errors import ConfigError

PROJECT_FILE = "clustertools.yaml"

_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
# S3 allows more, but these never need quoting anywhere (shell, URLs, Slurm options).
_PREFIX_RE = re.compile(r"^[A-Za-z0-9._/=+-]*$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_MEM_RE = re.compile(r"^[1-9][0-9]*[KMGT]?$")
# Slurm's --time forms: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S
_TIME_RE = re.compile(r"^(\d+-)?\d+(:\d{1,2}){0,2}$")


class S3Location(BaseModel):
    """``s3://bucket[/prefix]`` split into its parts."""

    model_config = ConfigDict(frozen=True)

    bucket: str
    prefix: str = ""

    @classmethod
    def parse(cls, url: str) -> "S3Location":
        if not isinstance(url, str) or not url.startswith("s3://"):
            raise ValueError("must be an s3:// URL, e.g. s3://my-bucket/results")
        bucket, _, prefix = url[len("s3://") :].partition("/")
        if not _BUCKET_RE.match(bucket) or ".." in bucket:
            raise ValueError(f"{bucket!r} is not a valid S3 bucket name")
        if not _PREFIX_RE.match(prefix) or "//" in prefix:
            raise ValueError(f"the key prefix {prefix!r} may hold only letters, digits and . _ / = + -")
        return cls(bucket=bucket, prefix=prefix.strip("/"))

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"


class Storage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    output: S3Location = Field(description="where each run's outputs go: <output>/<run-id>/<subject>/")
    input: S3Location | None = Field(default=None, description="where subjects' inputs are read from")

    @field_validator("output", "input", mode="before")
    @classmethod
    def _parse(cls, value: Any) -> Any:
        return S3Location.parse(value) if isinstance(value, str) else value


class JobSpec(BaseModel):
    """What one task runs, and with what resources; the command line can override each."""

    model_config = ConfigDict(extra="forbid")

    command: str | None = None
    container: str | None = None
    cpus: int = Field(default=1, ge=1, le=1024)
    mem: str = "1G"
    time: str = "01:00:00"
    partition: str | None = None
    throttle: int | None = Field(default=None, ge=1)

    @field_validator("mem")
    @classmethod
    def _mem(cls, value: str) -> str:
        if not _MEM_RE.match(str(value)):
            raise ValueError("must be a Slurm memory size like 4G, 512M or 2000")
        return str(value)

    @field_validator("time")
    @classmethod
    def _time(cls, value: str) -> str:
        if not _TIME_RE.match(str(value)):
            raise ValueError("must be a Slurm time like 30, 01:30:00 or 1-00:00:00")
        return str(value)

    @field_validator("partition")
    @classmethod
    def _partition(cls, value: str | None) -> str | None:
        if value is not None and not _NAME_RE.match(value):
            raise ValueError("letters, digits, '.', '_' and '-' only")
        return value


class Project(BaseModel):
    """The whole project file."""

    model_config = ConfigDict(extra="forbid")

    name: str
    cluster: str | None = Field(default=None, description="the default cluster for -c")
    storage: Storage
    job: JobSpec = Field(default_factory=JobSpec)
    parallelcluster: ClusterSpec | None = Field(default=None, description="what `up` builds on AWS (optional)")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME_RE.match(value):
            raise ValueError("letters, digits, '.', '_' and '-' only, at most 64, starting with a letter or digit")
        return value

    @field_validator("cluster")
    @classmethod
    def _cluster(cls, value: str | None) -> str | None:
        return None if value is None else check_cluster_name(value)


class _ProjectLoader(yaml.SafeLoader):
    """SafeLoader with constructors of its own: pcluster's yaml_load patches SafeLoader's mapping
    constructor process-wide, which would change how a project file loads once pcluster ran."""


_ProjectLoader.yaml_constructors = dict(yaml.SafeLoader.yaml_constructors)
_ProjectLoader.add_constructor("tag:yaml.org,2002:map", yaml.constructor.SafeConstructor.construct_yaml_map)


def find_project_file(start: Path) -> Path | None:
    """The nearest clustertools.yaml in ``start`` or its parents, like git finds its repo."""
    start = start.resolve()
    for directory in (start, *start.parents):
        candidate = directory / PROJECT_FILE
        if candidate.is_file():
            return candidate
    return None


def load_project(path: Path) -> Project:
    """Read and validate a project file; every problem is reported with its line and key."""
    try:
        text = path.read_text(encoding="utf-8-sig")  # tolerate a BOM
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    return parse_project(text, str(path))


def parse_project(text: str, source: str = PROJECT_FILE) -> Project:
    try:
        root = yaml.compose(text, Loader=_ProjectLoader)
        data = yaml.load(text, Loader=_ProjectLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{where}: not valid YAML: {problem}", "check indentation and quoting") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of keys (name, cluster, storage, job)",
                          "run `clustertools init` for a commented example")
    duplicate = _first_duplicate_key(root, ())
    if duplicate:
        loc, line = duplicate
        raise ConfigError(f"{source}:{line}: {_dotted(loc)}: key given twice", "keep one of them")
    try:
        return Project.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            line = _line_of(root, loc)
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = "unknown key"
            problems.append(f"{source}:{line}: {_dotted(loc)}: {msg}")
        raise ConfigError("; ".join(problems), "see the commented example from `clustertools init`") from None


def _dotted(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _line_of(node: yaml.Node | None, loc: tuple[Any, ...]) -> int:
    """1-based line of the deepest node along ``loc`` (the parent's line for a missing key)."""
    line = node.start_mark.line + 1 if node is not None else 1
    for part in loc:
        child = None
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.value == part:
                    child, line = value, key.start_mark.line + 1
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            child = node.value[part]
            line = child.start_mark.line + 1
        if child is None:
            break
        node = child
    return line


def _first_duplicate_key(node: yaml.Node | None, loc: tuple[Any, ...]) -> tuple[tuple[Any, ...], int] | None:
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            if key.value in seen:
                return loc + (key.value,), key.start_mark.line + 1
            seen.add(key.value)
            found = _first_duplicate_key(value, loc + (key.value,))
            if found:
                return found
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            found = _first_duplicate_key(item, loc + (index,))
            if found:
                return found
    return None
